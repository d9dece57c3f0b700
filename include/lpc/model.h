/* The encoder and decoder of SPEC.md section 1, built from the config through the backend interface
 * only. The decoder maps z [n, D] to the likelihood's mean mu [n, C, H, W]; the encoder maps x to the
 * head [n, 2D] of q(z|x) = N(mean, diag exp(logvar)). All buffers are allocated once, for up to
 * max_batch samples. */
#ifndef LPC_MODEL_H
#define LPC_MODEL_H

#include "lpc/arena.h"
#include "lpc/config.h"
#include "lpc/ops.h"

#define LPC_MAX_LAYERS 7

struct lpc_layer {
    int w, b;                   /* parameter indices */
    struct lpc_conv_shape conv; /* for n = max_batch; transposed layers read it backwards */
    int transposed;
    int act;
    size_t in_size, out_size;   /* floats per sample */
    float *pre, *out;           /* [max_batch, out_size]; one buffer (the output) where act' can be read from
                                   the output (lpc_act_derivative_from_output: none, relu, leaky relu) */
};

struct lpc_model {
    const struct lpc_backend *be;
    struct lpc_arena arena;
    int c, h, w, dim; /* image shape, dim = c*h*w */
    int latent;
    int n_conv;       /* K */
    int likelihood;
    int learn_sigma;
    int has_encoder;
    int max_batch;

    /* decoder: dense, then n_conv transposed convolutions; the last layer's output is mu. Activations
     * between two transposed convolutions (and their gradients) are [n, h, w, c] where the backend
     * prefers that (the layers' conv shapes say which), and so may the dense layer's output (the first
     * transposed convolution's y side); mu is NCHW. */
    struct lpc_layer dec[LPC_MAX_LAYERS];
    int dec_log_sigma; /* parameter index when learned, else -1 */
    float *log_sigma_fixed; /* backend scalar when not learned */
    float *mu;
    const float *dec_z; /* the z of the last decode, kept for the backward pass */

    /* encoder: n_conv convolutions, then dense to the head */
    struct lpc_layer enc[LPC_MAX_LAYERS];
    float *head;
    const float *enc_x; /* the x of the last encode */

    /* scratch */
    float *x;                 /* [max_batch, dim] input images */
    float *dmu;               /* d log p(x|z) / d mu */
    float *logp;              /* [max_batch] log p(x|z) */
    float *grad_ping, *grad_pong; /* activation gradients, largest layer */
    float *grad_z;            /* [max_batch, D] d log p(x|z) / dz */
};

/* Builds the model for the config's data shape; -1 with a message if the shape does not fit. */
int lpc_model_create(struct lpc_model *m, const struct lpc_config *cfg, const struct lpc_backend *be, int c, int h,
                     int w, int max_batch);
void lpc_model_destroy(struct lpc_model *m);
/* The parameter table of a config (names and shapes), without allocating. */
int lpc_model_param_table(struct lpc_param_table *t, const struct lpc_config *cfg, int c, int h, int w);

/* mu = decoder(z) for n samples. */
void lpc_model_decode(struct lpc_model *m, const float *z, int n);
/* logp[i] = log p(x_i | mu_i) (logp: [n] in backend memory, e.g. m->logp), m->dmu = its gradient
 * (after lpc_model_decode). With param_grads, the derivative w.r.t. log sigma (if learned) is added to
 * the gradient arena. */
void lpc_model_likelihood(struct lpc_model *m, float *logp, const float *x, int n, int param_grads);
/* grad_z = d sum_i log p(x_i|z_i) / dz from m->dmu (grad_z: [n, D], e.g. m->grad_z); with
 * param_grads, the decoder's parameter gradients += d sum_i log p(x_i|z_i) / d theta. */
void lpc_model_decoder_backward(struct lpc_model *m, float *grad_z, int n, int param_grads);
/* The Langevin chain's score at z: logp[i] = log p(x_i | z_i) and grad_z = its gradient w.r.t. z (the
 * prior's term is the sampler's). With param_grads, lpc_model_decode, lpc_model_likelihood and
 * lpc_model_decoder_backward; without, the output layer, the likelihood, the output activation's
 * derivative and the way back to the layer's input run as one op (ops.h deconv_likelihood_backward),
 * and mu is not left in m->mu. */
void lpc_model_score(struct lpc_model *m, float *grad_z, float *logp, const float *x, const float *z, int n,
                     int param_grads);
/* head = encoder(x). */
void lpc_model_encode(struct lpc_model *m, const float *x, int n);
/* Encoder parameter gradients += d loss / d phi given d loss / d head. */
void lpc_model_encoder_backward(struct lpc_model *m, const float *d_head, int n);
/* The log-sigma the likelihood uses (a backend scalar). */
const float *lpc_model_log_sigma(const struct lpc_model *m);

#endif
