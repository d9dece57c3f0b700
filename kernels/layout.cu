// Layout copies for the `nhwc` and `subpixel` convolution paths (kernels/conv.c). cuDNN's TF32 kernels
// run the decoder's wide layers several times faster on [n, h, w, c] tensors with [co, k, k, ci] filters
// than on NCHW ones (bench/RESULTS.md, 2026-11-29), so that path copies its input and filter to
// channel-last order, applying act' on the way for the chain's fused backward, and copies cuDNN's output
// back, adding the bias and applying the activation on the way for the decoder's fused forward.
// Those copies are batches of [rows, cols] -> [cols, rows] transposes through a 32 x 33 shared tile, so
// that reads and writes are coalesced; elementwise work happens in fp32 exactly as the NCHW kernels do it.
// The sub-pixel path computes a transposed convolution of kernel 4, stride 2, padding 1 as one stride-1
// convolution with a 2 x 2 filter into four output phases (the four parities of the output pixel: 4 c
// channels on an (h + 1) x (w + 1) grid, h x w the input's size); here are its filter rearrangement and
// the interleave of the phases into the output, with bias and activation.
#include <cuda_runtime.h>

#include "cuda_internal.h"
#include "lpc/check.h"
#include "lpc/config.h"
#include "lpc/pointwise.h"

#define STREAM ((cudaStream_t)lpc_cuda.stream)

#define TILE 32
#define TILE_PASSES 4 // a block of 32 x 8 threads moves a 32 x 32 tile in four passes
#define MAX_GRID_Z 65535

// The tile loop of the copies, over a batch of [rows, cols] matrices stored row-major on the NCHW side
// and column-major on the channel-last side: read(b, r, c) gives element (r, c) of matrix b,
// write(b, r, c, v) stores it on the other side. Each side is accessed with consecutive
// threads on its contiguous axis; the tile's padding keeps the transposed accesses free of bank conflicts.
template <bool FROM_NCHW, class Read, class Write>
__device__ __forceinline__ void copy_tiles(int batch, int rows, int cols, Read read, Write write) {
    __shared__ float tile[TILE][TILE + 1];
    constexpr int STEP = TILE / TILE_PASSES;
    const int r0 = blockIdx.y * TILE, c0 = blockIdx.x * TILE, tx = threadIdx.x, ty = threadIdx.y;
    for (int b = blockIdx.z; b < batch; b += gridDim.z) {
#pragma unroll
        for (int p = 0; p < TILE_PASSES; p++) {
            const int i = ty + p * STEP, r = FROM_NCHW ? i : tx, c = FROM_NCHW ? tx : i;
            if (r0 + r < rows && c0 + c < cols) tile[r][c] = read(b, r0 + r, c0 + c);
        }
        __syncthreads();
#pragma unroll
        for (int p = 0; p < TILE_PASSES; p++) {
            const int i = ty + p * STEP, r = FROM_NCHW ? tx : i, c = FROM_NCHW ? i : tx;
            if (r0 + r < rows && c0 + c < cols) write(b, r0 + r, c0 + c, tile[r][c]);
        }
        __syncthreads(); // the tile is refilled for the next image
    }
}

// dst[b][col][row] = src[b][row][col] * act'(pre[b][row][col]) (pre NULL: no factor)
__global__ void to_channels_last_kernel(float *dst, const float *src, const float *pre, int act, int batch, int rows,
                                        int cols) {
    copy_tiles<true>(
        batch, rows, cols,
        [=](int b, int r, int c) {
            const size_t at = ((size_t)b * rows + r) * cols + c;
            return pre ? src[at] * lpc_pw_act_derivative(pre[at], act) : src[at];
        },
        [=](int b, int r, int c, float v) { dst[((size_t)b * cols + c) * rows + r] = v; });
}

// v + bias[channel] (bias NULL: + 0) stored at `at`: with pre, pre[at] = v and out[at] = act(v); without,
// out[at] = v
__device__ __forceinline__ void store_bias_act(float *out, float *pre, const float *bias, int act, size_t at, int channel,
                                               float v) {
    v += bias ? bias[channel] : 0.0f;
    if (pre) {
        pre[at] = v;
        out[at] = lpc_pw_act(v, act);
    } else {
        out[at] = v;
    }
}

// out[b][row][col] (and pre) from v = src[b][col][row], bias per row, as store_bias_act
__global__ void from_channels_last_kernel(float *out, float *pre, const float *src, const float *bias, int act,
                                          int batch, int rows, int cols) {
    copy_tiles<false>(
        batch, rows, cols, [=](int b, int r, int c) { return src[((size_t)b * cols + c) * rows + r]; },
        [=](int b, int r, int c, float v) { store_bias_act(out, pre, bias, act, ((size_t)b * rows + r) * cols + c, r, v); });
}

