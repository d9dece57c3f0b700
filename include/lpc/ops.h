/* The backend interface (SPEC.md section 4; DESIGN.md "Layout"): every numerical operation the
 * model, the chain driver and the trainer need, as one table of function pointers with a CPU
 * instance (src/cpu/) and a CUDA instance (kernels/). model.c, langevin.c and train.c call only
 * these.
 *
 * Conventions: tensors are float32, NCHW (a convolution shape may mark a side channel-last), in the
 * backend's memory. Outputs come first, then inputs, then sizes. Parameter gradients accumulate (+=);
 * activation gradients are assigned (=). */
#ifndef LPC_OPS_H
#define LPC_OPS_H

#include <stddef.h>

#include "lpc/config.h"
#include "lpc/rng.h"

/* A 2-D convolution y = conv(x, w): x [n, ci, h, w], w [co, ci, k, k], y [n, co, ho, wo]. A transposed
 * convolution is the same shape read backwards: its forward is conv2d_backward_data. With
 * x_channels_last (y_channels_last) that side's tensors, and every tensor of its size a convolution op
 * reads or writes (pre, dout), are channel-last instead: [n, h, w, ci] ([n, ho, wo, co]); the filter's
 * layout never changes. */
struct lpc_conv_shape {
    int n, ci, h, w, co, ho, wo, k, stride, pad;
    int x_channels_last, y_channels_last;
};
int lpc_conv_out_size(int in, int k, int stride, int pad);
/* a convolution's x side as the bias and activation ops see it, [rows, ci, per_row]: [n, ci, h*w], or
 * [n*h*w, ci, 1] when it is channel-last */
int lpc_conv_x_rows(const struct lpc_conv_shape *s);
int lpc_conv_x_per_row(const struct lpc_conv_shape *s);

enum lpc_act { LPC_ACT_NONE = -1 }; /* plus enum lpc_activation of config.h: relu, leaky_relu, silu */
/* 1 for the activations that keep the sign (none, relu, leaky relu): act'(act(x)) = act'(x) for every
 * x, so a layer may keep only its output in the place of its pre-activation, and the ops that read
 * act'(pre) read the same from it (the ops below allow out == pre for these) */
static inline int lpc_act_derivative_from_output(int act) {
    return act == LPC_ACT_NONE || act == LPC_ACT_RELU || act == LPC_ACT_LEAKY_RELU;
}
#define LPC_LEAKY_RELU_SLOPE 0.2f
#define LPC_LOGVAR_MIN (-12.0f)
#define LPC_LOGVAR_MAX 6.0f

/* Hyper-parameters of one Langevin step (SPEC.md section 2.1). */
struct lpc_langevin_params {
    float step_size;  /* gamma */
    float beta, eps;  /* preconditioner */
    int precond;      /* 0: G = 1 */
    int noise;        /* 0: no sqrt(2 gamma G) xi term */
    int t;            /* 1-based step index, for the bias correction 1 - beta^t */
    int accumulate;   /* also add the new state to zsum and its square to zsq */
};

struct lpc_adam_params {
    float lr, beta1, beta2, eps, weight_decay;
    long step; /* 1-based */
};

struct lpc_backend {
    const char *name;
    /* memory: alloc returns zeroed memory of the backend; upload/download copy from/to the host */
    void *(*alloc)(size_t bytes);
    void (*free)(void *p);
    void (*upload)(void *dst, const void *host_src, size_t bytes);
    void (*download)(void *host_dst, const void *src, size_t bytes);
    void (*copy)(void *dst, const void *src, size_t bytes);
    void (*synchronize)(void);
    /* bytes of backend memory lpc holds now (lpc never frees during a run, so this is the peak) */
    size_t (*memory_used)(void);

    /* elementwise and reductions */
    void (*fill)(float *x, float value, size_t n);
    void (*scale)(float *x, float a, size_t n);                 /* x *= a */
    double (*sum_squares)(const float *x, size_t n);            /* deterministic, returned to the host */
    void (*row_sum_squares)(float *out, const float *x, int rows, int cols); /* out[r] = sum_c x[r,c]^2 */

