/* Whole-model gradient checks by central finite differences (DESIGN.md, testing strategy 1: per-op
 * checks alone miss wiring mistakes): decoder + likelihood (with learned log sigma) + prior w.r.t.
 * every parameter tensor and z; the encoder w.r.t. its parameters; and the encoder objectives
 * (forward KL, reverse KL through the decoder, Jeffreys, the VAE's ELBO) w.r.t. phi; and the decoder
 * with channel-last inner activations against the NCHW one.
 * The model uses silu (smooth), so central differences with h = 1e-2 have truncation error ~1e-4
 * relative; the loss is summed in double from the float32 decoder output, whose rounding adds ~1e-7 |L| / h. Threshold 1e-2 on the
 * relative error of each probed gradient vector, as in test_ops_grad. */
#include <string.h>

#include "lpc/check.h"
#include "lpc/likelihood.h"
#include "lpc/model.h"
#include "testutil.h"

#define H 1e-2
#define TOL 1e-2
#define B 2

static struct lpc_model m;
static float x[B * 64], z[B * 3], eps[B * 3], zsum[B * 3], zsq[B * 3], r_head[B * 6];
static const int D = 3;

static double sum_n(const float *v, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += v[i];
    return s;
}

/* log p(x|z) summed in double from the decoder's mu (the batched op rounds each sample's sum to float,
 * which would swamp small differences) */
static double log_lik(void) {
    const float ls = *lpc_model_log_sigma(&m);
    double s = 0;
    for (int i = 0; i < B * m.dim; i++)
        s += m.likelihood ? lpc_discretized_gaussian_logp(x[i], m.mu[i], ls, NULL, NULL) : lpc_gaussian_logp(x[i], m.mu[i], ls, NULL, NULL);
    return s;
}

static double log_joint(const float *zz) {
    lpc_model_decode(&m, zz, B);
    double s = log_lik();
    for (int i = 0; i < B * D; i++) s += -0.5 * zz[i] * zz[i] - 0.5 * LPC_LOG_2PI;
    return s;
}
static double loss_joint(void) { return log_joint(z); }

static double loss_head(void) {
    lpc_model_encode(&m, x, B);
    double s = 0;
    for (int i = 0; i < B * 2 * D; i++) s += (double)r_head[i] * m.head[i];
    return s;
}

/* encoder objectives as functions of phi, evaluated from scratch */
static float w_fwd, w_rev, w_vae;
static double loss_objective(void) {
    float d_head[B * 6], terms[3 * B], z0[B * 3], gl[B * 3];
    lpc_model_encode(&m, x, B);
    m.be->encoder_sample(z0, m.head, eps, B, D);
    memset(gl, 0, sizeof gl);
    m.be->encoder_head_backward(d_head, terms, m.head, eps, gl, z0, zsum, zsq, 4.0f, B, D, 1, 0, 0, 1.0f); /* terms only */
    double joint = log_joint(z0), lik = log_lik();
    return (w_fwd * sum_n(terms, B) + w_rev * (sum_n(terms + B, B) - joint) + w_vae * (-lik + sum_n(terms + 2 * B, B))) / B;
}
static void grad_objective(void) {
    float d_head[B * 6], terms[3 * B], z0[B * 3];
    lpc_arena_zero_grads(&m.arena, LPC_GROUP_ENCODER);
    lpc_model_encode(&m, x, B);
    m.be->encoder_sample(z0, m.head, eps, B, D);
    lpc_model_decode(&m, z0, B);
    lpc_model_likelihood(&m, m.logp, x, B, 0);
    lpc_model_decoder_backward(&m, m.grad_z, B, 0);
    m.be->encoder_head_backward(d_head, terms, m.head, eps, m.grad_z, z0, zsum, zsq, 4.0f, B, D, w_fwd, w_rev, w_vae, 1.0f / B);
    lpc_model_encoder_backward(&m, d_head, B);
}

/* central differences of loss w.r.t. up to 24 entries of w, against the analytic gradient g */
static void fd_check(const char *what, const char *name, float *w, const float *g, size_t count, double (*loss)(void)) {
    size_t probes = count < 24 ? count : 24;
    double num[24], ana[24];
    for (size_t j = 0; j < probes; j++) {
        size_t i = count <= 24 ? j : (j * 7919 + 13) % count;
        float keep = w[i];
        w[i] = keep + (float)H;
        double lp = loss();
        w[i] = keep - (float)H;
        double lm = loss();
        w[i] = keep;
        num[j] = (lp - lm) / (2 * H), ana[j] = g[i];
    }
    double err = rel_error(ana, num, probes);
    CHECK(err < TOL, "%s: d/d %s relative error %.3g (threshold %.0e)", what, name, err, TOL);
}

