// Convolutions as implicit GEMMs on channel-last tensors (the `implicit_nhwc` convolution algorithm, see
// kernels/conv.c), on TF32 tensor cores. A row of A is one output pixel's receptive field: for each tap,
// the input pixel's channels are contiguous, so a k tile (BK channels of one tap) is one 128-byte row
// segment per pixel, copied to shared memory with 16-byte asynchronous copies (zero-filled outside the
// input) while earlier tiles are multiplied.
//
// forward (conv2d_forward, the chain's backward through a decoder layer):
//   C [M = n*ho*wo, N = co] = A [M, K = k*k*ci] B [K, N], A[m, (ky, kx, c)] = x[b, oy*s - p + ky, ox*s - p + kx, c],
//   B^T = the channel-last filter [co, k, k, ci]; the epilogue multiplies by act_below'(pre_below).
// transposed (conv2d_backward_data of kernel 4, stride 2, padding 1: the decoder layer's forward): output
//   pixel (2i + py, 2j + px) takes input pixels (i - 1 + py + a, j - 1 + px + b), a, b in {0, 1}, through
//   kernel element (3 - py - 2a, 3 - px - 2b): per phase (py, px) a GEMM C [M = n*ho*wo, N = ci] =
//   A [M, K = 4*co] B [K, N], B^T = the sub-pixel filter's rows of that phase [ci, 2, 2, co]
//   (kernels/layout.cu); the four phases are the grid's z; the epilogue adds the bias and applies the
//   activation.
// Both write the output channel-last or NCHW.
//
// Small GEMMs split K over several blocks so that the grid fills the GPU; each block writes its partial
// tile to the workspace, and the last block of a tile to finish adds the partials in split order and runs
// the epilogue. Tile and split depend only on the shape, so results are deterministic.
//
// Fragments: an m16n8k8 step takes A[row][k] and A[row][k + 4] (k = lane mod 4) and B likewise. The
// products of a k tile may be summed in any order of k as long as A and B agree, so each thread reads
// one 16-byte chunk per row and 16 k (four consecutive floats: steps 2q and 2q + 1, k and k + 4 each),
// a quarter of the shared-memory loads of one float per fragment element. The chunks of row r are
// stored at chunk ^ 4 (r & 1), so that the two rows the eight lanes of one load phase read fall on
// distinct banks. With `math = tf32` operands are rounded to TF32 (round to nearest) as they are read
// from shared memory; with `math = fp32` each is split into a TF32 head and tail and the three products
// head*head, head*tail, tail*head are summed, as in kernels/conv_implicit.cu: fp32-level accuracy on
// tensor cores. The accumulators go through shared memory to the epilogue, which runs one loop over the
// tile with consecutive threads on the output's contiguous axis (an unrolled fragment-by-fragment
// epilogue made the largest instance 288 KB of code, whose warps ncu found waiting on instruction fetch).
#include <cuda_runtime.h>

#include "block_reduce.cuh"
#include "cuda_internal.h"
#include "lpc/check.h"
#include "lpc/config.h"
#include "lpc/pointwise.h"
#include "tensor_core.cuh"

#define STREAM ((cudaStream_t)lpc_cuda.stream)

#define BK 32                            // a k tile: 32 channels of one tap
#define CHUNKS (BK / 4)                  // 16-byte chunks per tile row
#define STAGES 3                         // k tiles in shared memory: one multiplied, two loading
// split K until about TARGET_BLOCKS blocks, keeping at least MIN_K_TILES_PER_SPLIT k tiles per block;
// taller tiles only where they still give TALL_TILE_BLOCKS blocks (one per SM of an H200: small layers
// run faster on many short tiles; in the chain's steps this bound beat two per SM by 1.5 % on cifar32
// batch 256, tying elsewhere, and half one per SM by 5 % on batch 64: bench/RESULTS.md, 2026-11-29)
#define TARGET_BLOCKS 256
#define TALL_TILE_BLOCKS 132
#define MIN_K_TILES_PER_SPLIT 4
#define MAX_SPLIT 16

