// The decoder's dense layer (latent -> first feature map) as single kernels on the chain's path
// (SPEC.md section 4 (d)): the forward with its bias and activation in the epilogue, and the chain's
// backward to the latent, act' applied to the incoming gradient as it is loaded, with the long
// reduction (over the layer's outputs) split over blocks and the splits added in a fixed order by the
// last block of each tile (deterministic, one launch). fp32 FMA on CUDA cores. They replace cuBLAS plus
// a separate bias/activation kernel (forward) and an act' kernel, cuBLAS and its split-K reduction
// (backward) where that pays: with `math = fp32` (cuBLAS then computes in fp32 too) and small layers,
// up to DENSE_FUSED_MAX_MACS multiply-adds. Larger layers (where the fused kernels lost) and TF32 math
// (where cuBLAS's tensor-core GEMMs tied with them) keep the cuBLAS sequence; there a relu layer or one
// without activation, kept in place (y == pre) as the model keeps them, has its bias and relu in
// cuBLASLt's epilogue instead of the bias-activation kernel.
// A channel-last output ([n, hw, c] for the feature map [c, hw] of the first transposed convolution,
// weights and bias in the feature order c * hw + position) runs on copies of the weights and bias in
// the output's order, position * c + channel (made once per window of fixed parameters,
// kernels/fixed_copies.c): the same sequence as an NCHW output, one GEMM each way.
#include <cuda_runtime.h>

#include "block_reduce.cuh"
#include "cuda_internal.h"
#include "lpc/check.h"
#include "lpc/pointwise.h"

#define STREAM ((cudaStream_t)lpc_cuda.stream)

#define DENSE_THREADS 256
#define DENSE_ROWS 16  /* batch rows per block (one per 16 threads) */
#define DENSE_COLS 64  /* forward: output features per block (16 threads x 4) */
#define DENSE_K 64     /* forward: input features per shared-memory load */
#define BACK_COLS 32   /* backward: latent features per block (16 threads x 2) */
#define BACK_J 128     /* backward: layer outputs per shared-memory load */
#define BACK_MAX_SPLITS 64
/* measured on an H200 (bench/RESULTS.md, 2026-11-29): the chain ran 4 % faster with the fused kernels at
 * 2^23 multiply-adds per layer (cifar32, batch 64, fp32) and 2-6 % slower at 2^25 */
#define DENSE_FUSED_MAX_MACS (1LL << 23)

// Copies a ROWS x COLS tile of a row-major matrix (row stride ld, rows below `rows` and columns below
// `cols` valid, zeros elsewhere) into shared memory with a padded row stride. Every thread first
// loads all of its elements into registers, so that all of the block's loads are in flight at once:
// these kernels are latency-bound, and a load-store loop would wait on the memory once per element.
// With pre given, each element is multiplied by act'(pre) on the way.
template <int ROWS, int COLS>
__device__ __forceinline__ void load_tile(float (*dst)[COLS + 1], const float *src, const float *pre, int act,
                                          size_t ld, int rows, int cols) {
    constexpr int PER_THREAD = ROWS * COLS / DENSE_THREADS;
    static_assert(ROWS * COLS % DENSE_THREADS == 0, "whole tiles per thread");
    float v[PER_THREAD];
#pragma unroll
    for (int u = 0; u < PER_THREAD; u++) {
        const int e = threadIdx.x + u * DENSE_THREADS, r = e / COLS, c = e % COLS;
        const size_t i = (size_t)r * ld + c;
        v[u] = r < rows && c < cols ? (pre ? src[i] * lpc_pw_act_derivative(pre[i], act) : src[i]) : 0.0f;
    }
#pragma unroll
    for (int u = 0; u < PER_THREAD; u++) {
        const int e = threadIdx.x + u * DENSE_THREADS;
        dst[e / COLS][e % COLS] = v[u];
    }
}

