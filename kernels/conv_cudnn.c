/* cuDNN's legacy convolution API on NCHW tensors (SPEC.md section 4): forward, backward-data and
 * backward-filter. Descriptors and algorithms are made once per shape (the batch size included) and
 * cached; the algorithms come from cuDNN's heuristics (cudnnGet*_v7) under a workspace limit, restricted
 * to deterministic ones when `deterministic = true`; `math = tf32` allows tensor-core TF32. The backend's
 * one workspace (kernels/workspace.c) serves every algorithm. A transposed convolution is the same
 * shape read backwards: its forward is backward-data, its gradients forward and backward-filter (see
 * model.c). The channel-last path uses cuDNN's graph API (kernels/conv_cudnn_graph.c). */
#include <cuda_runtime.h>
#include <cudnn.h>
#include <string.h>

#include "cuda_internal.h"
#include "lpc/check.h"

#define MAX_SHAPES 64
#define WORKSPACE_LIMIT ((size_t)256 << 20)

struct conv_plan {
    struct lpc_conv_shape s;
    cudnnTensorDescriptor_t x, y;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
    cudnnConvolutionFwdAlgo_t fwd;
    cudnnConvolutionBwdDataAlgo_t bwd_data;
    cudnnConvolutionBwdFilterAlgo_t bwd_filter;
    size_t workspace; /* bytes the three algorithms need at most */
};

static struct conv_plan plans[MAX_SHAPES];
static int n_plans;
struct workspace {
    void *ptr;
    size_t bytes;
};
/* the backend's workspace for plan p: the plan reserved it when it was made */
static struct workspace workspace_for(const struct conv_plan *p) {
    struct workspace ws = {lpc_cuda_workspace(p->workspace), p->workspace};
    return ws;
}

/* out = the first of the heuristics' `count` results (best first) that works within the workspace
 * limit, and is deterministic if the backend must be; `fallback` if none does. The three result
 * structs differ in type but share these fields. */
#define PICK_ALGO(out, results, count, fallback)                                                            \
    do {                                                                                                  \
        int found_ = 0;                                                                                   \
        for (int i_ = 0; i_ < (count) && !found_; i_++)                                                   \
            if ((results)[i_].status == CUDNN_STATUS_SUCCESS && (results)[i_].memory <= WORKSPACE_LIMIT &&  \
                (!lpc_cuda.deterministic || (results)[i_].determinism == CUDNN_DETERMINISTIC))             \
                (out) = (results)[i_].algo, found_ = 1;                                                   \
        if (!found_) (out) = (fallback);                                                                  \
    } while (0)

static cudnnHandle_t handle(void) { return (cudnnHandle_t)lpc_cuda.cudnn; }

static struct conv_plan *plan_for(const struct lpc_conv_shape *s) {
    for (int i = 0; i < n_plans; i++)
        if (memcmp(&plans[i].s, s, sizeof *s) == 0) return &plans[i];
    if (n_plans == MAX_SHAPES) lpc_die_internal("cuDNN", "plan_for", __func__, __FILE__, __LINE__, "too many convolution shapes");
    struct conv_plan *p = &plans[n_plans++];
    memset(p, 0, sizeof *p);
    p->s = *s;
    LPC_CHECK_CUDNN(cudnnCreateTensorDescriptor(&p->x));
    LPC_CHECK_CUDNN(cudnnCreateTensorDescriptor(&p->y));
    LPC_CHECK_CUDNN(cudnnCreateFilterDescriptor(&p->w));
    LPC_CHECK_CUDNN(cudnnCreateConvolutionDescriptor(&p->conv));
    LPC_CHECK_CUDNN(cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s->n, s->ci, s->h, s->w));
    LPC_CHECK_CUDNN(cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s->n, s->co, s->ho, s->wo));
    LPC_CHECK_CUDNN(cudnnSetFilter4dDescriptor(p->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, s->co, s->ci, s->k, s->k));
    LPC_CHECK_CUDNN(cudnnSetConvolution2dDescriptor(p->conv, s->pad, s->pad, s->stride, s->stride, 1, 1,
                                                    CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    LPC_CHECK_CUDNN(cudnnSetConvolutionMathType(p->conv, lpc_cuda.tf32 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH));

    size_t need, most = 0;
    int count;
    cudnnConvolutionFwdAlgoPerf_t fwd[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    LPC_CHECK_CUDNN(cudnnGetConvolutionForwardAlgorithm_v7(handle(), p->x, p->w, p->conv, p->y,
                                                           CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &count, fwd));
    PICK_ALGO(p->fwd, fwd, count, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM);
    LPC_CHECK_CUDNN(cudnnGetConvolutionForwardWorkspaceSize(handle(), p->x, p->w, p->conv, p->y, p->fwd, &need));
    most = need > most ? need : most;

    cudnnConvolutionBwdDataAlgoPerf_t bd[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    LPC_CHECK_CUDNN(cudnnGetConvolutionBackwardDataAlgorithm_v7(handle(), p->w, p->y, p->conv, p->x,
                                                                CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &count, bd));
    PICK_ALGO(p->bwd_data, bd, count, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1);
    LPC_CHECK_CUDNN(cudnnGetConvolutionBackwardDataWorkspaceSize(handle(), p->w, p->y, p->conv, p->x, p->bwd_data, &need));
    most = need > most ? need : most;

    cudnnConvolutionBwdFilterAlgoPerf_t bf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    LPC_CHECK_CUDNN(cudnnGetConvolutionBackwardFilterAlgorithm_v7(handle(), p->x, p->y, p->conv, p->w,
                                                                  CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &count, bf));
    PICK_ALGO(p->bwd_filter, bf, count, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1);
    LPC_CHECK_CUDNN(cudnnGetConvolutionBackwardFilterWorkspaceSize(handle(), p->x, p->y, p->conv, p->w, p->bwd_filter, &need));
    most = need > most ? need : most;
    p->workspace = most;
    lpc_cuda_workspace(most);
    return p;
}

size_t lpc_cudnn_conv_workspace(const struct lpc_conv_shape *s) { return plan_for(s)->workspace; }

void lpc_cudnn_conv_forward(float *y, const float *x, const float *w, const struct lpc_conv_shape *s) {
    struct conv_plan *p = plan_for(s);
    struct workspace ws = workspace_for(p);
    const float one = 1.0f, zero = 0.0f;
    LPC_CHECK_CUDNN(cudnnConvolutionForward(handle(), &one, p->x, x, p->w, w, p->conv, p->fwd, ws.ptr, ws.bytes,
                                            &zero, p->y, y));
}

void lpc_cudnn_conv_backward_data(float *dx, const float *dy, const float *w, const struct lpc_conv_shape *s) {
    struct conv_plan *p = plan_for(s);
    struct workspace ws = workspace_for(p);
    const float one = 1.0f, zero = 0.0f;
    LPC_CHECK_CUDNN(cudnnConvolutionBackwardData(handle(), &one, p->w, w, p->y, dy, p->conv, p->bwd_data, ws.ptr,
                                                 ws.bytes, &zero, p->x, dx));
}

void lpc_cudnn_conv_backward_filter(float *dw, const float *dy, const float *x, const struct lpc_conv_shape *s) {
    struct conv_plan *p = plan_for(s);
    struct workspace ws = workspace_for(p);
    const float one = 1.0f; /* parameter gradients accumulate */
    LPC_CHECK_CUDNN(cudnnConvolutionBackwardFilter(handle(), &one, p->x, x, p->y, dy, p->conv, p->bwd_filter, ws.ptr,
                                                   ws.bytes, &one, p->w, dw));
}
