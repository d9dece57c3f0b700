// Convolutions as implicit GEMMs on tensor cores (the `implicit` convolution algorithm, see
// kernels/conv.c), NCHW: each thread block gathers its tiles of the input straight from the tensor
// into shared memory and multiplies them with mma.sync, so no column matrix is ever written.
//
// forward (conv2d_forward, the chain's backward through a decoder layer):
//   C [M = n*ho*wo, N = co] = A [M, K = ci*k*k] B [K, N], A[m, r] = x[b, c, oy*s - p + ky, ox*s - p + kx]
//   (times act'(pre) at the same place for the fused activation backward), B[r, o] = w[o, r].
// transposed (conv2d_backward_data, the decoder layer's forward): the output pixels are split by
//   their position modulo the stride into s*s classes; in one class every pixel takes the same taps
//   (ky = ky0 + s*ty, kx = kx0 + s*tx), so each class is a dense GEMM with K = co * taps:
//   C [M = n*hc*wc, N = ci] = A [M, K] B [K, N], A[m, (o, ty, tx)] = dy[b, o, i + by - ty, j + bx - tx],
//   B[(o, ty, tx), c] = w[o, c, ky, kx]; the epilogue adds the bias and applies the activation.
//
// Precision: `math = tf32` rounds both operands to TF32 (11 significant bits). `math = fp32` splits
// each operand into a TF32 head and a TF32 tail and adds the three products head*tail, tail*head,
// head*head (the tail*tail term is below fp32's rounding): fp32-level accuracy on tensor cores.
//
// Small GEMMs split K over several blocks (at most MAX_SPLIT) so that the grid fills the GPU; each
// block writes its partial tile to the workspace, and the last block of a tile to finish (an atomic
// counter per tile) adds the partials in split order and runs the epilogue. The split depends only on
// the shape, so results are deterministic.
#include <cuda_runtime.h>

#include "block_reduce.cuh"
#include "cuda_internal.h"
#include "lpc/check.h"
#include "lpc/config.h"
#include "lpc/pointwise.h"
#include "tensor_core.cuh"

#define STREAM ((cudaStream_t)lpc_cuda.stream)

#define BK 16
#define STAGES 3 // k tiles in shared memory: one multiplied, two loading
#define THREADS 128
#define APAD 8 // As[k][m]: row stride BM + 8 (BM 32 or 64) keeps the fragment reads free of bank conflicts
#define BPAD 4 // Bs[n][k]: row stride BK + 4, likewise
// split K until about TARGET_BLOCKS blocks, keeping at least MIN_K_TILES_PER_SPLIT k tiles per block (a
// sweep on an H200 over 128..1024 and 2..8: this pair was best or within 1 % for cifar32 and celeba64)
#define TARGET_BLOCKS 1024
#define MAX_SPLIT 16
#define MIN_K_TILES_PER_SPLIT 8
#define SMALL_GRID_TILES 128 // fewer 64-row tiles than this: 32-row tiles

enum { MODE_FORWARD, MODE_TRANSPOSED };

struct igemm {
    int n, ci, h, w, co, ho, wo, k, stride, pad;
    int M, N, K;     // forward: the GEMM; transposed: M and K of the largest class
    int split, k_per_split; // K range of one split: a multiple of BK
    const float *a, *a_pre; // forward: x (and pre for act' on it); transposed: dy
    int a_act;
    const float *weight;
    float *out, *out_pre; // transposed with bias: out_pre = sum + bias, out = act(out_pre)
    const float *bias;
    int out_act;
    float *partials;
    unsigned *counters;
};

// 4-byte asynchronous global -> shared copy; with ok false it writes a zero and reads nothing
__device__ __forceinline__ void copy4(float *dst, const float *src, bool ok) {
    const unsigned d = (unsigned)__cvta_generic_to_shared(dst);
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;" ::"r"(d), "l"(src), "r"(ok ? 4 : 0));
}

// the class of output pixels a transposed-convolution block works on
struct tclass {
    int py, px, hc, wc, ky0, kx0, by, bx, ty, tx; // tx, ty: taps per axis
};

