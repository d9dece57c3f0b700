// The decoder's output layer of a chain's step in one kernel (ops.h deconv_likelihood_backward): the image
// layer's transposed convolution (kernel 4, stride 2, padding 1) from the channel-last activation below it,
// its bias, activation and likelihood gradient dpre, and the backward convolution of dpre to that
// activation's side, times act_below' of the layer below. Unfused these are two direct kernels
// (kernels/conv_direct.cu: the transposed kernel with the likelihood, then the forward); here the
// backward convolution reads dpre from shared memory, and the step has one launch fewer. fp32 on CUDA
// cores, as the direct kernels.
//
// A thread block takes `rows` rows a0 .. of the small side of one image. The backward convolution of those
// rows reads image rows 2 a0 - 1 .. 2 (a0 + rows), so the block computes dpre of these 2 rows + 2 (one
// more above and below its own, which the neighbouring blocks compute too) from small rows a0 - 1 ..
// a0 + rows of the activation (copied to shared memory in channel planes, a chunk of channels at a time).
// Phase 1: a thread sums 2 BX pixels of one image row for all CI image channels over its share of the
//   channels (`split` threads share a position; the first adds the others' sums in order). Image pixel
//   (2i + py, 2j + px) takes small pixels (i - 1 + py + u, j - 1 + px + u2) through kernel element
//   (3 - py - 2u, 3 - px - 2u2), summed u, then u2, channel by channel, as the direct transposed kernels do.
// Phase 2: the likelihood gradient of every staged sum (zero outside the image), written to dpre for the
//   block's own rows, whose log-likelihoods the block sums.
// Phase 3: each small-side output (a pixel, OUT_GROUP channels) sums its 4 x 4 x CI taps of the staged
//   dpre in the direct forward kernels' order (ky, kx, c), times act_below'(pre_below), stored
//   channel-last.
// Then the block's log-likelihood goes to the partials, and the last block of an image adds them in order.
// Every sum has a fixed order, so results are deterministic.
#include <cuda_runtime.h>

#include "block_reduce.cuh"
#include "conv_direct.cuh"
#include "cuda_internal.h"
#include "lpc/check.h"

#define STREAM ((cudaStream_t)lpc_cuda.stream)

#define OUT_THREADS 256
#define OUT_GROUP 8         // phase 3: small-side channels per output (co a multiple of it)
#define OUT_CHUNK 64        // channels of the activation in shared memory at a time (at most)
// rows a block: doubled (from one) while the grid keeps at least this many blocks, about one per SM of an
// H200 (cifar32 batch 64: 4 rows, 256 blocks; 2 rows, 512 blocks: 11 % slower; bench/RESULTS.md)
#define OUT_MIN_BLOCKS 132
#define OUT_MAX_SHARED (160 * 1024)

struct out_plan {
    int rows, bands, split, positions, pitch, chunk;
    int tile, staged_pitch; // floats of the tile (or the split's partial sums, which reuse it); staged row pitch
};

static out_plan plan_for(const dconv &g, int bx) {
    out_plan p;
    const int per_row = g.wo / bx;
    p.rows = 1;
    while (2 * p.rows <= g.ho && (2 * (2 * p.rows) + 2) * per_row <= OUT_THREADS &&
           (long long)g.n * ((g.ho + 2 * p.rows - 1) / (2 * p.rows)) >= OUT_MIN_BLOCKS)
        p.rows *= 2;
    p.bands = (g.ho + p.rows - 1) / p.rows;
    p.positions = (2 * p.rows + 2) * per_row;
    p.split = 1;
    while (2 * p.split <= 8 && 2 * p.split <= g.co && 2 * p.split * p.positions <= OUT_THREADS) p.split *= 2;
    p.pitch = cl_pitch(g.wo);
    p.chunk = g.co < OUT_CHUNK ? g.co : OUT_CHUNK;
    const int tile = p.chunk * (p.rows + 2) * p.pitch, red = (p.split - 1) * 2 * bx * g.ci * p.positions;
    p.tile = tile > red ? tile : red;
    p.staged_pitch = g.w + 2;
    return p;
}

static size_t shared_bytes(const dconv &g, const out_plan &p) {
    return ((size_t)2 * g.co * g.ci * 16 + p.tile + (size_t)g.ci * (2 * p.rows + 2) * p.staged_pitch) * sizeof(float);
}

