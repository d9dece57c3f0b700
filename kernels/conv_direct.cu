// Direct convolutions for thin layers (the `direct` convolution algorithm, see kernels/conv.c): layers
// with at most DIRECT_MAX_CHANNELS channels on the large side, such as the decoder's image layer and the
// encoder's first, where a GEMM's tiles would be mostly padding. NCHW, or the small side (y: [n, ho, wo,
// co]) channel-last, as the decoder keeps the activation below its image layer where the layer below runs
// on a channel-last path (co a multiple of 4; tensors 16-byte aligned, as the backend allocates them).
// fp32 on CUDA cores, the weights in shared memory, any kernel size up to DIRECT_MAX_K, stride and
// padding; every output is summed in a fixed order, so results are deterministic.
//   forward (conv2d_forward; the chain's backward through the layer, with act' applied to the input
//   and act_below' of the layer below to the output when fused): for kernel 4, stride 2, padding 1
//   (every strided layer of the models here) on large grids, and on every grid with y channel-last
//   (its outputs staged through shared memory, so that a warp writes whole 16-byte pieces in order), a
//   thread computes two neighbouring output pixels for a group of 16 output channels, so that each
//   weight read from shared memory serves both; otherwise one output pixel for a group of 32 output
//   channels (16 or 8 on small grids);
//   transposed (conv2d_backward_data; the decoder layer's forward, with bias and activation when
//   fused): for kernel 4, stride 2, padding 1 a thread computes four 2 x 2 blocks of the large side
//   side by side, whose 16 taps per channel read a 3 x 6 neighbourhood (on small grids up to 8
//   threads share a position, each summing part of the channels); with the input (y) channel-last,
//   tiles of it are first copied to shared memory in channel planes; other shapes take one pixel per
//   thread and the taps that reach it.
// Reading the weights from shared memory bounds these kernels: computing several pixels per thread
// made the image layers of the benchmark rows 1.1-1.4x faster per call (bench/RESULTS.md, 2026-11-29).
#include <cuda_runtime.h>
#include <stdint.h>

#include "block_reduce.cuh"
#include "conv_direct.cuh"
#include "cuda_internal.h"
#include "lpc/check.h"
#include "lpc/config.h"
#include "lpc/pointwise.h"

#define STREAM ((cudaStream_t)lpc_cuda.stream)

#define DIRECT_MAX_CHANNELS 4
#define DIRECT_MAX_K 7
#define DIRECT_GROUP 32          // forward: output channels per thread (at most)
#define DIRECT_MIN_GROUP 8       // forward: the smallest group, on small grids
#define DIRECT_MAX_WEIGHTS 8192  // transposed: the whole weight in shared memory (32 KB)
#define DIRECT_SPLIT_THREADS (1 << 17) // split the work below this many threads (forward: smaller groups;
                                       // transposed k4 s2: the channel sum over several threads)
#define DIRECT_RUN_THREADS (1 << 16)   // the same for the transposed k4 s2 kernel's rows of 2 or 4 blocks
                                       // (the chain's steps: 2^15 and 2^17 slower, bench/RESULTS.md)
// The forward k4 s2 kernel's pairs of pixels, for groups of 16 output channels, take grids of at least
// DIRECT_RUN_PIXELS output pixels: fastest per call (of groups 8, 16, 32 and runs of 1, 2, 4) on the image
// layers of all four benchmark rows, but in the chain's steps faster only on the largest (celeba64 batch
// 256: 2^18 pixels) and 1 % slower on those of 2^16 (bench/RESULTS.md, 2026-11-29)
#define DIRECT_RUN_PIXELS (1 << 18)

// the forward's epilogue on GROUP outputs of one small-side pixel, y[at + o * step] for o < GROUP:
// times act_below'(pre_below) at the same place, where pre_below is given
template <int GROUP>
__device__ __forceinline__ void apply_act_below(float (&acc)[GROUP], const float *pre_below, int act_below, size_t at,
                                                size_t step, int o0, int co) {
    if (!pre_below) return;
#pragma unroll
    for (int o = 0; o < GROUP; o++)
        if (o0 + o < co) acc[o] *= lpc_pw_act_derivative(pre_below[at + o * step], act_below);
}

// GROUP output channels from o0 of small-side pixel q of image b, times act_below' as above: channel-last
// in 16-byte stores, else one channel plane apart
template <int GROUP>
__device__ __forceinline__ void store_group(float *y, const float *pre_below, int act_below, const dconv &g, int b,
                                            int q, int o0, float (&acc)[GROUP]) {
    const size_t plane = (size_t)g.ho * g.wo;
    const size_t at = g.y_cl ? ((size_t)b * plane + q) * g.co + o0 : ((size_t)b * g.co + o0) * plane + q;
    const size_t step = g.y_cl ? 1 : plane;
    apply_act_below<GROUP>(acc, pre_below, act_below, at, step, o0, g.co);
    if (g.y_cl) {
#pragma unroll
        for (int o = 0; o < GROUP; o += 4)
            if (o0 + o < g.co) *(float4 *)(y + at + o) = make_float4(acc[o], acc[o + 1], acc[o + 2], acc[o + 3]);
        return;
    }
#pragma unroll
    for (int o = 0; o < GROUP; o++)
        if (o0 + o < g.co) y[at + o * plane] = acc[o];
}