    /* dense: y [n, out] = x [n, in] w^T + b, w [out, in] */
    void (*dense_forward)(float *y, const float *x, const float *w, const float *b, int n, int in, int out);
    void (*dense_backward_data)(float *dx, const float *dy, const float *w, int n, int in, int out);
    void (*dense_backward_params)(float *dw, float *db, const float *dy, const float *x, int n, int in, int out);
    /* The decoder's dense layer with its bias and activation, fused where the backend can:
     * pre = x w^T + b, y = act(pre); y may equal pre where lpc_act_derivative_from_output(act) (the
     * buffer then holds y). Its backward to the input when no parameter gradient is wanted (the chain's
     * steps): dx = (dout * act'(pre)) w; dout is scratch: its contents afterwards are unspecified.
     * channels > 0: the layer's output is a feature map [channels, hw] (hw = out / channels) that y, pre
     * and dout hold channel-last, [n, hw, channels]; w and b keep the feature order channel * hw +
     * position. */
    void (*dense_bias_act_forward)(float *y, float *pre, const float *x, const float *w, const float *b, int n, int in,
                                   int out, int act, int channels);
    void (*act_dense_backward_data)(float *dx, float *dout, const float *pre, const float *w, int n, int in, int out,
                                    int act, int channels);
    /* dst [n, c, hw] = src [n, hw, c] */
    void (*channels_last_to_nchw)(float *dst, const float *src, int n, int c, int hw);

    /* convolution (no bias; bias_act_* add it) */
    void (*conv2d_forward)(float *y, const float *x, const float *w, const struct lpc_conv_shape *s);
    void (*conv2d_backward_data)(float *dx, const float *dy, const float *w, const struct lpc_conv_shape *s);
    void (*conv2d_backward_filter)(float *dw, const float *dy, const float *x, const struct lpc_conv_shape *s);

    /* The decoder's transposed-convolution layer with its bias and activation, fused where the backend
     * can: pre = conv2d_backward_data(x, w) + b (per channel of [n, ci, h, w]), out = act(pre); out may
     * equal pre where lpc_act_derivative_from_output(act) (the buffer then holds out). */
    void (*deconv_bias_act_forward)(float *out, float *pre, const float *x, const float *w, const float *b,
                                    const struct lpc_conv_shape *s, int act);
    /* Its backward to the layer's input when no parameter gradient is wanted (the chain's steps):
     * y = conv2d_forward(dout * act'(pre), w) * act_below'(pre_below), where pre_below (y's size and
     * layout) is the pre-activation of the layer below, whose act' the op may so apply on the way out
     * (into cuDNN's epilogue on CUDA's channel-last path); either activation may be LPC_ACT_NONE (no
     * factor; its pre is then not read and may be NULL). dout is scratch: its contents afterwards are
     * unspecified. */
    void (*act_conv2d_forward)(float *y, float *dout, const float *pre, const float *w,
                               const struct lpc_conv_shape *s, int act, const float *pre_below, int act_below);

    /* The decoder's output layer with the likelihood, when no parameter gradient is wanted (the chain's
     * steps): pre = conv2d_backward_data(x, w) + b, mu = act(pre), logp[i] = log p(data_i | mu_i) per
     * sample (as likelihood, no log-sigma derivative) and dpre = d logp / d mu * act'(pre), fused where
     * the backend can; out and pre are the layer's buffers (out may equal pre as for
     * deconv_bias_act_forward), which the op may use as scratch: their contents afterwards are
     * unspecified. The image side (x_channels_last) must be NCHW, the order of data. */
    void (*deconv_likelihood)(float *dpre, float *logp, float *out, float *pre, const float *x, const float *w,
                              const float *b, const float *data, const float *log_sigma,
                              const struct lpc_conv_shape *s, int act, int kind);
    /* The same and the step's way back through the layer in one op: deconv_likelihood, then
     * act_conv2d_forward(d_below, dpre, pre, w, s, LPC_ACT_NONE, pre_below, act_below): d_below (x's size
     * and layout) is the gradient at the layer's input times act_below' of the layer below. dpre holds
     * deconv_likelihood's result afterwards. */
    void (*deconv_likelihood_backward)(float *d_below, float *dpre, float *logp, float *out, float *pre,
                                       const float *x, const float *w, const float *b, const float *data,
                                       const float *log_sigma, const struct lpc_conv_shape *s, int act, int kind,
                                       const float *pre_below, int act_below);

    /* bias + activation over [n, c, hw]: pre += b (in place), out = act(pre); out may equal pre where
     * lpc_act_derivative_from_output(act) (the buffer then holds out). Backward: dpre = dout * act'(pre),
     * db += sum of dpre (db may be NULL); dpre may equal dout (in place; with act = LPC_ACT_NONE nothing is
     * written then). A channel-last [n, h, w, c] tensor is [n*h*w, c, 1] to them. */
    void (*bias_act_forward)(float *out, float *pre, const float *b, int n, int c, int hw, int act);
    void (*bias_act_backward)(float *dpre, float *db, const float *dout, const float *pre, int n, int c, int hw,
                              int act);

