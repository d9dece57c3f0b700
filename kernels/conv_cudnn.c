/* Every cuDNN call of lpc (SPEC.md section 4): convolution forward, backward-data and backward-filter.
 * Descriptors and algorithms are made once per shape (the batch size included) and cached; the
 * algorithms come from cuDNN's heuristics (cudnnGet*_v7) under a workspace limit, restricted to
 * deterministic ones when `deterministic = true`; `math = tf32` allows tensor-core TF32. One
 * workspace serves every algorithm. A transposed convolution is the same shape read backwards: its
 * forward is backward-data, its gradients forward and backward-filter (see model.c). */
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
};

static struct conv_plan plans[MAX_SHAPES];
static int n_plans;
static void *workspace;
static size_t workspace_size;

static void grow_workspace(size_t bytes) {
    if (bytes <= workspace_size) return;
    if (workspace) LPC_CHECK_CUDA(cudaFree(workspace));
    LPC_CHECK_CUDA(cudaMalloc(&workspace, bytes));
    workspace_size = bytes;
}

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

    const int det = lpc_cuda.deterministic;
    int count;
    size_t need, most = 0;
    cudnnConvolutionFwdAlgoPerf_t fwd[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    LPC_CHECK_CUDNN(cudnnGetConvolutionForwardAlgorithm_v7(handle(), p->x, p->w, p->conv, p->y,
                                                           CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &count, fwd));
    int found = 0;
    for (int i = 0; i < count && !found; i++)
        if (fwd[i].status == CUDNN_STATUS_SUCCESS && fwd[i].memory <= WORKSPACE_LIMIT &&
            (!det || fwd[i].determinism == CUDNN_DETERMINISTIC))
            p->fwd = fwd[i].algo, found = 1;
    if (!found) p->fwd = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
    LPC_CHECK_CUDNN(cudnnGetConvolutionForwardWorkspaceSize(handle(), p->x, p->w, p->conv, p->y, p->fwd, &need));
    most = need > most ? need : most;

    cudnnConvolutionBwdDataAlgoPerf_t bd[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    LPC_CHECK_CUDNN(cudnnGetConvolutionBackwardDataAlgorithm_v7(handle(), p->w, p->y, p->conv, p->x,
                                                                CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &count, bd));
    found = 0;
    for (int i = 0; i < count && !found; i++)
        if (bd[i].status == CUDNN_STATUS_SUCCESS && bd[i].memory <= WORKSPACE_LIMIT &&
            (!det || bd[i].determinism == CUDNN_DETERMINISTIC))
            p->bwd_data = bd[i].algo, found = 1;
    if (!found) p->bwd_data = CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
    LPC_CHECK_CUDNN(cudnnGetConvolutionBackwardDataWorkspaceSize(handle(), p->w, p->y, p->conv, p->x, p->bwd_data, &need));
    most = need > most ? need : most;

    cudnnConvolutionBwdFilterAlgoPerf_t bf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    LPC_CHECK_CUDNN(cudnnGetConvolutionBackwardFilterAlgorithm_v7(handle(), p->x, p->y, p->conv, p->w,
                                                                  CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &count, bf));
    found = 0;
    for (int i = 0; i < count && !found; i++)
        if (bf[i].status == CUDNN_STATUS_SUCCESS && bf[i].memory <= WORKSPACE_LIMIT &&
            (!det || bf[i].determinism == CUDNN_DETERMINISTIC))
            p->bwd_filter = bf[i].algo, found = 1;
    if (!found) p->bwd_filter = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1;
    LPC_CHECK_CUDNN(cudnnGetConvolutionBackwardFilterWorkspaceSize(handle(), p->x, p->y, p->conv, p->w, p->bwd_filter, &need));
    most = need > most ? need : most;
    grow_workspace(most);
    return p;
}

void lpc_cudnn_conv_forward(float *y, const float *x, const float *w, const struct lpc_conv_shape *s) {
    struct conv_plan *p = plan_for(s);
    const float one = 1.0f, zero = 0.0f;
    LPC_CHECK_CUDNN(cudnnConvolutionForward(handle(), &one, p->x, x, p->w, w, p->conv, p->fwd, workspace, workspace_size,
                                            &zero, p->y, y));
}

void lpc_cudnn_conv_backward_data(float *dx, const float *dy, const float *w, const struct lpc_conv_shape *s) {
    struct conv_plan *p = plan_for(s);
    const float one = 1.0f, zero = 0.0f;
    LPC_CHECK_CUDNN(cudnnConvolutionBackwardData(handle(), &one, p->w, w, p->y, dy, p->conv, p->bwd_data, workspace,
                                                 workspace_size, &zero, p->x, dx));
}

void lpc_cudnn_conv_backward_filter(float *dw, const float *dy, const float *x, const struct lpc_conv_shape *s) {
    struct conv_plan *p = plan_for(s);
    const float one = 1.0f; /* parameter gradients accumulate */
    LPC_CHECK_CUDNN(cudnnConvolutionBackwardFilter(handle(), &one, p->x, x, p->y, dy, p->conv, p->bwd_filter, workspace,
                                                   workspace_size, &one, p->w, dw));
}