// ws: this block's GROUP output channels' weights as [c][ky][kx][o], so that the group's weights of
// one tap are GROUP / 4 16-byte shared-memory reads (the same address for every thread: a broadcast)
template <int CI, int GROUP, bool PRE>
__global__ void __launch_bounds__(DIRECT_THREADS)
    direct_forward_kernel(float *y, const float *x, const float *pre, int act, const float *pre_below, int act_below,
                          const float *wgt, dconv g) {
    __shared__ __align__(16) float ws[CI * DIRECT_MAX_K * DIRECT_MAX_K * GROUP];
    const int kk = g.k * g.k, per_o = CI * kk, o0 = blockIdx.y * GROUP;
    for (int i = threadIdx.x; i < per_o * GROUP; i += blockDim.x) {
        const int o = o0 + i % GROUP, t = i / GROUP;
        ws[i] = o < g.co ? wgt[(size_t)o * per_o + t] : 0.0f;
    }
    __syncthreads();
    const int plane = g.ho * g.wo;
    const long long p = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (p >= (long long)g.n * plane) return;
    const int b = (int)(p / plane), q = (int)(p % plane), oy = q / g.wo, ox = q % g.wo;
    const size_t image = (size_t)b * CI * g.h * g.w;
    float acc[GROUP];
#pragma unroll
    for (int o = 0; o < GROUP; o++) acc[o] = 0.0f;
    for (int ky = 0; ky < g.k; ky++) {
        const int yy = oy * g.stride - g.pad + ky;
        if (yy < 0 || yy >= g.h) continue;
        for (int kx = 0; kx < g.k; kx++) {
            const int xx = ox * g.stride - g.pad + kx;
            if (xx < 0 || xx >= g.w) continue;
#pragma unroll
            for (int c = 0; c < CI; c++) {
                const size_t at = image + ((size_t)c * g.h + yy) * g.w + xx;
                float v = x[at];
                if (PRE) v *= lpc_pw_act_derivative(pre[at], act);
                const float4 *w4 = (const float4 *)(ws + ((c * g.k + ky) * g.k + kx) * GROUP);
#pragma unroll
                for (int o4 = 0; o4 < GROUP / 4; o4++) {
                    const float4 w = w4[o4];
                    acc[4 * o4] = fmaf(w.x, v, acc[4 * o4]);
                    acc[4 * o4 + 1] = fmaf(w.y, v, acc[4 * o4 + 1]);
                    acc[4 * o4 + 2] = fmaf(w.z, v, acc[4 * o4 + 2]);
                    acc[4 * o4 + 3] = fmaf(w.w, v, acc[4 * o4 + 3]);
                }
            }
        }
    }
    store_group<GROUP>(y, pre_below, act_below, g, b, q, o0, acc);
}

// forward with kernel 4, stride 2, padding 1 (every strided layer of the models here), on large grids: a
// thread computes PX consecutive output pixels of a row for GROUP output channels. For each kernel row it
// loads the 2 PX + 2 input columns its pixels read, once (times act'), and each four weights read from
// shared memory serve PX pixels: the general kernel's one pixel per thread spends most of its time on those
// shared-memory reads. Every output is summed in the general kernel's order (ky, kx, c), with zeros for taps
// outside the input.
template <int CI, int GROUP, int PX, bool PRE>
__global__ void __launch_bounds__(DIRECT_THREADS)
    direct_forward_k4s2_kernel(float *y, const float *x, const float *pre, int act, const float *pre_below,
                               int act_below, const float *wgt, dconv g) {
    constexpr int K = 4, SPAN = 2 * PX + 2, PER_O = CI * K * K;
    __shared__ __align__(16) float ws[PER_O * GROUP];
    const int o0 = blockIdx.y * GROUP;
    for (int i = threadIdx.x; i < PER_O * GROUP; i += blockDim.x) {
        const int o = o0 + i % GROUP, t = i / GROUP;
        ws[i] = o < g.co ? wgt[(size_t)o * PER_O + t] : 0.0f;
    }
    __syncthreads();
    const int runs = g.wo / PX, per_image = g.ho * runs;
    const long long p = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    const bool valid = p < (long long)g.n * per_image;
    if (!valid && !g.y_cl) return; // (a channel-last y is written by the whole block, below)
    const long long pv = valid ? p : 0;
    const int b = (int)(pv / per_image), q = (int)(pv % per_image), oy = q / runs, ox0 = (q % runs) * PX;
    const size_t image = (size_t)b * CI * g.h * g.w;
    static_assert(PX == 1 || PX == 2, "pixels stored one by one or in pairs");
    float acc[PX][GROUP];
#pragma unroll
    for (int i = 0; i < PX; i++)
#pragma unroll
        for (int o = 0; o < GROUP; o++) acc[i][o] = 0.0f;
#pragma unroll
    for (int ky = 0; ky < K; ky++) {
        const int yy = 2 * oy - 1 + ky;
        const bool row_ok = yy >= 0 && yy < g.h;
        float v[CI][SPAN];
#pragma unroll
        for (int c = 0; c < CI; c++)
#pragma unroll
            for (int j = 0; j < SPAN; j++) {
                const int xx = 2 * ox0 - 1 + j;
                const size_t at = image + ((size_t)c * g.h + yy) * g.w + xx;
                const bool ok = row_ok && xx >= 0 && xx < g.w;
                float t = ok ? x[at] : 0.0f;
                if (PRE && ok) t *= lpc_pw_act_derivative(pre[at], act);
                v[c][j] = t;
            }
#pragma unroll
        for (int kx = 0; kx < K; kx++)
#pragma unroll
            for (int c = 0; c < CI; c++) {
                const float4 *w4 = (const float4 *)(ws + ((c * K + ky) * K + kx) * GROUP);
#pragma unroll
                for (int o4 = 0; o4 < GROUP / 4; o4++) {
                    const float4 w = w4[o4];
#pragma unroll
                    for (int i = 0; i < PX; i++) {
                        const float in = v[c][2 * i + kx];
                        acc[i][4 * o4] = fmaf(w.x, in, acc[i][4 * o4]);
                        acc[i][4 * o4 + 1] = fmaf(w.y, in, acc[i][4 * o4 + 1]);
                        acc[i][4 * o4 + 2] = fmaf(w.z, in, acc[i][4 * o4 + 2]);
                        acc[i][4 * o4 + 3] = fmaf(w.w, in, acc[i][4 * o4 + 3]);
                    }
                }
            }
    }
    if (g.y_cl) {
        // through shared memory, so that consecutive threads write consecutive 16-byte pieces: the block's
        // pixels are PX * (its first thread's p) onwards, GROUP channels from o0 of each
        constexpr int STRIDE = GROUP + 4, QUADS = GROUP / 4, PIECES = PX * QUADS;
        __shared__ __align__(16) float stage[DIRECT_THREADS * PX * STRIDE];
        const long long first = (long long)blockIdx.x * blockDim.x * PX, pixels = (long long)g.n * g.ho * g.wo;
        float4 below[PIECES]; // the act_below' operand of the thread's pieces, all loads in flight together
        if (pre_below)
#pragma unroll
            for (int k = 0; k < PIECES; k++) {
                const int f = threadIdx.x + k * DIRECT_THREADS, local = f / QUADS, o = o0 + 4 * (f % QUADS);
                below[k] = first + local < pixels && o < g.co
                               ? *(const float4 *)(pre_below + (size_t)(first + local) * g.co + o)
                               : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            }
#pragma unroll
        for (int i = 0; i < PX; i++)
#pragma unroll
            for (int o = 0; o < GROUP; o += 4)
                *(float4 *)&stage[(threadIdx.x * PX + i) * STRIDE + o] =
                    make_float4(acc[i][o], acc[i][o + 1], acc[i][o + 2], acc[i][o + 3]);
        __syncthreads();
#pragma unroll
        for (int k = 0; k < PIECES; k++) {
            const int f = threadIdx.x + k * DIRECT_THREADS, local = f / QUADS, o = o0 + 4 * (f % QUADS);
            if (first + local >= pixels || o >= g.co) continue;
            float4 v = *(const float4 *)&stage[local * STRIDE + 4 * (f % QUADS)];
            if (pre_below) {
                const float4 d = below[k];
                v.x *= lpc_pw_act_derivative(d.x, act_below), v.y *= lpc_pw_act_derivative(d.y, act_below);
                v.z *= lpc_pw_act_derivative(d.z, act_below), v.w *= lpc_pw_act_derivative(d.w, act_below);
            }
            *(float4 *)(y + (size_t)(first + local) * g.co + o) = v;
        }
        return;
    }
    const int q0 = oy * g.wo + ox0;
    if constexpr (PX == 1) {
        store_group<GROUP>(y, pre_below, act_below, g, b, q0, o0, acc[0]);
        return;
    }
    if constexpr (PX == 2) { // NCHW: the pair of pixels of a channel side by side
        const size_t plane = (size_t)g.ho * g.wo, at = ((size_t)b * g.co + o0) * plane + q0;
#pragma unroll
        for (int i = 0; i < PX; i++) apply_act_below<GROUP>(acc[i], pre_below, act_below, at + i, plane, o0, g.co);
#pragma unroll
        for (int o = 0; o < GROUP; o++) {
            if (o0 + o >= g.co) break;
            *(float2 *)(y + at + o * plane) = make_float2(acc[0][o], acc[1][o]);
        }
    }
}