    /* log p(x | mu) per sample (enum lpc_likelihood), its gradient w.r.t. mu (assigned, not scaled) and
     * the batch sum of its derivative w.r.t. log sigma, accumulated into dlog_sigma (may be NULL).
     * log_sigma is one scalar in backend memory. */
    void (*likelihood)(float *logp, float *dmu, float *dlog_sigma, const float *x, const float *mu,
                       const float *log_sigma, int n, int dim, int kind);

    /* One Langevin step for n_elems latents (SPEC.md 2.1): g = grad_lik + grad log p(z) (= -z),
     * preconditioner update of v, G, z += gamma G g + sqrt(2 gamma G) xi. stats[0] += sum |g|,
     * stats[1] += sum G (deterministic order). With p->accumulate, zsum += z_new and zsq += z_new^2. */
    void (*langevin_update)(float *z, float *precond_v, float *stats, float *zsum, float *zsq, const float *grad_lik,
                            const float *xi, size_t n_elems, const struct lpc_langevin_params *p);

    /* The encoder's Gaussian head, head = [n, 2D] rows of (mean, raw log-variance); the log-variance is
     * clamped to [LPC_LOGVAR_MIN, LPC_LOGVAR_MAX] (zero gradient outside). encoder_sample:
     * z = mean + exp(logvar / 2) * eps (eps NULL: z = mean). */
    void (*encoder_sample)(float *z, const float *head, const float *eps, int n, int d);
    /* Gradient (assigned, times scale) of the encoder loss w.r.t. head, and per-sample loss terms
     * terms[0..n) forward KL -mean_t log q(z_t|x), terms[n..2n) log q(z_0|x), terms[2n..3n)
     * KL(q || N(0, I)). The loss is w_fwd * forward KL (chain sums zsum = sum_t z_t, zsq = sum_t z_t^2
     * over S states) + w_rev * (log q(z_0|x) - log p(x, z_0)) (reparameterised, grad_lik at z_0)
     * + w_vae * (-log p(x|z_0) + KL(q || N(0, I))) (analytic KL). */
    void (*encoder_head_backward)(float *d_head, float *terms, const float *head, const float *eps,
                                  const float *grad_lik, const float *z0, const float *zsum, const float *zsq,
                                  float n_states, int n, int d, float w_fwd, float w_rev, float w_vae, float scale);

    /* Adam(W) over a flat segment of the arena. */
    void (*adam_update)(float *param, float *m, float *v, const float *grad, size_t n,
                        const struct lpc_adam_params *p);

    /* n standard normals from the generator's current offset; the offset advances by
     * lpc_rng_advance(n). */
    void (*normal)(float *out, size_t n, struct lpc_rng *rng);

    /* Optional (NULL on the CPU): record the work issued between graph_begin and graph_end as one
     * replayable graph; graph_launch replays it with whatever the same buffers then hold. No host
     * synchronisation and no allocation may happen in between. */
    void (*graph_begin)(void);
    void *(*graph_end)(void);
    void (*graph_launch)(void *graph);
    void (*graph_destroy)(void *graph);

    /* Optional (NULL on the CPU): 1 when the activation between two of the decoder's transposed
     * convolutions, the output of `producer` and the input of `consumer` (their shapes as convolutions,
     * batch size 0), should be kept channel-last (struct lpc_conv_shape) with the backend's settings;
     * producer NULL: the output of the dense layer, the input of the first transposed convolution. */
    int (*prefers_channels_last)(const struct lpc_conv_shape *producer, const struct lpc_conv_shape *consumer);

    /* Optional (NULL on the CPU): from params_fixed_begin to params_fixed_end no op writes the weights
     * and biases the decoder's ops read (the chain's T steps), so the backend may derive forms of them
     * once and reuse them (the CUDA backend: filters and the dense layer's weights copied to the order
     * of its kernels at their first use instead of at every call). Both may be recorded into a graph;
     * windows do not nest. */
    void (*params_fixed_begin)(void);
    void (*params_fixed_end)(void);
};

const struct lpc_backend *lpc_backend_cpu(void);
/* NULL when lpc was built without CUDA or no GPU is visible; why in lpc_last_error(). */
/* conv_algo: enum lpc_conv_algo of config.h; it may change between calls, math and determinism not. */
const struct lpc_backend *lpc_backend_cuda(int math_tf32, int deterministic, int conv_algo);

#endif