__device__ __forceinline__ tclass class_of(const igemm &g, int cls) {
    tclass t;
    t.py = cls / g.stride, t.px = cls % g.stride;
    t.hc = (g.h - t.py + g.stride - 1) / g.stride, t.wc = (g.w - t.px + g.stride - 1) / g.stride;
    t.ky0 = (t.py + g.pad) % g.stride, t.kx0 = (t.px + g.pad) % g.stride;
    t.by = (t.py + g.pad) / g.stride, t.bx = (t.px + g.pad) / g.stride;
    t.ty = (g.k - t.ky0 + g.stride - 1) / g.stride, t.tx = (g.k - t.kx0 + g.stride - 1) / g.stride;
    return t;
}

template <int MODE, int BM, int BN, bool PRECISE, bool PRE, bool WHOLE>
__global__ void __launch_bounds__(THREADS) implicit_gemm_kernel(igemm g) {
    constexpr int MI = BM / 32;                     // m16 tiles per warp (2 x 2 warps, warp tile BM/2 x BN/2)
    constexpr int NI = BN / 16;                     // n8 tiles per warp
    constexpr int B_PER_THREAD = BK * BN / THREADS; // B elements a thread loads per k tile
    constexpr int A_PER_THREAD = BK * BM / THREADS; // 8 or 4
    constexpr int A_STRIDE = THREADS / BM;          // the k rows of a thread's A elements are this far apart
    __shared__ float As[STAGES][BK][BM + APAD];
    __shared__ float Ps[PRE ? STAGES : 1][BK][BM + APAD]; // the pre-activations at A's places (fused act')
    __shared__ float Bs[STAGES][BN][BK + BPAD];

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wm = warp & 1, wn = warp >> 1, gid = lane >> 2, tig = lane & 3;
    const int n_tiles = (g.N + BN - 1) / BN;
    const int n_tile = blockIdx.y % n_tiles, ks = blockIdx.y / n_tiles;
    const int m0 = blockIdx.x * BM, n0 = n_tile * BN;

    tclass tc;
    int M = g.M, K = g.K;
    if (MODE == MODE_TRANSPOSED) {
        tc = class_of(g, blockIdx.z);
        M = g.n * tc.hc * tc.wc;
        K = g.co * tc.ty * tc.tx;
    }
    if (m0 >= M) return; // every split of this tile returns here alike: its counter stays untouched
    const int k_begin = ks * g.k_per_split;
    const int k_end = min(K, k_begin + g.k_per_split);

    // the row of A this thread gathers (fixed for the whole K loop) and its first K offset
    const int a_m = tid % BM, a_k = tid / BM; // rows a_k, a_k + A_STRIDE, ...
    const int m = m0 + a_m;
    const bool m_ok = m < M;
    int b_img = 0, r0 = 0, c0 = 0; // forward: oy*s - p, ox*s - p; transposed: i + by, j + bx
    if (m_ok) {
        if (MODE == MODE_FORWARD) {
            const int q = m % (g.ho * g.wo);
            b_img = m / (g.ho * g.wo);
            r0 = (q / g.wo) * g.stride - g.pad, c0 = (q % g.wo) * g.stride - g.pad;
        } else {
            const int q = m % (tc.hc * tc.wc);
            b_img = m / (tc.hc * tc.wc);
            r0 = q / tc.wc + tc.by, c0 = q % tc.wc + tc.bx;
        }
    }
    const int kk = g.k * g.k;
    const int a_channels = MODE == MODE_FORWARD ? g.ci : g.co, a_h = MODE == MODE_FORWARD ? g.h : g.ho,
              a_w = MODE == MODE_FORWARD ? g.w : g.wo;
    const float *a_img = g.a + (size_t)b_img * a_channels * a_h * a_w;
    const float *pre_img = g.a_pre ? g.a_pre + (size_t)b_img * a_channels * a_h * a_w : nullptr;
    const int taps = MODE == MODE_FORWARD ? kk : tc.ty * tc.tx;

    // WHOLE: the taps divide BK (kernel 4: 16 taps forward, 4 per class transposed at stride 2), so a
    // k tile covers whole channels and every thread's gather offsets within a tile are the same for
    // all tiles: they are worked out once here, and a tile only adds its first channel's plane.
    // Otherwise every element's channel and tap are divided out.
    const int a_plane = a_h * a_w, b_plane = MODE == MODE_FORWARD ? 0 : g.ci * kk;
    int a_off[A_PER_THREAD], b_off = 0;
    unsigned a_valid = 0;
    if (WHOLE) {
#pragma unroll
        for (int i = 0; i < A_PER_THREAD; i++) {
            const int kr = a_k + A_STRIDE * i, t = kr % taps;
            const int y = MODE == MODE_FORWARD ? r0 + t / g.k : r0 - t / tc.tx;
            const int x = MODE == MODE_FORWARD ? c0 + t % g.k : c0 - t % tc.tx;
            a_off[i] = (kr / taps) * a_plane + y * a_w + x;
            if (m_ok && y >= 0 && y < a_h && x >= 0 && x < a_w) a_valid |= 1u << i;
        }
        if (MODE == MODE_TRANSPOSED) {
            const int kl = tid % BK, t = kl % taps;
            const int ky = tc.ky0 + g.stride * (t / tc.tx), kx = tc.kx0 + g.stride * (t % tc.tx);
            b_off = (kl / taps) * b_plane + ky * g.k + kx;
        }
    }

    // one k tile into stage `st`: every element is a 4-byte cp.async, zero-filled where it falls
    // outside the tensor, so the loads of STAGES - 1 tiles are in flight while a tile is multiplied
    auto issue_tile = [&](int k0, int st) {
        if (WHOLE) {
            const int ch0 = k0 / taps;
            const float *src = a_img + (size_t)ch0 * a_plane;
            const float *src_pre = PRE ? pre_img + (size_t)ch0 * a_plane : nullptr;
#pragma unroll
            for (int i = 0; i < A_PER_THREAD; i++) {
                const bool ok = (a_valid >> i & 1u) && k0 + a_k + A_STRIDE * i < k_end;
                copy4(&As[st][a_k + A_STRIDE * i][a_m], ok ? src + a_off[i] : g.a, ok);
                if (PRE) copy4(&Ps[st][a_k + A_STRIDE * i][a_m], ok ? src_pre + a_off[i] : g.a, ok);
            }
        } else {
#pragma unroll
            for (int i = 0; i < A_PER_THREAD; i++) {
                const int r = k0 + a_k + A_STRIDE * i;
                bool ok = m_ok && r < k_end;
                size_t at = 0;
                if (ok) {
                    const int ch = r / taps, t = r % taps;
                    const int y = MODE == MODE_FORWARD ? r0 + t / g.k : r0 - t / tc.tx;
                    const int x = MODE == MODE_FORWARD ? c0 + t % g.k : c0 - t % tc.tx;
                    ok = y >= 0 && y < a_h && x >= 0 && x < a_w;
                    at = ((size_t)ch * a_h + y) * a_w + x;
                }
                copy4(&As[st][a_k + A_STRIDE * i][a_m], ok ? a_img + at : g.a, ok);
                if (PRE) copy4(&Ps[st][a_k + A_STRIDE * i][a_m], ok ? pre_img + at : g.a, ok);
            }
        }
        const int kl = tid % BK, r = k0 + kl;
        const float *w_tile = g.weight;
        if (MODE == MODE_TRANSPOSED && WHOLE) w_tile += (size_t)(k0 / taps) * b_plane + b_off;
#pragma unroll
        for (int i = 0; i < B_PER_THREAD; i++) {
            const int nl = tid / BK + i * (THREADS / BK), col = n0 + nl;
            const bool ok = r < k_end && col < g.N;
            const float *src = g.weight;
            if (ok) {
                if (MODE == MODE_FORWARD) {
                    src = g.weight + (size_t)col * K + r;
                } else if (WHOLE) {
                    src = w_tile + col * kk;
                } else {
                    const int o = r / taps, t = r % taps;
                    const int ky = tc.ky0 + g.stride * (t / tc.tx), kx = tc.kx0 + g.stride * (t % tc.tx);
                    src = g.weight + (((size_t)o * g.ci + col) * g.k + ky) * g.k + kx;
                }
            }
            copy4(&Bs[st][nl][kl], src, ok);
        }
    };

    float acc[MI][NI][4];
    zero_tile(acc);

    const int tiles = k_end > k_begin ? (k_end - k_begin + BK - 1) / BK : 0;
#pragma unroll
    for (int st = 0; st < STAGES - 1; st++) {
        if (st < tiles) issue_tile(k_begin + st * BK, st);
        copy_commit(); // one group per stage, empty or not, so that the wait counts stay aligned
    }
    for (int t = 0; t < tiles; t++) {
        copy_wait<STAGES - 2>(); // tile t has landed (this thread's copies)...
        __syncthreads();         // ...everyone's, and every warp is done with the stage refilled next
        if (t + STAGES - 1 < tiles) issue_tile(k_begin + (t + STAGES - 1) * BK, (t + STAGES - 1) % STAGES);
        copy_commit();
        const int st = t % STAGES;
        if (PRE) { // act' applied in place to this thread's own elements of tile t (landed: see the wait)
#pragma unroll
            for (int i = 0; i < A_PER_THREAD; i++)
                As[st][a_k + A_STRIDE * i][a_m] *= lpc_pw_act_derivative(Ps[st][a_k + A_STRIDE * i][a_m], g.a_act);
            __syncthreads();
        }
#pragma unroll
        for (int k8 = 0; k8 < BK; k8 += 8) {
            unsigned ah[MI][4], al[MI][4], bh[NI][2], bl[NI][2];
#pragma unroll
            for (int i = 0; i < MI; i++) {
                const int row = wm * (BM / 2) + i * 16 + gid;
                const int ks_[4] = {k8 + tig, k8 + tig, k8 + tig + 4, k8 + tig + 4}, rs_[4] = {row, row + 8, row, row + 8};
#pragma unroll
                for (int r = 0; r < 4; r++) tf32_operand<PRECISE>(As[st][ks_[r]][rs_[r]], ah[i][r], al[i][r]);
            }
#pragma unroll
            for (int j = 0; j < NI; j++) {
                const int col = wn * (BN / 2) + j * 8 + gid;
                const float v[2] = {Bs[st][col][k8 + tig], Bs[st][col][k8 + tig + 4]};
#pragma unroll
                for (int r = 0; r < 2; r++) tf32_operand<PRECISE>(v[r], bh[j][r], bl[j][r]);
            }
            mma_warp_tile<PRECISE>(acc, ah, al, bh, bl);
        }
    }
    copy_wait<0>();

    if (g.split > 1) {
        // partial tiles in thread order: [tile][split][value j][thread], so the stores are coalesced
        const int tile = (blockIdx.z * gridDim.x + blockIdx.x) * n_tiles + n_tile;
        constexpr int VALUES = MI * NI * 4;
        float *mine = g.partials + ((size_t)tile * g.split + ks) * VALUES * THREADS;
#pragma unroll
        for (int i = 0; i < MI; i++)
#pragma unroll
            for (int j = 0; j < NI; j++)
#pragma unroll
                for (int r = 0; r < 4; r++) mine[((i * NI + j) * 4 + r) * THREADS + tid] = acc[i][j][r];
        if (!lpc_last_to_arrive(&g.counters[tile], (unsigned)g.split)) return;
        const float *all = g.partials + (size_t)tile * g.split * VALUES * THREADS;
        zero_tile(acc);
#pragma unroll 4
        for (int s = 0; s < g.split; s++) // in split order; the loads of 4 splits are in flight at once
#pragma unroll
            for (int i = 0; i < MI; i++)
#pragma unroll
                for (int j = 0; j < NI; j++)
#pragma unroll
                    for (int r = 0; r < 4; r++)
                        acc[i][j][r] += __ldcg(all + ((size_t)s * VALUES + (i * NI + j) * 4 + r) * THREADS + tid);
    }

    // epilogue: C fragment (row gid or gid + 8, columns 2 tig and 2 tig + 1)
#pragma unroll
    for (int i = 0; i < MI; i++)
#pragma unroll
        for (int r = 0; r < 4; r++) {
            const int mm = m0 + wm * (BM / 2) + i * 16 + gid + (r >= 2 ? 8 : 0);
            if (mm >= M) continue;
            size_t base;
            int stride_n;
            if (MODE == MODE_FORWARD) {
                const int Q = g.ho * g.wo, b = mm / Q, q = mm % Q;
                base = (size_t)b * g.co * Q + q, stride_n = Q;
            } else {
                const int Q = tc.hc * tc.wc, b = mm / Q, q = mm % Q;
                const int y = tc.py + g.stride * (q / tc.wc), x = tc.px + g.stride * (q % tc.wc);
                base = ((size_t)b * g.ci * g.h + y) * g.w + x, stride_n = g.h * g.w;
            }
#pragma unroll
            for (int j = 0; j < NI; j++) {
                const int nn = n0 + wn * (BN / 2) + j * 8 + 2 * tig + (r & 1);
                if (nn >= g.N) continue;
                const size_t at = base + (size_t)nn * stride_n;
                const float v = acc[i][j][r];
                if (g.bias) {
                    const float p = v + g.bias[nn];
                    g.out_pre[at] = p;
                    g.out[at] = lpc_pw_act(p, g.out_act);
                } else {
                    g.out[at] = v;
                }
            }
        }
}

