/* GPU parity (DESIGN.md, testing strategy 5): every CUDA op against the CPU op on the same random
 * inputs (fresh each run unless LPC_TEST_SEED is set), with guard zones around every output that must
 * come back untouched; the whole chain from the same seed; training steps of lpc and vae; the same
 * seed twice bitwise on the GPU. Without a GPU it reports SKIPPED (exit code 77).
 *
 * Thresholds are on the normalised squared error sum (a - b)^2 / sum b^2:
 *  - 1e-12 for elementwise float ops computed with the same formula (pointwise.h) in the same
 *    precision: only contraction (FMA) differences, ~1e-7 relative per element, enter;
 *  - 1e-10 for the likelihood and the encoder head, computed in double on both sides and rounded;
 *  - 1e-9 for dense and convolution layers in fp32 (FMA math, no TF32; the implicit-GEMM kernels add
 *    three TF32 products per term, whose error is ~2^-22 relative): cuDNN and cuBLAS sum the K
 *    products in another order, so each output carries ~sqrt(K) 6e-8 relative error (K <= 2048 here),
 *    an nse near 1e-11; TF32 would give ~1e-6 and fail, as it should in this mode;
 *  - with --tf32 (a second run, since math is fixed when the backend starts) only the convolution
 *    checks, on every path, at 1e-5: TF32 rounds each operand to 11 significant bits, ~3e-7 nse;
 *  - 1e-6 for the chain and training, where the host and device Philox normals differ by up to 3e-6
 *    and the differences above compound over T steps (1e-4 for z_T and 1e-5 for its log p with the
 *    preconditioner, which amplifies them; see check_chain). */
#include <string.h>
#include <time.h>

#include "lpc/check.h"
#include "lpc/config.h"
#include "lpc/data.h"
#include "lpc/ops.h"
#include "lpc/langevin.h"
#include "lpc/model.h"
#include "lpc/train.h"
#include "testutil.h"
#include "../kernels/cuda_internal.h"

#define GUARD 64
static const float SENTINEL = -7.77e33f;
static const struct lpc_backend *cpu, *gpu;
static double conv_nse = 1e-9; /* threshold of the convolution checks (1e-5 with --tf32) */
static const int every_act[] = {LPC_ACT_NONE, LPC_ACT_RELU, LPC_ACT_LEAKY_RELU, LPC_ACT_SILU};
static const int none_silu[] = {LPC_ACT_NONE, LPC_ACT_SILU};
#define N_ACTS ((int)(sizeof every_act / sizeof *every_act))

/* device buffer with GUARD floats on either side set to SENTINEL; returns the inner pointer */
static float *gpu_buffer(size_t n, const float *init) {
    float *host = malloc(sizeof(float) * (n + 2 * GUARD));
    for (size_t i = 0; i < n + 2 * GUARD; i++) host[i] = SENTINEL;
    if (init) memcpy(host + GUARD, init, n * sizeof(float));
    float *d = gpu->alloc(sizeof(float) * (n + 2 * GUARD));
    gpu->upload(d, host, sizeof(float) * (n + 2 * GUARD));
    free(host);
    return d + GUARD;
}

/* downloads the inner part into out and checks the guards (the buffer stays allocated: the test
 * process is short and some buffers are used again after a check) */
static void gpu_fetch(float *out, float *d, size_t n, const char *what) {
    float *host = malloc(sizeof(float) * (n + 2 * GUARD));
    gpu->download(host, d - GUARD, sizeof(float) * (n + 2 * GUARD));
    int intact = 1;
    for (size_t i = 0; i < GUARD; i++) intact &= host[i] == SENTINEL && host[GUARD + n + i] == SENTINEL;
    CHECK(intact, "%s: the guard zones around the output were written", what);
    memcpy(out, host + GUARD, n * sizeof(float));
    free(host);
}

static void compare(const char *what, const float *a, const float *b, size_t n, double threshold) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]), den += (double)b[i] * b[i];
    double nse = num / (den > 0 ? den : 1e-30);
    CHECK(nse <= threshold && isfinite(nse), "%s: normalised squared error %.3g > %.0e", what, nse, threshold);
}

static float *rnd(size_t n, uint64_t *s, float scale) {
    float *x = malloc(sizeof(float) * (n + 4));
    test_fill(x, n + 4, s, scale);
    return x;
}

/* the shape with its output size (ho, wo) from the input size, kernel, stride and padding */
static struct lpc_conv_shape with_out_size(struct lpc_conv_shape sh) {
    sh.ho = lpc_conv_out_size(sh.h, sh.k, sh.stride, sh.pad), sh.wo = lpc_conv_out_size(sh.w, sh.k, sh.stride, sh.pad);
    return sh;
}

static void check_conv(struct lpc_conv_shape sh, uint64_t *s) {
    sh = with_out_size(sh);
    size_t nx = (size_t)sh.n * sh.ci * sh.h * sh.w, ny = (size_t)sh.n * sh.co * sh.ho * sh.wo, nw = (size_t)sh.co * sh.ci * sh.k * sh.k;
    float *x = rnd(nx, s, 1), *w = rnd(nw, s, 1), *dy = rnd(ny, s, 1), *dw0 = rnd(nw, s, 1);
    size_t most = nx > ny ? nx : ny;
    most = most > nw ? most : nw;
    float *ref = malloc(sizeof(float) * most), *got = malloc(sizeof(float) * most);
    float *dx = gpu_buffer(nx, NULL), *dxw = gpu_buffer(nw, w), *ddy = gpu_buffer(ny, dy), *dxx = gpu_buffer(nx, x);
    char what[96];
    snprintf(what, sizeof what, "conv n%d %d->%d %dx%d k%d s%d", sh.n, sh.ci, sh.co, sh.h, sh.w, sh.k, sh.stride);
    float *dyo = gpu_buffer(ny, NULL);
    cpu->conv2d_forward(ref, x, w, &sh);
    gpu->conv2d_forward(dyo, dxx, dxw, &sh);
    gpu_fetch(got, dyo, ny, what);
    compare(what, got, ref, ny, conv_nse);
    cpu->conv2d_backward_data(ref, dy, w, &sh);
    gpu->conv2d_backward_data(dx, ddy, dxw, &sh);
    gpu_fetch(got, dx, nx, "conv backward_data");
    compare("conv backward_data", got, ref, nx, conv_nse);
    float *ddw = gpu_buffer(nw, dw0);
    memcpy(ref, dw0, nw * sizeof(float));
    cpu->conv2d_backward_filter(ref, dy, x, &sh); /* accumulates onto dw0 */
    gpu->conv2d_backward_filter(ddw, ddy, dxx, &sh);
    gpu_fetch(got, ddw, nw, "conv backward_filter (+=)");
    compare("conv backward_filter (+=)", got, ref, nw, conv_nse);
    free(x), free(w), free(dy), free(dw0), free(ref), free(got);
}

/* One convolution through the filter at d_w against the CPU with the host copy w: forward, or
 * backward-data (both read the channel-last path's kept filter copy). */
static void expect_conv(const char *what, int backward, const struct lpc_conv_shape *sh, float *d_out, const float *d_in,
                        const float *in, const float *d_w, const float *w, float *ref, float *got) {
    const size_t n_out = backward ? (size_t)sh->n * sh->ci * sh->h * sh->w : (size_t)sh->n * sh->co * sh->ho * sh->wo;
    if (backward) {
        cpu->conv2d_backward_data(ref, in, w, sh);
        gpu->conv2d_backward_data(d_out, d_in, d_w, sh);
    } else {
        cpu->conv2d_forward(ref, in, w, sh);
        gpu->conv2d_forward(d_out, d_in, d_w, sh);
    }
    gpu_fetch(got, d_out, n_out, what);
    compare(what, got, ref, n_out, conv_nse);
}

/* The filter copies the channel-last path keeps while the parameters are fixed (params_fixed_begin ..
 * _end): in one window two filters of one shape give their own results and both ops share a copy;
 * weights written after a window are seen by calls outside any window, by the next window, and by a
 * graph captured in a window and replayed after the weights changed. */