static void fd_params(const char *what, int first, int last, double (*loss)(void)) {
    for (int k = first; k < last; k++)
        fd_check(what, m.arena.table.params[k].name, lpc_arena_param(&m.arena, k), lpc_arena_grad(&m.arena, k),
                 m.arena.table.params[k].count, loss);
}

/* the CPU backend asked to keep the decoder's inner activations and its dense layer's output
 * channel-last, as the CUDA backend does with TF32 math */
static int always(const struct lpc_conv_shape *producer, const struct lpc_conv_shape *consumer) {
    (void)producer, (void)consumer;
    return 1;
}
static struct lpc_backend cpu_channels_last;

static void create(struct lpc_model *model, int likelihood, const char *channels, const struct lpc_backend *be) {
    struct lpc_config cfg;
    lpc_config_defaults(&cfg);
    lpc_config_set(&cfg, "channels", channels);
    lpc_config_set(&cfg, "latent_dim", "3");
    lpc_config_set(&cfg, "activation", "silu");
    lpc_config_set(&cfg, "learn_sigma", "true");
    lpc_config_set(&cfg, "sigma", "0.5");
    cfg.likelihood = likelihood;
    if (lpc_model_create(model, &cfg, be, 1, 8, 8, B)) {
        fprintf(stderr, "%s\n", lpc_last_error());
        exit(1);
    }
    lpc_arena_init_params(&model->arena, 3);
}

static void setup(int likelihood, const char *channels, const struct lpc_backend *be) {
    create(&m, likelihood, channels, be);
    uint64_t s = 99;
    for (int i = 0; i < B * 64; i++) x[i] = (float)((int)((test_uniform(&s) + 1) * 128) % 256) / 127.5f - 1.0f;
    test_fill(z, B * 3, &s, 1), test_fill(eps, B * 3, &s, 1), test_fill(r_head, B * 6, &s, 1);
    for (int i = 0; i < B * 3; i++) { /* sums over 4 states: sum z and sum z^2 consistent with a spread */
        zsum[i] = 4 * (0.3f * test_uniform(&s));
        zsq[i] = zsum[i] * zsum[i] / 4 + 4 * 0.2f;
    }
}

/* The decoder with channel-last inner activations and dense output (every transposed convolution's
 * sides channel-last but the image) against the NCHW one with the same parameters: mu, log p and the
 * gradients w.r.t. z and every decoder parameter (the bias gradients are summed in another order); then
 * its finite differences. Three layers: a 1x1 first feature map; two: 5 channels of 2x2, where the
 * dense layer's channel-last output is another order than NCHW. */
