// What the direct convolution kernels (kernels/conv_direct.cu) and the fused output layer
// (kernels/conv_direct_output.cu) share: the shape as the kernels see it, the k4 s2 geometry tests, and
// the likelihood epilogue's per-element gradient.
#ifndef LPC_CONV_DIRECT_CUH
#define LPC_CONV_DIRECT_CUH

#include <stdint.h>

#include "lpc/config.h"
#include "lpc/ops.h"
#include "lpc/pointwise.h"

#define DIRECT_THREADS 128

struct dconv {
    int n, ci, h, w, co, ho, wo, k, stride, pad;
    int y_cl; // y channel-last
};

static inline dconv dconv_of(const struct lpc_conv_shape *s) {
    return dconv{s->n, s->ci, s->h, s->w, s->co, s->ho, s->wo, s->k, s->stride, s->pad, s->y_channels_last};
}

static inline bool is_k4s2(const dconv &g) {
    return g.k == 4 && g.stride == 2 && g.pad == 1 && g.h == 2 * g.ho && g.w == 2 * g.wo;
}
static inline bool aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }
// the transposed k4 s2 kernels' 2 x 2 blocks side by side a thread: 4, else 2, else 1, as the input's
// width wo allows
static inline int blocks_per_thread(int wo) { return wo % 4 == 0 ? 4 : wo % 2 == 0 ? 2 : 1; }
// a channel-last input copied to shared memory in channel planes: rows of at least wo + 2 floats with a
// pitch of 1 mod 4, so that a warp reading one float of consecutive rows hits distinct banks; 16-byte loads
// a thread issues at once while copying
static inline int cl_pitch(int wo) { return (wo + 2 + 2) / 4 * 4 + 1; }
#define CL_LOADS 4

// The chain's output layer with the likelihood (deconv_likelihood, and deconv_likelihood_backward's one
// kernel): instead of out and pre, a sum's gradient dpre = d log p(data | act(pre)) / d pre, its
// log-likelihood added to lp (double, as kernels/likelihood.cu computes it); the block's sum goes to
// partials, and the last block of an image to finish adds its image's partials in order into logp.
struct lik_epilogue {
    const float *data;      // the images [n, ci, h, w]
    const float *log_sigma; // one scalar
    int kind;               // enum lpc_likelihood
    float *logp;            // [n]
    double *partials;       // one per block
    unsigned *arrivals;     // one per image: blocks finished (zero between launches)
};

// lpc_pw_likelihood with its discretized branch (erfc, logs in double) as one call, not inlined at each of
// the epilogue's call sites
static __device__ __noinline__ double discretized_logp(float x, float mu, double ls, double *dm) {
    double dl;
    return lpc_pw_discretized(x, mu, ls, dm, &dl);
}

// the likelihood's gradient d log p / d pre of one output (sum + bias, then the activation), its
// log-likelihood added to lp
static __device__ __forceinline__ float likelihood_gradient(float sum, float bias, int act, float x, double ls,
                                                           double inv_var, int kind, double &lp) {
    const float pre = sum + bias, mu = lpc_pw_act(pre, act);
    double dm, dl;
    lp += kind == LPC_LIK_DISCRETIZED_GAUSSIAN ? discretized_logp(x, mu, ls, &dm)
                                               : lpc_pw_gaussian_scaled(x, mu, ls, inv_var, &dm, &dl);
    return (float)dm * lpc_pw_act_derivative(pre, act);
}

#endif