// phase 1's sums of one small-side channel: BX column pairs of image row 2 i + py, from the channel's small
// rows i - 1 + py + u (v[u], columns j0 - 1 .. j0 + BX) and its weight rows w4[c * 4 + ky] (kx 0..3)
template <int CI, int BX>
__device__ __forceinline__ void add_channel_row(float (&acc)[2 * BX][CI], const float4 *w4, int py,
                                                const float (&v)[2][BX + 2]) {
#pragma unroll
    for (int c = 0; c < CI; c++) {
#pragma unroll
        for (int u = 0; u < 2; u++) {
            const float4 wr = w4[c * 4 + 3 - py - 2 * u];
            const float wk[4] = {wr.x, wr.y, wr.z, wr.w};
#pragma unroll
            for (int e = 0; e < BX; e++)
#pragma unroll
                for (int px = 0; px < 2; px++)
#pragma unroll
                    for (int u2 = 0; u2 < 2; u2++)
                        acc[2 * e + px][c] = fmaf(wk[3 - px - 2 * u2], v[u][e + px + u2], acc[2 * e + px][c]);
        }
    }
}

template <int CI, int BX>
__global__ void __launch_bounds__(OUT_THREADS)
    output_layer_kernel(float *d_below, float *dpre, const float *pre_below, int act_below, const float *bias,
                        int act, const float *dy, const float *wgt, dconv g, out_plan p, lik_epilogue lik) {
    constexpr int PER_PART = 2 * BX * CI;
    extern __shared__ float4 smem4[];
    const int co = g.co, per_row = g.wo / BX, srows = 2 * p.rows + 2, sp = p.staged_pitch;
    float *wt = (float *)smem4;    // [o][c][ky][kx], as stored
    float *wf = wt + co * CI * 16; // [c][ky][kx][o]
    float *tile = wf + co * CI * 16; // the activation's chunk, or the split's partial sums
    float *staged = tile + p.tile;   // [c][row][1 + column], columns -1 and w zero
    for (int i = threadIdx.x; i < co * CI * 16; i += blockDim.x) {
        const float v = wgt[i];
        wt[i] = v;
        wf[(i % (CI * 16)) * co + i / (CI * 16)] = v;
    }
    for (int i = threadIdx.x; i < CI * srows; i += blockDim.x) staged[i * sp] = 0.0f, staged[i * sp + sp - 1] = 0.0f;
    const int b = blockIdx.x / p.bands, a0 = (blockIdx.x % p.bands) * p.rows;
    const float *dyb = dy + (size_t)b * g.ho * g.wo * co;

    // phase 1: position (image row 2 a0 - 1 + r, small columns j0 ..), whose phase is py and whose small
    // rows a0 - 2 + t0 + py + u are tile rows t0 - 1 + py + u
    const int slot = threadIdx.x % p.positions, part = threadIdx.x / p.positions;
    const int r = slot / per_row, j0 = (slot % per_row) * BX, py = (r + 1) & 1, t0 = (r + 1) >> 1;
    const bool computes = part < p.split;
    const int cols = g.wo + 2, plane = (p.rows + 2) * p.pitch;
    float acc[2 * BX][CI];
#pragma unroll
    for (int k = 0; k < 2 * BX; k++)
#pragma unroll
        for (int c = 0; c < CI; c++) acc[k][c] = 0.0f;
    for (int base = 0; base < co; base += p.chunk) {
        const int quads = min(p.chunk, co - base) / 4;
        __syncthreads(); // the weights written; the previous chunk read
        const int pieces = (p.rows + 2) * cols * quads;
        for (int first = threadIdx.x; first < pieces; first += CL_LOADS * blockDim.x) {
            float4 v[CL_LOADS];
            int to[CL_LOADS];
#pragma unroll
            for (int k = 0; k < CL_LOADS; k++) { // all loads first, so that they are in flight together
                const int idx = first + k * blockDim.x, quad = idx % quads, pixel = idx / quads;
                const int tr = pixel / cols, tc = pixel % cols, i = a0 - 1 + tr, j = tc - 1;
                to[k] = idx < pieces ? 4 * quad * plane + tr * p.pitch + tc : -1;
                v[k] = idx < pieces && i >= 0 && i < g.ho && j >= 0 && j < g.wo
                           ? *(const float4 *)(dyb + ((size_t)i * g.wo + j) * co + base + 4 * quad)
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
        if (!computes) continue;
        for (int c = part; c < 4 * quads; c += p.split) {
            const float *from = tile + c * plane + (t0 - 1 + py) * p.pitch + j0;
            float v[2][BX + 2];
#pragma unroll
            for (int u = 0; u < 2; u++)
#pragma unroll
                for (int t = 0; t < BX + 2; t++) v[u][t] = from[u * p.pitch + t];
            add_channel_row<CI, BX>(acc, (const float4 *)wt + (base + c) * CI * 4, py, v);
        }
    }
    float *red = tile;
    __syncthreads(); // the tile read: its room takes the partial sums
    if (computes && part > 0)
#pragma unroll
        for (int k = 0; k < 2 * BX; k++)
#pragma unroll
            for (int c = 0; c < CI; c++) red[((part - 1) * PER_PART + k * CI + c) * p.positions + slot] = acc[k][c];
    __syncthreads();
    if (part == 0) {
        for (int s = 1; s < p.split; s++)
#pragma unroll
            for (int k = 0; k < 2 * BX; k++)
#pragma unroll
                for (int c = 0; c < CI; c++) acc[k][c] += red[((s - 1) * PER_PART + k * CI + c) * p.positions + slot];
#pragma unroll
        for (int k = 0; k < 2 * BX; k++)
#pragma unroll
            for (int c = 0; c < CI; c++) staged[(c * srows + r) * sp + 1 + 2 * j0 + k] = acc[k][c];
    }
    __syncthreads();

    // phase 2
    const double ls = *lik.log_sigma, inv_var = lpc_pw_inv_var(ls);
    const int plane_out = g.h * g.w, first_row = 2 * a0 - 1, own_end = min(2 * (a0 + p.rows), g.h);
    const float *datab = lik.data + (size_t)b * CI * plane_out;
    float *dpreb = dpre + (size_t)b * CI * plane_out;
    double lp = 0.0, halo = 0.0;
    for (int i = threadIdx.x; i < CI * srows * g.w; i += blockDim.x) {
        const int c = i / (srows * g.w), rr = (i / g.w) % srows, col = i % g.w, row = first_row + rr;
        float *at = staged + (c * srows + rr) * sp + 1 + col;
        if (row < 0 || row >= g.h) {
            *at = 0.0f;
            continue;
        }
        const size_t to = (size_t)c * plane_out + (size_t)row * g.w + col;
        const bool own = row >= 2 * a0 && row < own_end;
        const float d = likelihood_gradient(*at, bias[c], act, datab[to], ls, inv_var, lik.kind, own ? lp : halo);
        *at = d;
        if (own) dpreb[to] = d;
    }
    __syncthreads();

    // phase 3
    const int groups = co / OUT_GROUP;
    for (int i = threadIdx.x; i < p.rows * g.wo * groups; i += blockDim.x) {
        const int grp = i % groups, pixel = i / groups, oy_l = pixel / g.wo, ox = pixel % g.wo, oy = a0 + oy_l;
        if (oy >= g.ho) break;
        const size_t at = (((size_t)b * g.ho + oy) * g.wo + ox) * co + grp * OUT_GROUP;
        float4 below[OUT_GROUP / 4];
        if (act_below != LPC_ACT_NONE)
#pragma unroll
            for (int q = 0; q < OUT_GROUP / 4; q++) below[q] = *(const float4 *)(pre_below + at + 4 * q);
        float out[OUT_GROUP];
#pragma unroll
        for (int o = 0; o < OUT_GROUP; o++) out[o] = 0.0f;
#pragma unroll
        for (int ky = 0; ky < 4; ky++)
#pragma unroll
            for (int kx = 0; kx < 4; kx++)
#pragma unroll
                for (int c = 0; c < CI; c++) {
                    const float v = staged[(c * srows + 2 * oy_l + ky) * sp + 2 * ox + kx];
                    const float4 *w4 = (const float4 *)(wf + ((c * 4 + ky) * 4 + kx) * co + grp * OUT_GROUP);
#pragma unroll
                    for (int q = 0; q < OUT_GROUP / 4; q++) {
                        const float4 w = w4[q];
                        out[4 * q] = fmaf(w.x, v, out[4 * q]);
                        out[4 * q + 1] = fmaf(w.y, v, out[4 * q + 1]);
                        out[4 * q + 2] = fmaf(w.z, v, out[4 * q + 2]);
                        out[4 * q + 3] = fmaf(w.w, v, out[4 * q + 3]);
                    }
                }
#pragma unroll
        for (int q = 0; q < OUT_GROUP / 4; q++) {
            float4 y = make_float4(out[4 * q], out[4 * q + 1], out[4 * q + 2], out[4 * q + 3]);
            if (act_below != LPC_ACT_NONE) {
                const float4 d = below[q];
                y.x *= lpc_pw_act_derivative(d.x, act_below), y.y *= lpc_pw_act_derivative(d.y, act_below);
                y.z *= lpc_pw_act_derivative(d.z, act_below), y.w *= lpc_pw_act_derivative(d.w, act_below);
            }
            *(float4 *)(d_below + at + 4 * q) = y;
        }
    }

    // the image's log-likelihood
    double sums[1] = {lp};
    lpc_block_sums<OUT_THREADS, 1>(sums);
    if (threadIdx.x == 0) lik.partials[blockIdx.x] = sums[0];
    if (!lpc_last_to_arrive(&lik.arrivals[b], (unsigned)p.bands)) return;
    if (threadIdx.x == 0) {
        double total = 0.0;
        for (int k = 0; k < p.bands; k++) total += __ldcg(&lik.partials[(size_t)b * p.bands + k]);
        lik.logp[b] = (float)total;
    }
}

template <int CI, int BX>
static void launch(float *d_below, float *dpre, const float *pre_below, int act_below, const float *bias, int act,
                   const float *dy, const float *w, const dconv &g, lik_epilogue lik) {
    const out_plan p = plan_for(g, BX);
    const unsigned blocks = (unsigned)(g.n * p.bands);
    const size_t bytes = shared_bytes(g, p);
    lik.partials = (double *)lpc_cuda_workspace(blocks * sizeof(double));
    lik.arrivals = lpc_cuda.tile_done;
    if (bytes > 48 * 1024)
        LPC_CHECK_CUDA(cudaFuncSetAttribute(output_layer_kernel<CI, BX>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                            (int)bytes));
    output_layer_kernel<CI, BX><<<blocks, OUT_THREADS, bytes, STREAM>>>(d_below, dpre, pre_below, act_below, bias, act,
                                                                        dy, w, g, p, lik);
}

template <int CI>
static void launch_with(float *d_below, float *dpre, const float *pre_below, int act_below, const float *bias, int act,
                        const float *dy, const float *w, const dconv &g, lik_epilogue lik) {
    switch (blocks_per_thread(g.wo)) {
    case 4: launch<CI, 4>(d_below, dpre, pre_below, act_below, bias, act, dy, w, g, lik); break;
    case 2: launch<CI, 2>(d_below, dpre, pre_below, act_below, bias, act, dy, w, g, lik); break;
    default: launch<CI, 1>(d_below, dpre, pre_below, act_below, bias, act, dy, w, g, lik); break;
    }
}

extern "C" {
int lpc_direct_output_layer_fits(const struct lpc_conv_shape *s) {
    const dconv g = dconv_of(s);
    if (!lpc_direct_likelihood_fits(s) || s->co % OUT_GROUP != 0) return 0;
    const int per_row = g.wo / blocks_per_thread(g.wo);
    return 4 * per_row <= OUT_THREADS && shared_bytes(g, plan_for(g, blocks_per_thread(g.wo))) <= OUT_MAX_SHARED;
}

void lpc_direct_output_layer(float *d_below, float *dpre, float *logp, const float *pre_below, int act_below,
                             const float *bias, int act, const float *dy, const float *w,
                             const struct lpc_conv_shape *s, const float *data, const float *log_sigma, int kind) {
    const dconv g = dconv_of(s);
    const lik_epilogue lik = {data, log_sigma, kind, logp, NULL, NULL};
    switch (s->ci) {
    case 1: launch_with<1>(d_below, dpre, pre_below, act_below, bias, act, dy, w, g, lik); break;
    case 2: launch_with<2>(d_below, dpre, pre_below, act_below, bias, act, dy, w, g, lik); break;
    case 3: launch_with<3>(d_below, dpre, pre_below, act_below, bias, act, dy, w, g, lik); break;
    default: launch_with<4>(d_below, dpre, pre_below, act_below, bias, act, dy, w, g, lik); break;
    }
    LPC_CHECK_CUDA(cudaGetLastError());
}
}