// the end of a transposed kernel: one large-side pixel's CI sums into out, or with bias pre_out = sum +
// bias and out = act(pre_out); `at` is the pixel's place in channel 0, `plane` the channel stride
template <int CI>
__device__ __forceinline__ void store_pixel(float *out, float *pre_out, const float *bias, int act, size_t at,
                                            int plane, const float (&sum)[CI]) {
#pragma unroll
    for (int c = 0; c < CI; c++) {
        if (bias) {
            const float pre = sum[c] + bias[c];
            pre_out[at + (size_t)c * plane] = pre;
            out[at + (size_t)c * plane] = lpc_pw_act(pre, act);
        } else {
            out[at + (size_t)c * plane] = sum[c];
        }
    }
}

// ws: the whole weight as [o][ky][kx][c], so that the CI weights of one input value are side by side
template <int CI>
__global__ void __launch_bounds__(DIRECT_THREADS) direct_transposed_kernel(float *out, float *pre_out, const float *bias,
                                                                           int act, const float *dy, const float *wgt,
                                                                           dconv g) {
    extern __shared__ float ws[];
    const int kk = g.k * g.k, total = g.co * kk * CI;
    for (int i = threadIdx.x; i < total; i += blockDim.x) {
        const int c = i % CI, t = (i / CI) % kk, o = i / (CI * kk);
        ws[i] = wgt[((size_t)o * CI + c) * kk + t];
    }
    __syncthreads();
    const int plane = g.h * g.w, in_plane = g.ho * g.wo;
    const long long p = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (p >= (long long)g.n * plane) return;
    const int b = (int)(p / plane), q = (int)(p % plane), y = q / g.w, x = q % g.w;
    const float *dyb = dy + (size_t)b * g.co * in_plane;
    const size_t pixel_stride = g.y_cl ? g.co : 1, channel_stride = g.y_cl ? 1 : in_plane;
    float acc[CI];
#pragma unroll
    for (int c = 0; c < CI; c++) acc[c] = 0.0f;
    // the taps that reach (y, x): ky = (y + pad) mod stride, + stride, ...; input row (y + pad - ky) / stride
    for (int ky = (y + g.pad) % g.stride; ky < g.k; ky += g.stride) {
        const int i = (y + g.pad - ky) / g.stride; // exact: y + pad - ky is a multiple of the stride
        if (i < 0 || i >= g.ho) continue;
        for (int kx = (x + g.pad) % g.stride; kx < g.k; kx += g.stride) {
            const int j = (x + g.pad - kx) / g.stride;
            if (j < 0 || j >= g.wo) continue;
            const float *src = dyb + (size_t)(i * g.wo + j) * pixel_stride;
            const float *wt = ws + (ky * g.k + kx) * CI;
#pragma unroll 4
            for (int o = 0; o < g.co; o++) {
                const float v = src[(size_t)o * channel_stride];
                const float *w = wt + o * kk * CI;
#pragma unroll
                for (int c = 0; c < CI; c++) acc[c] = fmaf(w[c], v, acc[c]);
            }
        }
    }
    store_pixel<CI>(out, pre_out, bias, act, (size_t)b * CI * plane + q, plane, acc);
}