static void check_fixed_filters(struct lpc_conv_shape sh, uint64_t *s) {
    printf("filters kept in the path's order while the parameters are fixed\n");
    sh = with_out_size(sh);
    const size_t nx = (size_t)sh.n * sh.ci * sh.h * sh.w, ny = (size_t)sh.n * sh.co * sh.ho * sh.wo;
    const size_t nw = (size_t)sh.co * sh.ci * sh.k * sh.k;
    float *x = rnd(nx, s, 1), *dy = rnd(ny, s, 1), *w[4], *d_w[2];
    for (int i = 0; i < 4; i++) w[i] = rnd(nw, s, 1);
    for (int i = 0; i < 2; i++) d_w[i] = gpu_buffer(nw, w[i]);
    float *ref = malloc(sizeof(float) * (nx > ny ? nx : ny)), *got = malloc(sizeof(float) * (nx > ny ? nx : ny));
    float *d_x = gpu_buffer(nx, x), *d_dy = gpu_buffer(ny, dy), *d_y = gpu_buffer(ny, NULL), *d_dx = gpu_buffer(nx, NULL);
    gpu->params_fixed_begin();
    expect_conv("window: first filter", 0, &sh, d_y, d_x, x, d_w[0], w[0], ref, got);
    expect_conv("window: second filter of the same shape", 0, &sh, d_y, d_x, x, d_w[1], w[1], ref, got);
    expect_conv("window: first filter again, backward-data", 1, &sh, d_dx, d_dy, dy, d_w[0], w[0], ref, got);
    gpu->params_fixed_end();
    gpu->upload(d_w[0], w[2], nw * sizeof(float));
    expect_conv("weights changed: outside a window", 0, &sh, d_y, d_x, x, d_w[0], w[2], ref, got);
    gpu->upload(d_w[1], w[2], nw * sizeof(float));
    gpu->params_fixed_begin();
    expect_conv("weights changed: the next window", 1, &sh, d_dx, d_dy, dy, d_w[1], w[2], ref, got);
    gpu->params_fixed_end();
    gpu->graph_begin();
    gpu->params_fixed_begin();
    gpu->conv2d_forward(d_y, d_x, d_w[0], &sh);
    gpu->conv2d_backward_data(d_dx, d_dy, d_w[0], &sh);
    gpu->params_fixed_end();
    void *graph = gpu->graph_end();
    gpu->upload(d_w[0], w[3], nw * sizeof(float));
    gpu->graph_launch(graph);
    gpu->graph_destroy(graph);
    cpu->conv2d_forward(ref, x, w[3], &sh);
    gpu_fetch(got, d_y, ny, "weights changed: a graph captured in a window, forward");
    compare("weights changed: a graph captured in a window, forward", got, ref, ny, conv_nse);
    cpu->conv2d_backward_data(ref, dy, w[3], &sh);
    gpu_fetch(got, d_dx, nx, "weights changed: a graph captured in a window, backward-data");
    compare("weights changed: a graph captured in a window, backward-data", got, ref, nx, conv_nse);
    for (int i = 0; i < 4; i++) free(w[i]);
    free(x), free(dy), free(ref), free(got);
}

/* The decoder's fused layer ops against the CPU's unfused sequence, for the given activations; the
 * chain's backward also with the act' of the layer below applied to its output (the next activation of
 * the list, or the same where it has one). */
static void check_decoder_layer(struct lpc_conv_shape sh, uint64_t *s, const int *acts, int n_acts) {
    sh = with_out_size(sh);
    size_t nx = (size_t)sh.n * sh.ci * sh.h * sh.w, ny = (size_t)sh.n * sh.co * sh.ho * sh.wo, nw = (size_t)sh.co * sh.ci * sh.k * sh.k;
    float *in = rnd(ny, s, 1), *w = rnd(nw, s, 1), *b = rnd(sh.ci, s, 1), *dout = rnd(nx, s, 1);
    /* pre_below with exact zeros (every fourth element): a layer whose activation keeps the sign passes
     * its output as pre_below, zero wherever relu clipped, and act' there must be 0 on every path (cuDNN's
     * RELU_BWD epilogue included) as on the CPU */
    float *pre_below = rnd(ny, s, 2);
    for (size_t i = 0; i < ny; i += 4) pre_below[i] = 0.0f;
    float *d_pre_below = gpu_buffer(ny, pre_below);
    float *pre = malloc(sizeof(float) * nx), *out = malloc(sizeof(float) * nx), *tmp = malloc(sizeof(float) * nx);
    float *got = malloc(sizeof(float) * (nx > ny ? nx : ny)), *dy = malloc(sizeof(float) * ny);
    float *d_in = gpu_buffer(ny, in), *d_w = gpu_buffer(nw, w), *d_b = gpu_buffer(sh.ci, b);
    for (int a = 0; a < n_acts; a++) {
        int act = acts[a];
        char what[128];
        snprintf(what, sizeof what, "deconv_bias_act n%d %d->%d %dx%d act %d", sh.n, sh.co, sh.ci, sh.h, sh.w, act);
        cpu->deconv_bias_act_forward(out, pre, in, w, b, &sh, act);
        float *d_pre = gpu_buffer(nx, NULL), *d_out = act == LPC_ACT_NONE ? d_pre : gpu_buffer(nx, NULL);
        gpu->deconv_bias_act_forward(d_out, d_pre, d_in, d_w, d_b, &sh, act);
        gpu_fetch(got, d_pre, nx, what);
        compare(what, got, pre, nx, conv_nse);
        gpu_fetch(got, d_out, nx, what);
        compare(what, got, out, nx, conv_nse);
        snprintf(what, sizeof what, "act_conv2d_forward n%d %d->%d %dx%d act %d", sh.n, sh.ci, sh.co, sh.h, sh.w, act);
        memcpy(tmp, dout, sizeof(float) * nx);
        cpu->act_conv2d_forward(dy, tmp, pre, w, &sh, act, NULL, LPC_ACT_NONE);
        /* the CPU's pre on both sides: where a pre-activation rounds to the other side of a kink,
         * act' would differ and the comparison would measure that instead of the op */
        float *d_dout = gpu_buffer(nx, dout), *d_dy = gpu_buffer(ny, NULL), *d_pre_ref = gpu_buffer(nx, pre);
        gpu->act_conv2d_forward(d_dy, d_dout, d_pre_ref, d_w, &sh, act, NULL, LPC_ACT_NONE);
        gpu_fetch(got, d_dy, ny, what);
        compare(what, got, dy, ny, conv_nse);
        const int act_below = acts[(a + 1) % n_acts];
        if (act_below == LPC_ACT_NONE) continue;
        snprintf(what, sizeof what, "act_conv2d_forward n%d %d->%d %dx%d act %d, act below %d", sh.n, sh.ci, sh.co, sh.h,
                 sh.w, act, act_below);
        memcpy(tmp, dout, sizeof(float) * nx);
        cpu->act_conv2d_forward(dy, tmp, pre, w, &sh, act, pre_below, act_below);
        gpu->upload(d_dout, dout, sizeof(float) * nx);
        gpu->act_conv2d_forward(d_dy, d_dout, d_pre_ref, d_w, &sh, act, d_pre_below, act_below);
        gpu_fetch(got, d_dy, ny, what);
        compare(what, got, dy, ny, conv_nse);
    }
    free(in), free(w), free(b), free(dout), free(pre), free(out), free(tmp), free(got), free(dy), free(pre_below);
}

/* The chain's output layer with the likelihood (deconv_likelihood), both likelihoods: against the GPU's
 * own deconv_bias_act_forward followed by the CPU's likelihood and act' on its mu and pre (the same
 * sums, so to the likelihood's 1e-10), and against the CPU's op (the convolutions' threshold); two
 * launches, since the per-image arrival counters must be left at zero. */
static void check_output_layer_likelihood(struct lpc_conv_shape sh, uint64_t *s, const int *acts, int n_acts) {
    sh = with_out_size(sh);
    const int dim = sh.ci * sh.h * sh.w;
    const size_t nx = (size_t)sh.n * dim, ny = (size_t)sh.n * sh.co * sh.ho * sh.wo;
    const size_t nw = (size_t)sh.co * sh.ci * sh.k * sh.k;
    float *in = rnd(ny, s, 1), *w = rnd(nw, s, 0.5f), *b = rnd(sh.ci, s, 1), *data = malloc(sizeof(float) * nx);
    for (size_t i = 0; i < nx; i++) data[i] = (float)((int)((test_uniform(s) + 1) * 128) % 256) / 127.5f - 1.0f;
    float *pre = malloc(sizeof(float) * nx), *out = malloc(sizeof(float) * nx), *dpre = malloc(sizeof(float) * nx);
    float *got = malloc(sizeof(float) * nx), *lp = malloc(sizeof(float) * sh.n), *lp_got = malloc(sizeof(float) * sh.n);
    float *d_in = gpu_buffer(ny, in), *d_w = gpu_buffer(nw, w), *d_b = gpu_buffer(sh.ci, b);
    float *d_data = gpu_buffer(nx, data);
    float *d_dpre = gpu_buffer(nx, NULL), *d_lp = gpu_buffer(sh.n, NULL), *d_pre = gpu_buffer(nx, NULL);
    float *d_out = gpu_buffer(nx, NULL);
    for (int kind = LPC_LIK_GAUSSIAN; kind <= LPC_LIK_DISCRETIZED_GAUSSIAN; kind++)
        for (int a = 0; a < n_acts; a++) {
            const int act = acts[a];
            float ls = kind ? -2.0f : -1.2f, *d_ls = gpu_buffer(1, &ls);
            char what[160];
            snprintf(what, sizeof what, "deconv_likelihood n%d %d->%d %dx%d%s act %d likelihood %d", sh.n, sh.co, sh.ci,
                     sh.h, sh.w, sh.y_channels_last ? " (small side channel-last)" : "", act, kind);
            /* the reference from the GPU's own sums */
            gpu->deconv_bias_act_forward(act == LPC_ACT_NONE ? d_pre : d_out, d_pre, d_in, d_w, d_b, &sh, act);
            gpu_fetch(pre, d_pre, nx, what);
            gpu_fetch(out, act == LPC_ACT_NONE ? d_pre : d_out, nx, what);
            cpu->likelihood(lp, dpre, NULL, data, out, &ls, sh.n, dim, kind);
            cpu->bias_act_backward(dpre, NULL, dpre, pre, lpc_conv_x_rows(&sh), sh.ci, lpc_conv_x_per_row(&sh), act);
            for (int launch = 0; launch < 2; launch++) {
                gpu->fill(d_dpre, 0.0f, nx), gpu->fill(d_lp, 0.0f, (size_t)sh.n);
                gpu->deconv_likelihood(d_dpre, d_lp, act == LPC_ACT_NONE ? d_pre : d_out, d_pre, d_in, d_w, d_b, d_data,
                                       d_ls, &sh, act, kind);
                gpu_fetch(got, d_dpre, nx, what);
                compare(what, got, dpre, nx, 1e-10);
                gpu_fetch(lp_got, d_lp, sh.n, what);
                compare(what, lp_got, lp, sh.n, 1e-10);
            }
            /* the CPU's op, its own sums */
            float *out_cpu = act == LPC_ACT_NONE ? pre : out;
            cpu->deconv_likelihood(dpre, lp, out_cpu, pre, in, w, b, data, &ls, &sh, act, kind);
            compare(what, got, dpre, nx, conv_nse);
            compare(what, lp_got, lp, sh.n, conv_nse);
        }
    free(in), free(w), free(b), free(data), free(pre), free(out), free(dpre), free(got), free(lp), free(lp_got);
}

