// Convolutions lowered to cuBLAS GEMMs (the `gemm` convolution algorithm, see kernels/conv.c), NCHW.
//
// For one image b, with R = ci*k*k and Q = ho*wo, the column matrix cols_b [R, Q] holds
// cols_b[(c*k + ky)*k + kx, oy*wo + ox] = x_b[c, oy*stride - pad + ky, ox*stride - pad + kx]
// (zero outside the image); the weight w [co, ci, k, k] is the matrix [co, R]. Then
//   forward:        y_b [co, Q] = w [co, R] cols_b [R, Q]       (im2col, then one GEMM per image)
//   backward-data:  cols_b = w^T dy_b, dx_b = col2im(cols_b)    (one GEMM per image, then a gather)
// The GEMMs are one strided-batched cuBLAS call over the images (the weight is shared: stride 0).
// col2im is a gather: every input-space element adds its <= (k/stride)^2 contributions in a fixed
// order, so the result is deterministic; its fused form also adds the bias and applies the activation,
// which makes a decoder layer (transposed convolution + bias + activation) one GEMM and one kernel.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "cuda_internal.h"
#include "lpc/check.h"
#include "lpc/config.h"
#include "lpc/pointwise.h"

#define STREAM ((cudaStream_t)lpc_cuda.stream)


struct geometry {
    int ci, h, w, ho, wo, k, stride, pad;
};

static geometry geometry_of(const struct lpc_conv_shape *s) {
    return geometry{s->ci, s->h, s->w, s->ho, s->wo, s->k, s->stride, s->pad};
}

// One thread per (image, channel, output position q): it writes the k*k rows of its column, so
// consecutive threads write consecutive q. With act >= 0 (the inference-only fused form) the gathered
// value is x * act'(pre): the activation's backward applied on the way. 32-bit indices (the caller
// keeps every tensor below 2^31 elements).
__global__ void im2col_kernel(float *cols, const float *x, const float *pre, int act, geometry g, unsigned total) {
    const unsigned Q = (unsigned)(g.ho * g.wo), kk = (unsigned)(g.k * g.k);
    for (unsigned t = blockIdx.x * blockDim.x + threadIdx.x; t < total; t += gridDim.x * blockDim.x) {
        const unsigned q = t % Q, bc = t / Q;
        const int y0 = (int)(q / g.wo) * g.stride - g.pad, x0 = (int)(q % g.wo) * g.stride - g.pad;
        const float *src = x + (size_t)bc * g.h * g.w;
        const float *src_pre = pre + (size_t)bc * g.h * g.w;
        float *dst = cols + (size_t)bc * kk * Q + q;
        for (int ky = 0; ky < g.k; ky++) {
            const int y = y0 + ky;
            for (int kx = 0; kx < g.k; kx++) {
                const int xx = x0 + kx;
                float v = 0.0f;
                if (y >= 0 && y < g.h && xx >= 0 && xx < g.w) {
                    v = src[y * g.w + xx];
                    if (act >= 0) v *= lpc_pw_act_derivative(src_pre[y * g.w + xx], act);
                }
                dst[(size_t)(ky * g.k + kx) * Q] = v;
            }
        }
    }
}

// x [n, ci, h, w] from cols [n, R, Q] (the adjoint of im2col), one thread per element of x; with
// bias: pre = sum + b[c], out = act(pre)
__global__ void col2im_kernel(float *out, float *pre, const float *cols, const float *bias, int act, geometry g,
                              unsigned total) {
    const unsigned Q = (unsigned)(g.ho * g.wo), kk = (unsigned)(g.k * g.k), hw = (unsigned)(g.h * g.w);
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
        const unsigned bc = i / hw, p = i % hw;
        const int y = (int)(p / g.w), xx = (int)(p % g.w);
        const float *col = cols + (size_t)bc * kk * Q;
        float acc = 0.0f;
        // the taps with (y + pad - ky) a multiple of stride and oy = (y + pad - ky) / stride in range
        for (int ky = (y + g.pad) % g.stride; ky < g.k; ky += g.stride) {
            const int oy = (y + g.pad - ky) / g.stride;
            if (oy < 0 || oy >= g.ho) continue;
            for (int kx = (xx + g.pad) % g.stride; kx < g.k; kx += g.stride) {
                const int ox = (xx + g.pad - kx) / g.stride;
                if (ox < 0 || ox >= g.wo) continue;
                acc += col[(size_t)(ky * g.k + kx) * Q + oy * g.wo + ox];
            }
        }
        if (bias) {
            acc += bias[bc % g.ci];
            pre[i] = acc;
            out[i] = lpc_pw_act(acc, act);
        } else {
            out[i] = acc;
        }
    }
}

static cublasHandle_t handle(void) { return (cublasHandle_t)lpc_cuda.cublas; }

extern "C" {
size_t lpc_gemm_conv_workspace(const struct lpc_conv_shape *s) {
    return (size_t)s->n * s->ci * s->k * s->k * s->ho * s->wo * sizeof(float);
}

int lpc_gemm_conv_fits(const struct lpc_conv_shape *s) {
    const size_t limit = (size_t)1 << 31;
    return lpc_gemm_conv_workspace(s) / sizeof(float) < limit && (size_t)s->n * s->ci * s->h * s->w < limit &&
           (size_t)s->n * s->co * s->ho * s->wo < limit;
}

void lpc_gemm_conv_forward(float *y, const float *x, const float *pre, int act, const struct lpc_conv_shape *s,
                           const float *w, float *cols) {
    const int R = s->ci * s->k * s->k, Q = s->ho * s->wo;
    const unsigned total = (unsigned)((size_t)s->n * s->ci * Q);
    im2col_kernel<<<lpc_grid_stride_blocks(total), LPC_THREADS, 0, STREAM>>>(cols, x, pre, act, geometry_of(s), total);
    const float one = 1.0f, zero = 0.0f;
    // column-major: y_b (Q x co) = cols_b (Q x R) * w (R x co)
    LPC_CHECK_CUBLAS(cublasSgemmStridedBatched(handle(), CUBLAS_OP_N, CUBLAS_OP_N, Q, s->co, R, &one, cols, Q,
                                               (long long)R * Q, w, R, 0, &zero, y, Q, (long long)s->co * Q, s->n));
}

void lpc_gemm_conv_backward_data(float *out, float *pre, const float *bias, int act, const float *dy, const float *w,
                                 const struct lpc_conv_shape *s, float *cols) {
    const int R = s->ci * s->k * s->k, Q = s->ho * s->wo;
    const float one = 1.0f, zero = 0.0f;
    // column-major: cols_b (Q x R) = dy_b (Q x co) * w^T (co x R), w being (R x co)
    LPC_CHECK_CUBLAS(cublasSgemmStridedBatched(handle(), CUBLAS_OP_N, CUBLAS_OP_T, Q, R, s->co, &one, dy, Q,
                                               (long long)s->co * Q, w, R, 0, &zero, cols, Q, (long long)R * Q, s->n));
    const unsigned total = (unsigned)((size_t)s->n * s->ci * s->h * s->w);
    col2im_kernel<<<lpc_grid_stride_blocks(total), LPC_THREADS, 0, STREAM>>>(out, pre, cols, bias, act, geometry_of(s), total);
}
}
