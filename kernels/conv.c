/* The convolution ops of the CUDA backend: each call goes to cuDNN (kernels/conv_cudnn.c) or to the
 * GEMM lowering (kernels/conv_gemm.cu), by the `conv_algo` setting:
 *   cudnn  every convolution on cuDNN;
 *   gemm   forward and backward-data lowered to cuBLAS GEMMs with gather kernels, backward-filter on
 *          cuDNN;
 *   auto   per shape and operation, the faster of the two, timed once (as a replayed graph) when the
 *          shape is first seen, outside any graph capture. With `deterministic = true` no timing
 *          decides, so that a run never depends on a measurement: the lowering (whose kernels are
 *          deterministic) for shapes whose column workspace is at most 8 MiB, cuDNN above.
 * Shapes with a tensor or workspace of 2^31 elements or more always run on cuDNN.
 * The decoder's fused layer ops run as one GEMM and one fused gather kernel each on the gemm path:
 * transposed convolution + bias + activation (col2im adds the bias and applies the activation), and
 * the inference-only backward through activation and transposed convolution (im2col applies the
 * activation's derivative). On cuDNN they are the convolution plus the bias-activation kernel. */
#include <cuda_runtime.h>
#include <stdio.h>
#include <string.h>

#include "cuda_internal.h"
#include "lpc/check.h"
#include "lpc/config.h"

enum { OP_FORWARD, OP_BACKWARD_DATA, OP_COUNT };
#define MAX_CHOICES 128
#define TIMED_CALLS 10
#define TIMED_REPLAYS 3
/* deterministic auto: the lowering up to this column workspace (bench/RESULTS.md has the timings
 * behind it: on an H200 the lowering was faster for 5 of the 6 convolutions of cifar32 at batch 64,
 * whose workspaces are at most 8 MiB, and cuDNN for most larger ones) */
#define DETERMINISTIC_GEMM_BYTES ((size_t)8 << 20)

struct choice {
    struct lpc_conv_shape s;
    int tf32, conv_algo;
    int path[OP_COUNT]; /* LPC_CONV_CUDNN or LPC_CONV_GEMM; -1: not chosen yet */
};

static struct choice choices[MAX_CHOICES];
static int n_choices;
/* the lowering's column matrix lives in the backend's workspace, reserved when the path is chosen */
static float *cols_for(const struct lpc_conv_shape *s) { return (float *)lpc_cuda_workspace(lpc_gemm_conv_workspace(s)); }

static struct choice *choice_for(const struct lpc_conv_shape *s) {
    for (int i = 0; i < n_choices; i++)
        if (choices[i].tf32 == lpc_cuda.tf32 && choices[i].conv_algo == lpc_cuda.conv_algo &&
            memcmp(&choices[i].s, s, sizeof *s) == 0)
            return &choices[i];
    if (n_choices == MAX_CHOICES)
        lpc_die_internal("convolution", "choice_for", __func__, __FILE__, __LINE__, "too many convolution shapes");
    struct choice *c = &choices[n_choices++];
    c->s = *s;
    c->tf32 = lpc_cuda.tf32;
    c->conv_algo = lpc_cuda.conv_algo;
    for (int i = 0; i < OP_COUNT; i++) c->path[i] = -1;
    return c;
}

static void run(int op, int path, float *out, const float *in, const float *w, const struct lpc_conv_shape *s) {
    if (op == OP_FORWARD) {
        if (path == LPC_CONV_GEMM) lpc_gemm_conv_forward(out, in, NULL, LPC_ACT_NONE, s, w, cols_for(s));
        else lpc_cudnn_conv_forward(out, in, w, s);
    } else {
        if (path == LPC_CONV_GEMM) lpc_gemm_conv_backward_data(out, NULL, NULL, LPC_ACT_NONE, in, w, s, cols_for(s));
        else lpc_cudnn_conv_backward_data(out, in, w, s);
    }
}

/* milliseconds per call, as the chain runs it: TIMED_CALLS calls captured as one graph, replayed once
 * untimed (after one plain call, which also makes the cuDNN plan), then timed over TIMED_REPLAYS */
static float time_path(int op, int path, float *out, const float *in, const float *w, const struct lpc_conv_shape *s) {
    cudaStream_t stream = (cudaStream_t)lpc_cuda.stream;
    run(op, path, out, in, w, s);
    lpc_cuda_graph_begin();
    for (int i = 0; i < TIMED_CALLS; i++) run(op, path, out, in, w, s);
    void *graph = lpc_cuda_graph_end();
    lpc_cuda_graph_launch(graph);
    cudaEvent_t start, stop;
    LPC_CHECK_CUDA(cudaEventCreate(&start));
    LPC_CHECK_CUDA(cudaEventCreate(&stop));
    LPC_CHECK_CUDA(cudaEventRecord(start, stream));
    for (int i = 0; i < TIMED_REPLAYS; i++) lpc_cuda_graph_launch(graph);
    LPC_CHECK_CUDA(cudaEventRecord(stop, stream));
    LPC_CHECK_CUDA(cudaEventSynchronize(stop));
    float ms;
    LPC_CHECK_CUDA(cudaEventElapsedTime(&ms, start, stop));
    LPC_CHECK_CUDA(cudaEventDestroy(start));
    LPC_CHECK_CUDA(cudaEventDestroy(stop));
    lpc_cuda_graph_destroy(graph);
    return ms / (TIMED_CALLS * TIMED_REPLAYS);
}