/* The chain's output layer and its way back in one op (deconv_likelihood_backward), both likelihoods,
 * with the act' of the layer below on the way out or none: against the CPU's op (the convolutions'
 * threshold), and against the GPU's two ops it stands for, deconv_likelihood and then act_conv2d_forward
 * (the same formulas with the image layer's channel sums in another order: 1e-10). `fused`: the shape must
 * take the one-kernel path. Two launches, since the per-image arrival counters must be left at zero. */
static void check_output_layer_backward(struct lpc_conv_shape sh, uint64_t *s, int fused) {
    sh = with_out_size(sh);
    sh.y_channels_last = 1;
    CHECK(lpc_direct_output_layer_fits(&sh) == fused, "n%d %d->%d %dx%d: the one-kernel output layer %s the shape",
          sh.n, sh.co, sh.ci, sh.h, sh.w, fused ? "does not take" : "takes");
    const int dim = sh.ci * sh.h * sh.w;
    const size_t nx = (size_t)sh.n * dim, ny = (size_t)sh.n * sh.co * sh.ho * sh.wo;
    const size_t nw = (size_t)sh.co * sh.ci * sh.k * sh.k;
    float *in = rnd(ny, s, 1), *w = rnd(nw, s, 0.5f), *b = rnd(sh.ci, s, 1), *data = malloc(sizeof(float) * nx);
    for (size_t i = 0; i < nx; i++) data[i] = (float)((int)((test_uniform(s) + 1) * 128) % 256) / 127.5f - 1.0f;
    float *pre_below = rnd(ny, s, 2); /* with exact zeros, as check_decoder_layer's */
    for (size_t i = 0; i < ny; i += 4) pre_below[i] = 0.0f;
    float *pre = malloc(sizeof(float) * nx), *out = malloc(sizeof(float) * nx), *dpre = malloc(sizeof(float) * nx);
    float *below = malloc(sizeof(float) * ny), *lp = malloc(sizeof(float) * sh.n);
    float *got = malloc(sizeof(float) * (nx > ny ? nx : ny)), *ref = malloc(sizeof(float) * (nx > ny ? nx : ny));
    float *lp_got = malloc(sizeof(float) * sh.n), *lp_ref = malloc(sizeof(float) * sh.n);
    float *d_in = gpu_buffer(ny, in), *d_w = gpu_buffer(nw, w), *d_b = gpu_buffer(sh.ci, b);
    float *d_data = gpu_buffer(nx, data), *d_pre_below = gpu_buffer(ny, pre_below);
    float *d_dpre = gpu_buffer(nx, NULL), *d_lp = gpu_buffer(sh.n, NULL), *d_pre = gpu_buffer(nx, NULL);
    float *d_out = gpu_buffer(nx, NULL), *d_below = gpu_buffer(ny, NULL);
    const int acts[][2] = {{LPC_ACT_NONE, LPC_ACT_RELU}, {LPC_ACT_SILU, LPC_ACT_LEAKY_RELU}, {LPC_ACT_NONE, LPC_ACT_NONE}};
    for (int kind = LPC_LIK_GAUSSIAN; kind <= LPC_LIK_DISCRETIZED_GAUSSIAN; kind++)
        for (int a = 0; a < (int)(sizeof acts / sizeof *acts); a++) {
            const int act = acts[a][0], act_below = acts[a][1];
            float ls = kind ? -2.0f : -1.2f, *d_ls = gpu_buffer(1, &ls);
            const float *pb = act_below == LPC_ACT_NONE ? NULL : pre_below, *d_pb = pb ? d_pre_below : NULL;
            float *d_out_or_pre = act == LPC_ACT_NONE ? d_pre : d_out;
            char what[192];
            snprintf(what, sizeof what, "deconv_likelihood_backward n%d %d->%d %dx%d act %d, below %d, likelihood %d",
                     sh.n, sh.co, sh.ci, sh.h, sh.w, act, act_below, kind);
            /* the GPU's two ops */
            gpu->deconv_likelihood(d_dpre, d_lp, d_out_or_pre, d_pre, d_in, d_w, d_b, d_data, d_ls, &sh, act, kind);
            gpu_fetch(ref, d_dpre, nx, what);
            gpu_fetch(lp_ref, d_lp, sh.n, what);
            gpu->act_conv2d_forward(d_below, d_dpre, d_pre, d_w, &sh, LPC_ACT_NONE, d_pb, act_below);
            float *below_ref = malloc(sizeof(float) * ny);
            gpu_fetch(below_ref, d_below, ny, what);
            /* the CPU's op */
            cpu->deconv_likelihood_backward(below, dpre, lp, act == LPC_ACT_NONE ? pre : out, pre, in, w, b, data, &ls,
                                            &sh, act, kind, pb, act_below);
            for (int launch = 0; launch < 2; launch++) {
                gpu->fill(d_dpre, 0.0f, nx), gpu->fill(d_lp, 0.0f, (size_t)sh.n), gpu->fill(d_below, 0.0f, ny);
                gpu->deconv_likelihood_backward(d_below, d_dpre, d_lp, d_out_or_pre, d_pre, d_in, d_w, d_b, d_data, d_ls,
                                                &sh, act, kind, d_pb, act_below);
                gpu_fetch(got, d_dpre, nx, what);
                compare(what, got, ref, nx, 1e-10);
                compare(what, got, dpre, nx, conv_nse);
                gpu_fetch(lp_got, d_lp, sh.n, what);
                compare(what, lp_got, lp_ref, sh.n, 1e-10);
                compare(what, lp_got, lp, sh.n, conv_nse);
                gpu_fetch(got, d_below, ny, what);
                compare(what, got, below_ref, ny, 1e-10);
                compare(what, got, below, ny, conv_nse);
            }
            free(below_ref);
        }
    free(in), free(w), free(b), free(data), free(pre_below), free(pre), free(out), free(dpre), free(below), free(lp);
    free(got), free(ref), free(lp_got), free(lp_ref);
}

/* The decoder's fused dense ops against the CPU's unfused sequence, for every activation, with the
 * output in NCHW order (channels 0) or channel-last, the forward into separate pre and y and, where the
 * activation allows it, in place (y == pre, as the model keeps such layers); the backward twice, since
 * its split reduction must leave its tile counters at zero for the next launch. */
static void check_dense_fused(int n, int in, int out, int channels, const float *x, const float *w, const float *b,
                              const float *dy, const float *dxg, const float *dwg, const float *dbg) {
    const size_t ny = (size_t)n * out, nx = (size_t)n * in;
    float *pre = malloc(sizeof(float) * ny), *y = malloc(sizeof(float) * ny), *tmp = malloc(sizeof(float) * ny);
    float *dx = malloc(sizeof(float) * nx), *got = malloc(sizeof(float) * (ny > nx ? ny : nx));
    for (int act = LPC_ACT_NONE; act <= LPC_ACT_SILU; act++) {
        char what[128];
        snprintf(what, sizeof what, "dense_bias_act_forward n%d %d->%d channels %d act %d", n, in, out, channels, act);
        cpu->dense_bias_act_forward(y, pre, x, w, b, n, in, out, act, channels);
        for (int in_place = act == LPC_ACT_NONE; in_place <= lpc_act_derivative_from_output(act); in_place++) {
            float *d_pre = gpu_buffer(ny, NULL), *d_y = in_place ? d_pre : gpu_buffer(ny, NULL);
            gpu->dense_bias_act_forward(d_y, d_pre, dxg, dwg, dbg, n, in, out, act, channels);
            if (!in_place) {
                gpu_fetch(got, d_pre, ny, what);
                compare(what, got, pre, ny, 1e-9);
            }
            gpu_fetch(got, d_y, ny, what);
            compare(what, got, y, ny, 1e-9);
        }
        snprintf(what, sizeof what, "act_dense_backward_data n%d %d->%d channels %d act %d", n, in, out, channels, act);
        memcpy(tmp, dy, sizeof(float) * ny);
        cpu->act_dense_backward_data(dx, tmp, pre, w, n, in, out, act, channels);
        /* the CPU's pre on both sides, as in check_decoder_layer */
        float *d_pre_ref = gpu_buffer(ny, pre);
        for (int launch = 0; launch < 2; launch++) { /* a fresh output each time: no result left over */
            float *d_dout = gpu_buffer(ny, dy), *d_dx = gpu_buffer(nx, NULL);
            gpu->act_dense_backward_data(d_dx, d_dout, d_pre_ref, dwg, n, in, out, act, channels);
            gpu_fetch(got, d_dx, nx, what);
            compare(what, got, dx, nx, 1e-9);
        }
    }
    free(pre), free(y), free(tmp), free(dx), free(got);
}