// a run of N consecutive large-side pixels of one row (N a multiple of 4, the row 16-byte aligned): the
// same as store_pixel for each, in 16-byte stores
template <int CI, int N>
__device__ __forceinline__ void store_run(float *out, float *pre_out, const float *bias, int act, size_t at, int plane,
                                          const float (&sum)[N][CI]) {
    static_assert(N % 4 == 0, "runs of whole float4s");
#pragma unroll
    for (int c = 0; c < CI; c++)
#pragma unroll
        for (int i = 0; i < N; i += 4) {
            float4 v = make_float4(sum[i][c], sum[i + 1][c], sum[i + 2][c], sum[i + 3][c]);
            const size_t to = at + (size_t)c * plane + i;
            if (bias) {
                v.x += bias[c], v.y += bias[c], v.z += bias[c], v.w += bias[c];
                *(float4 *)(pre_out + to) = v;
                v = make_float4(lpc_pw_act(v.x, act), lpc_pw_act(v.y, act), lpc_pw_act(v.z, act), lpc_pw_act(v.w, act));
            }
            *(float4 *)(out + to) = v;
        }
}

// the sums of BX 2 x 2 blocks side by side (input row a, columns c0.. of image b) to the epilogue, as rows
// of 2 BX large-side pixels (run(at, row): 16-byte aligned) where runs, else pixel by pixel (pixel(at,
// sums)); at: the row's or pixel's place in channel 0 of the NCHW output, channels g.h * g.w apart
template <int CI, int BX, class Run, class Pixel>
__device__ __forceinline__ void store_blocks(const dconv &g, int b, int a, int c0, bool runs,
                                             const float (&acc)[BX][4][CI], Run run, Pixel pixel) {
    const int plane = g.h * g.w;
#pragma unroll
    for (int py = 0; py < 2; py++) {
        const size_t at = (size_t)b * CI * plane + (size_t)(2 * a + py) * g.w + 2 * c0;
        if constexpr (BX > 1)
            if (runs) {
                float row[2 * BX][CI];
#pragma unroll
                for (int e = 0; e < BX; e++)
#pragma unroll
                    for (int px = 0; px < 2; px++)
#pragma unroll
                        for (int c = 0; c < CI; c++) row[2 * e + px][c] = acc[e][py * 2 + px][c];
                run(at, row);
                continue;
            }
#pragma unroll
        for (int e = 0; e < BX; e++)
#pragma unroll
            for (int px = 0; px < 2; px++) pixel(at + 2 * e + px, acc[e][py * 2 + px]);
    }
}

// adds one input channel's contribution to the sums of BX 2 x 2 blocks side by side: v is the channel's
// 3 x (BX + 2) neighbourhood of the blocks, wo4 its weights [c][ky][kx] in shared memory. Block pixel
// (py, px) takes rows py + u and columns px + u2 (u, u2 = 0, 1) with kernel row 3 - py - 2u and column
// 3 - px - 2u2.
template <int CI, int BX>
__device__ __forceinline__ void add_channel(float (&acc)[BX][4][CI], const float4 *wo4, const float (&v)[3][BX + 2]) {
#pragma unroll
    for (int c = 0; c < CI; c++) {
        const float4 *w4 = wo4 + c * 4; // rows ky = 0..3 of w[o, c]
        const float4 rows[4] = {w4[0], w4[1], w4[2], w4[3]};
#pragma unroll
        for (int py = 0; py < 2; py++)
#pragma unroll
            for (int u = 0; u < 2; u++) {
                const float4 wr = rows[3 - py - 2 * u];
                const float wk[4] = {wr.x, wr.y, wr.z, wr.w};
#pragma unroll
                for (int e = 0; e < BX; e++)
#pragma unroll
                    for (int px = 0; px < 2; px++)
#pragma unroll
                        for (int u2 = 0; u2 < 2; u2++)
                            acc[e][py * 2 + px][c] =
                                fmaf(wk[3 - px - 2 * u2], v[py + u][e + px + u2], acc[e][py * 2 + px][c]);
            }
    }
}