struct nhwc_gemm {
    const float *a; // the channel-last input [n, ih, iw, c]
    const float *b; // B^T per phase [phases][N][K], K contiguous
    int ih, iw, c;
    int gh, gw;     // row m of A is pixel (img, my, mx) of an [n, gh, gw] grid: M = n * gh * gw
    int step;       // input pixels per grid step (forward: the stride; transposed: 1)
    int taps;       // taps per axis (forward: k; transposed: 2)
    int pad;        // forward: the padding (the transposed phases read from i - 1 + py)
    int M, N, K;
    int oh, ow;     // the output's size
    int transposed; // 1: four phases, output pixel (2 my + py, 2 mx + px); 0: output pixel (my, mx)
    int channels_last;
    float *out, *pre;
    const float *bias;
    int act;
    const float *pre_below;
    int act_below;
    int split, k_per_split; // K range of one split: a multiple of BK
    float *partials;
    unsigned *counters;
};

__device__ __forceinline__ int swizzled(int row, int chunk) { return row * BK + ((chunk ^ ((row & 1) << 2)) << 2); }

// 16-byte asynchronous global -> shared copy through L1 (the taps of neighbouring pixels read the same
// input again); with ok false it writes zeros and reads nothing
__device__ __forceinline__ void copy16(float *dst, const float *src, bool ok) {
    const unsigned d = (unsigned)__cvta_generic_to_shared(dst);
    asm volatile("cp.async.ca.shared.global [%0], [%1], 16, %2;" ::"r"(d), "l"(src), "r"(ok ? 16 : 0));
}

// one output element: forward: times act_below'(pre_below); transposed: plus the bias, pre kept, activation
__device__ __forceinline__ float epilogue(const nhwc_gemm &g, size_t at, int channel, float v) {
    if (g.transposed) {
        if (g.bias) v += g.bias[channel];
        if (g.pre) {
            g.pre[at] = v;
            v = lpc_pw_act(v, g.act);
        }
    } else if (g.act_below != LPC_ACT_NONE) {
        v *= lpc_pw_act_derivative(g.pre_below[at], g.act_below);
    }
    return v;
}

// shared memory of one block: the k-tile stages, reused after the K loop for the output tile (a row
// stride of BN + 1 keeps both its column-wise and row-wise passes free of most bank conflicts) and the
// output offsets of its rows
template <int BM, int BN> constexpr size_t smem_bytes() {
    constexpr size_t stages = (size_t)STAGES * (BM + BN) * BK * sizeof(float);
    constexpr size_t out = (size_t)BM * (BN + 1) * sizeof(float) + BM * sizeof(long long);
    return stages > out ? stages : out;
}