// the launch of one convolution: tile width, split and grid, from the shape alone
struct plan {
    igemm g;
    int bm, bn;
    bool whole; // every class's taps divide BK
    dim3 grid;
};

static plan plan_of(const struct lpc_conv_shape *s, int mode) {
    plan p = {};
    igemm &g = p.g;
    g.n = s->n, g.ci = s->ci, g.h = s->h, g.w = s->w, g.co = s->co, g.ho = s->ho, g.wo = s->wo;
    g.k = s->k, g.stride = s->stride, g.pad = s->pad;
    int classes = 1;
    if (mode == MODE_FORWARD) {
        g.M = s->n * s->ho * s->wo, g.N = s->co, g.K = s->ci * s->k * s->k;
    } else {
        classes = s->stride * s->stride;
        const int hc = (s->h + s->stride - 1) / s->stride, wc = (s->w + s->stride - 1) / s->stride;
        const int taps = (s->k + s->stride - 1) / s->stride;
        g.M = s->n * hc * wc, g.N = s->ci, g.K = s->co * taps * taps; // class (0, 0) is the largest
    }
    p.bn = g.N <= 16 ? 16 : g.N <= 32 ? 32 : 64;
    p.whole = true;
    if (mode == MODE_FORWARD) {
        p.whole = BK % (s->k * s->k) == 0;
    } else {
        for (int cls = 0; cls < classes; cls++) {
            const int ky0 = (cls / s->stride + s->pad) % s->stride, kx0 = (cls % s->stride + s->pad) % s->stride;
            const int ty = (s->k - ky0 + s->stride - 1) / s->stride, tx = (s->k - kx0 + s->stride - 1) / s->stride;
            if (ty * tx == 0 || BK % (ty * tx) != 0) p.whole = false;
        }
    }
    const int n_tiles = (g.N + p.bn - 1) / p.bn;
    p.bm = (g.M + 63) / 64 * n_tiles * classes < SMALL_GRID_TILES ? 32 : 64; // more, smaller tiles
    const int m_tiles = (g.M + p.bm - 1) / p.bm;
    const int tiles = m_tiles * n_tiles * classes, k_tiles = (g.K + BK - 1) / BK;
    int split = TARGET_BLOCKS / tiles;
    if (split > k_tiles / MIN_K_TILES_PER_SPLIT) split = k_tiles / MIN_K_TILES_PER_SPLIT;
    if (split > MAX_SPLIT) split = MAX_SPLIT;
    if (split < 1 || tiles > LPC_SPLIT_TILES) split = 1;
    const int per = (k_tiles + split - 1) / split;
    g.split = (k_tiles + per - 1) / per; // no empty splits
    g.k_per_split = per * BK;
    p.grid = dim3(m_tiles, n_tiles * g.split, classes);
    return p;
}