/* The dense layer's weights and bias in channel-last feature order, kept while the parameters are fixed
 * (the counterpart of check_fixed_filters): in one window two weight sets of one shape give their own
 * results and both ops share a copy; parameters written after a window are seen by calls outside any
 * window, by the next window, and by a graph captured in a window and replayed after they changed. */
static void check_fixed_dense(uint64_t *s) {
    printf("dense weights kept in channel-last feature order while the parameters are fixed\n");
    const int n = 8, in = 24, out = 128, channels = 8;
    const size_t nx = (size_t)n * in, ny = (size_t)n * out, nw = (size_t)out * in;
    float *x = rnd(nx, s, 1), *dy = rnd(ny, s, 1), *w[4], *b[4], *d_w[2], *d_b[2];
    for (int i = 0; i < 4; i++) w[i] = rnd(nw, s, 1), b[i] = rnd(out, s, 1);
    for (int i = 0; i < 2; i++) d_w[i] = gpu_buffer(nw, w[i]), d_b[i] = gpu_buffer(out, b[i]);
    float *ref = malloc(sizeof(float) * ny), *got = malloc(sizeof(float) * ny), *scratch = malloc(sizeof(float) * ny);
    float *d_x = gpu_buffer(nx, x), *d_y = gpu_buffer(ny, NULL), *d_dout = gpu_buffer(ny, NULL), *d_dx = gpu_buffer(nx, NULL);
    /* the forward (relu, in place) and the backward (no activation) with parameters d_w/d_b[i], checked
     * against the CPU's with the host parameters given */
#define FORWARD(i, wh, bh, what)                                                                                    \
    do {                                                                                                            \
        gpu->dense_bias_act_forward(d_y, d_y, d_x, d_w[i], d_b[i], n, in, out, LPC_ACT_RELU, channels);             \
        cpu->dense_bias_act_forward(ref, ref, x, wh, bh, n, in, out, LPC_ACT_RELU, channels);                       \
        gpu_fetch(got, d_y, ny, what);                                                                              \
        compare(what, got, ref, ny, 1e-9);                                                                          \
    } while (0)
#define BACKWARD(i, wh, what)                                                                                       \
    do {                                                                                                            \
        gpu->upload(d_dout, dy, ny * sizeof(float));                                                                \
        gpu->act_dense_backward_data(d_dx, d_dout, NULL, d_w[i], n, in, out, LPC_ACT_NONE, channels);               \
        memcpy(scratch, dy, ny * sizeof(float));                                                                    \
        cpu->act_dense_backward_data(ref, scratch, NULL, wh, n, in, out, LPC_ACT_NONE, channels);                   \
        gpu_fetch(got, d_dx, nx, what);                                                                             \
        compare(what, got, ref, nx, 1e-9);                                                                          \
    } while (0)
    gpu->params_fixed_begin();
    FORWARD(0, w[0], b[0], "window: first weights");
    FORWARD(1, w[1], b[1], "window: second weights of the same shape");
    BACKWARD(0, w[0], "window: first weights again, backward-data");
    gpu->params_fixed_end();
    gpu->upload(d_w[0], w[2], nw * sizeof(float));
    gpu->upload(d_b[0], b[2], out * sizeof(float));
    FORWARD(0, w[2], b[2], "weights changed: outside a window");
    gpu->upload(d_w[1], w[2], nw * sizeof(float));
    gpu->params_fixed_begin();
    BACKWARD(1, w[2], "weights changed: the next window");
    gpu->params_fixed_end();
    gpu->upload(d_dout, dy, ny * sizeof(float));
    gpu->graph_begin();
    gpu->params_fixed_begin();
    gpu->dense_bias_act_forward(d_y, d_y, d_x, d_w[0], d_b[0], n, in, out, LPC_ACT_RELU, channels);
    gpu->act_dense_backward_data(d_dx, d_dout, NULL, d_w[0], n, in, out, LPC_ACT_NONE, channels);
    gpu->params_fixed_end();
    void *graph = gpu->graph_end();
    gpu->upload(d_w[0], w[3], nw * sizeof(float));
    gpu->upload(d_b[0], b[3], out * sizeof(float));
    gpu->upload(d_dout, dy, ny * sizeof(float));
    gpu->graph_launch(graph);
    gpu->graph_destroy(graph);
    cpu->dense_bias_act_forward(ref, ref, x, w[3], b[3], n, in, out, LPC_ACT_RELU, channels);
    gpu_fetch(got, d_y, ny, "weights changed: a graph captured in a window, forward");
    compare("weights changed: a graph captured in a window, forward", got, ref, ny, 1e-9);
    memcpy(scratch, dy, ny * sizeof(float));
    cpu->act_dense_backward_data(ref, scratch, NULL, w[3], n, in, out, LPC_ACT_NONE, channels);
    gpu_fetch(got, d_dx, nx, "weights changed: a graph captured in a window, backward-data");
    compare("weights changed: a graph captured in a window, backward-data", got, ref, nx, 1e-9);
#undef FORWARD
#undef BACKWARD
    for (int i = 0; i < 4; i++) free(w[i]), free(b[i]);
    free(x), free(dy), free(ref), free(got), free(scratch);
}

static void check_dense(int n, int in, int out, uint64_t *s) {
    float *x = rnd((size_t)n * in, s, 1), *w = rnd((size_t)out * in, s, 1), *b = rnd(out, s, 1), *dy = rnd((size_t)n * out, s, 1);
    float *ref = malloc(sizeof(float) * ((size_t)n * (in > out ? in : out) + (size_t)in * out)), *got = malloc(sizeof(float) * ((size_t)n * (in > out ? in : out) + (size_t)in * out));
    float *dxg = gpu_buffer((size_t)n * in, x), *dwg = gpu_buffer((size_t)out * in, w), *dbg = gpu_buffer(out, b), *dyg = gpu_buffer((size_t)n * out, dy);
    float *y = gpu_buffer((size_t)n * out, NULL);
    cpu->dense_forward(ref, x, w, b, n, in, out);
    gpu->dense_forward(y, dxg, dwg, dbg, n, in, out);
    gpu_fetch(got, y, (size_t)n * out, "dense forward");
    compare("dense forward", got, ref, (size_t)n * out, 1e-9);
    check_dense_fused(n, in, out, 0, x, w, b, dy, dxg, dwg, dbg);
    /* a channel-last output: 16 positions where out allows, else 4, else 1 */
    check_dense_fused(n, in, out, out % 16 == 0 ? out / 16 : out % 4 == 0 ? out / 4 : out, x, w, b, dy, dxg, dwg, dbg);
    float *dx = gpu_buffer((size_t)n * in, NULL);
    cpu->dense_backward_data(ref, dy, w, n, in, out);
    gpu->dense_backward_data(dx, dyg, dwg, n, in, out);
    gpu_fetch(got, dx, (size_t)n * in, "dense backward_data");
    compare("dense backward_data", got, ref, (size_t)n * in, 1e-9);
    memcpy(ref, w, sizeof(float) * out * in);
    memcpy(ref + (size_t)out * in, b, sizeof(float) * out);
    cpu->dense_backward_params(ref, ref + (size_t)out * in, dy, x, n, in, out);
    gpu->dense_backward_params(dwg, dbg, dyg, dxg, n, in, out);
    gpu_fetch(got, dwg, (size_t)out * in, "dense backward_params dW (+=)");
    compare("dense backward_params dW (+=)", got, ref, (size_t)out * in, 1e-9);
    gpu_fetch(got, dbg, out, "dense backward_params db (+=)");
    compare("dense backward_params db (+=)", got, ref + (size_t)out * in, out, 1e-12);
    free(x), free(w), free(b), free(dy), free(ref), free(got);
}

static void check_elementwise(uint64_t *s) {
    const int n = 3, c = 5, hw = 7;
    const size_t total = (size_t)n * c * hw;
    for (int act = -1; act <= LPC_ACT_SILU; act++) {
        float *pre = rnd(total, s, 2), *b = rnd(c, s, 1), *dout = rnd(total, s, 1), *db0 = rnd(c, s, 1);
        float *ref_out = malloc(sizeof(float) * total), *ref_pre = malloc(sizeof(float) * total), *got = malloc(sizeof(float) * total);
        memcpy(ref_pre, pre, sizeof(float) * total);
        float *gpre = gpu_buffer(total, pre), *gb = gpu_buffer(c, b), *gout = act == LPC_ACT_NONE ? gpre : gpu_buffer(total, NULL);
        cpu->bias_act_forward(act == LPC_ACT_NONE ? ref_pre : ref_out, ref_pre, b, n, c, hw, act);
        gpu->bias_act_forward(gout, gpre, gb, n, c, hw, act);
        char what[64];
        snprintf(what, sizeof what, "bias_act_forward act %d", act);
        if (act != LPC_ACT_NONE) {
            gpu_fetch(got, gout, total, what);
            compare(what, got, ref_out, total, 1e-12);
        }
        float *gdout = gpu_buffer(total, dout), *gdpre = gpu_buffer(total, NULL), *gdb = gpu_buffer(c, db0);
        float *ref_dpre = malloc(sizeof(float) * total);
        cpu->bias_act_backward(ref_dpre, db0, dout, ref_pre, n, c, hw, act);
        gpu->bias_act_backward(gdpre, gdb, gdout, gpre, n, c, hw, act);
        snprintf(what, sizeof what, "bias_act_backward act %d", act);
        gpu_fetch(got, gdpre, total, what);
        compare(what, got, ref_dpre, total, 1e-12);
        gpu_fetch(got, gdb, c, "bias gradient (+=)");
        compare("bias gradient (+=)", got, db0, c, 1e-12);
        gpu_fetch(got, gpre, total, "pre after bias");
        compare("pre after bias", got, ref_pre, total, 1e-12);
        free(pre), free(b), free(dout), free(db0), free(ref_out), free(ref_pre), free(got), free(ref_dpre);
    }
}