// WARPS_M x WARPS_N warps, each multiplying a (BM / WARPS_M) x (BN / WARPS_N) part of the tile
template <int BM, int BN, int WARPS_M, int WARPS_N, bool PRECISE>
__global__ void __launch_bounds__(WARPS_M *WARPS_N * 32) nhwc_gemm_kernel(const nhwc_gemm g) {
    constexpr int THREADS = WARPS_M * WARPS_N * 32;
    constexpr int ROWS_PER_PASS = THREADS / CHUNKS; // tile rows one pass of the block's copies covers
    constexpr int WM = BM / WARPS_M, WN = BN / WARPS_N;
    constexpr int MI = WM / 16, NI = WN / 8;
    constexpr int A_ROWS = BM / ROWS_PER_PASS, B_ROWS = BN / ROWS_PER_PASS; // tile rows a thread copies
    static_assert(MI >= 1 && NI >= 1 && A_ROWS >= 1 && B_ROWS >= 1, "tile too small for its warps");
    extern __shared__ float4 smem[];
    float *As = (float *)smem, *Bs = As + STAGES * BM * BK;

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wm = warp % WARPS_M, wn = warp / WARPS_M, gid = lane >> 2, tig = lane & 3;
    const int n_tiles = g.N / BN, n_tile = blockIdx.y % n_tiles, ks = blockIdx.y / n_tiles;
    const int m0 = blockIdx.x * BM, n0 = n_tile * BN, phase = blockIdx.z;
    const int py = g.transposed ? phase >> 1 : 0, px = g.transposed ? phase & 1 : 0;
    const int off_y = g.transposed ? py - 1 : -g.pad, off_x = g.transposed ? px - 1 : -g.pad;
    const float *b = g.b + (size_t)phase * g.N * g.K;
    const int grid = g.gh * g.gw;

    // the A rows this thread copies (fixed for the whole K loop): their image and first input pixel;
    // rows past M get a pixel no tap reaches, so their copies write zeros
    const int chunk = tid % CHUNKS, row0 = tid / CHUNKS;
    const float *a_img[A_ROWS];
    int a_y[A_ROWS], a_x[A_ROWS];
#pragma unroll
    for (int r = 0; r < A_ROWS; r++) {
        const int m = m0 + row0 + r * ROWS_PER_PASS;
        a_img[r] = g.a + chunk * 4, a_y[r] = -(1 << 28), a_x[r] = 0;
        if (m < g.M) {
            const int img = m / grid, q = m - img * grid, my = q / g.gw, mx = q - my * g.gw;
            a_img[r] += (size_t)img * g.ih * g.iw * g.c;
            a_y[r] = my * g.step + off_y, a_x[r] = mx * g.step + off_x;
        }
    }
    const float *b_row = b + (size_t)(n0 + row0) * g.K + chunk * 4;

    // the next k tile to copy: its tap (ty, tx) and first channel c0, in K's order (tap-major)
    const int k_begin = ks * g.k_per_split, k_end = min(g.K, k_begin + g.k_per_split);
    const int tap = k_begin / g.c;
    int ty = tap / g.taps, tx = tap % g.taps, c0 = k_begin % g.c, k_next = k_begin;
    auto issue_tile = [&](int st) {
        float *as = As + st * BM * BK, *bs = Bs + st * BN * BK;
#pragma unroll
        for (int r = 0; r < A_ROWS; r++) {
            const int iy = a_y[r] + ty, ix = a_x[r] + tx;
            const bool ok = (unsigned)iy < (unsigned)g.ih && (unsigned)ix < (unsigned)g.iw;
            const float *src = ok ? a_img[r] + (size_t)(iy * g.iw + ix) * g.c + c0 : g.a;
            copy16(as + swizzled(row0 + r * ROWS_PER_PASS, chunk), src, ok);
        }
#pragma unroll
        for (int r = 0; r < B_ROWS; r++)
            copy16(bs + swizzled(row0 + r * ROWS_PER_PASS, chunk), b_row + (size_t)r * ROWS_PER_PASS * g.K + k_next,
                   true);
        k_next += BK;
        if ((c0 += BK) == g.c) {
            c0 = 0;
            if (++tx == g.taps) tx = 0, ty++;
        }
    };

    const int k_tiles = (k_end - k_begin) / BK;
    float acc[MI][NI][4];
    zero_tile(acc);
#pragma unroll
    for (int st = 0; st < STAGES - 1; st++) {
        if (st < k_tiles) issue_tile(st);
        copy_commit(); // one group per stage, empty or not, so that the wait counts stay aligned
    }
    for (int t = 0; t < k_tiles; t++) {
        copy_wait<STAGES - 2>(); // tile t has landed (this thread's copies)...
        __syncthreads();         // ...everyone's, and tile t - 1's stage is free to be refilled
        if (t + STAGES - 1 < k_tiles) issue_tile((t + STAGES - 1) % STAGES);
        copy_commit();
        const float *as = As + (t % STAGES) * BM * BK, *bs = Bs + (t % STAGES) * BN * BK;
#pragma unroll
        for (int q = 0; q < BK / 16; q++) {
            float4 av[MI][2], bv[NI]; // rows gid and gid + 8 of each m16 tile; row gid of each n8 tile
#pragma unroll
            for (int i = 0; i < MI; i++) {
                const int r = wm * WM + i * 16 + gid;
                av[i][0] = *(const float4 *)(as + swizzled(r, 4 * q + tig));
                av[i][1] = *(const float4 *)(as + swizzled(r + 8, 4 * q + tig));
            }
#pragma unroll
            for (int j = 0; j < NI; j++) bv[j] = *(const float4 *)(bs + swizzled(wn * WN + j * 8 + gid, 4 * q + tig));
#pragma unroll
            for (int step = 0; step < 2; step++) {
                unsigned ah[MI][4], al[MI][4], bh[NI][2], bl[NI][2]; // al, bl: the tails (PRECISE only)
#pragma unroll
                for (int i = 0; i < MI; i++) {
                    const float v[4] = {step ? av[i][0].z : av[i][0].x, step ? av[i][1].z : av[i][1].x,
                                        step ? av[i][0].w : av[i][0].y, step ? av[i][1].w : av[i][1].y};
#pragma unroll
                    for (int e = 0; e < 4; e++) tf32_operand<PRECISE>(v[e], ah[i][e], al[i][e]);
                }
#pragma unroll
                for (int j = 0; j < NI; j++) {
                    const float v[2] = {step ? bv[j].z : bv[j].x, step ? bv[j].w : bv[j].y};
#pragma unroll
                    for (int e = 0; e < 2; e++) tf32_operand<PRECISE>(v[e], bh[j][e], bl[j][e]);
                }
                mma_warp_tile<PRECISE>(acc, ah, al, bh, bl);
            }
        }
    }
    copy_wait<0>();
    __syncthreads(); // every warp is done with the stages: they become the output tile

    // the accumulators into the output tile Cs [BM][BN + 1]: accumulator (i, j, 2h + e) is row
    // wm*WM + i*16 + gid + 8h, column wn*WN + j*8 + 2 tig + e
    constexpr int CS = BN + 1;
    float *Cs = (float *)smem;
    long long *row_at = (long long *)(Cs + BM * CS); // each row's output offset (-1: past M)
#pragma unroll
    for (int i = 0; i < MI; i++)
#pragma unroll
        for (int j = 0; j < NI; j++)
#pragma unroll
            for (int e = 0; e < 4; e++)
                Cs[(wm * WM + i * 16 + gid + 8 * (e >> 1)) * CS + wn * WN + j * 8 + 2 * tig + (e & 1)] = acc[i][j][e];
    const size_t plane = (size_t)g.oh * g.ow;
    for (int row = tid; row < BM; row += THREADS) {
        const int m = m0 + row;
        long long at = -1;
        if (m < g.M) {
            const int img = m / grid, q = m - img * grid, my = q / g.gw, mx = q - my * g.gw;
            const int oy = g.transposed ? 2 * my + py : my, ox = g.transposed ? 2 * mx + px : mx;
            at = g.channels_last ? (long long)((((size_t)img * g.oh + oy) * g.ow + ox) * g.N + n0)
                                 : (long long)(((size_t)img * g.N + n0) * plane + (size_t)oy * g.ow + ox);
        }
        row_at[row] = at;
    }
    __syncthreads();

    if (g.split > 1) {
        // partial tiles [tile][split][BM * BN], row-major, in groups of four floats; the last block of a
        // tile to finish adds them up in split order, each thread's groups loaded side by side
        constexpr int GROUPS = BM * BN / 4 / THREADS; // a thread's groups
        static_assert(GROUPS * 4 * THREADS == BM * BN, "whole groups per thread");
        const int tile = (blockIdx.z * gridDim.x + blockIdx.x) * n_tiles + n_tile;
        float *all = g.partials + (size_t)tile * g.split * BM * BN;
#pragma unroll
        for (int u = 0; u < GROUPS; u++) {
            const int idx = 4 * (tid + u * THREADS);
            const float *c = Cs + (idx / BN) * CS + idx % BN;
            __stcg((float4 *)(all + (size_t)ks * BM * BN + idx), make_float4(c[0], c[1], c[2], c[3]));
        }
        if (!lpc_last_to_arrive(&g.counters[tile], (unsigned)g.split)) return;
        float4 sum[GROUPS];
#pragma unroll
        for (int u = 0; u < GROUPS; u++) sum[u] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        for (int sp = 0; sp < g.split; sp++)
#pragma unroll
            for (int u = 0; u < GROUPS; u++) {
                const float4 v = __ldcg((const float4 *)(all + (size_t)sp * BM * BN + 4 * (tid + u * THREADS)));
                sum[u].x += v.x, sum[u].y += v.y, sum[u].z += v.z, sum[u].w += v.w;
            }
#pragma unroll
        for (int u = 0; u < GROUPS; u++) {
            const int idx = 4 * (tid + u * THREADS);
            float *c = Cs + (idx / BN) * CS + idx % BN;
            c[0] = sum[u].x, c[1] = sum[u].y, c[2] = sum[u].z, c[3] = sum[u].w;
        }
        __syncthreads();
    }

    // the epilogue, consecutive threads on the output's contiguous axis: channels where it is
    // channel-last, rows (pixels) where it is NCHW
    if (g.channels_last) {
        for (int idx = tid; idx < BM * BN; idx += THREADS) {
            const int row = idx / BN, col = idx % BN;
            if (row_at[row] < 0) continue;
            const size_t at = (size_t)row_at[row] + col;
            g.out[at] = epilogue(g, at, n0 + col, Cs[row * CS + col]);
        }
    } else {
        for (int idx = tid; idx < BM * BN; idx += THREADS) {
            const int col = idx / BM, row = idx % BM;
            if (row_at[row] < 0) continue;
            const size_t at = (size_t)row_at[row] + (size_t)col * plane;
            g.out[at] = epilogue(g, at, n0 + col, Cs[row * CS + col]);
        }
    }
}

