/* Finite-difference checks of the backward of every CPU op (DESIGN.md, testing strategy 1), on awkward
 * shapes: batch 1, odd sizes, C = 1, stride 2 with padding; and the convolution ops on channel-last
 * tensors against the NCHW ones.
 *
 * Each op is checked through a scalar L = sum_i r_i y_i with fixed random r: the analytic gradient
 * comes from the op's backward with dy = r, the numerical one from central differences
 * (L(p + h) - L(p - h)) / 2h accumulated in double. The ops compute in float32, so each evaluation of
 * L carries a rounding error of about 1e-7 |L| (relative); with h = 1e-2 that gives an absolute
 * gradient error near 1e-5 |L|, and the truncation error of central differences is O(h^2 f''') ~ 1e-4
 * for these smooth (or piecewise linear, away from kinks) functions. The threshold on the relative
 * error of the whole gradient vector is therefore 1e-2, well above both and far below what a wrong
 * index or a missing term gives (O(1)). Piecewise-linear ops (relu, leaky relu) use inputs kept away
 * from 0 by more than h so that no perturbation crosses a kink. */
#include <string.h>

#include "lpc/config.h"
#include "lpc/ops.h"
#include "lpc/pointwise.h"
#include "testutil.h"

#define H 1e-2
#define TOL 1e-2
#define MAX_PROBES 60

static const struct lpc_backend *be;

typedef double (*loss_fn)(void *ctx);

/* Compares analytic[0..n) with central differences of loss w.r.t. p[0..n) (up to MAX_PROBES entries). */
static void fd_check(const char *what, float *p, size_t n, const float *analytic, loss_fn loss, void *ctx) {
    size_t probes = n < MAX_PROBES ? n : MAX_PROBES;
    double *num = calloc(probes, sizeof(double)), *ana = calloc(probes, sizeof(double));
    for (size_t k = 0; k < probes; k++) {
        size_t i = n <= MAX_PROBES ? k : (k * 7919) % n;
        float keep = p[i];
        p[i] = keep + (float)H;
        double lp = loss(ctx);
        p[i] = keep - (float)H;
        double lm = loss(ctx);
        p[i] = keep;
        num[k] = (lp - lm) / (2 * H);
        ana[k] = analytic[i];
    }
    double err = rel_error(ana, num, probes);
    CHECK(err < TOL, "%s: relative gradient error %.3g (threshold %.0e)", what, err, TOL);
    free(num), free(ana);
}

static double dot(const float *r, const float *y, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)r[i] * y[i];
    return s;
}

/* ---- dense ---- */
struct dense_ctx { int n, in, out; float *x, *w, *b, *y, *r; };
static double dense_loss(void *c_) {
    struct dense_ctx *c = c_;
    be->dense_forward(c->y, c->x, c->w, c->b, c->n, c->in, c->out);
    return dot(c->r, c->y, (size_t)c->n * c->out);
}
static void check_dense(int n, int in, int out, uint64_t *s) {
    struct dense_ctx c = {n, in, out, malloc(sizeof(float) * n * in), malloc(sizeof(float) * out * in),
                          malloc(sizeof(float) * out), malloc(sizeof(float) * n * out), malloc(sizeof(float) * n * out)};
    test_fill(c.x, (size_t)n * in, s, 1), test_fill(c.w, (size_t)out * in, s, 1), test_fill(c.b, (size_t)out, s, 1);
    test_fill(c.r, (size_t)n * out, s, 1);
    float *dx = malloc(sizeof(float) * n * in), *dw = calloc((size_t)out * in, sizeof(float)), *db = calloc((size_t)out, sizeof(float));
    be->dense_backward_data(dx, c.r, c.w, n, in, out);
    be->dense_backward_params(dw, db, c.r, c.x, n, in, out);
    char what[64];
    snprintf(what, sizeof what, "dense %dx%d->%d dx", n, in, out);
    fd_check(what, c.x, (size_t)n * in, dx, dense_loss, &c);
    snprintf(what, sizeof what, "dense %dx%d->%d dw", n, in, out);
    fd_check(what, c.w, (size_t)out * in, dw, dense_loss, &c);
    snprintf(what, sizeof what, "dense %dx%d->%d db", n, in, out);
    fd_check(what, c.b, (size_t)out, db, dense_loss, &c);
    /* parameter gradients accumulate: a second call doubles them */
    be->dense_backward_params(dw, db, c.r, c.x, n, in, out);
    float *dw2 = calloc((size_t)out * in, sizeof(float)), *db2 = calloc((size_t)out, sizeof(float));
    be->dense_backward_params(dw2, db2, c.r, c.x, n, in, out);
    CHECK(fabsf(dw[0] - 2 * dw2[0]) <= 1e-5f * fabsf(dw[0]) + 1e-6f, "dense_backward_params accumulates (+=)");
    free(c.x), free(c.w), free(c.b), free(c.y), free(c.r), free(dx), free(dw), free(db), free(dw2), free(db2);
}

