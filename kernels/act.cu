// Bias + activation forward and backward in one pass each (SPEC.md section 4 (d)), and the bias
// gradient as a deterministic per-channel reduction.
#include <cuda_runtime.h>

#include "cuda_internal.h"
#include "lpc/config.h"

#define STREAM ((cudaStream_t)lpc_cuda.stream)

__device__ __forceinline__ float act_value(float x, int act) {
    switch (act) {
    case LPC_ACT_RELU: return x > 0.0f ? x : 0.0f;
    case LPC_ACT_LEAKY_RELU: return x > 0.0f ? x : LPC_LEAKY_RELU_SLOPE * x;
    case LPC_ACT_SILU: return x / (1.0f + expf(-x));
    default: return x;
    }
}
__device__ __forceinline__ float act_derivative(float x, int act) {
    switch (act) {
    case LPC_ACT_RELU: return x > 0.0f ? 1.0f : 0.0f;
    case LPC_ACT_LEAKY_RELU: return x > 0.0f ? 1.0f : LPC_LEAKY_RELU_SLOPE;
    case LPC_ACT_SILU: {
        float s = 1.0f / (1.0f + expf(-x));
        return s * (1.0f + x * (1.0f - s));
    }
    default: return 1.0f;
    }
}

__global__ void bias_act_forward_kernel(float *out, float *pre, const float *b, int c, int hw, size_t total, int act) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        float v = pre[i] + (b ? b[(i / hw) % c] : 0.0f);
        pre[i] = v;
        out[i] = act_value(v, act);
    }
}

__global__ void bias_act_backward_kernel(float *dpre, const float *dout, const float *pre, size_t total, int act) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x)
        dpre[i] = dout[i] * act_derivative(pre[i], act);
}

// one block per channel: sum over the batch and the spatial positions, in a fixed order
__global__ void bias_grad_kernel(float *db, const float *dpre, int n, int c, int hw) {
    __shared__ double s[LPC_THREADS];
    const int ch = blockIdx.x;
    double acc = 0;
    for (long k = threadIdx.x; k < (long)n * hw; k += blockDim.x) {
        long i = k / hw, j = k % hw;
        acc += dpre[((size_t)i * c + ch) * hw + j];
    }
    s[threadIdx.x] = acc;
    __syncthreads();
    for (int k = LPC_THREADS / 2; k > 0; k >>= 1) {
        if (threadIdx.x < k) s[threadIdx.x] += s[threadIdx.x + k];
        __syncthreads();
    }
    if (threadIdx.x == 0) db[ch] += (float)s[0];
}

static unsigned blocks_for(size_t n) {
    size_t b = (n + LPC_THREADS - 1) / LPC_THREADS;
    return (unsigned)(b < 1 ? 1 : b > 65535 * 4 ? 65535 * 4 : b);
}

extern "C" {
void lpc_cuda_bias_act_forward(float *out, float *pre, const float *b, int n, int c, int hw, int act) {
    size_t total = (size_t)n * c * hw;
    bias_act_forward_kernel<<<blocks_for(total), LPC_THREADS, 0, STREAM>>>(out, pre, b, c, hw, total, act);
}
void lpc_cuda_bias_act_backward(float *dpre, float *db, const float *dout, const float *pre, int n, int c, int hw, int act) {
    size_t total = (size_t)n * c * hw;
    bias_act_backward_kernel<<<blocks_for(total), LPC_THREADS, 0, STREAM>>>(dpre, dout, pre, total, act);
    if (db) bias_grad_kernel<<<c, LPC_THREADS, 0, STREAM>>>(db, dpre, n, c, hw);
}
}