// kernel 4, stride 2, padding 1: large-side pixels (2a + py, 2b + px) take input rows a - 1 + py + u
// with ky = 3 - py - 2u (u = 0, 1), and the same along x; ws is the weight as stored, [o][c][ky][kx].
// A thread computes BX 2 x 2 blocks side by side, from a 3 x (BX + 2) input neighbourhood, so that
// each weight row read from shared memory serves BX blocks (BX 1: stores pixel by pixel; 2 and 4: rows of
// 2 BX pixels in 16-byte stores). SPLIT threads share a position, each summing a contiguous range of
// the input channels, and the first adds the SPLIT partial sums in order (red, after the weights in
// shared memory): small grids get SPLIT times the threads and loops SPLIT times shorter.
template <int CI, int SPLIT, int BX>
__global__ void __launch_bounds__(DIRECT_THREADS) direct_transposed_k4s2_kernel(float *out, float *pre_out,
                                                                                const float *bias, int act,
                                                                                const float *dy, const float *wgt,
                                                                                dconv g) {
    constexpr int POSITIONS = DIRECT_THREADS / SPLIT, SPAN = BX + 2; // positions per thread block
    extern __shared__ float4 ws4[];
    float *ws = (float *)ws4, *red = ws + g.co * CI * 16;
    for (int i = threadIdx.x; i < g.co * CI * 16; i += blockDim.x) ws[i] = wgt[i];
    __syncthreads();
    const int in_plane = g.ho * g.wo, runs = g.wo / BX, per_image = g.ho * runs;
    const int slot = threadIdx.x % POSITIONS, part = threadIdx.x / POSITIONS;
    const long long p = (long long)blockIdx.x * POSITIONS + slot;
    const bool valid = p < (long long)g.n * per_image;
    const int b = valid ? (int)(p / per_image) : 0, q = valid ? (int)(p % per_image) : 0;
    const int a = q / runs, c0 = (q % runs) * BX;
    const float *dyb = dy + (size_t)b * g.co * in_plane;
    int off[3][SPAN];
    bool ok[3][SPAN];
#pragma unroll
    for (int r = 0; r < 3; r++)
#pragma unroll
        for (int t = 0; t < SPAN; t++) {
            const int i = a - 1 + r, j = c0 - 1 + t;
            ok[r][t] = i >= 0 && i < g.ho && j >= 0 && j < g.wo;
            off[r][t] = ok[r][t] ? i * g.wo + j : 0;
        }
    float acc[BX][4][CI]; // [block][py * 2 + px][c]
#pragma unroll
    for (int e = 0; e < BX; e++)
#pragma unroll
        for (int k = 0; k < 4; k++)
#pragma unroll
            for (int c = 0; c < CI; c++) acc[e][k][c] = 0.0f;
    const int chunk = (g.co + SPLIT - 1) / SPLIT, o_end = valid ? min(g.co, (part + 1) * chunk) : 0;
    for (int o = part * chunk; o < o_end; o++) {
        const float *src = dyb + (size_t)o * in_plane;
        float v[3][SPAN];
#pragma unroll
        for (int r = 0; r < 3; r++)
#pragma unroll
            for (int t = 0; t < SPAN; t++) v[r][t] = ok[r][t] ? src[off[r][t]] : 0.0f;
        add_channel<CI, BX>(acc, ws4 + o * CI * 4, v);
    }
    if (SPLIT > 1) { // partial sums of parts 1.. through shared memory, added by part 0 in order
        constexpr int PER_PART = BX * 4 * CI;
        float *mine = &acc[0][0][0];
        if (part > 0)
#pragma unroll
            for (int i = 0; i < PER_PART; i++) red[(part * PER_PART + i) * POSITIONS + slot] = mine[i];
        __syncthreads();
        if (part > 0) return;
        for (int s = 1; s < SPLIT; s++)
#pragma unroll
            for (int i = 0; i < PER_PART; i++) mine[i] += red[(s * PER_PART + i) * POSITIONS + slot];
    }
    if (!valid) return;
    const int plane = g.h * g.w;
    store_blocks<CI, BX>(
        g, b, a, c0, true, acc,
        [&](size_t at, const auto &row) { store_run<CI>(out, pre_out, bias, act, at, plane, row); },
        [&](size_t at, const float(&sum)[CI]) { store_pixel<CI>(out, pre_out, bias, act, at, plane, sum); });
}

// The likelihood epilogue of a block whose sums are staged in shared memory, NCHW-ordered: channel c's
// `count` pixels (whole output rows from `first` in the image's channel-0 plane) at staged[c * span],
// each thread of the block taking every blockDim.x-th pixel, four at a time in 16-byte loads and stores
// where quads (count, span, first and the planes multiples of 4; out and data aligned). Returns the
// thread's log-likelihood sum.
template <int CI>
__device__ __forceinline__ double likelihood_of_staged(float *dpre, const float *bias, int act,
                                                       const lik_epilogue &lik, const float *staged, int span,
                                                       size_t first, int plane, int count, bool quads) {
    const double ls = *lik.log_sigma, inv_var = lpc_pw_inv_var(ls);
    double lp = 0.0;
    if (quads) {
        const int per_channel = count / 4;
        for (int i = threadIdx.x; i < CI * per_channel; i += blockDim.x) {
            const int c = i / per_channel, q = 4 * (i - c * per_channel);
            const size_t at = first + (size_t)c * plane + q;
            const float4 x = *(const float4 *)(lik.data + at), sum = *(const float4 *)(staged + c * span + q);
            float4 d;
            d.x = likelihood_gradient(sum.x, bias[c], act, x.x, ls, inv_var, lik.kind, lp);
            d.y = likelihood_gradient(sum.y, bias[c], act, x.y, ls, inv_var, lik.kind, lp);
            d.z = likelihood_gradient(sum.z, bias[c], act, x.z, ls, inv_var, lik.kind, lp);
            d.w = likelihood_gradient(sum.w, bias[c], act, x.w, ls, inv_var, lik.kind, lp);
            *(float4 *)(dpre + at) = d;
        }
    } else {
        for (int i = threadIdx.x; i < CI * count; i += blockDim.x) {
            const int c = i / count, q = i - c * count;
            const size_t at = first + (size_t)c * plane + q;
            dpre[at] = likelihood_gradient(staged[c * span + q], bias[c], act, lik.data[at], ls, inv_var, lik.kind, lp);
        }
    }
    return lp;
}

