/* Encoder and decoder (SPEC.md section 1), built from the config; every computation goes through the
 * backend table, so the same code drives the CPU and the CUDA backend.
 *
 * Decoder: dense D -> c_K*(H/2^K)*(W/2^K), activation, reshape, then K transposed convolutions
 * (kernel 4, stride 2, padding 1) c_K -> ... -> c_1 -> C, activation after all but the last.
 * Encoder: K convolutions C -> c_1 -> ... -> c_K, activation after each, flatten, dense -> 2D.
 * Weight layouts follow PyTorch (Linear [out, in], Conv2d [out, in, k, k], ConvTranspose2d
 * [in, out, k, k]), so a checkpoint's tensors load into the same modules there. */
#include "lpc/model.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lpc/check.h"

#define KERNEL 4
#define STRIDE 2
#define PAD 1

static int add_param(struct lpc_param_table *t, int group, const char *net, const char *layer, const char *kind,
                     int ndim, const int *shape, int fan_in) {
    char name[LPC_PARAM_NAME_MAX];
    snprintf(name, sizeof name, "%s.%s.%s", net, layer, kind);
    return lpc_param_table_add(t, name, group, ndim, shape, fan_in, 0.0f);
}

static int check_shape(const struct lpc_config *cfg, int h, int w) {
    int k = cfg->channels_count;
    if (h % (1 << k) || w % (1 << k)) {
        int fit = 0;
        while (h % (1 << (fit + 1)) == 0 && w % (1 << (fit + 1)) == 0) fit++;
        return lpc_fail("channels: %d stride-2 layers need H and W divisible by %d, but the images are %dx%d; "
                        "use at most %d values in channels",
                        k, 1 << k, h, w, fit);
    }
    return 0;
}

/* Fills the table and, when m is not NULL, the layer descriptions. */
static int build(struct lpc_param_table *t, struct lpc_model *m, const struct lpc_config *cfg, int c, int h, int w) {
    if (check_shape(cfg, h, w)) return -1;
    memset(t, 0, sizeof *t);
    const int K = cfg->channels_count, D = (int)cfg->latent_dim;
    const int h0 = h >> K, w0 = w >> K, top = cfg->channels[K - 1];
    char layer[32];
    /* decoder */
    {
        int ws[2] = {top * h0 * w0, D}, bs[1] = {top * h0 * w0};
        int wi = add_param(t, LPC_GROUP_DECODER, "decoder", "fc", "weight", 2, ws, D);
        int bi = add_param(t, LPC_GROUP_DECODER, "decoder", "fc", "bias", 1, bs, D);
        if (m) {
            struct lpc_layer *L = &m->dec[0];
            L->w = wi, L->b = bi, L->act = cfg->activation;
            L->in_size = (size_t)D, L->out_size = (size_t)top * h0 * w0;
        }
    }
    for (int i = 1; i <= K; i++) {
        int cin = cfg->channels[K - i], cout = i == K ? c : cfg->channels[K - i - 1];
        int s = h0 << (i - 1), sw = w0 << (i - 1);
        int ws[4] = {cin, cout, KERNEL, KERNEL}, bs[1] = {cout};
        snprintf(layer, sizeof layer, "deconv%d", i);
        int wi = add_param(t, LPC_GROUP_DECODER, "decoder", layer, "weight", 4, ws, cout * KERNEL * KERNEL);
        int bi = add_param(t, LPC_GROUP_DECODER, "decoder", layer, "bias", 1, bs, cout * KERNEL * KERNEL);
        if (m) {
            struct lpc_layer *L = &m->dec[i];
            L->w = wi, L->b = bi, L->transposed = 1;
            L->act = i == K ? LPC_ACT_NONE : cfg->activation;
            /* as a convolution from the output [cout, 2s, 2sw] to the input [cin, s, sw] */
            L->conv = (struct lpc_conv_shape){0, cout, 2 * s, 2 * sw, cin, s, sw, KERNEL, STRIDE, PAD, 0, 0};
            L->in_size = (size_t)cin * s * sw, L->out_size = (size_t)cout * 4 * s * sw;
        }
    }
    int ls = -1;
    if (cfg->learn_sigma) {
        int shape[1] = {1};
        ls = lpc_param_table_add(t, "decoder.log_sigma", LPC_GROUP_DECODER, 1, shape, 0, (float)log(cfg->sigma));
    }
    if (m) m->dec_log_sigma = ls;
    /* encoder */
    if (cfg->init != LPC_INIT_PRIOR) {
        for (int i = 0; i < K; i++) {
            int cin = i == 0 ? c : cfg->channels[i - 1], cout = cfg->channels[i];
            int s = h >> i, sw = w >> i;
            int ws[4] = {cout, cin, KERNEL, KERNEL}, bs[1] = {cout};
            snprintf(layer, sizeof layer, "conv%d", i + 1);
            int wi = add_param(t, LPC_GROUP_ENCODER, "encoder", layer, "weight", 4, ws, cin * KERNEL * KERNEL);
            int bi = add_param(t, LPC_GROUP_ENCODER, "encoder", layer, "bias", 1, bs, cin * KERNEL * KERNEL);
            if (m) {
                struct lpc_layer *L = &m->enc[i];
                L->w = wi, L->b = bi, L->act = cfg->activation;
                L->conv = (struct lpc_conv_shape){0, cin, s, sw, cout, s / 2, sw / 2, KERNEL, STRIDE, PAD, 0, 0};
                L->in_size = (size_t)cin * s * sw, L->out_size = (size_t)cout * (s / 2) * (sw / 2);
            }
        }
        int ws[2] = {2 * D, top * h0 * w0}, bs[1] = {2 * D};
        int wi = add_param(t, LPC_GROUP_ENCODER, "encoder", "fc", "weight", 2, ws, top * h0 * w0);
        int bi = add_param(t, LPC_GROUP_ENCODER, "encoder", "fc", "bias", 1, bs, top * h0 * w0);
        if (m) {
            struct lpc_layer *L = &m->enc[K];
            L->w = wi, L->b = bi, L->act = LPC_ACT_NONE;
            L->in_size = (size_t)top * h0 * w0, L->out_size = (size_t)2 * D;
        }
    }
    return 0;
}