/* dim 301 and 3001: fewer values than the kernel's block of threads, and several per thread */
static void check_likelihood(int kind, int dim, uint64_t *s) {
    const int n = 5;
    float *x = malloc(sizeof(float) * n * dim), *mu = rnd((size_t)n * dim, s, 1.3f), ls = kind ? -2.0f : -1.2f;
    for (int i = 0; i < n * dim; i++) x[i] = (float)((int)((test_uniform(s) + 1) * 128) % 256) / 127.5f - 1.0f;
    float ref_lp[5], ref_dls = 0.25f;
    float *ref_dmu = malloc(sizeof(float) * n * dim), *got = malloc(sizeof(float) * n * dim);
    cpu->likelihood(ref_lp, ref_dmu, &ref_dls, x, mu, &ls, n, dim, kind);
    float *gx = gpu_buffer((size_t)n * dim, x), *gmu = gpu_buffer((size_t)n * dim, mu), *gls = gpu_buffer(1, &ls);
    float init = 0.25f, *gdls = gpu_buffer(1, &init), *glp = gpu_buffer(n, NULL), *gdmu = gpu_buffer((size_t)n * dim, NULL);
    gpu->likelihood(glp, gdmu, gdls, gx, gmu, gls, n, dim, kind);
    gpu_fetch(got, glp, n, "likelihood logp");
    compare(kind ? "discretized logp" : "gaussian logp", got, ref_lp, n, 1e-10);
    gpu_fetch(got, gdmu, (size_t)n * dim, "likelihood dmu");
    compare(kind ? "discretized dmu" : "gaussian dmu", got, ref_dmu, (size_t)n * dim, 1e-10);
    gpu_fetch(got, gdls, 1, "likelihood dlog_sigma");
    compare(kind ? "discretized dlog_sigma (+=)" : "gaussian dlog_sigma (+=)", got, &ref_dls, 1, 1e-10);
    free(x), free(mu), free(ref_dmu), free(got);
}

static void check_langevin_adam_head(uint64_t *s) {
    const size_t n = 1000;
    float *z = rnd(n, s, 1), *v = rnd(n, s, 1), *gl = rnd(n, s, 3), *xi = rnd(n, s, 1), *zs = rnd(n, s, 1), *zq = rnd(n, s, 1);
    for (size_t i = 0; i < n; i++) v[i] = fabsf(v[i]), zq[i] = fabsf(zq[i]) + zs[i] * zs[i];
    float *gz = gpu_buffer(n, z), *gv = gpu_buffer(n, v), *ggl = gpu_buffer(n, gl), *gxi = gpu_buffer(n, xi);
    float *gzs = gpu_buffer(n, zs), *gzq = gpu_buffer(n, zq), st0[2] = {1, 2}, *gst = gpu_buffer(2, st0), *got = malloc(sizeof(float) * 2 * n);
    struct lpc_langevin_params p = {0.05f, 0.99f, 1e-8f, 1, 1, 3, 1};
    cpu->langevin_update(z, v, st0, zs, zq, gl, xi, n, &p);
    gpu->langevin_update(gz, gv, gst, gzs, gzq, ggl, gxi, n, &p);
    gpu_fetch(got, gz, n, "langevin z"), compare("langevin z", got, z, n, 1e-12);
    gpu_fetch(got, gv, n, "langevin v"), compare("langevin v", got, v, n, 1e-12);
    gpu_fetch(got, gzs, n, "langevin zsum"), compare("langevin zsum", got, zs, n, 1e-12);
    gpu_fetch(got, gzq, n, "langevin zsq"), compare("langevin zsq", got, zq, n, 1e-12);
    gpu_fetch(got, gst, 2, "langevin stats"), compare("langevin stats (+=)", got, st0, 2, 1e-12);
    /* Adam */
    float *pa = rnd(n, s, 1), *ma = rnd(n, s, 0.1f), *va = rnd(n, s, 0.1f), *ga = rnd(n, s, 1);
    for (size_t i = 0; i < n; i++) va[i] = fabsf(va[i]);
    float *gpa = gpu_buffer(n, pa), *gma = gpu_buffer(n, ma), *gva = gpu_buffer(n, va), *gga = gpu_buffer(n, ga);
    struct lpc_adam_params ap = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 7};
    cpu->adam_update(pa, ma, va, ga, n, &ap);
    gpu->adam_update(gpa, gma, gva, gga, n, &ap);
    gpu_fetch(got, gpa, n, "adam param"), compare("adam param", got, pa, n, 1e-12);
    gpu_fetch(got, gma, n, "adam m"), compare("adam m", got, ma, n, 1e-12);
    gpu_fetch(got, gva, n, "adam v"), compare("adam v", got, va, n, 1e-12);
    /* encoder head */
    const int bn = 10, d = 50;
    float *head = rnd((size_t)bn * 2 * d, s, 1), *eps = rnd((size_t)bn * d, s, 1), *z0 = rnd((size_t)bn * d, s, 1);
    float *ref_dh = malloc(sizeof(float) * bn * 2 * d), ref_terms[30];
    cpu->encoder_head_backward(ref_dh, ref_terms, head, eps, gl, z0, zs, zq, 4.0f, bn, d, 1, 1, 0.5f, 0.1f);
    float *ghead = gpu_buffer((size_t)bn * 2 * d, head), *geps = gpu_buffer((size_t)bn * d, eps), *gz0 = gpu_buffer((size_t)bn * d, z0);
    float *gdh = gpu_buffer((size_t)bn * 2 * d, NULL), *gterms = gpu_buffer(3 * bn, NULL);
    gpu->encoder_head_backward(gdh, gterms, ghead, geps, ggl, gz0, gzs, gzq, 4.0f, bn, d, 1, 1, 0.5f, 0.1f);
    gpu_fetch(got, gdh, (size_t)bn * 2 * d, "encoder head gradient"), compare("encoder head gradient", got, ref_dh, (size_t)bn * 2 * d, 1e-10);
    gpu_fetch(got, gterms, 3 * bn, "encoder head terms"), compare("encoder head terms", got, ref_terms, 3 * bn, 1e-10);
    float *ref_z = malloc(sizeof(float) * bn * d), *gzz = gpu_buffer((size_t)bn * d, NULL);
    cpu->encoder_sample(ref_z, head, eps, bn, d);
    gpu->encoder_sample(gzz, ghead, geps, bn, d);
    gpu_fetch(got, gzz, (size_t)bn * d, "encoder sample"), compare("encoder sample", got, ref_z, (size_t)bn * d, 1e-12);
    /* reductions */
    double a = cpu->sum_squares(gl, n), b = gpu->sum_squares(ggl, n);
    CHECK(fabs(a - b) <= 1e-12 * a, "sum_squares %.17g vs %.17g", b, a);
    float rs[4], *grs = gpu_buffer(4, NULL);
    cpu->row_sum_squares(rs, gl, 4, 250);
    gpu->row_sum_squares(grs, ggl, 4, 250);
    gpu_fetch(got, grs, 4, "row_sum_squares"), compare("row_sum_squares", got, rs, 4, 1e-12);
    /* normals: host and device Philox agree to within float rounding of Box-Muller */
    struct lpc_rng r1, r2;
    lpc_rng_init(&r1, 99, 8), lpc_rng_init(&r2, 99, 8);
    float hn[1000], *gn = gpu_buffer(1000, NULL);
    cpu->normal(hn, 1000, &r1);
    gpu->normal(gn, 1000, &r2);
    gpu_fetch(got, gn, 1000, "normal");
    double worst = 0;
    for (int i = 0; i < 1000; i++) worst = fmax(worst, fabs((double)got[i] - hn[i]));
    CHECK(worst < 1e-5 && r1.offset == r2.offset, "host and device Philox normals differ by %.3g (< 1e-5 expected)", worst);
    lpc_rng_destroy(&r1);
}

/* 10 training steps on a synthetic data set, on one backend; returns metrics and final weights */
/* the decoders of the chain and training checks: two layers on 28 x 28 images, or three on 32 x 32 (whose
 * first two are wide: the activation between them is kept channel-last where the backend prefers it) */
struct test_decoder {
    const char *channels;
    int side;
};
static const struct test_decoder two_layers = {"8,16", 28}, three_layers = {"8,16,32", 32};
/* a decoder whose wide layers' channel counts are multiples of 32 (for the implicit_nhwc path) */
static const struct test_decoder wide_layers = {"32,32,64", 32};