// y = act(pre), pre = x w^T + b for a tile of DENSE_ROWS batch rows x DENSE_COLS features
__global__ void __launch_bounds__(DENSE_THREADS)
    dense_bias_act_kernel(float *y, float *pre, const float *x, const float *w, const float *b, int n, int in, int out,
                          int act) {
    __shared__ float xs[DENSE_ROWS][DENSE_K + 1];
    __shared__ float ws[DENSE_COLS][DENSE_K + 1];
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    const int row0 = blockIdx.y * DENSE_ROWS, col0 = blockIdx.x * DENSE_COLS;
    float acc[4] = {};
    for (int k0 = 0; k0 < in; k0 += DENSE_K) {
        const int kn = in - k0 < DENSE_K ? in - k0 : DENSE_K;
        load_tile<DENSE_ROWS, DENSE_K>(xs, x + (size_t)row0 * in + k0, NULL, 0, (size_t)in, n - row0, kn);
        load_tile<DENSE_COLS, DENSE_K>(ws, w + (size_t)col0 * in + k0, NULL, 0, (size_t)in, out - col0, kn);
        __syncthreads();
#pragma unroll 8
        for (int k = 0; k < kn; k++) {
            const float xk = xs[ty][k];
            for (int q = 0; q < 4; q++) acc[q] = fmaf(xk, ws[tx + 16 * q][k], acc[q]);
        }
        __syncthreads();
    }
    const int r = row0 + ty;
    for (int q = 0; q < 4; q++) {
        const int c = col0 + tx + 16 * q;
        if (r < n && c < out) {
            const size_t i = (size_t)r * out + c;
            const float v = acc[q] + b[c];
            pre[i] = v;
            y[i] = lpc_pw_act(v, act);
        }
    }
}

// dx = (dout * act'(pre)) w over the outputs [j0, j1) of split blockIdx.z, for a tile of DENSE_ROWS
// batch rows x BACK_COLS latent features, BACK_J outputs per load. With several splits each writes
// its partial tile and the last split to finish adds them in split order.
__global__ void __launch_bounds__(DENSE_THREADS)
    act_dense_backward_kernel(float *dx, float *partials, unsigned *counters, const float *dout, const float *pre,
                              const float *w, int n, int in, int out, int per_split, int act) {
    __shared__ float ds[DENSE_ROWS][BACK_J + 1];
    __shared__ float ws[BACK_J][BACK_COLS + 1];
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    const int row0 = blockIdx.y * DENSE_ROWS, col0 = blockIdx.x * BACK_COLS, split = blockIdx.z;
    const int j0 = split * per_split, j1 = j0 + per_split < out ? j0 + per_split : out;
    float acc[2] = {0.0f, 0.0f};
    for (int jc = j0; jc < j1; jc += BACK_J) {
        const int jn = j1 - jc < BACK_J ? j1 - jc : BACK_J;
        const size_t at = (size_t)row0 * out + jc;
        load_tile<DENSE_ROWS, BACK_J>(ds, dout + at, pre + at, act, (size_t)out, n - row0, jn);
        load_tile<BACK_J, BACK_COLS>(ws, w + (size_t)jc * in + col0, NULL, 0, (size_t)in, jn, in - col0);
        __syncthreads();
#pragma unroll 8
        for (int j = 0; j < jn; j++) {
            const float d = ds[ty][j];
            acc[0] = fmaf(d, ws[j][tx], acc[0]);
            acc[1] = fmaf(d, ws[j][tx + 16], acc[1]);
        }
        __syncthreads();
    }
    const int r = row0 + ty;
    if (gridDim.z == 1) {
        for (int q = 0; q < 2; q++)
            if (r < n && col0 + tx + 16 * q < in) dx[(size_t)r * in + col0 + tx + 16 * q] = acc[q];
        return;
    }
    const size_t plane = (size_t)n * in;
    for (int q = 0; q < 2; q++)
        if (r < n && col0 + tx + 16 * q < in) partials[split * plane + (size_t)r * in + col0 + tx + 16 * q] = acc[q];
    if (!lpc_last_to_arrive(&counters[blockIdx.y * gridDim.x + blockIdx.x], gridDim.z)) return;
    for (int q = 0; q < 2; q++) {
        const int c = col0 + tx + 16 * q;
        if (r < n && c < in) {
            const size_t i = (size_t)r * in + c;
            float s = 0.0f;
#pragma unroll 8
            for (unsigned k = 0; k < gridDim.z; k++) s += __ldcg(&partials[k * plane + i]);
            dx[i] = s;
        }
    }
}