int lpc_model_param_table(struct lpc_param_table *t, const struct lpc_config *cfg, int c, int h, int w) {
    return build(t, NULL, cfg, c, h, w);
}

int lpc_model_create(struct lpc_model *m, const struct lpc_config *cfg, const struct lpc_backend *be, int c, int h,
                     int w, int max_batch) {
    memset(m, 0, sizeof *m);
    struct lpc_param_table t;
    if (build(&t, m, cfg, c, h, w)) return -1;
    m->be = be;
    m->c = c, m->h = h, m->w = w, m->dim = c * h * w;
    m->latent = (int)cfg->latent_dim;
    m->n_conv = cfg->channels_count;
    m->likelihood = cfg->likelihood;
    m->learn_sigma = cfg->learn_sigma;
    m->has_encoder = cfg->init != LPC_INIT_PRIOR;
    m->max_batch = max_batch;
    for (int i = 1; i < m->n_conv && be->prefers_channels_last; i++) /* the output of layer i, input of i + 1 */
        if (be->prefers_channels_last(&m->dec[i].conv, &m->dec[i + 1].conv))
            m->dec[i].conv.x_channels_last = m->dec[i + 1].conv.y_channels_last = 1;
    if (be->prefers_channels_last && be->prefers_channels_last(NULL, &m->dec[1].conv)) /* the dense layer's output */
        m->dec[1].conv.y_channels_last = 1;
    lpc_arena_create(&m->arena, be, &t);

    const size_t B = (size_t)max_batch;
    size_t largest = (size_t)m->dim > (size_t)2 * m->latent ? (size_t)m->dim : (size_t)2 * m->latent;
    for (int i = 0; i <= m->n_conv; i++) {
        struct lpc_layer *L = &m->dec[i];
        L->conv.n = max_batch;
        L->pre = be->alloc(B * L->out_size * sizeof(float));
        /* relu and leaky relu need no pre-activation apart from the output (lpc_act_derivative_from_output) */
        L->out = lpc_act_derivative_from_output(L->act) ? L->pre : be->alloc(B * L->out_size * sizeof(float));
        if (L->out_size > largest) largest = L->out_size;
        if (m->has_encoder) {
            struct lpc_layer *E = &m->enc[i];
            E->conv.n = max_batch;
            E->pre = be->alloc(B * E->out_size * sizeof(float));
            E->out = lpc_act_derivative_from_output(E->act) ? E->pre : be->alloc(B * E->out_size * sizeof(float));
            if (E->out_size > largest) largest = E->out_size;
        }
    }
    m->mu = m->dec[m->n_conv].out;
    m->head = m->has_encoder ? m->enc[m->n_conv].out : NULL;
    m->x = be->alloc(B * (size_t)m->dim * sizeof(float));
    m->dmu = be->alloc(B * (size_t)m->dim * sizeof(float));
    m->logp = be->alloc(B * sizeof(float));
    m->grad_ping = be->alloc(B * largest * sizeof(float));
    m->grad_pong = be->alloc(B * largest * sizeof(float));
    m->grad_z = be->alloc(B * (size_t)m->latent * sizeof(float));
    m->log_sigma_fixed = be->alloc(sizeof(float));
    float ls = (float)log(cfg->sigma);
    be->upload(m->log_sigma_fixed, &ls, sizeof ls);
    return 0;
}