// The same with a channel-last input ([n, ho, wo, co], co a multiple of 4): a block takes `rows` input
// rows of one image and copies the 3 x (BX + 2) neighbourhoods of all its positions, `chunk` channels at
// a time (a multiple of 4), into shared memory in channel planes (16-byte loads of whole 32-byte sectors
// by all the block's threads, CL_LOADS at a time; planes of rows + 2 rows with a pitch of 1 mod 4 floats,
// so that the warp's reads below hit 32 banks), then sums each channel as the NCHW kernel does. `split`
// threads share a position (small grids), part p taking channels p, p + split, ... of each chunk in
// order, and the first adds the split partial sums in order (red, after the tile); threads beyond
// rows * (wo / BX) * split only copy. LIK: the output is the likelihood's dpre (lik_epilogue; out is
// dpre, pre_out unused): the sums are staged in shared memory and every thread of the block takes its
// share of the likelihood (a few positions' threads would each run dozens of values in double).
#define CL_CHUNK 8 // channels per part and chunk
template <int CI, int BX, bool LIK>
__global__ void __launch_bounds__(DIRECT_THREADS)
    direct_transposed_k4s2_cl_kernel(float *out, float *pre_out, const float *bias, int act, const float *dy,
                                     const float *wgt, dconv g, int rows, int split, int pitch, bool runs,
                                     lik_epilogue lik) {
    constexpr int SPAN = BX + 2, PER_PART = BX * 4 * CI;
    extern __shared__ float4 ws4[];
    const int per_row = g.wo / BX, bands = (g.ho + rows - 1) / rows, positions = rows * per_row;
    const int chunk = CL_CHUNK * split, plane = (rows + 2) * pitch, cols = g.wo + 2;
    float *ws = (float *)ws4, *tile = ws + g.co * CI * 16, *red = tile + chunk * plane;
    for (int i = threadIdx.x; i < g.co * CI * 16; i += blockDim.x) ws[i] = wgt[i];
    const int b = blockIdx.x / bands, a0 = (blockIdx.x % bands) * rows;
    const int slot = threadIdx.x % positions, part = threadIdx.x / positions;
    const int r_local = slot / per_row, a = a0 + r_local, c0 = (slot % per_row) * BX;
    const bool valid = part < split && a < g.ho;
    const float *dyb = dy + (size_t)b * g.ho * g.wo * g.co;
    float acc[BX][4][CI];
#pragma unroll
    for (int e = 0; e < BX; e++)
#pragma unroll
        for (int k = 0; k < 4; k++)
#pragma unroll
            for (int c = 0; c < CI; c++) acc[e][k][c] = 0.0f;
    for (int base = 0; base < g.co; base += chunk) {
        const int quads = min(chunk, g.co - base) / 4;
        __syncthreads(); // the weights written; the previous chunk read
        const int pieces = (rows + 2) * cols * quads;
        for (int first = threadIdx.x; first < pieces; first += CL_LOADS * blockDim.x) {
            float4 v[CL_LOADS];
            int to[CL_LOADS];
#pragma unroll
            for (int k = 0; k < CL_LOADS; k++) { // all loads first, so that they are in flight together
                const int idx = first + k * blockDim.x, quad = idx % quads, pixel = idx / quads;
                const int tr = pixel / cols, tc = pixel % cols, i = a0 - 1 + tr, j = tc - 1;
                to[k] = idx < pieces ? 4 * quad * plane + tr * pitch + tc : -1;
                v[k] = idx < pieces && i >= 0 && i < g.ho && j >= 0 && j < g.wo
                           ? *(const float4 *)(dyb + ((size_t)i * g.wo + j) * g.co + base + 4 * quad)
                           : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            }
#pragma unroll
            for (int k = 0; k < CL_LOADS; k++)
                if (to[k] >= 0) {
                    float *at = tile + to[k];
                    at[0] = v[k].x, at[plane] = v[k].y, at[2 * plane] = v[k].z, at[3 * plane] = v[k].w;
                }
        }
        __syncthreads();
        if (!valid) continue;
        for (int c = part; c < 4 * quads; c += split) {
            const float *from = tile + c * plane + r_local * pitch + c0;
            float v[3][SPAN];
#pragma unroll
            for (int r = 0; r < 3; r++)
#pragma unroll
                for (int t = 0; t < SPAN; t++) v[r][t] = from[r * pitch + t];
            add_channel<CI, BX>(acc, ws4 + (base + c) * CI * 4, v);
        }
    }
    if (split > 1) {
        float *mine = &acc[0][0][0];
        if (valid && part > 0)
#pragma unroll
            for (int i = 0; i < PER_PART; i++) red[((part - 1) * PER_PART + i) * positions + slot] = mine[i];
        __syncthreads();
        if (!LIK && part > 0) return;
        if (part == 0)
            for (int s = 1; s < split; s++)
#pragma unroll
                for (int i = 0; i < PER_PART; i++) mine[i] += red[((s - 1) * PER_PART + i) * positions + slot];
    }
    const bool stores = valid && part == 0;
    if (!LIK && !stores) return;
    const int out_plane = g.h * g.w;
    if constexpr (!LIK) {
        store_blocks<CI, BX>(
            g, b, a, c0, runs, acc,
            [&](size_t at, const auto &row) { store_run<CI>(out, pre_out, bias, act, at, out_plane, row); },
            [&](size_t at, const float(&sum)[CI]) { store_pixel<CI>(out, pre_out, bias, act, at, out_plane, sum); });
    } else {
        // the block's sums staged over the weights and tiles (all read once every thread is here), in the
        // order of its output rows 2 * a0 .. in NCHW; then every thread takes part in the epilogue
        const int span = 2 * rows * g.w;
        float *staged = ws;
        __syncthreads();
        if (stores)
#pragma unroll
            for (int e = 0; e < BX; e++)
#pragma unroll
                for (int k = 0; k < 4; k++)
#pragma unroll
                    for (int c = 0; c < CI; c++)
                        staged[c * span + (2 * r_local + k / 2) * g.w + 2 * (c0 + e) + k % 2] = acc[e][k][c];
        __syncthreads();
        const size_t first = (size_t)b * CI * out_plane + (size_t)2 * a0 * g.w;
        const int count = 2 * min(rows, g.ho - a0) * g.w;
        double sums[1] = {likelihood_of_staged<CI>(out, bias, act, lik, staged, span, first, out_plane, count, runs)};
        lpc_block_sums<DIRECT_THREADS, 1>(sums);
        if (threadIdx.x == 0) lik.partials[blockIdx.x] = sums[0];
        if (!lpc_last_to_arrive(&lik.arrivals[b], (unsigned)bands)) return;
        if (threadIdx.x == 0) {
            double total = 0.0;
            for (int k = 0; k < bands; k++) total += __ldcg(&lik.partials[(size_t)b * bands + k]);
            lik.logp[b] = (float)total;
        }
    }
}

// the forward's epilogue: act_below'(pre_below) of the layer below (pre_below NULL: none)
struct below {
    const float *pre;
    int act;
};

template <int CI, int GROUP>
static void forward_group(float *y, const float *x, const float *pre, int act, below bl, const float *w,
                          const dconv &g) {
    const long long pixels = (long long)g.n * g.ho * g.wo;
    const dim3 grid((unsigned)((pixels + DIRECT_THREADS - 1) / DIRECT_THREADS), (g.co + GROUP - 1) / GROUP);
    auto kernel = pre ? direct_forward_kernel<CI, GROUP, true> : direct_forward_kernel<CI, GROUP, false>;
    kernel<<<grid, DIRECT_THREADS, 0, STREAM>>>(y, x, pre, act, bl.pre, bl.act, w, g);
}