static void check_channels_last(const char *channels) {
    struct lpc_model nchw;
    create(&nchw, 0, channels, lpc_backend_cpu());
    setup(0, channels, &cpu_channels_last);
    int marked = !m.dec[m.n_conv].conv.x_channels_last;
    for (int i = 1; i <= m.n_conv; i++)
        marked &= m.dec[i].conv.y_channels_last && (i == m.n_conv || m.dec[i].conv.x_channels_last);
    CHECK(marked, "channel-last decoder %s: the activations are not the ones marked channel-last", channels);
    struct lpc_model *both[2] = {&nchw, &m};
    for (int k = 0; k < 2; k++) {
        lpc_arena_zero_grads(&both[k]->arena, LPC_GROUP_DECODER);
        lpc_model_decode(both[k], z, B);
        lpc_model_likelihood(both[k], both[k]->logp, x, B, 1);
        lpc_model_decoder_backward(both[k], both[k]->grad_z, B, 1);
    }
    CHECK(memcmp(m.mu, nchw.mu, sizeof(float) * B * m.dim) == 0, "channel-last decoder: mu differs from NCHW");
    CHECK(memcmp(m.logp, nchw.logp, sizeof(float) * B) == 0, "channel-last decoder: log p differs from NCHW");
    CHECK(memcmp(m.grad_z, nchw.grad_z, sizeof(float) * B * D) == 0, "channel-last decoder: grad z differs");
    /* the chain's backward (no parameter gradients; the channel-last activation's act' applied by the
     * convolution that produces its gradient) gives the same grad z, bitwise, in either layout */
    float grad_z_params[B * 3];
    memcpy(grad_z_params, nchw.grad_z, sizeof(float) * B * D);
    for (int k = 0; k < 2; k++) {
        lpc_model_likelihood(both[k], both[k]->logp, x, B, 0);
        lpc_model_decoder_backward(both[k], both[k]->grad_z, B, 0);
    }
    CHECK(memcmp(nchw.grad_z, grad_z_params, sizeof(float) * B * D) == 0,
          "NCHW decoder: the chain's grad z differs from the one with parameter gradients");
    CHECK(memcmp(m.grad_z, grad_z_params, sizeof(float) * B * D) == 0,
          "channel-last decoder: the chain's grad z differs from NCHW");
    /* the chain's score (lpc_model_score without parameter gradients: the output layer and the
     * likelihood in one op) gives the same log p and grad z, bitwise, in either layout */
    float logp_params[B];
    memcpy(logp_params, nchw.logp, sizeof logp_params);
    for (int k = 0; k < 2; k++) {
        lpc_model_score(both[k], both[k]->grad_z, both[k]->logp, x, z, B, 0);
        CHECK(memcmp(both[k]->grad_z, grad_z_params, sizeof(float) * B * D) == 0 &&
                  memcmp(both[k]->logp, logp_params, sizeof logp_params) == 0,
              "%s decoder: the chain's score differs from decode, likelihood and backward",
              k ? "channel-last" : "NCHW");
    }
    const int n_dec = m.arena.table.count - (m.n_conv + 1) * 2;
    for (int k = 0; k < n_dec; k++) {
        const float *g = lpc_arena_grad(&m.arena, k), *ref = lpc_arena_grad(&nchw.arena, k);
        double num = 0, den = 0;
        for (size_t i = 0; i < m.arena.table.params[k].count; i++)
            num += ((double)g[i] - ref[i]) * ((double)g[i] - ref[i]), den += (double)ref[i] * ref[i];
        CHECK(num <= 1e-10 * den, "channel-last decoder: gradient of %s differs from NCHW (nse %.3g)",
              m.arena.table.params[k].name, num / (den > 0 ? den : 1));
    }
    fd_params("log p(x, z) [channel-last]", 0, n_dec, loss_joint);
    float grad_joint_z[B * 3];
    for (int i = 0; i < B * D; i++) grad_joint_z[i] = m.grad_z[i] - z[i];
    fd_check("log p(x, z) [channel-last]", "z", z, grad_joint_z, B * D, loss_joint);
    lpc_model_destroy(&nchw);
    lpc_model_destroy(&m);
}

int main(void) {
    cpu_channels_last = *lpc_backend_cpu();
    cpu_channels_last.prefers_channels_last = always;
    check_channels_last("3,4,5");
    check_channels_last("3,5");
    for (int lik = 0; lik < 2; lik++) {
        setup(lik, "3,4", lpc_backend_cpu());
        const char *name = lik ? "discretized" : "gaussian";
        const int n_dec = m.arena.table.count - (m.n_conv + 1) * 2;
        /* decoder + likelihood + prior */
        lpc_arena_zero_grads(&m.arena, LPC_GROUP_DECODER);
        lpc_model_decode(&m, z, B);
        lpc_model_likelihood(&m, m.logp, x, B, 1);
        lpc_model_decoder_backward(&m, m.grad_z, B, 1);
        char what[64];
        snprintf(what, sizeof what, "log p(x, z) [%s]", name);
        fd_params(what, 0, n_dec, loss_joint);
        float grad_joint_z[B * 3]; /* the likelihood's part plus the prior's, -z */
        for (int i = 0; i < B * D; i++) grad_joint_z[i] = m.grad_z[i] - z[i];
        fd_check(what, "z", z, grad_joint_z, B * D, loss_joint);
        /* encoder head */
        lpc_arena_zero_grads(&m.arena, LPC_GROUP_ENCODER);
        loss_head();
        lpc_model_encoder_backward(&m, r_head, B);
        fd_params("encoder head", n_dec, m.arena.table.count, loss_head);
        /* the objectives */
        const struct { const char *name; float f, r, v; } objs[] = {
            {"forward KL", 1, 0, 0}, {"reverse KL", 0, 1, 0}, {"Jeffreys", 1, 1, 0}, {"VAE", 0, 0, 1}};
        for (int o = 0; o < 4; o++) {
            w_fwd = objs[o].f, w_rev = objs[o].r, w_vae = objs[o].v;
            grad_objective();
            snprintf(what, sizeof what, "%s objective [%s]", objs[o].name, name);
            fd_params(what, n_dec, m.arena.table.count, loss_objective);
        }
        lpc_model_destroy(&m);
    }
    return test_finish("test_model_grad");
}