void lpc_model_destroy(struct lpc_model *m) {
    const struct lpc_backend *be = m->be;
    if (!be) return;
    for (int i = 0; i <= m->n_conv; i++) {
        struct lpc_layer *L[2] = {&m->dec[i], m->has_encoder ? &m->enc[i] : NULL};
        for (int j = 0; j < 2; j++)
            if (L[j]) {
                if (L[j]->out != L[j]->pre) be->free(L[j]->out);
                be->free(L[j]->pre);
            }
    }
    be->free(m->x), be->free(m->dmu), be->free(m->logp), be->free(m->grad_ping), be->free(m->grad_pong);
    be->free(m->grad_z), be->free(m->log_sigma_fixed);
    lpc_arena_destroy(&m->arena);
    memset(m, 0, sizeof *m);
}

const float *lpc_model_log_sigma(const struct lpc_model *m) {
    return m->dec_log_sigma >= 0 ? lpc_arena_param(&m->arena, m->dec_log_sigma) : m->log_sigma_fixed;
}

static struct lpc_conv_shape with_batch(struct lpc_conv_shape s, int n) {
    s.n = n;
    return s;
}

/* the dense layer's output as the dense ops see it: 0 for NCHW order, else its channel count
 * (channel-last [n, h0 * w0, channels]) */
static int dense_channels(const struct lpc_model *m) { return m->dec[1].conv.y_channels_last ? m->dec[1].conv.co : 0; }

/* the decoder's layers 0 .. last (the dense layer, then transposed convolutions) */
static void decode_layers(struct lpc_model *m, const float *z, int n, int last) {
    const struct lpc_backend *be = m->be;
    const struct lpc_arena *a = &m->arena;
    struct lpc_layer *fc = &m->dec[0];
    m->dec_z = z;
    be->dense_bias_act_forward(fc->out, fc->pre, z, lpc_arena_param(a, fc->w), lpc_arena_param(a, fc->b), n,
                               (int)fc->in_size, (int)fc->out_size, fc->act, dense_channels(m));
    const float *in = fc->out;
    for (int i = 1; i <= last; i++) {
        struct lpc_layer *L = &m->dec[i];
        struct lpc_conv_shape s = with_batch(L->conv, n);
        be->deconv_bias_act_forward(L->out, L->pre, in, lpc_arena_param(a, L->w), lpc_arena_param(a, L->b), &s,
                                    L->act);
        in = L->out;
    }
}

void lpc_model_decode(struct lpc_model *m, const float *z, int n) { decode_layers(m, z, n, m->n_conv); }

void lpc_model_likelihood(struct lpc_model *m, float *logp, const float *x, int n, int param_grads) {
    float *dls = param_grads && m->dec_log_sigma >= 0 ? lpc_arena_grad(&m->arena, m->dec_log_sigma) : NULL;
    m->be->likelihood(logp, m->dmu, dls, x, m->mu, lpc_model_log_sigma(m), n, m->dim, m->likelihood);
}

