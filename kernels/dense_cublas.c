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

void lpc_cublas_dense_backward_params(float *dw, float *db, const float *dy, const float *x, int n, int in, int out) {
    const float one = 1.0f;
    /* dW (in x out) += X (in x n) DY^T (n x out) */
    LPC_CHECK_CUBLAS(cublasSgemm(handle(), CUBLAS_OP_N, CUBLAS_OP_T, in, out, n, &one, x, in, dy, out, &one, dw, in));
    if (db) lpc_cuda_bias_grad(db, dy, n, out, 1); /* [n, out] is [n, c = out, hw = 1] */
}