/* the path for this op and shape; the first time, also the GEMM workspace. Both candidates write only
 * `out` (assigned, not accumulated), which the caller's call then overwrites. */
static int path_for(int op, float *out, const float *in, const float *w, const struct lpc_conv_shape *s) {
    if (lpc_cuda.conv_algo == LPC_CONV_CUDNN) return LPC_CONV_CUDNN;
    struct choice *c = choice_for(s);
    if (c->path[op] >= 0) return c->path[op];
    enum cudaStreamCaptureStatus capturing;
    LPC_CHECK_CUDA(cudaStreamIsCapturing((cudaStream_t)lpc_cuda.stream, &capturing));
    if (capturing != cudaStreamCaptureStatusNone)
        lpc_die_internal("convolution", "path_for", __func__, __FILE__, __LINE__,
                         "a convolution shape was first seen inside a graph capture");
    if (!lpc_gemm_conv_fits(s)) { /* the lowering indexes with 32 bits */
        c->path[op] = LPC_CONV_CUDNN;
    } else if (lpc_cuda.conv_algo == LPC_CONV_GEMM) {
        cols_for(s);
        c->path[op] = LPC_CONV_GEMM;
    } else if (lpc_cuda.deterministic) {
        c->path[op] = lpc_gemm_conv_workspace(s) <= DETERMINISTIC_GEMM_BYTES ? LPC_CONV_GEMM : LPC_CONV_CUDNN;
        if (c->path[op] == LPC_CONV_GEMM) cols_for(s);
    } else {
        cols_for(s);
        float t_cudnn = time_path(op, LPC_CONV_CUDNN, out, in, w, s);
        float t_gemm = time_path(op, LPC_CONV_GEMM, out, in, w, s);
        c->path[op] = t_gemm <= t_cudnn ? LPC_CONV_GEMM : LPC_CONV_CUDNN;
        fprintf(stderr, "lpc: convolution [%d, %d, %d, %d] <-> [%d, %d, %d, %d] k%d s%d %s: cudnn %.1f us, gemm %.1f us\n",
                s->n, s->ci, s->h, s->w, s->n, s->co, s->ho, s->wo, s->k, s->stride,
                op == OP_FORWARD ? "forward" : "backward-data", 1e3 * t_cudnn, 1e3 * t_gemm);
    }
    return c->path[op];
}

void lpc_cuda_conv2d_forward(float *y, const float *x, const float *w, const struct lpc_conv_shape *s) {
    run(OP_FORWARD, path_for(OP_FORWARD, y, x, w, s), y, x, w, s);
}

void lpc_cuda_conv2d_backward_data(float *dx, const float *dy, const float *w, const struct lpc_conv_shape *s) {
    run(OP_BACKWARD_DATA, path_for(OP_BACKWARD_DATA, dx, dy, w, s), dx, dy, w, s);
}

void lpc_cuda_conv2d_backward_filter(float *dw, const float *dy, const float *x, const struct lpc_conv_shape *s) {
    lpc_cudnn_conv_backward_filter(dw, dy, x, s);
}

void lpc_cuda_deconv_bias_act_forward(float *out, float *pre, const float *x, const float *w, const float *b,
                                      const struct lpc_conv_shape *s, int act) {
    if (path_for(OP_BACKWARD_DATA, pre, x, w, s) == LPC_CONV_GEMM) {
        lpc_gemm_conv_backward_data(out, pre, b, act, x, w, s, cols_for(s));
    } else {
        lpc_cudnn_conv_backward_data(pre, x, w, s);
        lpc_cuda_bias_act_forward(out, pre, b, s->n, s->ci, s->h * s->w, act);
    }
}

void lpc_cuda_act_conv2d_forward(float *y, float *dout, const float *pre, const float *w,
                                 const struct lpc_conv_shape *s, int act) {
    if (path_for(OP_FORWARD, y, dout, w, s) == LPC_CONV_GEMM) {
        lpc_gemm_conv_forward(y, dout, pre, act, s, w, cols_for(s));
    } else {
        lpc_cuda_bias_act_backward(dout, NULL, dout, pre, s->n, s->ci, s->h * s->w, act);
        lpc_cudnn_conv_forward(y, dout, w, s);
    }
}
