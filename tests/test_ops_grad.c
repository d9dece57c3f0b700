/* Finite-difference checks of the backward of every CPU op (DESIGN.md, testing strategy 1), on awkward
 * shapes: batch 1, odd sizes, C = 1, stride 2 with padding.
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
        {1, 1, 5, 5, 2, 0, 0, 4, 2, 1},  /* batch 1, C = 1, odd size, stride 2 with padding */
        {2, 3, 7, 6, 4, 0, 0, 3, 1, 1},  /* odd H != W, stride 1 */
        {3, 2, 8, 8, 5, 0, 0, 4, 2, 1},  /* the model's layer shape */
        {1, 1, 9, 9, 1, 0, 0, 4, 2, 1},  /* C = 1 in and out */
    };
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        check_conv(shapes[i], 0, &s);
        check_conv(shapes[i], 1, &s);
    }
    check_act(LPC_ACT_NONE, &s);
    check_act(LPC_ACT_RELU, &s);
    check_act(LPC_ACT_LEAKY_RELU, &s);
    check_act(LPC_ACT_SILU, &s);
    check_likelihood(LPC_LIK_GAUSSIAN, logf(0.1f), &s);
    check_likelihood(LPC_LIK_GAUSSIAN, logf(1.5f), &s);
    check_likelihood(LPC_LIK_DISCRETIZED_GAUSSIAN, logf(0.5f), &s);
    check_likelihood(LPC_LIK_DISCRETIZED_GAUSSIAN, logf(2.0f), &s);
    return test_finish("test_ops_grad");
}