/* the chain's backward into layer i's input: an activation kept channel-last gets its act' from the
 * convolution that produces its gradient (layer i, on the way out), not from the one that consumes it;
 * returns that activation (LPC_ACT_NONE: none) and sets *pre_below to its pre-activation (NULL: none) */
static int act_below_of(const struct lpc_model *m, int i, const struct lpc_conv_shape *s, const float **pre_below) {
    const struct lpc_layer *below = &m->dec[i - 1];
    const int act = s->y_channels_last ? below->act : LPC_ACT_NONE;
    *pre_below = act == LPC_ACT_NONE ? NULL : below->pre;
    return act;
}

/* lpc_model_decoder_backward from m->dmu through layers n_conv .. 0, or from layer n_conv - 1 down (the
 * chain's score, where the output layer's op deconv_likelihood_backward left the gradient at its input,
 * times act', in grad_pong; then param_grads is 0) */
static void decoder_backward(struct lpc_model *m, float *grad_z, int n, int param_grads, int top) {
    const struct lpc_backend *be = m->be;
    const struct lpc_arena *a = &m->arena;
    float *bufs[2] = {m->grad_ping, m->grad_pong};
    int which = top == m->n_conv ? 0 : 1; /* bufs[which ^ 1] takes each layer's input gradient */
    const float *d_out = top == m->n_conv ? m->dmu : bufs[which];
    for (int i = top; i >= 1; i--) {
        struct lpc_layer *L = &m->dec[i];
        struct lpc_conv_shape s = with_batch(L->conv, n);
        float *d_in = bufs[which ^ 1];
        if (!param_grads) {
            /* the chain's steps: activation backward and convolution in one op; d_out is scratch. A
             * channel-last input's act' came with its gradient (act_below_of) */
            const int act = s.x_channels_last ? LPC_ACT_NONE : L->act;
            const float *pre_below;
            const int act_below = act_below_of(m, i, &s, &pre_below);
            be->act_conv2d_forward(d_in, (float *)d_out, L->pre, lpc_arena_param(a, L->w), &s, act, pre_below,
                                   act_below);
        } else {
            /* without an activation the gradient passes through unchanged: in place, nothing to copy */
            float *d_pre = L->act == LPC_ACT_NONE ? (float *)d_out : bufs[which];
            be->bias_act_backward(d_pre, lpc_arena_grad(a, L->b), d_out, L->pre,
                                  lpc_conv_x_rows(&s), s.ci, lpc_conv_x_per_row(&s), L->act);
            const float *layer_in = m->dec[i - 1].out;
            be->conv2d_backward_filter(lpc_arena_grad(a, L->w), layer_in, d_pre, &s);
            be->conv2d_forward(d_in, d_pre, lpc_arena_param(a, L->w), &s);
        }
        d_out = d_in;
        which ^= 1;
    }
    struct lpc_layer *fc = &m->dec[0];
    const int channels = dense_channels(m), in = (int)fc->in_size, out = (int)fc->out_size;
    /* the chain's steps: activation backward and the dense layer in one op; a channel-last output got its
     * act' from the first convolution, as an activation between two convolutions does */
    if (!param_grads) {
        be->act_dense_backward_data(grad_z, (float *)d_out, fc->pre, lpc_arena_param(a, fc->w), n, in, out,
                                    channels ? LPC_ACT_NONE : fc->act, channels);
        return;
    }
    float *d_pre = bufs[which];
    if (channels) { /* act' in the gradient's channel-last order, then the NCHW order of the parameters */
        be->bias_act_backward(d_pre, NULL, d_out, fc->pre, n, out, 1, fc->act);
        d_out = d_pre, d_pre = bufs[which ^ 1];
        be->channels_last_to_nchw(d_pre, d_out, n, channels, out / channels);
        be->bias_act_backward(d_pre, lpc_arena_grad(a, fc->b), d_pre, fc->pre, n, out, 1, LPC_ACT_NONE);
    } else {
        be->bias_act_backward(d_pre, lpc_arena_grad(a, fc->b), d_out, fc->pre, n, out, 1, fc->act);
    }
    be->dense_backward_params(lpc_arena_grad(a, fc->w), NULL, d_pre, m->dec_z, n, in, out);
    be->dense_backward_data(grad_z, d_pre, lpc_arena_param(a, fc->w), n, in, out);
}