template <int CI, int GROUP, int PX>
static void forward_k4s2(float *y, const float *x, const float *pre, int act, below bl, const float *w,
                         const dconv &g) {
    const long long runs = (long long)g.n * g.ho * (g.wo / PX);
    const dim3 grid((unsigned)((runs + DIRECT_THREADS - 1) / DIRECT_THREADS), (g.co + GROUP - 1) / GROUP);
    auto kernel =
        pre ? direct_forward_k4s2_kernel<CI, GROUP, PX, true> : direct_forward_k4s2_kernel<CI, GROUP, PX, false>;
    kernel<<<grid, DIRECT_THREADS, 0, STREAM>>>(y, x, pre, act, bl.pre, bl.act, w, g);
}

template <int CI>
static void forward_with(float *y, const float *x, const float *pre, int act, below bl, const float *w,
                         const dconv &g) {
    if (is_k4s2(g) && g.wo % 2 == 0 && aligned16(y) && (g.y_cl || (long long)g.n * g.ho * g.wo >= DIRECT_RUN_PIXELS)) {
        forward_k4s2<CI, 16, 2>(y, x, pre, act, bl, w, g);
        return;
    }
    // halve the output-channel group until about DIRECT_SPLIT_THREADS threads run (down to 8 channels)
    const long long pixels = (long long)g.n * g.ho * g.wo;
    int group = DIRECT_GROUP;
    while (group > DIRECT_MIN_GROUP && pixels * ((g.co + group - 1) / group) < DIRECT_SPLIT_THREADS) group /= 2;
    static_assert(DIRECT_GROUP == 4 * DIRECT_MIN_GROUP, "three group sizes");
    if (group == DIRECT_GROUP) forward_group<CI, DIRECT_GROUP>(y, x, pre, act, bl, w, g);
    else if (group == DIRECT_GROUP / 2) forward_group<CI, DIRECT_GROUP / 2>(y, x, pre, act, bl, w, g);
    else forward_group<CI, DIRECT_MIN_GROUP>(y, x, pre, act, bl, w, g);
}

template <int CI, int BX>
static void transposed_k4s2(float *out, float *pre, const float *bias, int act, const float *dy, const float *w,
                            const dconv &g, int split) {
    const long long positions = (long long)g.n * g.ho * (g.wo / BX);
    const unsigned blocks = (unsigned)((positions * split + DIRECT_THREADS - 1) / DIRECT_THREADS);
    const size_t all = (size_t)g.co * 16 * CI * sizeof(float) +
                       (split > 1 ? (size_t)DIRECT_THREADS * BX * 4 * CI * sizeof(float) : 0);
    auto kernel = split == 1   ? direct_transposed_k4s2_kernel<CI, 1, BX>
                  : split == 2 ? direct_transposed_k4s2_kernel<CI, 2, BX>
                  : split == 4 ? direct_transposed_k4s2_kernel<CI, 4, BX>
                               : direct_transposed_k4s2_kernel<CI, 8, BX>;
    if (all > 48 * 1024) // the largest weights with a split (sm_90 allows up to 227 KB a block)
        LPC_CHECK_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)all));
    kernel<<<blocks, DIRECT_THREADS, all, STREAM>>>(out, pre, bias, act, dy, w, g);
}