/* ---- convolution and transposed convolution ---- */
struct conv_ctx { struct lpc_conv_shape s; float *x, *w, *y, *r; int transposed; };
static size_t xs(const struct lpc_conv_shape *s) { return (size_t)s->n * s->ci * s->h * s->w; }
static size_t ys(const struct lpc_conv_shape *s) { return (size_t)s->n * s->co * s->ho * s->wo; }
static size_t wsz(const struct lpc_conv_shape *s) { return (size_t)s->co * s->ci * s->k * s->k; }
static double conv_loss(void *c_) {
    struct conv_ctx *c = c_;
    if (c->transposed) { /* input is y-shaped, output x-shaped */
        be->conv2d_backward_data(c->x, c->y, c->w, &c->s);
        return dot(c->r, c->x, xs(&c->s));
    }
    be->conv2d_forward(c->y, c->x, c->w, &c->s);
    return dot(c->r, c->y, ys(&c->s));
}
static void check_conv(struct lpc_conv_shape s, int transposed, uint64_t *seed) {
    s.ho = lpc_conv_out_size(s.h, s.k, s.stride, s.pad);
    s.wo = lpc_conv_out_size(s.w, s.k, s.stride, s.pad);
    struct conv_ctx c = {s, malloc(sizeof(float) * xs(&s)), malloc(sizeof(float) * wsz(&s)), malloc(sizeof(float) * ys(&s)),
                         malloc(sizeof(float) * (xs(&s) > ys(&s) ? xs(&s) : ys(&s))), transposed};
    test_fill(c.x, xs(&s), seed, 1), test_fill(c.w, wsz(&s), seed, 1), test_fill(c.y, ys(&s), seed, 1);
    test_fill(c.r, xs(&s) > ys(&s) ? xs(&s) : ys(&s), seed, 1);
    float *din = malloc(sizeof(float) * (xs(&s) > ys(&s) ? xs(&s) : ys(&s))), *dw = calloc(wsz(&s), sizeof(float));
    char what[128];
    const char *kind = transposed ? "conv_transpose" : "conv";
    if (transposed) {
        be->conv2d_forward(din, c.r, c.w, &s);          /* d input (y-shaped) */
        be->conv2d_backward_filter(dw, c.y, c.r, &s);   /* dy = the layer input, x = the output gradient */
        snprintf(what, sizeof what, "%s n%d c%d->%d %dx%d k%d s%d p%d d_input", kind, s.n, s.co, s.ci, s.ho, s.wo, s.k, s.stride, s.pad);
        fd_check(what, c.y, ys(&s), din, conv_loss, &c);
    } else {
        be->conv2d_backward_data(din, c.r, c.w, &s);
        be->conv2d_backward_filter(dw, c.r, c.x, &s);
        snprintf(what, sizeof what, "%s n%d c%d->%d %dx%d k%d s%d p%d d_input", kind, s.n, s.ci, s.co, s.h, s.w, s.k, s.stride, s.pad);
        fd_check(what, c.x, xs(&s), din, conv_loss, &c);
    }
    snprintf(what, sizeof what, "%s n%d ci%d co%d %dx%d k%d s%d p%d d_weight", kind, s.n, s.ci, s.co, s.h, s.w, s.k, s.stride, s.pad);
    fd_check(what, c.w, wsz(&s), dw, conv_loss, &c);
    free(c.x), free(c.w), free(c.y), free(c.r), free(din), free(dw);
}

/* ---- channel-last tensors: every convolution op, x side, y side or both channel-last, against the NCHW
 * op with the layout changed around it (the same products in the same order: equal to the bit) ---- */