static size_t partial_bytes(const plan &p) {
    if (p.g.split == 1) return 0;
    return (size_t)p.grid.x * (p.grid.y / p.g.split) * p.grid.z * p.g.split * ((p.bm / 32) * (p.bn / 16) * 4) *
           THREADS * sizeof(float);
}

template <int MODE, int BM, int BN, bool PRECISE, bool PRE>
static void launch_with_whole(plan &p) {
    if (p.whole) implicit_gemm_kernel<MODE, BM, BN, PRECISE, PRE, true><<<p.grid, THREADS, 0, STREAM>>>(p.g);
    else implicit_gemm_kernel<MODE, BM, BN, PRECISE, PRE, false><<<p.grid, THREADS, 0, STREAM>>>(p.g);
}

template <int MODE, int BM, int BN, bool PRECISE>
static void launch_with_pre(plan &p) {
    if (p.g.a_pre) launch_with_whole<MODE, BM, BN, PRECISE, MODE == MODE_FORWARD>(p);
    else launch_with_whole<MODE, BM, BN, PRECISE, false>(p);
}

template <int MODE, int BM, int BN>
static void launch_with_bn(plan &p) {
    if (lpc_cuda.tf32) launch_with_pre<MODE, BM, BN, false>(p);
    else launch_with_pre<MODE, BM, BN, true>(p);
}