static void train_steps(const struct lpc_backend *be, struct test_decoder dec, int algo, int graphs, int steps,
                        struct lpc_step_metrics *m, float **params, size_t *count) {
    struct lpc_config cfg;
    lpc_config_defaults(&cfg);
    lpc_config_set(&cfg, "channels", dec.channels);
    lpc_config_set(&cfg, "batch_size", "16");
    lpc_config_set(&cfg, "langevin_steps", "5");
    cfg.algo = algo;
    lpc_config_finalize(&cfg);
    struct lpc_dataset d = {0};
    const int dim = dec.side * dec.side;
    d.n = 64, d.c = 1, d.h = d.w = dec.side;
    d.pixels = malloc((size_t)64 * dim);
    uint64_t s = 5;
    for (int i = 0; i < 64 * dim; i++) d.pixels[i] = (unsigned char)((test_uniform(&s) + 1) * 127.9);
    struct lpc_trainer tr;
    if (lpc_trainer_create(&tr, &cfg, be, &d)) lpc_die_last_error();
    tr.chain.use_graphs = graphs && tr.chain.use_graphs;
    for (int i = 0; i < steps; i++) CHECK(lpc_trainer_step(&tr, &m[i]) == 0, "%s step %d: %s", be->name, i, lpc_last_error());
    *count = tr.model.arena.table.total;
    *params = malloc(sizeof(float) * *count);
    be->download(*params, tr.model.arena.params, sizeof(float) * *count);
    lpc_trainer_destroy(&tr);
    free(d.pixels);
}

/* Which decoder activations the GPU model keeps channel-last, by the backend's preference (conv_algo =
 * nhwc or subpixel here): the dense layer's output, the activation between the three-layer decoder's two
 * wide layers, and the one below its image layer (8 channels: the direct kernels take that side
 * channel-last); the image itself stays NCHW. */
static void check_model_layout(void) {
    struct lpc_config cfg;
    lpc_config_defaults(&cfg);
    lpc_config_set(&cfg, "channels", three_layers.channels);
    struct lpc_model m;
    if (lpc_model_create(&m, &cfg, gpu, 1, three_layers.side, three_layers.side, 8)) lpc_die_last_error();
    const struct lpc_conv_shape *l1 = &m.dec[1].conv, *l2 = &m.dec[2].conv, *l3 = &m.dec[3].conv;
    CHECK(l1->y_channels_last && l1->x_channels_last && l2->y_channels_last && l2->x_channels_last &&
              l3->y_channels_last && !l3->x_channels_last,
          "three-layer decoder: channel-last sides %d%d %d%d %d%d, expected 11 11 10 (y, x per layer)",
          l1->y_channels_last, l1->x_channels_last, l2->y_channels_last, l2->x_channels_last, l3->y_channels_last,
          l3->x_channels_last);
    lpc_model_destroy(&m);
}

/* T = 10 noisy steps of the real decoder from the same z_0, weights, images and seed, without and with
 * the preconditioner. Without it the chain is a smooth map of its inputs and the host/device noise
 * difference (< 3e-6) and reordered sums keep z_T within 1e-8 (nse). With it, the first step divides
 * by |g_1| (v_1 = (1 - beta) g^2, so G_1 = 1/|g_1|): coordinates whose gradient is near zero amplify
 * those differences, and z_T agrees to ~1e-3 relative rms (nse 1e-4 allowed) — a wrong noise scale or
 * a missing term would give nse of order 1. */
static void check_chain(struct test_decoder dec) {
    struct lpc_config cfg;
    lpc_config_defaults(&cfg);
    lpc_config_set(&cfg, "channels", dec.channels);
    struct lpc_model mc, mg;
    if (lpc_model_create(&mc, &cfg, cpu, 1, dec.side, dec.side, 8) ||
        lpc_model_create(&mg, &cfg, gpu, 1, dec.side, dec.side, 8))
        lpc_die_last_error();
    lpc_arena_init_params(&mc.arena, 4);
    lpc_arena_init_params(&mg.arena, 4);
    const int dim = dec.side * dec.side;
    uint64_t s = 17;
    float *x = rnd((size_t)8 * dim, &s, 1), *z0 = rnd(8 * 16, &s, 1), zc[8 * 16], zg[8 * 16];
    cpu->upload(mc.x, x, sizeof(float) * 8 * dim);
    gpu->upload(mg.x, x, sizeof(float) * 8 * dim);
    struct lpc_chain cc, cg;
    lpc_chain_create(&cc, cpu, 8, 16, 10);
    lpc_chain_create(&cg, gpu, 8, 16, 10);
    for (int precond = 0; precond < 2; precond++) {
        cpu->upload(cc.z, z0, sizeof zc);
        gpu->upload(cg.z, z0, sizeof zg);
        struct lpc_chain_params p = {10, 10, precond ? 0.05f : 0.002f, 0.99f, 1e-8f, precond, 1};
        struct lpc_rng rc, rg;
        lpc_rng_init(&rc, 3, 0), lpc_rng_init(&rg, 3, 0);
        struct lpc_target tc = lpc_model_target(&mc), tg = lpc_model_target(&mg);
        lpc_chain_run(&cc, &tc, &p, &rc, 8, 0, 1);
        lpc_chain_run(&cg, &tg, &p, &rg, 8, 0, 1);
        cpu->download(zc, cc.z, sizeof zc);
        gpu->download(zg, cg.z, sizeof zg);
        compare(precond ? "chain z_T, 10 noisy preconditioned steps" : "chain z_T, 10 noisy steps", zg, zc, 8 * 16,
                precond ? 1e-4 : 1e-8);
        float lc[8], lg[8];
        cpu->download(lc, cc.logp_last, sizeof lc);
        gpu->download(lg, cg.logp_last, sizeof lg);
        /* log p follows z_T, whose error the preconditioner amplifies (see above) */
        compare("chain log p(x | z_T)", lg, lc, 8, precond ? 1e-5 : 1e-10);
        lpc_rng_destroy(&rc);
    }
    lpc_chain_destroy(&cc), lpc_chain_destroy(&cg), lpc_model_destroy(&mc), lpc_model_destroy(&mg);
    free(x), free(z0);
}

static void check_training(struct test_decoder dec) {
    for (int algo = 0; algo < 2; algo++) {
        struct lpc_step_metrics mc[10], mg[10], mg2[10], mu[10];
        float *pc, *pg, *pg2, *pu;
        size_t n;
        train_steps(cpu, dec, algo, 1, 10, mc, &pc, &n);
        train_steps(gpu, dec, algo, 1, 10, mg, &pg, &n);
        train_steps(gpu, dec, algo, 1, 10, mg2, &pg2, &n);
        train_steps(gpu, dec, algo, 0, 10, mu, &pu, &n);
        const char *name = algo ? "vae" : "lpc";
        for (int i = 0; i < 10; i++)
            CHECK(fabs(mg[i].loss - mc[i].loss) <= 1e-3 * fabs(mc[i].loss), "%s step %d: loss %.8g on the GPU, %.8g on the CPU",
                  name, i + 1, mg[i].loss, mc[i].loss);
        char what[64];
        snprintf(what, sizeof what, "%s weights after 10 steps", name);
        compare(what, pg, pc, n, 1e-6);
        CHECK(memcmp(pg, pg2, n * sizeof(float)) == 0 && memcmp(mg, mg2, sizeof mg) == 0,
              "%s: the same seed twice on the GPU gives bitwise-identical weights and losses", name);
        CHECK(memcmp(pg, pu, n * sizeof(float)) == 0 && memcmp(mg, mu, sizeof mg) == 0,
              "%s: graph replays give bitwise the weights and losses of uncaptured launches", name);
        free(pc), free(pg), free(pg2), free(pu);
    }
}

/* A graph captured before the backend's workspace grows must keep working: the buffer it was captured
 * with stays allocated. The workspace grows here when a larger shape is first seen, after the
 * capture; buffers allocated right after the growth (where a freed workspace would be handed out again)
 * are filled with a pattern that the replay must leave intact, and the replayed result must still
 * match the CPU. compute-sanitizer memcheck (bench/device.sh) also sees any access to freed memory. */
static void check_graph_survives_workspace_growth(uint64_t *s) {
    lpc_backend_cuda(0, 1, LPC_CONV_GEMM);
    struct lpc_conv_shape small = {8, 8, 16, 16, 16, 8, 8, 4, 2, 1, 0, 0}, big = {64, 64, 32, 32, 128, 16, 16, 4, 2, 1, 0, 0};
    size_t nx = (size_t)8 * 8 * 16 * 16, ny = (size_t)8 * 16 * 8 * 8, nw = (size_t)16 * 8 * 16;
    float *x = rnd(nx, s, 1), *w = rnd(nw, s, 1), *ref = malloc(ny * sizeof(float)), *got = malloc(ny * sizeof(float));
    float *dx = gpu_buffer(nx, x), *dw = gpu_buffer(nw, w), *dy = gpu_buffer(ny, NULL);
    cpu->conv2d_forward(ref, x, w, &small);
    gpu->conv2d_forward(dy, dx, dw, &small); /* chooses the path and reserves its workspace */
    gpu->graph_begin();
    gpu->conv2d_forward(dy, dx, dw, &small);
    void *graph = gpu->graph_end();
    size_t bx = (size_t)64 * 64 * 32 * 32, by = (size_t)64 * 128 * 16 * 16, bw = (size_t)128 * 64 * 16;
    float *bigx = gpu->alloc(bx * sizeof(float)), *bigw = gpu->alloc(bw * sizeof(float)), *bigy = gpu->alloc(by * sizeof(float));
    gpu->conv2d_forward(bigy, bigx, bigw, &big); /* 64 MiB of columns: the workspace grows */
    enum { FILLERS = 8 };
    const size_t filler_n = (size_t)8 * 8 * 16 * 64; /* the small shape's column matrix */
    float *fillers[FILLERS], *pattern = malloc(filler_n * sizeof(float)), *back = malloc(filler_n * sizeof(float));
    for (size_t i = 0; i < filler_n; i++) pattern[i] = (float)(i % 1000) - 0.5f;
    for (int f = 0; f < FILLERS; f++) {
        fillers[f] = gpu->alloc(filler_n * sizeof(float));
        gpu->upload(fillers[f], pattern, filler_n * sizeof(float));
    }
    gpu->fill(dy, 0.0f, ny);
    gpu->graph_launch(graph);
    gpu->synchronize();
    gpu_fetch(got, dy, ny, "graph replayed after the workspace grew");
    compare("graph replayed after the workspace grew", got, ref, ny, 1e-9);
    int intact = 1;
    for (int f = 0; f < FILLERS; f++) {
        gpu->download(back, fillers[f], filler_n * sizeof(float));
        intact &= memcmp(back, pattern, filler_n * sizeof(float)) == 0;
        gpu->free(fillers[f]);
    }
    CHECK(intact, "a graph replayed after the workspace grew wrote into memory allocated since");
    gpu->graph_destroy(graph);
    gpu->free(bigx), gpu->free(bigw), gpu->free(bigy);
    free(x), free(w), free(ref), free(got), free(pattern), free(back);
}