/* dst[b] [cols, rows] = src[b] [rows, cols] transposed, for each of n images: NCHW -> NHWC with rows c and
 * cols hw, NHWC -> NCHW with rows hw and cols c */
static void transpose_each(float *dst, const float *src, int n, int rows, int cols) {
    const size_t image = (size_t)rows * cols;
    for (int b = 0; b < n; b++)
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) dst[b * image + (size_t)c * rows + r] = src[b * image + (size_t)r * cols + c];
}
/* a tensor of one side in that side's layout of s (x side: ci channels, else co) */
static float *in_layout(const float *nchw, const struct lpc_conv_shape *s, int x_side) {
    const int c = x_side ? s->ci : s->co, hw = x_side ? s->h * s->w : s->ho * s->wo;
    const size_t n = (size_t)s->n * c * hw;
    float *t = malloc(sizeof(float) * n);
    if (x_side ? s->x_channels_last : s->y_channels_last) transpose_each(t, nchw, s->n, c, hw);
    else memcpy(t, nchw, sizeof(float) * n);
    return t;
}
static void expect_same(const char *what, const float *got_in_layout, const float *want_nchw,
                        const struct lpc_conv_shape *s, int x_side) {
    const int c = x_side ? s->ci : s->co, hw = x_side ? s->h * s->w : s->ho * s->wo;
    const size_t n = (size_t)s->n * c * hw;
    float *got = malloc(sizeof(float) * n);
    if (x_side ? s->x_channels_last : s->y_channels_last) transpose_each(got, got_in_layout, s->n, hw, c);
    else memcpy(got, got_in_layout, sizeof(float) * n);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += got[i] != want_nchw[i];
    CHECK(bad == 0, "%s (x %s, y %s): %zu of %zu values differ from the NCHW op's", what,
          s->x_channels_last ? "channel-last" : "NCHW", s->y_channels_last ? "channel-last" : "NCHW", bad, n);
    free(got);
}