// 8 warps where the tile has rows for them (4 x 2), else 2 x 2
template <int BM, int BN, bool PRECISE> static void launch(const nhwc_gemm &g, dim3 grid) {
    constexpr int WARPS_M = BM >= 64 ? 4 : 2, WARPS_N = 2;
    constexpr size_t smem = smem_bytes<BM, BN>();
    static int ready; // the dynamic shared memory above 48 KB, allowed once per instance
    if (!ready) {
        LPC_CHECK_CUDA(cudaFuncSetAttribute(nhwc_gemm_kernel<BM, BN, WARPS_M, WARPS_N, PRECISE>,
                                            cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
        ready = 1;
    }
    nhwc_gemm_kernel<BM, BN, WARPS_M, WARPS_N, PRECISE><<<grid, WARPS_M * WARPS_N * 32, smem, STREAM>>>(g);
    LPC_CHECK_CUDA(cudaGetLastError());
}

// the launch of one GEMM: the tile (64 columns where N allows, the tallest rows that still give
// TALL_TILE_BLOCKS tiles), the split of K and the grid, from the shape alone
struct plan {
    nhwc_gemm g;
    int bm, bn;
    dim3 grid;
};

static plan plan_of(const nhwc_gemm &g, int phases) {
    plan p = {g, 0, g.N % 64 == 0 ? 64 : 32, dim3()};
    const int columns = g.N / p.bn * phases;
    p.bm = columns * ((g.M + 127) / 128) >= TALL_TILE_BLOCKS  ? 128
           : columns * ((g.M + 63) / 64) >= TALL_TILE_BLOCKS ? 64
                                                             : 32;
    const int tiles = columns * ((g.M + p.bm - 1) / p.bm), k_tiles = g.K / BK;
    int split = (TARGET_BLOCKS + tiles - 1) / tiles;
    if (split > k_tiles / MIN_K_TILES_PER_SPLIT) split = k_tiles / MIN_K_TILES_PER_SPLIT;
    if (split > MAX_SPLIT) split = MAX_SPLIT;
    if (split < 1 || tiles > LPC_SPLIT_TILES) split = 1;
    const int per = (k_tiles + split - 1) / split;
    p.g.split = (k_tiles + per - 1) / per; // no empty splits
    p.g.k_per_split = per * BK;
    p.grid = dim3((unsigned)((g.M + p.bm - 1) / p.bm), (unsigned)(g.N / p.bn * p.g.split), (unsigned)phases);
    return p;
}

static size_t partial_bytes(const plan &p) {
    if (p.g.split == 1) return 0;
    return (size_t)p.grid.x * p.grid.y * p.grid.z * p.bm * p.bn * sizeof(float);
}

template <bool PRECISE> static void launch_tile(const plan &p) {
    if (p.bn == 64) {
        if (p.bm == 128) launch<128, 64, PRECISE>(p.g, p.grid);
        else if (p.bm == 64) launch<64, 64, PRECISE>(p.g, p.grid);
        else launch<32, 64, PRECISE>(p.g, p.grid);
    } else {
        if (p.bm == 128) launch<128, 32, PRECISE>(p.g, p.grid);
        else if (p.bm == 64) launch<64, 32, PRECISE>(p.g, p.grid);
        else launch<32, 32, PRECISE>(p.g, p.grid);
    }
}

static void run(plan p, void *workspace) {
    if (p.g.M == 0) return;
    p.g.partials = (float *)workspace;
    p.g.counters = lpc_cuda.tile_done;
    if (lpc_cuda.tf32) launch_tile<false>(p);
    else launch_tile<true>(p);
}

// the GEMMs of the two operations (data pointers and epilogue left to the caller)
static nhwc_gemm forward_gemm(const struct lpc_conv_shape *s) {
    nhwc_gemm g = {};
    g.ih = s->h, g.iw = s->w, g.c = s->ci;
    g.gh = s->ho, g.gw = s->wo, g.step = s->stride, g.taps = s->k, g.pad = s->pad;
    g.M = s->n * s->ho * s->wo, g.N = s->co, g.K = s->k * s->k * s->ci;
    g.oh = s->ho, g.ow = s->wo, g.transposed = 0, g.channels_last = s->y_channels_last;
    g.act = g.act_below = LPC_ACT_NONE;
    return g;
}
static nhwc_gemm transposed_gemm(const struct lpc_conv_shape *s) {
    nhwc_gemm g = {};
    g.ih = s->ho, g.iw = s->wo, g.c = s->co;
    g.gh = s->ho, g.gw = s->wo, g.step = 1, g.taps = 2, g.pad = 0;
    g.M = s->n * s->ho * s->wo, g.N = s->ci, g.K = 4 * s->co;
    g.oh = s->h, g.ow = s->w, g.transposed = 1, g.channels_last = s->x_channels_last;
    g.act = g.act_below = LPC_ACT_NONE;
    return g;
}

extern "C" {
int lpc_implicit_nhwc_fits(int transposed, const struct lpc_conv_shape *s) {
    const size_t limit = (size_t)1 << 31;
    if (lpc_conv_x_elements(s) >= limit || lpc_conv_y_elements(s) >= limit || lpc_conv_w_elements(s) >= limit) return 0;
    if (s->ci % BK || s->co % BK) return 0;
    if (transposed) return s->k == 4 && s->stride == 2 && s->pad == 1 && s->h == 2 * s->ho && s->w == 2 * s->wo;
    return 1;
}

size_t lpc_implicit_nhwc_workspace(int transposed, const struct lpc_conv_shape *s) {
    return partial_bytes(transposed ? plan_of(transposed_gemm(s), 4) : plan_of(forward_gemm(s), 1));
}

void lpc_implicit_nhwc_forward(float *y, const float *x, const float *w, const float *pre_below, int act_below,
                               const struct lpc_conv_shape *s, void *workspace) {
    plan p = plan_of(forward_gemm(s), 1);
    p.g.a = x, p.g.b = w, p.g.out = y, p.g.pre_below = pre_below, p.g.act_below = act_below;
    run(p, workspace);
}

void lpc_implicit_nhwc_transposed(float *out, float *pre, const float *bias, int act, const float *dy, const float *w,
                                  const struct lpc_conv_shape *s, void *workspace) {
    plan p = plan_of(transposed_gemm(s), 4);
    p.g.a = dy, p.g.b = w, p.g.out = out, p.g.pre = pre, p.g.bias = bias, p.g.act = act;
    run(p, workspace);
}
}
