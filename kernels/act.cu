// Bias + activation forward and backward in one pass each (SPEC.md section 4 (d)), and the bias
// gradient as a deterministic two-stage per-channel reduction.
#include <cuda_runtime.h>
#include <stdint.h>

#include "block_reduce.cuh"
#include "cuda_internal.h"
#include "lpc/check.h"
#include "lpc/config.h"
#include "lpc/pointwise.h"

#define STREAM ((cudaStream_t)lpc_cuda.stream)

__global__ void bias_act_forward_kernel(float *out, float *pre, const float *b, int c, int hw, size_t total, int act) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        float v = pre[i] + (b ? b[(i / hw) % c] : 0.0f);
        pre[i] = v;
        out[i] = lpc_pw_act(v, act);
    }
}

// the same for rows of c channels (hw = 1: a channel-last tensor, or a dense layer's output), c a
// multiple of 4: four channels per thread in 16-byte accesses, 32-bit indices (total4 < 2^31)
__global__ void bias_act_forward_rows_kernel(float4 *out, float4 *pre, const float4 *b, unsigned c4, unsigned total4,
                                             int act) {
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < total4; i += gridDim.x * blockDim.x) {
        float4 v = pre[i];
        if (b) {
            const float4 add = b[i % c4];
            v.x += add.x, v.y += add.y, v.z += add.z, v.w += add.w;
        }
        pre[i] = v;
        out[i] = make_float4(lpc_pw_act(v.x, act), lpc_pw_act(v.y, act), lpc_pw_act(v.z, act), lpc_pw_act(v.w, act));
    }
}

__global__ void bias_act_backward_kernel(float *dpre, const float *dout, const float *pre, size_t total, int act) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x)
        dpre[i] = dout[i] * lpc_pw_act_derivative(pre[i], act);
}

// the bias gradient in two deterministic stages: blocks (channel, chunk) reduce a fixed slice of the
// channel's n*hw values into a partial; then one thread per channel adds its partials in order
#define BIAS_CHUNK 4096
#define BIAS_MAX_CHUNKS 64

__global__ void bias_grad_partials(double *partials, const float *dpre, int n, int c, int hw, int chunks) {
    const int ch = blockIdx.x, chunk = blockIdx.y;
    const long total = (long)n * hw, per = (total + chunks - 1) / chunks;
    const long begin = chunk * per, end = begin + per < total ? begin + per : total;
    double acc = 0;
    for (long k = begin + threadIdx.x; k < end; k += blockDim.x) {
        long i = k / hw, j = k % hw;
        acc += dpre[((size_t)i * c + ch) * hw + j];
    }
    double sum[1] = {acc};
    lpc_block_sums<LPC_THREADS, 1>(sum);
    if (threadIdx.x == 0) partials[(size_t)ch * chunks + chunk] = sum[0];
}

__global__ void bias_grad_finish(float *db, const double *partials, int c, int chunks) {
    int ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= c) return;
    double acc = 0;
    for (int k = 0; k < chunks; k++) acc += partials[(size_t)ch * chunks + k];
    db[ch] += (float)acc;
}

extern "C" {
void lpc_cuda_bias_act_forward(float *out, float *pre, const float *b, int n, int c, int hw, int act) {
    size_t total = (size_t)n * c * hw;
    const int aligned = (((uintptr_t)out | (uintptr_t)pre | (uintptr_t)b) & 15) == 0;
    if (hw == 1 && c % 4 == 0 && aligned && total / 4 < ((size_t)1 << 31)) {
        bias_act_forward_rows_kernel<<<lpc_grid_stride_blocks(total / 4), LPC_THREADS, 0, STREAM>>>(
            (float4 *)out, (float4 *)pre, (const float4 *)b, (unsigned)(c / 4), (unsigned)(total / 4), act);
        return;
    }
    bias_act_forward_kernel<<<lpc_grid_stride_blocks(total), LPC_THREADS, 0, STREAM>>>(out, pre, b, c, hw, total, act);
}
void lpc_cuda_bias_act_backward(float *dpre, float *db, const float *dout, const float *pre, int n, int c, int hw, int act) {
    size_t total = (size_t)n * c * hw;
    if (!(act == LPC_ACT_NONE && dpre == dout)) /* an identity in place has nothing to do */
        bias_act_backward_kernel<<<lpc_grid_stride_blocks(total), LPC_THREADS, 0, STREAM>>>(dpre, dout, pre, total, act);
    if (db) lpc_cuda_bias_grad(db, dpre, n, c, hw);
}

void lpc_cuda_bias_grad(float *db, const float *d, int n, int c, int hw) {
    long per_channel = (long)n * hw;
    int chunks = (int)((per_channel + BIAS_CHUNK - 1) / BIAS_CHUNK);
    if (chunks > BIAS_MAX_CHUNKS) chunks = BIAS_MAX_CHUNKS;
    double *bias_partials = (double *)lpc_cuda_workspace((size_t)c * chunks * sizeof(double));
    bias_grad_partials<<<dim3(c, chunks), LPC_THREADS, 0, STREAM>>>(bias_partials, d, n, c, hw, chunks);
    bias_grad_finish<<<(c + LPC_THREADS - 1) / LPC_THREADS, LPC_THREADS, 0, STREAM>>>(db, bias_partials, c, chunks);
}
}