static void check_conv_layouts(struct lpc_conv_shape s, uint64_t *seed) {
    s.ho = lpc_conv_out_size(s.h, s.k, s.stride, s.pad);
    s.wo = lpc_conv_out_size(s.w, s.k, s.stride, s.pad);
    const size_t nx = xs(&s), ny = ys(&s), nw = wsz(&s);
    float *x = malloc(sizeof(float) * nx), *w = malloc(sizeof(float) * nw), *dy = malloc(sizeof(float) * ny);
    float *b = malloc(sizeof(float) * s.ci), *pre_nchw = malloc(sizeof(float) * nx), *dw0 = malloc(sizeof(float) * nw);
    test_fill(x, nx, seed, 1), test_fill(w, nw, seed, 1), test_fill(dy, ny, seed, 1), test_fill(b, s.ci, seed, 1);
    test_fill(pre_nchw, nx, seed, 1), test_fill(dw0, nw, seed, 1);
    /* the NCHW results */
    float *y_ref = malloc(sizeof(float) * ny), *dx_ref = malloc(sizeof(float) * nx), *dw_ref = malloc(sizeof(float) * nw);
    float *out_ref = malloc(sizeof(float) * nx), *pre_ref = malloc(sizeof(float) * nx), *yf_ref = malloc(sizeof(float) * ny);
    float *scratch = malloc(sizeof(float) * nx), *pre_below = malloc(sizeof(float) * ny), *yb_ref = malloc(sizeof(float) * ny);
    test_fill(pre_below, ny, seed, 1);
    be->conv2d_forward(y_ref, x, w, &s);
    be->conv2d_backward_data(dx_ref, dy, w, &s);
    memcpy(dw_ref, dw0, sizeof(float) * nw);
    be->conv2d_backward_filter(dw_ref, dy, x, &s);
    be->deconv_bias_act_forward(out_ref, pre_ref, dy, w, b, &s, LPC_ACT_SILU);
    memcpy(scratch, x, sizeof(float) * nx);
    be->act_conv2d_forward(yf_ref, scratch, pre_nchw, w, &s, LPC_ACT_SILU, NULL, LPC_ACT_NONE);
    /* with the act' of the layer below applied on the way out: the same output times that factor */
    memcpy(scratch, x, sizeof(float) * nx);
    be->act_conv2d_forward(yb_ref, scratch, pre_nchw, w, &s, LPC_ACT_SILU, pre_below, LPC_ACT_LEAKY_RELU);
    size_t off = 0;
    for (size_t i = 0; i < ny; i++) off += yb_ref[i] != yf_ref[i] * lpc_pw_act_derivative(pre_below[i], LPC_ACT_LEAKY_RELU);
    CHECK(off == 0, "act_conv2d_forward with act_below: %zu of %zu values are not the output times act'(pre_below)", off,
          ny);
    for (int layout = 1; layout < 4; layout++) {
        struct lpc_conv_shape t = s;
        t.x_channels_last = layout & 1, t.y_channels_last = layout >> 1;
        float *tx = in_layout(x, &t, 1), *tdy = in_layout(dy, &t, 0), *tpre = in_layout(pre_nchw, &t, 1);
        float *ty = malloc(sizeof(float) * ny), *tdx = malloc(sizeof(float) * nx), *tdw = malloc(sizeof(float) * nw);
        float *tout = malloc(sizeof(float) * nx), *tpre_out = malloc(sizeof(float) * nx);
        be->conv2d_forward(ty, tx, w, &t);
        expect_same("conv2d_forward", ty, y_ref, &t, 0);
        be->conv2d_backward_data(tdx, tdy, w, &t);
        expect_same("conv2d_backward_data", tdx, dx_ref, &t, 1);
        memcpy(tdw, dw0, sizeof(float) * nw);
        be->conv2d_backward_filter(tdw, tdy, tx, &t);
        CHECK(memcmp(tdw, dw_ref, sizeof(float) * nw) == 0, "conv2d_backward_filter (layout %d): dw differs", layout);
        be->deconv_bias_act_forward(tout, tpre_out, tdy, w, b, &t, LPC_ACT_SILU);
        expect_same("deconv_bias_act_forward out", tout, out_ref, &t, 1);
        expect_same("deconv_bias_act_forward pre", tpre_out, pre_ref, &t, 1);
        float *tx2 = in_layout(x, &t, 1), *tpre_below = in_layout(pre_below, &t, 0);
        be->act_conv2d_forward(ty, tx, tpre, w, &t, LPC_ACT_SILU, NULL, LPC_ACT_NONE); /* tx is scratch from here */
        expect_same("act_conv2d_forward", ty, yf_ref, &t, 0);
        be->act_conv2d_forward(ty, tx2, tpre, w, &t, LPC_ACT_SILU, tpre_below, LPC_ACT_LEAKY_RELU);
        expect_same("act_conv2d_forward with act_below", ty, yb_ref, &t, 0);
        free(tx), free(tdy), free(tpre), free(ty), free(tdx), free(tdw), free(tout), free(tpre_out);
        free(tx2), free(tpre_below);
    }
    free(x), free(w), free(dy), free(b), free(pre_nchw), free(dw0), free(y_ref), free(dx_ref), free(dw_ref);
    free(out_ref), free(pre_ref), free(yf_ref), free(scratch), free(pre_below), free(yb_ref);
}

/* ---- bias + activation ---- */
struct act_ctx { int n, c, hw, act; float *pre0, *pre, *b, *out, *r; };
static double act_loss(void *c_) {
    struct act_ctx *c = c_;
    size_t total = (size_t)c->n * c->c * c->hw;
    memcpy(c->pre, c->pre0, total * sizeof(float));
    be->bias_act_forward(c->out, c->pre, c->b, c->n, c->c, c->hw, c->act);
    return dot(c->r, c->out, total);
}
static void check_act(int act, uint64_t *s) {
    const int n = 2, ch = 3, hw = 5;
    size_t total = (size_t)n * ch * hw;
    struct act_ctx c = {n, ch, hw, act, malloc(sizeof(float) * total), malloc(sizeof(float) * total), malloc(sizeof(float) * ch),
                        malloc(sizeof(float) * total), malloc(sizeof(float) * total)};
    test_fill(c.pre0, total, s, 2), test_fill(c.r, total, s, 1);
    for (int i = 0; i < ch; i++) c.b[i] = 0;
    for (size_t i = 0; i < total; i++) /* away from the kink at 0 by more than h */
        if (fabsf(c.pre0[i]) < 0.05f) c.pre0[i] = c.pre0[i] < 0 ? -0.05f : 0.05f;
    act_loss(&c);
    float *dpre = malloc(sizeof(float) * total), *db = calloc((size_t)ch, sizeof(float));
    be->bias_act_backward(dpre, db, c.r, c.pre, n, ch, hw, act);
    char what[64];
    snprintf(what, sizeof what, "bias_act act=%d d_pre", act);
    fd_check(what, c.pre0, total, dpre, act_loss, &c);
    snprintf(what, sizeof what, "bias_act act=%d d_bias", act);
    /* biases shift every element of a channel; keep them tiny so nothing crosses 0 */
    fd_check(what, c.b, (size_t)ch, db, act_loss, &c);
    free(c.pre0), free(c.pre), free(c.b), free(c.out), free(c.r), free(dpre), free(db);
}