void lpc_model_decoder_backward(struct lpc_model *m, float *grad_z, int n, int param_grads) {
    decoder_backward(m, grad_z, n, param_grads, m->n_conv);
}

void lpc_model_score(struct lpc_model *m, float *grad_z, float *logp, const float *x, const float *z, int n,
                     int param_grads) {
    if (param_grads) {
        lpc_model_decode(m, z, n);
        lpc_model_likelihood(m, logp, x, n, 1);
        lpc_model_decoder_backward(m, grad_z, n, 1);
        return;
    }
    decode_layers(m, z, n, m->n_conv - 1);
    const struct lpc_layer *L = &m->dec[m->n_conv];
    const struct lpc_conv_shape s = with_batch(L->conv, n);
    const float *pre_below;
    const int act_below = act_below_of(m, m->n_conv, &s, &pre_below);
    m->be->deconv_likelihood_backward(m->grad_pong, m->dmu, logp, L->out, L->pre, m->dec[m->n_conv - 1].out,
                                      lpc_arena_param(&m->arena, L->w), lpc_arena_param(&m->arena, L->b), x,
                                      lpc_model_log_sigma(m), &s, L->act, m->likelihood, pre_below, act_below);
    decoder_backward(m, grad_z, n, 0, m->n_conv - 1);
}

void lpc_model_encode(struct lpc_model *m, const float *x, int n) {
    const struct lpc_backend *be = m->be;
    const struct lpc_arena *a = &m->arena;
    m->enc_x = x;
    const float *in = x;
    for (int i = 0; i < m->n_conv; i++) {
        struct lpc_layer *L = &m->enc[i];
        struct lpc_conv_shape s = with_batch(L->conv, n);
        be->conv2d_forward(L->pre, in, lpc_arena_param(a, L->w), &s);
        be->bias_act_forward(L->out, L->pre, lpc_arena_param(a, L->b), n, s.co, s.ho * s.wo, L->act);
        in = L->out;
    }
    struct lpc_layer *fc = &m->enc[m->n_conv];
    be->dense_forward(fc->pre, in, lpc_arena_param(a, fc->w), lpc_arena_param(a, fc->b), n, (int)fc->in_size,
                      (int)fc->out_size);
}

void lpc_model_encoder_backward(struct lpc_model *m, const float *d_head, int n) {
    const struct lpc_backend *be = m->be;
    const struct lpc_arena *a = &m->arena;
    struct lpc_layer *fc = &m->enc[m->n_conv];
    const float *fc_in = m->enc[m->n_conv - 1].out;
    be->dense_backward_params(lpc_arena_grad(a, fc->w), lpc_arena_grad(a, fc->b), d_head, fc_in, n,
                              (int)fc->in_size, (int)fc->out_size);
    float *bufs[2] = {m->grad_ping, m->grad_pong};
    int which = 0;
    be->dense_backward_data(bufs[which], d_head, lpc_arena_param(a, fc->w), n, (int)fc->in_size, (int)fc->out_size);
    for (int i = m->n_conv - 1; i >= 0; i--) {
        struct lpc_layer *L = &m->enc[i];
        struct lpc_conv_shape s = with_batch(L->conv, n);
        float *d_pre = bufs[which ^ 1];
        be->bias_act_backward(d_pre, lpc_arena_grad(a, L->b), bufs[which], L->pre, n, s.co, s.ho * s.wo, L->act);
        const float *layer_in = i == 0 ? m->enc_x : m->enc[i - 1].out;
        be->conv2d_backward_filter(lpc_arena_grad(a, L->w), d_pre, layer_in, &s);
        if (i > 0) be->conv2d_backward_data(bufs[which], d_pre, lpc_arena_param(a, L->w), &s);
    }
}
