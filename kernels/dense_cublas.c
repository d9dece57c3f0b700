/* Dense layers on cuBLAS (SPEC.md section 4), row-major [n, features] tensors read as column-major
 * matrices; TF32 tensor-core math when `math = tf32`. The bias is added by a small kernel
 * (kernels/elementwise.cu); its gradient is the per-channel reduction every layer uses (kernels/act.cu). */
#include <cublas_v2.h>

#include "cuda_internal.h"
#include "lpc/check.h"

static cublasHandle_t handle(void) { return (cublasHandle_t)lpc_cuda.cublas; }

void lpc_cublas_dense_forward(float *y, const float *x, const float *w, const float *b, int n, int in, int out) {
    const float one = 1.0f, zero = 0.0f;
    /* Y (out x n) = W^T (out x in) X (in x n), with W column-major (in x out) */
    LPC_CHECK_CUBLAS(cublasSgemm(handle(), CUBLAS_OP_T, CUBLAS_OP_N, out, n, in, &one, w, in, x, in, &zero, y, out));
    if (b) lpc_cuda_add_bias_rows(y, b, n, out);
}

void lpc_cublas_dense_backward_data(float *dx, const float *dy, const float *w, int n, int in, int out) {
    const float one = 1.0f, zero = 0.0f;
    /* DX (in x n) = W (in x out) DY (out x n) */
    LPC_CHECK_CUBLAS(cublasSgemm(handle(), CUBLAS_OP_N, CUBLAS_OP_N, in, n, out, &one, w, in, dy, out, &zero, dx, in));
}

/* the channel-last forms (kernels/dense_fused.cu): y [n, hw, c] = x w^T for w's rows in the feature order
 * c * hw + position, one GEMM per position batched (the rows of one position are hw * in apart); the
 * backward's partial results [hw][n, in], one per position */
void lpc_cublas_dense_forward_channels_last(float *y, const float *x, const float *w, int n, int in, int out,
                                            int channels) {
    const float one = 1.0f, zero = 0.0f;
    const int hw = out / channels;
    /* Y_p (c x n, ld hw * c) = W_p^T (c x in) X (in x n), W_p column-major (in x c, ld hw * in) */
    LPC_CHECK_CUBLAS(cublasSgemmStridedBatched(handle(), CUBLAS_OP_T, CUBLAS_OP_N, channels, n, in, &one, w,
                                               hw * in, in, x, in, 0, &zero, y, hw * channels, channels, hw));
}

void lpc_cublas_dense_backward_data_channels_last(float *partials, const float *dy, const float *w, int n, int in,
                                                  int out, int channels) {
    const float one = 1.0f, zero = 0.0f;
    const int hw = out / channels;
    /* DX_p (in x n) = W_p (in x c, ld hw * in) DY_p (c x n, ld hw * c) */
    LPC_CHECK_CUBLAS(cublasSgemmStridedBatched(handle(), CUBLAS_OP_N, CUBLAS_OP_N, in, n, channels, &one, w, hw * in,
                                               in, dy, hw * channels, channels, &zero, partials, in, (long long)in * n,
                                               hw));
}

void lpc_cublas_dense_backward_params(float *dw, float *db, const float *dy, const float *x, int n, int in, int out) {
    const float one = 1.0f;
    /* dW (in x out) += X (in x n) DY^T (n x out) */
    LPC_CHECK_CUBLAS(cublasSgemm(handle(), CUBLAS_OP_N, CUBLAS_OP_T, in, out, n, &one, x, in, dy, out, &one, dw, in));
    if (db) lpc_cuda_bias_grad(db, dy, n, out, 1); /* [n, out] is [n, c = out, hw = 1] */
}