// The sub-pixel phases [n, h + 1, w + 1, 4 c], phase (py, px) in channels (2 py + px) c .. + c - 1: output
// pixel (2 i + py, 2 j + px), channel ch is phase element (i + py, j + px, (2 py + px) c + ch).
__device__ __forceinline__ float phase_value(const float *phases, int n, int c, int h, int w, int oy, int ox, int ch) {
    const int py = oy & 1, px = ox & 1, i = (oy >> 1) + py, j = (ox >> 1) + px;
    return phases[(((size_t)n * (h + 1) + i) * (w + 1) + j) * 4 * c + (2 * py + px) * c + ch];
}

// NCHW output [n, c, 2h, 2w]: one output row (n, oy) per tile batch, [c, 2w] read channel-fastest from the
// phases and written pixel-fastest
__global__ void subpixel_to_nchw_kernel(float *out, float *pre, const float *phases, const float *bias, int act, int n,
                                        int c, int h, int w) {
    const int rows = 2 * h;
    copy_tiles<false>(
        n * rows, c, 2 * w, [=](int b, int ch, int ox) { return phase_value(phases, b / rows, c, h, w, b % rows, ox, ch); },
        [=](int b, int ch, int ox, float v) {
            const int img = b / rows, oy = b % rows;
            store_bias_act(out, pre, bias, act, (((size_t)img * c + ch) * rows + oy) * 2 * w + ox, ch, v);
        });
}

// channel-last output [n, 2h, 2w, c]: both sides channel-fastest, one thread per element
__global__ void subpixel_to_nhwc_kernel(float *out, float *pre, const float *phases, const float *bias, int act, int n,
                                        int c, int h, int w) {
    const size_t total = (size_t)n * 4 * h * w * c;
    for (size_t at = blockIdx.x * (size_t)blockDim.x + threadIdx.x; at < total; at += (size_t)gridDim.x * blockDim.x) {
        const int ch = (int)(at % c);
        const size_t pixel = at / c;
        const int ox = (int)(pixel % (2 * w)), oy = (int)(pixel / (2 * w) % (2 * h)), img = (int)(pixel / (4 * (size_t)h * w));
        store_bias_act(out, pre, bias, act, at, ch, phase_value(phases, img, c, h, w, oy, ox, ch));
    }
}

// The sub-pixel filter [4 ci, 2, 2, co] from a convolution filter w [co, ci, 4, 4] (a transposed layer's
// weight, [in, out, 4, 4]): phase (py, px), tap (a, b) is kernel element (3 - py - 2a, 3 - px - 2b), since
// output row 2i + py takes input rows i - 1 + py + a (a = 0, 1) through kernel rows 3 - py - 2a.
__global__ void subpixel_filter_kernel(float *dst, const float *w, int co, int ci) {
    const int total = 16 * co * ci;
    for (int at = blockIdx.x * blockDim.x + threadIdx.x; at < total; at += gridDim.x * blockDim.x) {
        const int j = at % co, b = at / co % 2, a = at / (2 * co) % 2, ch = at / (4 * co) % ci, phase = at / (4 * co * ci);
        const int py = phase >> 1, px = phase & 1;
        dst[at] = w[((size_t)j * ci + ch) * 16 + (3 - py - 2 * a) * 4 + (3 - px - 2 * b)];
    }
}

// dst [b][a][inner] = src [a][b][inner]: the first two axes swapped, rows of `inner` floats moved whole
__global__ void swap_axes_kernel(float *dst, const float *src, int a, int b, int inner) {
    const size_t total = (size_t)a * b * inner;
    for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < total; e += (size_t)gridDim.x * blockDim.x) {
        const size_t row = e / inner;
        const int i = (int)(row % a), j = (int)(row / a);
        dst[e] = src[((size_t)i * b + j) * inner + e % inner];
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

void lpc_cuda_subpixel_interleave(float *out, float *pre, const float *phases, const float *bias, int act, int n, int c,
                                  int h, int w, int channels_last) {
    const size_t total = (size_t)n * 4 * h * w * c;
    if (total == 0) return;
    if (!channels_last) {
        subpixel_to_nchw_kernel<<<grid_for(n * 2 * h, c, 2 * w), dim3(TILE, TILE / TILE_PASSES), 0, STREAM>>>(
            out, pre, phases, bias, act, n, c, h, w);
        return;
    }
    subpixel_to_nhwc_kernel<<<lpc_grid_stride_blocks(total), LPC_THREADS, 0, STREAM>>>(out, pre, phases, bias, act, n,
                                                                                       c, h, w);
}

void lpc_cuda_swap_axes(float *dst, const float *src, int a, int b, int inner) {
    const size_t total = (size_t)a * b * inner;
    if (total) swap_axes_kernel<<<lpc_grid_stride_blocks(total), LPC_THREADS, 0, STREAM>>>(dst, src, a, b, inner);
}

void lpc_cuda_subpixel_filter(float *dst, const float *w, int co, int ci) {
    subpixel_filter_kernel<<<lpc_grid_stride_blocks((size_t)16 * co * ci), LPC_THREADS, 0, STREAM>>>(dst, w, co, ci);
}
}