template <int MODE, int BM>
static void launch_with_bm(plan &p) {
    if (p.bn == 16) launch_with_bn<MODE, BM, 16>(p);
    else if (p.bn == 32) launch_with_bn<MODE, BM, 32>(p);
    else launch_with_bn<MODE, BM, 64>(p);
}

template <int MODE>
static void launch(plan &p, void *workspace) {
    p.g.partials = (float *)workspace;
    p.g.counters = lpc_cuda.tile_done;
    if (p.bm == 32) launch_with_bm<MODE, 32>(p);
    else launch_with_bm<MODE, 64>(p);
}

extern "C" {
size_t lpc_implicit_conv_workspace(const struct lpc_conv_shape *s) {
    const size_t f = partial_bytes(plan_of(s, MODE_FORWARD)), t = partial_bytes(plan_of(s, MODE_TRANSPOSED));
    return f > t ? f : t;
}

int lpc_implicit_conv_fits(const struct lpc_conv_shape *s) {
    const size_t limit = (size_t)1 << 31;
    return (size_t)s->n * s->ci * s->h * s->w < limit && (size_t)s->n * s->co * s->ho * s->wo < limit &&
           (size_t)s->co * s->ci * s->k * s->k < limit;
}

void lpc_implicit_conv_forward(float *y, const float *x, const float *pre, int act, const struct lpc_conv_shape *s,
                               const float *w, void *workspace) {
    plan p = plan_of(s, MODE_FORWARD);
    p.g.a = x, p.g.a_pre = pre, p.g.a_act = act, p.g.weight = w, p.g.out = y;
    launch<MODE_FORWARD>(p, workspace);
}

void lpc_implicit_conv_transposed(float *out, float *pre, const float *bias, int act, const float *dy, const float *w,
                                  const struct lpc_conv_shape *s, void *workspace) {
    plan p = plan_of(s, MODE_TRANSPOSED);
    p.g.a = dy, p.g.weight = w, p.g.out = out, p.g.out_pre = pre, p.g.bias = bias, p.g.out_act = act;
    launch<MODE_TRANSPOSED>(p, workspace);
}
}