// the channel-last kernel's blocks: the input channels split (at most 8 ways) until about
// DIRECT_RUN_THREADS threads run, as the NCHW kernel's; `rows` input rows a block, halved (down to one)
// until the grid has about two blocks per SM of an H200
#define CL_MIN_BLOCKS 264
template <int CI, int BX, bool LIK>
static void transposed_k4s2_channels_last(float *out, float *pre, const float *bias, int act, const float *dy,
                                          const float *w, const dconv &g, bool runs, lik_epilogue lik) {
    const int per_row = g.wo / BX;
    int split = 1;
    while (split < 8 && split < g.co && 2 * split * per_row <= DIRECT_THREADS &&
           (long long)g.n * g.ho * per_row * split < DIRECT_RUN_THREADS)
        split *= 2;
    int rows = min(g.ho, DIRECT_THREADS / (per_row * split));
    while (rows > 1 && (long long)g.n * ((g.ho + rows - 1) / rows) < CL_MIN_BLOCKS) rows /= 2;
    const int pitch = cl_pitch(g.wo);
    const unsigned blocks = (unsigned)((long long)g.n * ((g.ho + rows - 1) / rows));
    size_t bytes = ((size_t)g.co * CI * 16 + (size_t)CL_CHUNK * split * (rows + 2) * pitch +
                    (size_t)(split - 1) * BX * 4 * CI * rows * per_row) *
                   sizeof(float);
    if (LIK) { // room for the staged sums, and the partials
        const size_t staged = (size_t)CI * 2 * rows * g.w * sizeof(float);
        if (staged > bytes) bytes = staged;
        lik.partials = (double *)lpc_cuda_workspace(blocks * sizeof(double));
        lik.arrivals = lpc_cuda.tile_done;
    }
    if (bytes > 48 * 1024)
        LPC_CHECK_CUDA(cudaFuncSetAttribute(direct_transposed_k4s2_cl_kernel<CI, BX, LIK>,
                                            cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
    direct_transposed_k4s2_cl_kernel<CI, BX, LIK>
        <<<blocks, DIRECT_THREADS, bytes, STREAM>>>(out, pre, bias, act, dy, w, g, rows, split, pitch, runs, lik);
}

// rows of 4 or 2 blocks where the width allows, as on NCHW inputs below
template <int CI, bool LIK>
static void transposed_channels_last_with(float *out, float *pre, const float *bias, int act, const float *dy,
                                          const float *w, const dconv &g, lik_epilogue lik) {
    const int bx = blocks_per_thread(g.wo);
    // runs: rows of 2 * bx pixels in 16-byte stores; with LIK, the staged epilogue's 16-byte accesses
    const bool runs = (LIK || bx > 1) && g.w % 4 == 0 && aligned16(out) &&
                      (LIK ? aligned16(lik.data) : !bias || aligned16(pre));
    if (bx == 4) transposed_k4s2_channels_last<CI, 4, LIK>(out, pre, bias, act, dy, w, g, runs, lik);
    else if (bx == 2) transposed_k4s2_channels_last<CI, 2, LIK>(out, pre, bias, act, dy, w, g, runs, lik);
    else transposed_k4s2_channels_last<CI, 1, LIK>(out, pre, bias, act, dy, w, g, LIK && runs, lik);
}

template <int CI>
static void transposed_with(float *out, float *pre, const float *bias, int act, const float *dy, const float *w,
                            const dconv &g) {
    if (is_k4s2(g) && g.y_cl) {
        transposed_channels_last_with<CI, false>(out, pre, bias, act, dy, w, g, lik_epilogue{});
    } else if (is_k4s2(g)) {
        // rows of 4 blocks (2 where the width takes no 4) in 16-byte stores, the input channels split
        // until about DIRECT_RUN_THREADS threads run (at most 8 ways): the fastest of runs of 1, 2, 4 and
        // splits of 1 to 8 on all four benchmark rows' image layers (bench/RESULTS.md, 2026-11-29). Where
        // the output is not 16-byte aligned, one block per thread and DIRECT_SPLIT_THREADS threads.
        const int bx = blocks_per_thread(g.wo);
        const bool runs = bx > 1 && g.w % 4 == 0 && aligned16(out) && (!bias || aligned16(pre));
        const long long positions = (long long)g.n * g.ho * (runs ? g.wo / bx : g.wo);
        const long long threads = runs ? DIRECT_RUN_THREADS : DIRECT_SPLIT_THREADS;
        int split = 1;
        while (split < 8 && split < g.co && positions * split < threads) split *= 2;
        if (runs && bx == 4) transposed_k4s2<CI, 4>(out, pre, bias, act, dy, w, g, split);
        else if (runs) transposed_k4s2<CI, 2>(out, pre, bias, act, dy, w, g, split);
        else transposed_k4s2<CI, 1>(out, pre, bias, act, dy, w, g, split);
    } else {
        const size_t bytes = (size_t)g.co * g.k * g.k * CI * sizeof(float);
        const long long pixels = (long long)g.n * g.h * g.w;
        const unsigned blocks = (unsigned)((pixels + DIRECT_THREADS - 1) / DIRECT_THREADS);
        direct_transposed_kernel<CI><<<blocks, DIRECT_THREADS, bytes, STREAM>>>(out, pre, bias, act, dy, w, g);
    }
}

extern "C" {
int lpc_direct_conv_fits(const struct lpc_conv_shape *s) {
    const size_t limit = (size_t)1 << 31;
    const dconv g = dconv_of(s);
    // positions per input row in the channel-last transposed kernel, which takes at most a block's threads
    const int per_row = g.wo / blocks_per_thread(g.wo);
    const bool y_ok = !s->y_channels_last || (s->co % 4 == 0 && (!is_k4s2(g) || per_row <= DIRECT_THREADS));
    return !s->x_channels_last && y_ok && s->ci <= DIRECT_MAX_CHANNELS && s->k <= DIRECT_MAX_K &&
           (size_t)s->co * s->ci * s->k * s->k <= DIRECT_MAX_WEIGHTS && (size_t)s->n * s->ci * s->h * s->w < limit &&
           (size_t)s->n * s->co * s->ho * s->wo < limit &&
           (s->co + DIRECT_MIN_GROUP - 1) / DIRECT_MIN_GROUP <= 65535;
}

void lpc_direct_conv_forward(float *y, const float *x, const float *pre, int act, const float *pre_below,
                             int act_below, const struct lpc_conv_shape *s, const float *w) {
    const dconv g = dconv_of(s);
    const below bl = {act_below == LPC_ACT_NONE ? NULL : pre_below, act_below};
    switch (s->ci) {
    case 1: forward_with<1>(y, x, pre, act, bl, w, g); break;
    case 2: forward_with<2>(y, x, pre, act, bl, w, g); break;
    case 3: forward_with<3>(y, x, pre, act, bl, w, g); break;
    default: forward_with<4>(y, x, pre, act, bl, w, g); break;
    }
    LPC_CHECK_CUDA(cudaGetLastError());
}

void lpc_direct_conv_transposed(float *out, float *pre, const float *bias, int act, const float *dy, const float *w,
                                const struct lpc_conv_shape *s) {
    const dconv g = dconv_of(s);
    switch (s->ci) {
    case 1: transposed_with<1>(out, pre, bias, act, dy, w, g); break;
    case 2: transposed_with<2>(out, pre, bias, act, dy, w, g); break;
    case 3: transposed_with<3>(out, pre, bias, act, dy, w, g); break;
    default: transposed_with<4>(out, pre, bias, act, dy, w, g); break;
    }
    LPC_CHECK_CUDA(cudaGetLastError());
}

int lpc_direct_likelihood_fits(const struct lpc_conv_shape *s) {
    const dconv g = dconv_of(s);
    return lpc_direct_conv_fits(s) && is_k4s2(g) && g.y_cl && s->n <= LPC_SPLIT_TILES;
}

void lpc_direct_conv_transposed_likelihood(float *dpre, float *logp, const float *bias, int act, const float *dy,
                                           const float *w, const struct lpc_conv_shape *s, const float *data,
                                           const float *log_sigma, int kind) {
    const dconv g = dconv_of(s);
    const lik_epilogue lik = {data, log_sigma, kind, logp, NULL, NULL};
    switch (s->ci) {
    case 1: transposed_channels_last_with<1, true>(dpre, NULL, bias, act, dy, w, g, lik); break;
    case 2: transposed_channels_last_with<2, true>(dpre, NULL, bias, act, dy, w, g, lik); break;
    case 3: transposed_channels_last_with<3, true>(dpre, NULL, bias, act, dy, w, g, lik); break;
    default: transposed_channels_last_with<4, true>(dpre, NULL, bias, act, dy, w, g, lik); break;
    }
    LPC_CHECK_CUDA(cudaGetLastError());
}
}
