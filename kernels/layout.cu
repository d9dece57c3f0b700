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

// The tile loop of both copies, over a batch of [rows, cols] matrices stored row-major on the NCHW side
// and column-major on the channel-last side: read(base, r, c) gives element (r, c) of the matrix at
// `base`, write(base, r, c, v) stores it on the other side. Each side is accessed with consecutive
// threads on its contiguous axis; the tile's padding keeps the transposed accesses free of bank conflicts.
template <bool FROM_NCHW, class Read, class Write>
__device__ __forceinline__ void copy_tiles(int batch, int rows, int cols, Read read, Write write) {
    __shared__ float tile[TILE][TILE + 1];
    constexpr int STEP = TILE / TILE_PASSES;
    const int r0 = blockIdx.y * TILE, c0 = blockIdx.x * TILE, tx = threadIdx.x, ty = threadIdx.y;
    for (int b = blockIdx.z; b < batch; b += gridDim.z) {
        const size_t base = (size_t)b * rows * cols;
#pragma unroll
        for (int p = 0; p < TILE_PASSES; p++) {
            const int i = ty + p * STEP, r = FROM_NCHW ? i : tx, c = FROM_NCHW ? tx : i;
            if (r0 + r < rows && c0 + c < cols) tile[r][c] = read(base, r0 + r, c0 + c);
        }
        __syncthreads();
#pragma unroll
        for (int p = 0; p < TILE_PASSES; p++) {
            const int i = ty + p * STEP, r = FROM_NCHW ? tx : i, c = FROM_NCHW ? i : tx;
            if (r0 + r < rows && c0 + c < cols) write(base, r0 + r, c0 + c, tile[r][c]);
        }
        __syncthreads(); // the tile is refilled for the next image
    }
}

// dst[b][col][row] = src[b][row][col] * act'(pre[b][row][col]) (pre NULL: no factor)
__global__ void to_channels_last_kernel(float *dst, const float *src, const float *pre, int act, int batch, int rows,
                                        int cols) {
    copy_tiles<true>(
        batch, rows, cols,
        [=](size_t base, int r, int c) {
            const size_t at = base + (size_t)r * cols + c;
            return pre ? src[at] * lpc_pw_act_derivative(pre[at], act) : src[at];
        },
        [=](size_t base, int r, int c, float v) { dst[base + (size_t)c * rows + r] = v; });
}

// v = src[b][col][row] + bias[row] (bias NULL: + 0); with pre: pre[b][row][col] = v and
// out[b][row][col] = act(v); without: out[b][row][col] = v
__global__ void from_channels_last_kernel(float *out, float *pre, const float *src, const float *bias, int act,
                                          int batch, int rows, int cols) {
    copy_tiles<false>(
        batch, rows, cols, [=](size_t base, int r, int c) { return src[base + (size_t)c * rows + r]; },
        [=](size_t base, int r, int c, float v) {
            const size_t at = base + (size_t)r * cols + c;
            v += bias ? bias[r] : 0.0f;
            if (pre) {
                pre[at] = v;
                out[at] = lpc_pw_act(v, act);
            } else {
                out[at] = v;
            }
        });
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