/* --timed: the fused decoder-layer ops with `deterministic = false`, where `auto` times every path that
 * fits on each new shape and op (a process of its own: the backend's deterministic setting is fixed once
 * made). The first call of each op is the fused one with SiLU, whose derivative is not idempotent, so
 * timing cuDNN's candidate (which multiplies its input by act' in place) on the caller's input instead
 * of a copy would change the result; the same with a side kept channel-last. Then every op on the
 * channel-last path, whose cuDNN engine is timed too (the fastest of several, where the deterministic
 * runs take the first). */
static int check_timed_auto(const struct lpc_conv_shape *shapes, int n_shapes, uint64_t *s, int tf32) {
    printf("fused decoder-layer ops on timed auto (%s)\n", tf32 ? "tf32" : "fp32");
    const int silu[] = {LPC_ACT_SILU};
    for (int i = 0; i < n_shapes; i++) check_decoder_layer(shapes[i], s, silu, 1);
    printf("the same with a side kept channel-last\n");
    for (int i = 0; i < n_shapes; i++)
        for (int layout = 1; layout < 4; layout++) {
            struct lpc_conv_shape sh = shapes[i];
            sh.x_channels_last = layout & 1, sh.y_channels_last = layout >> 1;
            check_decoder_layer(sh, s, silu, 1);
        }
    /* the chain's output layer, whichever form `auto` times faster (cifar32's image layer at batch 64) */
    printf("the output layer and its backward on timed auto (%s)\n", tf32 ? "tf32" : "fp32");
    check_output_layer_backward((struct lpc_conv_shape){64, 3, 32, 32, 32, 0, 0, 4, 2, 1, 0, 0}, s, 1);
    printf("convolutions on cuDNN's channel-last copies with timed engines (%s)\n", tf32 ? "tf32" : "fp32");
    lpc_backend_cuda(tf32, 0, LPC_CONV_NHWC);
    for (int i = 0; i < n_shapes; i++) {
        check_conv(shapes[i], s);
        check_decoder_layer(shapes[i], s, every_act, N_ACTS);
    }
    return test_finish(tf32 ? "test_gpu --timed --tf32" : "test_gpu --timed");
}