extern "C" {
int lpc_fused_dense_pays(int n, int in, int out) {
    return !lpc_cuda.tf32 && (long long)n * in * out <= DENSE_FUSED_MAX_MACS;
}

void lpc_fused_dense_bias_act_forward(float *y, float *pre, const float *x, const float *w, const float *b, int n,
                                      int in, int out, int act) {
    const dim3 grid((unsigned)((out + DENSE_COLS - 1) / DENSE_COLS), (unsigned)((n + DENSE_ROWS - 1) / DENSE_ROWS));
    dense_bias_act_kernel<<<grid, DENSE_THREADS, 0, STREAM>>>(y, pre, x, w, b, n, in, out, act);
}

void lpc_fused_act_dense_backward_data(float *dx, const float *dout, const float *pre, const float *w, int n, int in,
                                       int out, int act) {
    const int tiles_x = (in + BACK_COLS - 1) / BACK_COLS, tiles_y = (n + DENSE_ROWS - 1) / DENSE_ROWS;
    /* one load of BACK_J outputs per split, up to BACK_MAX_SPLITS splits (more loads per split beyond) */
    const int chunks = (out + BACK_J - 1) / BACK_J;
    int splits = chunks < BACK_MAX_SPLITS ? chunks : BACK_MAX_SPLITS;
    if ((long long)tiles_x * tiles_y > LPC_SPLIT_TILES) splits = 1; /* more tiles than counters */
    const int per_split = (chunks + splits - 1) / splits * BACK_J;
    splits = (out + per_split - 1) / per_split;
    float *partials = splits > 1 ? (float *)lpc_cuda_workspace((size_t)splits * n * in * sizeof(float)) : NULL;
    act_dense_backward_kernel<<<dim3(tiles_x, tiles_y, splits), DENSE_THREADS, 0, STREAM>>>(
        dx, partials, lpc_cuda.tile_done, dout, pre, w, n, in, out, per_split, act);
}

// the dense layer's weights [out, in] (scratch: out * in floats) and bias [out] (scratch + out * in) with
// their outputs in channel-last feature order: the window's copies, or copies made now in scratch
static const float *channels_last_copy(const float *p, int rows, int row, int channels, float *scratch) {
    int make;
    float *dst = lpc_cuda_fixed_copy(p, LPC_FIXED_DENSE_CHANNELS_LAST, (size_t)rows * row, scratch, &make);
    if (make) lpc_cuda_swap_axes(dst, p, channels, rows / channels, row);
    return dst;
}

static float *channels_last_scratch(int in, int out) {
    return (float *)lpc_cuda_workspace((size_t)out * (in + 1) * sizeof(float));
}

// cuBLAS's GEMM, then the bias and activation; a relu or no activation in place (y == pre, all the model
// keeps of such a layer) in cuBLASLt's epilogue
static void gemm_bias_act(float *y, float *pre, const float *x, const float *w, const float *b, int n, int in, int out,
                          int act) {
    if (y == pre && (act == LPC_ACT_RELU || act == LPC_ACT_NONE) &&
        lpc_cublaslt_dense_forward_relu(y, x, w, b, n, in, out, act == LPC_ACT_RELU))
        return;
    lpc_cublas_dense_forward(pre, x, w, NULL, n, in, out);
    lpc_cuda_bias_act_forward(y, pre, b, n, out, 1, act);
}

void lpc_cuda_dense_bias_act_forward(float *y, float *pre, const float *x, const float *w, const float *b, int n,
                                     int in, int out, int act, int channels) {
    if (channels) {
        float *scratch = channels_last_scratch(in, out);
        const float *w_cl = channels_last_copy(w, out, in, channels, scratch);
        const float *b_cl = channels_last_copy(b, out, 1, channels, scratch + (size_t)out * in);
        gemm_bias_act(y, pre, x, w_cl, b_cl, n, in, out, act);
        return;
    }
    if (lpc_fused_dense_pays(n, in, out)) {
        lpc_fused_dense_bias_act_forward(y, pre, x, w, b, n, in, out, act);
        return;
    }
    gemm_bias_act(y, pre, x, w, b, n, in, out, act);
}

void lpc_cuda_act_dense_backward_data(float *dx, float *dout, const float *pre, const float *w, int n, int in, int out,
                                      int act, int channels) {
    if (channels) {
        const float *w_cl = channels_last_copy(w, out, in, channels, channels_last_scratch(in, out));
        lpc_cuda_bias_act_backward(dout, NULL, dout, pre, n, out, 1, act); /* elementwise: either layout */
        lpc_cublas_dense_backward_data(dx, dout, w_cl, n, in, out);
        return;
    }
    if (lpc_fused_dense_pays(n, in, out)) {
        lpc_fused_act_dense_backward_data(dx, dout, pre, w, n, in, out, act);
        return;
    }
    lpc_cuda_bias_act_backward(dout, NULL, dout, pre, n, out, 1, act);
    lpc_cublas_dense_backward_data(dx, dout, w, n, in, out);
}
}
