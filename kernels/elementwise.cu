// Elementwise ops and deterministic reductions of the CUDA backend (SPEC.md section 4). Reductions
// use a fixed grid of LPC_REDUCE_BLOCKS blocks, double partial sums and a tree in shared memory, then
// one block adds the partials in order: the same inputs always give the same bits (no float atomics).
#include <cuda_runtime.h>

#include "block_reduce.cuh"
#include "cuda_internal.h"
#include "lpc/check.h"

#define STREAM ((cudaStream_t)lpc_cuda.stream)

__global__ void fill_kernel(float *x, float v, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) x[i] = v;
}
__global__ void scale_kernel(float *x, float a, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) x[i] *= a;
}

__device__ double block_sum(double v) {
    double a[1] = {v};
    lpc_block_sums<LPC_THREADS, 1>(a);
    return a[0];
}

__global__ void sum_squares_partials(double *partials, const float *x, size_t n) {
    double acc = 0;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        acc += (double)x[i] * x[i];
    double s = block_sum(acc);
    if (threadIdx.x == 0) partials[blockIdx.x] = s;
}

__global__ void sum_partials(double *out, const double *partials, int count) {
    double acc = 0;
    for (int i = threadIdx.x; i < count; i += blockDim.x) acc += partials[i];
    double s = block_sum(acc);
    if (threadIdx.x == 0) *out = s;
}

__global__ void row_sum_squares_kernel(float *out, const float *x, int cols) {
    const float *row = x + (size_t)blockIdx.x * cols;
    double acc = 0;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) acc += (double)row[c] * row[c];
    double s = block_sum(acc);
    if (threadIdx.x == 0) out[blockIdx.x] = (float)s;
}

__global__ void add_bias_rows_kernel(float *y, const float *b, int n, int out) {
    size_t total = (size_t)n * out;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x)
        y[i] += b[i % out];
}


extern "C" {

void lpc_cuda_fill(float *x, float v, size_t n) {
    if (n) fill_kernel<<<lpc_grid_stride_blocks(n), LPC_THREADS, 0, STREAM>>>(x, v, n);
}
void lpc_cuda_scale(float *x, float a, size_t n) {
    if (n) scale_kernel<<<lpc_grid_stride_blocks(n), LPC_THREADS, 0, STREAM>>>(x, a, n);
}
double lpc_cuda_sum_squares(const float *x, size_t n) {
    sum_squares_partials<<<LPC_REDUCE_BLOCKS, LPC_THREADS, 0, STREAM>>>(lpc_cuda.partials, x, n);
    sum_partials<<<1, LPC_THREADS, 0, STREAM>>>(lpc_cuda.partials + LPC_REDUCE_BLOCKS, lpc_cuda.partials, LPC_REDUCE_BLOCKS);
    double r;
    LPC_CHECK_CUDA(cudaMemcpyAsync(&r, lpc_cuda.partials + LPC_REDUCE_BLOCKS, sizeof r, cudaMemcpyDeviceToHost, STREAM));
    LPC_CHECK_CUDA(cudaStreamSynchronize(STREAM));
    return r;
}
void lpc_cuda_row_sum_squares(float *out, const float *x, int rows, int cols) {
    if (rows) row_sum_squares_kernel<<<rows, LPC_THREADS, 0, STREAM>>>(out, x, cols);
}
void lpc_cuda_add_bias_rows(float *y, const float *b, int n, int out) {
    add_bias_rows_kernel<<<lpc_grid_stride_blocks((size_t)n * out), LPC_THREADS, 0, STREAM>>>(y, b, n, out);
}
}
