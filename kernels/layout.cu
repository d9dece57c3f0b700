// Channel-last copies for the `nhwc` convolution path (kernels/conv.c). cuDNN's TF32 kernels run the
// decoder's wide layers several times faster on [n, h, w, c] tensors with [co, k, k, ci] filters than
// on NCHW ones (bench/RESULTS.md, 2026-11-29), so that path copies its input and filter to channel-last
// order, applying act' on the way for the chain's fused backward, and copies cuDNN's output back,
// adding the bias and applying the activation on the way for the decoder's fused forward.
// Both are batches of [rows, cols] -> [cols, rows] transposes through a 32 x 33 shared tile, so that
// reads and writes are coalesced; elementwise work happens in fp32 exactly as the NCHW kernels do it.
#include <cuda_runtime.h>

#include "cuda_internal.h"
#include "lpc/check.h"
#include "lpc/config.h"
#include "lpc/pointwise.h"

#define STREAM ((cudaStream_t)lpc_cuda.stream)

#define TILE 32
#define TILE_PASSES 4 // a block of 32 x 8 threads moves a 32 x 32 tile in four passes
#define MAX_GRID_Z 65535

// dst[b][col][row] = src[b][row][col] * act'(pre[b][row][col]) (pre NULL: no factor)
__global__ void to_channels_last_kernel(float *dst, const float *src, const float *pre, int act, int batch, int rows,
                                        int cols) {
    __shared__ float tile[TILE][TILE + 1];
    const int r0 = blockIdx.y * TILE, c0 = blockIdx.x * TILE, tx = threadIdx.x, ty = threadIdx.y;
    for (int b = blockIdx.z; b < batch; b += gridDim.z) {
        const size_t base = (size_t)b * rows * cols;
#pragma unroll
        for (int p = 0; p < TILE_PASSES; p++) {
            const int r = r0 + ty + p * (TILE / TILE_PASSES), c = c0 + tx;
            if (r < rows && c < cols) {
                const size_t at = base + (size_t)r * cols + c;
                float v = src[at];
                if (pre) v *= lpc_pw_act_derivative(pre[at], act);
                tile[ty + p * (TILE / TILE_PASSES)][tx] = v;
            }
        }
        __syncthreads();
#pragma unroll
        for (int p = 0; p < TILE_PASSES; p++) {
            const int c = c0 + ty + p * (TILE / TILE_PASSES), r = r0 + tx;
            if (r < rows && c < cols) dst[base + (size_t)c * rows + r] = tile[tx][ty + p * (TILE / TILE_PASSES)];
        }
        __syncthreads(); // the tile is refilled for the next image
    }
}

// v = src[b][col][row] + bias[row] (bias NULL: + 0); with pre: pre[b][row][col] = v and
// out[b][row][col] = act(v); without: out[b][row][col] = v
__global__ void from_channels_last_kernel(float *out, float *pre, const float *src, const float *bias, int act,
                                          int batch, int rows, int cols) {
    __shared__ float tile[TILE][TILE + 1];
    const int r0 = blockIdx.y * TILE, c0 = blockIdx.x * TILE, tx = threadIdx.x, ty = threadIdx.y;
    for (int b = blockIdx.z; b < batch; b += gridDim.z) {
        const size_t base = (size_t)b * rows * cols;
#pragma unroll
        for (int p = 0; p < TILE_PASSES; p++) {
            const int c = c0 + ty + p * (TILE / TILE_PASSES), r = r0 + tx;
            if (r < rows && c < cols) tile[tx][ty + p * (TILE / TILE_PASSES)] = src[base + (size_t)c * rows + r];
        }
        __syncthreads();
#pragma unroll
        for (int p = 0; p < TILE_PASSES; p++) {
            const int r = r0 + ty + p * (TILE / TILE_PASSES), c = c0 + tx;
            if (r < rows && c < cols) {
                const size_t at = base + (size_t)r * cols + c;
                const float v = tile[ty + p * (TILE / TILE_PASSES)][tx] + (bias ? bias[r] : 0.0f);
                if (pre) {
                    pre[at] = v;
                    out[at] = lpc_pw_act(v, act);
                } else {
                    out[at] = v;
                }
            }
        }
        __syncthreads();
    }
}

static dim3 grid_for(int batch, int rows, int cols) {
    return dim3((unsigned)((cols + TILE - 1) / TILE), (unsigned)((rows + TILE - 1) / TILE),
                (unsigned)(batch < MAX_GRID_Z ? batch : MAX_GRID_Z));
}

extern "C" {
void lpc_cuda_to_channels_last(float *dst, const float *src, const float *pre, int act, int batch, int rows, int cols) {
    if ((size_t)batch * rows * cols == 0) return;
    to_channels_last_kernel<<<grid_for(batch, rows, cols), dim3(TILE, TILE / TILE_PASSES), 0, STREAM>>>(
        dst, src, pre, act, batch, rows, cols);
}

void lpc_cuda_from_channels_last(float *out, float *pre, const float *src, const float *bias, int act, int batch,
                                 int rows, int cols) {
    if ((size_t)batch * rows * cols == 0) return;
    from_channels_last_kernel<<<grid_for(batch, rows, cols), dim3(TILE, TILE / TILE_PASSES), 0, STREAM>>>(
        out, pre, src, bias, act, batch, rows, cols);
}
}