/* With an activation that keeps the sign, bias_act_forward in place (out == pre) and the backward
 * reading its output as pre give the gradients of the separate buffers bitwise, at the kink and on
 * both sides of it. */
static void check_act_in_place(int act, uint64_t *s) {
    const int n = 2, ch = 3, hw = 6;
    const size_t total = (size_t)n * ch * hw;
    float *pre = malloc(sizeof(float) * total), *both = malloc(sizeof(float) * total), *out = malloc(sizeof(float) * total);
    float *b = malloc(sizeof(float) * ch), *r = malloc(sizeof(float) * total), *dpre[2], *db[2];
    test_fill(pre, total, s, 2), test_fill(b, (size_t)ch, s, 1), test_fill(r, total, s, 1);
    for (size_t i = 0; i < total; i += 4) pre[i] = -b[i / hw % ch]; /* exactly at the kink after the bias */
    memcpy(both, pre, sizeof(float) * total);
    be->bias_act_forward(out, pre, b, n, ch, hw, act);
    be->bias_act_forward(both, both, b, n, ch, hw, act);
    CHECK(memcmp(both, out, sizeof(float) * total) == 0, "bias_act act=%d in place: the output differs", act);
    for (int k = 0; k < 2; k++) {
        dpre[k] = malloc(sizeof(float) * total), db[k] = calloc((size_t)ch, sizeof(float));
        be->bias_act_backward(dpre[k], db[k], r, k ? both : pre, n, ch, hw, act);
    }
    CHECK(memcmp(dpre[0], dpre[1], sizeof(float) * total) == 0 && memcmp(db[0], db[1], sizeof(float) * ch) == 0,
          "bias_act act=%d: act' read from the output differs from act' of the pre-activation", act);
    for (int k = 0; k < 2; k++) free(dpre[k]), free(db[k]);
    free(pre), free(both), free(out), free(b), free(r);
}

/* The decoder's dense layer with a channel-last output ([n, hw, channels] for the feature map
 * [channels, hw]): pre and y are the NCHW op's transposed, bitwise, and in place (y == pre, where the
 * activation allows it) the buffer holds y. */
static void check_dense_channels_last(int act, uint64_t *s) {
    const int n = 3, in = 5, channels = 4, hw = 6, out = channels * hw;
    const size_t ny = (size_t)n * out;
    float *x = malloc(sizeof(float) * n * in), *w = malloc(sizeof(float) * out * in), *b = malloc(sizeof(float) * out);
    float *pre = malloc(sizeof(float) * ny), *y = malloc(sizeof(float) * ny), *got[2], *want[2];
    test_fill(x, (size_t)n * in, s, 1), test_fill(w, (size_t)out * in, s, 1), test_fill(b, (size_t)out, s, 1);
    be->dense_bias_act_forward(y, pre, x, w, b, n, in, out, act, 0);
    for (int k = 0; k < 2; k++) got[k] = malloc(sizeof(float) * ny), want[k] = malloc(sizeof(float) * ny);
    transpose_each(want[0], pre, n, channels, hw);
    transpose_each(want[1], y, n, channels, hw);
    be->dense_bias_act_forward(got[1], got[0], x, w, b, n, in, out, act, channels);
    CHECK(memcmp(got[0], want[0], sizeof(float) * ny) == 0 && memcmp(got[1], want[1], sizeof(float) * ny) == 0,
          "dense forward act=%d, channel-last: not the NCHW result transposed", act);
    if (lpc_act_derivative_from_output(act)) {
        be->dense_bias_act_forward(got[0], got[0], x, w, b, n, in, out, act, channels);
        CHECK(memcmp(got[0], want[1], sizeof(float) * ny) == 0,
              "dense forward act=%d, channel-last in place: the buffer does not hold the output", act);
    }
    for (int k = 0; k < 2; k++) free(got[k]), free(want[k]);
    free(x), free(w), free(b), free(pre), free(y);
}