int main(int argc, char **argv) {
    int tf32 = 0, timed = 0;
    for (int i = 1; i < argc; i++) {
        tf32 |= strcmp(argv[i], "--tf32") == 0;
        timed |= strcmp(argv[i], "--timed") == 0;
    }
    if (tf32) conv_nse = 1e-5;
    cpu = lpc_backend_cpu();
    gpu = lpc_backend_cuda(tf32, !timed, LPC_CONV_AUTO);
    if (!gpu) {
        printf("SKIPPED: %s\n", lpc_last_error());
        return 77;
    }
    uint64_t seed = getenv("LPC_TEST_SEED") ? strtoull(getenv("LPC_TEST_SEED"), NULL, 10) : (uint64_t)time(NULL);
    printf("test_gpu: random inputs from seed %llu (set LPC_TEST_SEED to repeat)\n", (unsigned long long)seed);
    uint64_t s = seed;
    if (timed) {
        const struct lpc_conv_shape timed_shapes[] = {{3, 2, 8, 8, 5, 0, 0, 4, 2, 1, 0, 0},
                                                      {4, 16, 8, 8, 256, 0, 0, 4, 2, 1, 0, 0},
                                                      {64, 32, 14, 14, 64, 0, 0, 4, 2, 1, 0, 0}};
        return check_timed_auto(timed_shapes, 3, &s, tf32);
    }
    if (!tf32) check_graph_survives_workspace_growth(&s); /* first: the workspace is still small */
    /* odd sizes, kernels 3 and 4, strides 1 and 2 (with stride 2 and kernel 3 the transposed
     * convolution's pixel classes have different tap counts), shapes that split K over blocks, and
     * image layers for the direct kernels: with channels split over 8 threads, and one large enough
     * (2^17 2x2 blocks) for a thread per block, their forward's groups of 8, 16 and 32 output channels;
     * image layers whose transposed convolution takes rows of 2 blocks (6 wide), one block (5 wide), the
     * largest weights with a split channel sum; one whose forward takes pairs of pixels (2^18 of them) */
    struct lpc_conv_shape shapes[] = {{1, 1, 5, 5, 2, 0, 0, 4, 2, 1, 0, 0},     {2, 3, 7, 6, 4, 0, 0, 3, 1, 1, 0, 0},
                                      {2, 3, 7, 9, 5, 0, 0, 3, 2, 1, 0, 0},     {3, 2, 8, 8, 5, 0, 0, 4, 2, 1, 0, 0},
                                      {4, 16, 8, 8, 256, 0, 0, 4, 2, 1, 0, 0}, {64, 32, 14, 14, 64, 0, 0, 4, 2, 1, 0, 0},
                                      {5, 3, 32, 32, 30, 0, 0, 4, 2, 1, 0, 0},  {32, 1, 128, 128, 4, 0, 0, 4, 2, 1, 0, 0},
                                      {16, 3, 128, 128, 32, 0, 0, 4, 2, 1, 0, 0}, {3, 2, 12, 12, 5, 0, 0, 4, 2, 1, 0, 0},
                                      {2, 3, 10, 10, 4, 0, 0, 4, 2, 1, 0, 0},   {2, 4, 8, 8, 128, 0, 0, 4, 2, 1, 0, 0},
                                      {64, 3, 128, 128, 8, 0, 0, 4, 2, 1, 0, 0}};
    /* every convolution path (the direct kernels take the shapes with at most 4 large-side channels,
     * cuDNN the others); deterministic mode's auto, used from here on, mixes the paths by the rule of
     * kernels/conv.c (deterministic_path) */
    const int algos[] = {LPC_CONV_CUDNN, LPC_CONV_GEMM,     LPC_CONV_IMPLICIT,     LPC_CONV_DIRECT,
                         LPC_CONV_NHWC,  LPC_CONV_SUBPIXEL, LPC_CONV_IMPLICIT_NHWC};
    const char *algo_names[] = {"cuDNN",
                                "the GEMM lowering",
                                "the implicit GEMM",
                                "the direct kernels",
                                "cuDNN on channel-last copies",
                                "sub-pixel convolutions on cuDNN",
                                "the implicit GEMM on channel-last tensors"};
    for (int a = 0; a < (int)(sizeof algos / sizeof *algos); a++) {
        printf("convolutions on %s (%s)\n", algo_names[a], tf32 ? "tf32" : "fp32");
        lpc_backend_cuda(tf32, 1, algos[a]);
        for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
            check_conv(shapes[i], &s);
            check_decoder_layer(shapes[i], &s, every_act, N_ACTS);
        }
    }
    /* shapes with a side kept channel-last (the decoder's activations between wide layers): on cuDNN's
     * legacy API with that side copied to NCHW (also where gemm or implicit is asked for, and direct with
     * a channel-last large side: thin layers too), on the direct kernels with the small side channel-last
     * where its channel count is a multiple of 4, on the nhwc and subpixel paths without that side's
     * copies, and by deterministic auto's rule */
    const int layout_algos[] = {LPC_CONV_CUDNN,    LPC_CONV_GEMM,          LPC_CONV_DIRECT, LPC_CONV_NHWC,
                                LPC_CONV_SUBPIXEL, LPC_CONV_IMPLICIT_NHWC, LPC_CONV_AUTO};
    const int layout_shapes[] = {1, 3, 5, 6, 8};
    for (int a = 0; a < (int)(sizeof layout_algos / sizeof *layout_algos); a++) {
        printf("channel-last sides, conv_algo %d (%s)\n", layout_algos[a], tf32 ? "tf32" : "fp32");
        lpc_backend_cuda(tf32, 1, layout_algos[a]);
        for (int i = 0; i < (int)(sizeof layout_shapes / sizeof *layout_shapes); i++)
            for (int layout = 1; layout < 4; layout++) {
                struct lpc_conv_shape sh = shapes[layout_shapes[i]];
                sh.x_channels_last = layout & 1, sh.y_channels_last = layout >> 1;
                check_conv(sh, &s);
                check_decoder_layer(sh, &s, every_act, N_ACTS);
            }
    }
    /* the implicit GEMM on channel-last tensors, on shapes of its own (every channel count a multiple of
     * 32) in every layout: a 5 x 3 grid with 96 channels (three 32-column tiles; K split in 4 and 3); a
     * kernel-3, stride-1 forward (K split in 4, the last split shorter; its backward-data on cuDNN); a
     * 1 x 1 forward of 36,860 rows (128-row tiles, the last one partial, one k tile); a transposed
     * convolution whose phases take 64-row tiles (the last one partial), its forward K split in 2 */
    const struct lpc_conv_shape nhwc_shapes[] = {{3, 32, 10, 6, 96, 0, 0, 4, 2, 1, 0, 0},
                                                 {2, 64, 9, 9, 32, 0, 0, 3, 1, 1, 0, 0},
                                                 {4, 32, 97, 95, 64, 0, 0, 1, 1, 0, 0, 0},
                                                 {4, 64, 66, 66, 32, 0, 0, 4, 2, 1, 0, 0}};
    const int relu_silu[] = {LPC_ACT_RELU, LPC_ACT_SILU};
    printf("the implicit GEMM on channel-last tensors, its own shapes (%s)\n", tf32 ? "tf32" : "fp32");
    lpc_backend_cuda(tf32, 1, LPC_CONV_IMPLICIT_NHWC);
    for (int i = 0; i < (int)(sizeof nhwc_shapes / sizeof *nhwc_shapes); i++)
        for (int layout = 0; layout < 4; layout++) {
            struct lpc_conv_shape sh = nhwc_shapes[i];
            sh.x_channels_last = layout & 1, sh.y_channels_last = layout >> 1;
            check_conv(sh, &s);
            check_decoder_layer(sh, &s, i < 2 ? every_act : relu_silu, i < 2 ? N_ACTS : 2);
        }
    /* the direct kernels with the small side channel-last (the forward's pixel pairs staged through shared
     * memory, the transposed convolution's input tiles copied to shared memory in channel planes), on image
     * layers that take their variants: rows of 4 blocks in 16-byte stores, one 4-channel chunk, no channel
     * split (shape 7); single blocks, one row per thread block, a partial last pair of the forward, 4 parts
     * of one channel each (10, 5 wide); 8 parts over 2 chunks of 64 channels (11); one chunk of 8, no split
     * (12); thread blocks of 2 input rows with a partial last band, 4 parts (200 images, 5 x 5 input rows:
     * 600 blocks); 8 parts over one chunk larger than the 32 channels (8 images of 16 x 16); 2 parts of 4
     * rows (64 images of 32 x 32, as celeba64's at batch 64); 2 parts over 2 chunks of 16 of 32 channels
     * (shape 8) and the general kernels (kernel 3) in the layouts above */
    const struct lpc_conv_shape direct_channels_last[] = {shapes[7],
                                                          shapes[10],
                                                          shapes[11],
                                                          shapes[12],
                                                          {200, 1, 10, 10, 4, 0, 0, 4, 2, 1, 0, 0},
                                                          {8, 3, 32, 32, 32, 0, 0, 4, 2, 1, 0, 0},
                                                          {64, 3, 64, 64, 8, 0, 0, 4, 2, 1, 0, 0}};
    printf("the direct kernels with the small side channel-last (%s)\n", tf32 ? "tf32" : "fp32");
    lpc_backend_cuda(tf32, 1, LPC_CONV_DIRECT);
    for (int i = 0; i < (int)(sizeof direct_channels_last / sizeof *direct_channels_last); i++) {
        struct lpc_conv_shape sh = with_out_size(direct_channels_last[i]);
        sh.y_channels_last = 1;
        CHECK(lpc_direct_conv_fits(&sh), "case %d: the direct kernels do not take its channel-last small side", i);
        check_conv(sh, &s);
        check_decoder_layer(sh, &s, every_act, N_ACTS);
        CHECK(lpc_direct_likelihood_fits(&sh), "case %d: the direct kernel does not take the likelihood", i);
        check_output_layer_likelihood(sh, &s, i == 1 ? every_act : none_silu, 2 + 2 * (i == 1));
    }
    /* the output layer and its way back in one kernel (the direct path takes it wherever it fits):
     * cifar32's image layer at batch 64 (bands of 4 rows of 4 blocks, 4 parts) and 256 (8 rows, 2 parts),
     * celeba64's at 64, bands of 2 rows of pairs of blocks with 1 channel and a partial last band (5 rows),
     * of 4 rows of 2 channels (6 rows, 300 images), 8 channels below (64 x 64 images), 128 channels below
     * in 2 chunks (single rows), single blocks (5 wide); and the two ops it stands for where it does not
     * take the shape (4 channels below) */
    const struct lpc_conv_shape output_layers[] = {
        {64, 3, 32, 32, 32, 0, 0, 4, 2, 1, 0, 0}, {256, 3, 32, 32, 32, 0, 0, 4, 2, 1, 0, 0},
        {64, 3, 64, 64, 32, 0, 0, 4, 2, 1, 0, 0}, {100, 1, 10, 12, 8, 0, 0, 4, 2, 1, 0, 0},
        {300, 2, 12, 12, 16, 0, 0, 4, 2, 1, 0, 0}, direct_channels_last[6],
        shapes[11], {20, 3, 10, 10, 8, 0, 0, 4, 2, 1, 0, 0}, shapes[10]};
    printf("the output layer and its backward in one kernel (%s)\n", tf32 ? "tf32" : "fp32");
    for (int i = 0; i < (int)(sizeof output_layers / sizeof *output_layers); i++)
        check_output_layer_backward(output_layers[i], &s, output_layers[i].co % 8 == 0);
    /* and the likelihood after the output layer's call where that kernel does not take it (an NCHW small
     * side on the direct path; a channel-last one on cuDNN) */
    printf("the output layer with the likelihood, unfused (%s)\n", tf32 ? "tf32" : "fp32");
    check_output_layer_likelihood(shapes[10], &s, every_act, N_ACTS);
    struct lpc_conv_shape on_cudnn = direct_channels_last[5];
    on_cudnn.y_channels_last = 1;
    lpc_backend_cuda(tf32, 1, LPC_CONV_CUDNN);
    check_output_layer_likelihood(on_cudnn, &s, none_silu, 2);
    lpc_backend_cuda(tf32, 1, LPC_CONV_DIRECT);
    check_fixed_filters(shapes[5], &s);
    lpc_backend_cuda(tf32, 1, LPC_CONV_NHWC);
    check_fixed_filters(shapes[5], &s);
    lpc_backend_cuda(tf32, 1, LPC_CONV_SUBPIXEL); /* the sub-pixel filter for backward-data, channel-last for forward */
    check_fixed_filters(shapes[5], &s);
    if (tf32) return test_finish("test_gpu --tf32");
    lpc_backend_cuda(0, 1, LPC_CONV_AUTO);
    check_dense(1, 1, 1, &s);
    check_dense(5, 13, 7, &s);
    check_dense(64, 64, 2048, &s);
    /* the fused dense kernels' guards (sizes off their tiles, a short last split), two loads of the
     * input, one split, several loads per split; 64 x 64 x 2048 above is at their limit of 2^23
     * multiply-adds, the last two are above it (the cuBLAS sequence) */
    check_dense(3, 70, 1000, &s);
    check_dense(4, 200, 96, &s);
    check_dense(2, 8, 9000, &s);
    check_dense(256, 64, 2048, &s);
    check_dense(256, 128, 4096, &s);
    check_fixed_dense(&s);
    check_elementwise(&s);
    for (int dim = 301; dim <= 3001; dim += 2700) {
        check_likelihood(LPC_LIK_GAUSSIAN, dim, &s);
        check_likelihood(LPC_LIK_DISCRETIZED_GAUSSIAN, dim, &s);
    }
    check_langevin_adam_head(&s);
    check_chain(two_layers);
    check_training(two_layers);
    printf("the chain and training again with every convolution on cuDNN, then on the implicit GEMM, then with\n"
           "the image layers on the direct kernels, then on cuDNN's channel-last copies, then there with a\n"
           "three-layer decoder, whose activation between its wide layers is kept channel-last, then that\n"
           "decoder with its transposed convolutions as sub-pixel convolutions\n");
    lpc_backend_cuda(0, 1, LPC_CONV_CUDNN);
    check_chain(two_layers);
    check_training(two_layers);
    lpc_backend_cuda(0, 1, LPC_CONV_IMPLICIT);
    check_chain(two_layers);
    check_training(two_layers);
    lpc_backend_cuda(0, 1, LPC_CONV_DIRECT);
    check_chain(two_layers);
    check_training(two_layers);
    lpc_backend_cuda(0, 1, LPC_CONV_NHWC);
    check_chain(two_layers);
    check_training(two_layers);
    check_model_layout();
    check_chain(three_layers);
    check_training(three_layers);
    lpc_backend_cuda(0, 1, LPC_CONV_SUBPIXEL);
    check_model_layout();
    check_chain(three_layers);
    check_training(three_layers);
    /* (ten training steps of this wider decoder drift apart between the CPU and the GPU on every path,
     * cuDNN's channel-last copies included: the preconditioned chain amplifies reordered sums beyond
     * check_training's tolerances) */
    printf("the chain of a decoder with 32 and 64 channels on the implicit GEMM on channel-last tensors (its\n"
           "wide layers; the image layer on the direct kernels)\n");
    lpc_backend_cuda(0, 1, LPC_CONV_IMPLICIT_NHWC);
    check_chain(wide_layers);
    return test_finish("test_gpu");
}