/* ---- likelihoods ---- */
struct lik_ctx { int n, dim, kind; float *x, *mu, *ls, *logp, *dmu; };
static double lik_loss(void *c_) {
    struct lik_ctx *c = c_;
    be->likelihood(c->logp, c->dmu, NULL, c->x, c->mu, c->ls, c->n, c->dim, c->kind);
    double s = 0;
    for (int i = 0; i < c->n; i++) s += c->logp[i];
    return s;
}
static void check_likelihood(int kind, float log_sigma, uint64_t *s) {
    const int n = 3, dim = 11;
    struct lik_ctx c = {n, dim, kind, malloc(sizeof(float) * n * dim), malloc(sizeof(float) * n * dim), malloc(sizeof(float)),
                        malloc(sizeof(float) * n), malloc(sizeof(float) * n * dim)};
    for (int i = 0; i < n * dim; i++) {
        int u = (int)((test_uniform(s) + 1) * 128) % 256;
        if (i % 5 == 0) u = 0;   /* edge bins */
        if (i % 7 == 0) u = 255;
        c.x[i] = u / 127.5f - 1.0f;
    }
    test_fill(c.mu, (size_t)n * dim, s, 1.2f);
    *c.ls = log_sigma;
    float *dmu = malloc(sizeof(float) * n * dim), dls = 0;
    be->likelihood(c.logp, dmu, &dls, c.x, c.mu, c.ls, n, dim, kind);
    char what[96];
    snprintf(what, sizeof what, "likelihood %s log_sigma %.2f d_mu", kind ? "discretized" : "gaussian", log_sigma);
    /* discretized with small sigma: steep, so a smaller step is taken through a double-precision check below */
    fd_check(what, c.mu, (size_t)n * dim, dmu, lik_loss, &c);
    snprintf(what, sizeof what, "likelihood %s log_sigma %.2f d_log_sigma", kind ? "discretized" : "gaussian", log_sigma);
    fd_check(what, c.ls, 1, &dls, lik_loss, &c);
    free(c.x), free(c.mu), free(c.ls), free(c.logp), free(c.dmu), free(dmu);
}

int main(void) {
    be = lpc_backend_cpu();
    uint64_t s = 12345;
    check_dense(1, 1, 1, &s);
    check_dense(1, 7, 5, &s);
    check_dense(4, 13, 9, &s);
    struct lpc_conv_shape shapes[] = {
        {1, 1, 5, 5, 2, 0, 0, 4, 2, 1, 0, 0},  /* batch 1, C = 1, odd size, stride 2 with padding */
        {2, 3, 7, 6, 4, 0, 0, 3, 1, 1, 0, 0},  /* odd H != W, stride 1 */
        {3, 2, 8, 8, 5, 0, 0, 4, 2, 1, 0, 0},  /* the model's layer shape */
        {1, 1, 9, 9, 1, 0, 0, 4, 2, 1, 0, 0},  /* C = 1 in and out */
    };
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        check_conv(shapes[i], 0, &s);
        check_conv(shapes[i], 1, &s);
        check_conv_layouts(shapes[i], &s);
    }
    check_act(LPC_ACT_NONE, &s);
    check_act(LPC_ACT_RELU, &s);
    check_act(LPC_ACT_LEAKY_RELU, &s);
    check_act(LPC_ACT_SILU, &s);
    for (int act = LPC_ACT_NONE; act <= LPC_ACT_SILU; act++)
        if (lpc_act_derivative_from_output(act)) check_act_in_place(act, &s);
    for (int act = LPC_ACT_NONE; act <= LPC_ACT_SILU; act++) check_dense_channels_last(act, &s);
    check_likelihood(LPC_LIK_GAUSSIAN, logf(0.1f), &s);
    check_likelihood(LPC_LIK_GAUSSIAN, logf(1.5f), &s);
    check_likelihood(LPC_LIK_DISCRETIZED_GAUSSIAN, logf(0.5f), &s);
    check_likelihood(LPC_LIK_DISCRETIZED_GAUSSIAN, logf(2.0f), &s);
    return test_finish("test_ops_grad");
}
