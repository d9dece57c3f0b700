/* The convolution ops of the CUDA backend: each call goes to one of seven implementations, by the
 * `conv_algo` setting:
 *   cudnn     cuDNN (kernels/conv_cudnn.c);
 *   gemm      forward and backward-data lowered to strided-batched cuBLAS GEMMs with gather kernels
 *             (kernels/conv_gemm.cu);
 *   implicit  forward and backward-data as lpc's implicit-GEMM tensor-core kernels
 *             (kernels/conv_implicit.cu);
 *   direct    forward and backward-data as lpc's direct kernels for thin layers, at most 4 channels on
 *             the large side (kernels/conv_direct.cu), cuDNN for the other layers;
 *   nhwc      forward and backward-data on cuDNN in channel-last order: the input and the filter are
 *             copied to [n, h, w, c] and [co, k, k, ci] (kernels/layout.cu; the filter once per window
 *             of fixed parameters, such as a chain), cuDNN's graph API runs on the copies
 *             (kernels/conv_cudnn_graph.c) and its output is copied back to NCHW (cuDNN's TF32 engines
 *             are several times faster on channel-last tensors);
 *   subpixel  backward-data of kernel 4, stride 2, padding 1 (the decoder's transposed convolutions) as
 *             one stride-1 convolution with a 2 x 2 filter from the layer's input to its four output
 *             phases [n, ho + 1, wo + 1, 4 ci] on cuDNN's graph API, whose forward engines beat its
 *             backward-data engines on the small wide layers (not on the large ones), then an
 *             interleave of the phases into the output that adds the bias and applies the activation
 *             (kernels/layout.cu); the filter rearranged once per window like the nhwc path's copies;
 *             every other call as nhwc;
 *   implicit_nhwc  forward and backward-data (that of kernel 4, stride 2, padding 1) as lpc's implicit-GEMM
 *             tensor-core kernels on channel-last tensors (kernels/conv_implicit_nhwc.cu): the nhwc
 *             path's copies of NCHW inputs and of the filter (for backward-data the sub-pixel path's
 *             filter), no copy of the output, which the kernels write in either layout with the bias,
 *             activation or act_below factor in their epilogue; layers whose channel counts are not
 *             multiples of 32 on the direct kernels where those fit, else on cuDNN;
 *   auto      per shape, operation and form (plain, or fused as the decoder layer's op below), the
 *             fastest of the seven, timed once as that very call replayed in a graph when it is first
 *             made, outside any graph capture. With `deterministic = true` no
 *             timing decides, so that a run never depends on a measurement: a fixed rule from
 *             measured timings (see deterministic_path; every path is deterministic).
 * backward-filter always runs on cuDNN. Shapes with a tensor of 2^31 elements or more (or, for the
 * lowering, such a column matrix) run on cuDNN.
 * The decoder's fused layer ops are one kernel on the implicit and direct paths and one GEMM plus one gather
 * kernel on the gemm path: transposed convolution + bias + activation (the epilogue or col2im adds
 * the bias and applies the activation), and the inference-only backward through activation and
 * convolution (the gather applies the activation's derivative). On cuDNN they are the convolution
 * plus the bias-activation kernel; on the nhwc path the copies do that work (act' on the way in, bias
 * and activation on the way out).
 * Shapes with a side the caller keeps channel-last (the decoder's activations between two wide layers,
 * when the backend prefers them so: conv_algo = nhwc, or timed auto with TF32 math) run on the nhwc path
 * without that side's copy (act' in place, bias and activation by the bias-activation kernel), or on
 * cuDNN's legacy API with that side copied to NCHW (as backward-filter does); auto times both, the
 * deterministic rule takes the nhwc path. The chain's backward multiplies the gradient of such an
 * activation by its act' where it is produced, in the forward convolution of the layer above (the
 * act_below factor): on the nhwc path that is the epilogue of cuDNN's convolution; elsewhere a pass over
 * the output after it.
 * The chain's output layer with the likelihood and its backward (deconv_likelihood_backward) is one kernel
 * where both calls are on the direct path (kernels/conv_direct_output.cu) and the form chosen below
 * (lpc_cuda_deconv_likelihood_backward) takes it, else the two ops. */
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cuda_internal.h"
#include "lpc/check.h"
#include "lpc/config.h"

enum { OP_FORWARD, OP_BACKWARD_DATA, OP_COUNT };
#define MAX_CHOICES 512

struct choice {
    struct lpc_conv_shape s;
    int tf32, deterministic, conv_algo; /* a timed choice never serves a deterministic run */
    int path[OP_COUNT][2]; /* [op][fused]: an enum lpc_conv_algo other than LPC_CONV_AUTO; -1: not chosen yet */
    int output_fused;      /* the chain's output layer in one kernel (1) or as two ops (0); -1: not chosen yet */
};

static struct choice choices[MAX_CHOICES];
static int n_choices;
/* the lowering's column matrix, the implicit GEMM's partial tiles and the nhwc path's copies and cuDNN
 * workspace live in the backend's workspace, reserved when the path is chosen */
static float *cols_for(const struct lpc_conv_shape *s) { return (float *)lpc_cuda_workspace(lpc_gemm_conv_workspace(s)); }
static void *partials_for(const struct lpc_conv_shape *s) { return lpc_cuda_workspace(lpc_implicit_conv_workspace(s)); }

/* the nhwc path's part of the workspace for one op: cuDNN's own, then the channel-last input x, output y
 * and filter (where the filter has no copy kept for the window: kernels/fixed_copies.c) */
struct channels_last_buffers {
    void *cudnn;
    float *x, *y, *w;
};
static size_t aligned(size_t bytes) { return (bytes + 255) & ~(size_t)255; }

/* act_below: the act' factor the forward's cuDNN graph applies to y (LPC_ACT_NONE for none) */
static struct channels_last_buffers channels_last_for(int op, const struct lpc_conv_shape *s, int act_below) {
    const size_t cudnn = aligned(lpc_cudnn_graph_workspace(s, op == OP_BACKWARD_DATA, act_below));
    const size_t x = aligned(lpc_conv_x_elements(s) * sizeof(float)), y = aligned(lpc_conv_y_elements(s) * sizeof(float));
    const size_t w = lpc_conv_w_elements(s) * sizeof(float);
    char *base = lpc_cuda_workspace(cudnn + x + y + w);
    struct channels_last_buffers b = {base, (float *)(base + cudnn), (float *)(base + cudnn + x),
                                      (float *)(base + cudnn + x + y)};
    return b;
}

/* the sub-pixel path (see the top of the file): its convolution, from the shape's y side to the phases */
static struct lpc_conv_shape subpixel_shape(const struct lpc_conv_shape *s) {
    const struct lpc_conv_shape p = {s->n, s->co, s->ho, s->wo, 4 * s->ci, s->ho + 1, s->wo + 1, 2, 1, 1, 1, 1};
    return p;
}
/* its part of the workspace: cuDNN's own, the channel-last input, the phases and the filter */
struct subpixel_buffers {
    void *cudnn;
    float *in, *phases, *w;
};
static struct subpixel_buffers subpixel_for(const struct lpc_conv_shape *s) {
    const struct lpc_conv_shape p = subpixel_shape(s);
    const size_t cudnn = aligned(lpc_cudnn_graph_workspace(&p, 0, LPC_ACT_NONE));
    const size_t in = aligned(lpc_conv_x_elements(&p) * sizeof(float));
    const size_t phases = aligned(lpc_conv_y_elements(&p) * sizeof(float));
    char *base = lpc_cuda_workspace(cudnn + in + phases + lpc_conv_w_elements(&p) * sizeof(float));
    struct subpixel_buffers b = {base, (float *)(base + cudnn), (float *)(base + cudnn + in),
                                 (float *)(base + cudnn + in + phases)};
    return b;
}

/* the implicit_nhwc path's part of the workspace for one op: the kernels' partial tiles, then
 * channel-last copies of an NCHW input side and the filter (where the filter has no copy kept for the
 * window) */
struct implicit_nhwc_buffers {
    void *partials;
    float *x, *y, *w;
};
static struct implicit_nhwc_buffers implicit_nhwc_for(int op, const struct lpc_conv_shape *s) {
    const size_t partials = aligned(lpc_implicit_nhwc_workspace(op == OP_BACKWARD_DATA, s));
    const size_t x = aligned(lpc_conv_x_elements(s) * sizeof(float)), y = aligned(lpc_conv_y_elements(s) * sizeof(float));
    char *base = lpc_cuda_workspace(partials + x + y + lpc_conv_w_elements(s) * sizeof(float));
    struct implicit_nhwc_buffers b = {base, (float *)(base + partials), (float *)(base + partials + x),
                                      (float *)(base + partials + x + y)};
    return b;
}

/* cuDNN's legacy API has no algorithms for many mixes of NCHW and channel-last tensors: a shape with a
 * channel-last side runs it on NCHW copies of that side, in the workspace after cuDNN's own part */
struct nchw_buffers {
    float *x, *y;
};
static struct nchw_buffers nchw_for(const struct lpc_conv_shape *s) {
    const struct lpc_conv_shape g = lpc_conv_geometry(s);
    const size_t cudnn = aligned(lpc_cudnn_conv_workspace(&g)), x = aligned(lpc_conv_x_elements(s) * sizeof(float));
    char *base = lpc_cuda_workspace(cudnn + x + lpc_conv_y_elements(s) * sizeof(float));
    struct nchw_buffers b = {(float *)(base + cudnn), (float *)(base + cudnn + x)};
    return b;
}
/* a side as NCHW: the tensor itself, or where the shape keeps that side channel-last its copy in `copy` */
static const float *x_as_nchw(const float *x, const struct lpc_conv_shape *s, float *copy) {
    if (!s->x_channels_last) return x;
    lpc_cuda_from_channels_last(copy, NULL, x, NULL, LPC_ACT_NONE, s->n, s->ci, s->h * s->w);
    return copy;
}
static const float *y_as_nchw(const float *y, const struct lpc_conv_shape *s, float *copy) {
    if (!s->y_channels_last) return y;
    lpc_cuda_from_channels_last(copy, NULL, y, NULL, LPC_ACT_NONE, s->n, s->co, s->ho * s->wo);
    return copy;
}
/* the y side channel-last, for the graph API's paths: the tensor itself or its copy in `copy` */
static const float *y_as_channels_last(const float *y, const struct lpc_conv_shape *s, float *copy) {
    if (s->y_channels_last) return y;
    lpc_cuda_to_channels_last(copy, y, NULL, LPC_ACT_NONE, s->n, s->co, s->ho * s->wo);
    return copy;
}

/* a side kept channel-last by the caller (struct lpc_conv_shape): the paths on channel-last tensors take
 * such shapes as they are, cuDNN's legacy API on NCHW copies; the gemm and implicit paths do not take them */
static int has_channels_last(const struct lpc_conv_shape *s) { return s->x_channels_last || s->y_channels_last; }

static int path_fits(int path, int op, const struct lpc_conv_shape *s) {
    const size_t limit = (size_t)1 << 31;
    if (has_channels_last(s) && (path == LPC_CONV_GEMM || path == LPC_CONV_IMPLICIT)) return 0;
    if (path == LPC_CONV_SUBPIXEL) {
        const struct lpc_conv_shape p = subpixel_shape(s);
        return op == OP_BACKWARD_DATA && s->k == 4 && s->stride == 2 && s->pad == 1 && s->h == 2 * s->ho &&
               s->w == 2 * s->wo && lpc_conv_x_elements(s) < limit && lpc_conv_x_elements(&p) < limit &&
               lpc_conv_y_elements(&p) < limit && lpc_conv_w_elements(&p) < limit;
    }
    if (path == LPC_CONV_GEMM) return lpc_gemm_conv_fits(s);
    if (path == LPC_CONV_IMPLICIT) return lpc_implicit_conv_fits(s);
    if (path == LPC_CONV_DIRECT) return lpc_direct_conv_fits(s);
    if (path == LPC_CONV_IMPLICIT_NHWC) return lpc_implicit_nhwc_fits(op == OP_BACKWARD_DATA, s);
    if (path == LPC_CONV_NHWC)
        return lpc_conv_x_elements(s) < limit && lpc_conv_y_elements(s) < limit && lpc_conv_w_elements(s) < limit;
    return 1;
}

/* one call of a convolution op as the model makes it: plain, or the decoder layer's fused op
 * (act, act_below != LPC_ACT_NONE or bias set): OP_BACKWARD_DATA: pre = conv + bias, out = act(pre);
 * OP_FORWARD: out = conv(in * act'(pre)) * act_below'(pre_below), where cuDNN's path multiplies `in` in
 * place (scratch) */
struct conv_call {
    int op;
    float *out, *in, *pre;
    const float *w, *bias;
    int act;
    const float *pre_below;
    int act_below;
};

/* the forward's input channel-last and times act'(pre) for the fused op, as the channel-last paths read
 * it: an NCHW input copied so into `copy`, a channel-last one multiplied in place (the fused forward's
 * input is scratch) */
static const float *forward_input_channels_last(const struct conv_call *c, const struct lpc_conv_shape *s,
                                                float *copy) {
    if (!s->x_channels_last) {
        lpc_cuda_to_channels_last(copy, c->in, c->pre, c->act, s->n, s->ci, s->h * s->w);
        return copy;
    }
    if (c->act != LPC_ACT_NONE)
        lpc_cuda_bias_act_backward(c->in, NULL, c->in, c->pre, lpc_conv_x_rows(s), s->ci, 1, c->act);
    return c->in;
}

static int is_fused(const struct conv_call *c) {
    return c->act != LPC_ACT_NONE || c->bias || c->act_below != LPC_ACT_NONE;
}
/* the act' factor of a forward that the nhwc path's cuDNN graph applies: where y is channel-last, as
 * pre_below is then (else a pass after the copy back applies it) */
static int graph_act_below(const struct conv_call *c, const struct lpc_conv_shape *s) {
    return c->op == OP_FORWARD && s->y_channels_last ? c->act_below : LPC_ACT_NONE;
}

static void reserve(int path, const struct conv_call *c, const struct lpc_conv_shape *s) {
    if (path == LPC_CONV_CUDNN && has_channels_last(s)) nchw_for(s);
    if (path == LPC_CONV_GEMM) cols_for(s);
    if (path == LPC_CONV_IMPLICIT) partials_for(s);
    if (path == LPC_CONV_NHWC) channels_last_for(c->op, s, graph_act_below(c, s));
    if (path == LPC_CONV_SUBPIXEL) subpixel_for(s);
    if (path == LPC_CONV_IMPLICIT_NHWC) implicit_nhwc_for(c->op, s);
}

static const char *path_name(int path) {
    return path == LPC_CONV_GEMM       ? "gemm"
           : path == LPC_CONV_IMPLICIT ? "implicit"
           : path == LPC_CONV_DIRECT   ? "direct"
           : path == LPC_CONV_NHWC     ? "nhwc"
           : path == LPC_CONV_SUBPIXEL ? "subpixel"
           : path == LPC_CONV_IMPLICIT_NHWC ? "implicit_nhwc"
                                            : "cudnn";
}

static struct choice *choice_for(const struct lpc_conv_shape *s) {
    for (int i = 0; i < n_choices; i++)
        if (choices[i].tf32 == lpc_cuda.tf32 && choices[i].deterministic == lpc_cuda.deterministic &&
            choices[i].conv_algo == lpc_cuda.conv_algo &&
            memcmp(&choices[i].s, s, sizeof *s) == 0)
            return &choices[i];
    if (n_choices == MAX_CHOICES)
        lpc_die_internal("convolution", "choice_for", __func__, __FILE__, __LINE__, "too many convolution shapes");
    struct choice *c = &choices[n_choices++];
    c->s = *s;
    c->tf32 = lpc_cuda.tf32;
    c->deterministic = lpc_cuda.deterministic;
    c->conv_algo = lpc_cuda.conv_algo;
    for (int i = 0; i < OP_COUNT; i++) c->path[i][0] = c->path[i][1] = -1;
    c->output_fused = -1;
    return c;
}

/* the filter w in channel-last order or rearranged for the sub-pixel path (`form`): the copy kept for the
 * window of fixed parameters (kernels/fixed_copies.c), or a copy made now in `scratch` */
static const float *filter_copy(const float *w, const struct lpc_conv_shape *s, int form, float *scratch) {
    int make;
    float *dst = lpc_cuda_fixed_copy(w, form, lpc_conv_w_elements(s), scratch, &make);
    if (!make) return dst;
    if (form == LPC_FIXED_FILTER_SUBPIXEL) lpc_cuda_subpixel_filter(dst, w, s->co, s->ci);
    else lpc_cuda_to_channels_last(dst, w, NULL, LPC_ACT_NONE, s->co, s->ci, s->k * s->k);
    return dst;
}

/* the call on the nhwc path: the filter and the NCHW sides copied to channel-last order (the input times
 * act'(pre) for the fused forward), cuDNN on them, an NCHW output copied back (plus bias and activation).
 * Sides the caller keeps channel-last are used as they are: act' is then applied in place (the fused
 * forward's input is scratch), and bias and activation after cuDNN wrote pre; the forward's act_below
 * factor on a channel-last y is cuDNN's epilogue. */
static void run_channels_last(const struct conv_call *c, const struct lpc_conv_shape *s) {
    const int act_below = graph_act_below(c, s);
    const struct channels_last_buffers b = channels_last_for(c->op, s, act_below);
    const float *w = filter_copy(c->w, s, LPC_FIXED_FILTER_CHANNELS_LAST, b.w);
    if (c->op == OP_FORWARD) {
        float *y = s->y_channels_last ? c->out : b.y;
        lpc_cudnn_graph_forward(y, forward_input_channels_last(c, s, b.x), w, c->pre_below, act_below, s, b.cudnn);
        if (!s->y_channels_last)
            lpc_cuda_from_channels_last(c->out, NULL, b.y, NULL, LPC_ACT_NONE, s->n, s->co, s->ho * s->wo);
    } else {
        const float *dy = y_as_channels_last(c->in, s, b.y);
        if (!s->x_channels_last) {
            lpc_cudnn_graph_backward_data(b.x, dy, w, s, b.cudnn);
            lpc_cuda_from_channels_last(c->out, c->pre, b.x, c->bias, c->act, s->n, s->ci, s->h * s->w);
        } else if (is_fused(c)) {
            lpc_cudnn_graph_backward_data(c->pre, dy, w, s, b.cudnn);
            lpc_cuda_bias_act_forward(c->out, c->pre, c->bias, lpc_conv_x_rows(s), s->ci, 1, c->act);
        } else {
            lpc_cudnn_graph_backward_data(c->out, dy, w, s, b.cudnn);
        }
    }
}

/* the call on the sub-pixel path: an NCHW input copied to channel-last order, the phases by cuDNN's
 * forward convolution, interleaved into the output in its layout (with bias and activation for the
 * decoder's fused op) */
static void run_subpixel(const struct conv_call *c, const struct lpc_conv_shape *s) {
    const struct lpc_conv_shape p = subpixel_shape(s);
    const struct subpixel_buffers b = subpixel_for(s);
    const float *w = filter_copy(c->w, s, LPC_FIXED_FILTER_SUBPIXEL, b.w);
    lpc_cudnn_graph_forward(b.phases, y_as_channels_last(c->in, s, b.in), w, NULL, LPC_ACT_NONE, &p, b.cudnn);
    lpc_cuda_subpixel_interleave(c->out, is_fused(c) ? c->pre : NULL, b.phases, c->bias, c->act, s->n, s->ci, s->ho,
                                 s->wo, s->x_channels_last);
}

/* the call on the implicit_nhwc path: the input channel-last as on the nhwc path, the output written by
 * the kernel in its own layout */
static void run_implicit_nhwc(const struct conv_call *c, const struct lpc_conv_shape *s) {
    const struct implicit_nhwc_buffers b = implicit_nhwc_for(c->op, s);
    if (c->op == OP_FORWARD) {
        const float *w = filter_copy(c->w, s, LPC_FIXED_FILTER_CHANNELS_LAST, b.w);
        lpc_implicit_nhwc_forward(c->out, forward_input_channels_last(c, s, b.x), w, c->pre_below, c->act_below, s,
                                  b.partials);
    } else {
        const float *w = filter_copy(c->w, s, LPC_FIXED_FILTER_SUBPIXEL, b.w);
        lpc_implicit_nhwc_transposed(c->out, is_fused(c) ? c->pre : NULL, c->bias, c->act, y_as_channels_last(c->in, s, b.y),
                                     w, s, b.partials);
    }
}

/* the call on cuDNN's legacy API: NCHW tensors, with channel-last sides copied (act' applied to the
 * fused forward's input in place, bias and activation after the fused backward-data) */
static void run_cudnn(const struct conv_call *c, const struct lpc_conv_shape *s) {
    const struct lpc_conv_shape g = lpc_conv_geometry(s);
    const struct nchw_buffers b = has_channels_last(s) ? nchw_for(s) : (struct nchw_buffers){NULL, NULL};
    if (c->op == OP_FORWARD) {
        float *y = s->y_channels_last ? b.y : c->out;
        if (c->act != LPC_ACT_NONE)
            lpc_cuda_bias_act_backward(c->in, NULL, c->in, c->pre, lpc_conv_x_rows(s), s->ci, lpc_conv_x_per_row(s), c->act);
        lpc_cudnn_conv_forward(y, x_as_nchw(c->in, s, b.x), c->w, &g);
        if (s->y_channels_last) lpc_cuda_to_channels_last(c->out, b.y, NULL, LPC_ACT_NONE, s->n, s->co, s->ho * s->wo);
    } else {
        float *dx = is_fused(c) ? c->pre : c->out;
        lpc_cudnn_conv_backward_data(s->x_channels_last ? b.x : dx, y_as_nchw(c->in, s, b.y), c->w, &g);
        if (s->x_channels_last) lpc_cuda_to_channels_last(dx, b.x, NULL, LPC_ACT_NONE, s->n, s->ci, s->h * s->w);
        if (is_fused(c))
            lpc_cuda_bias_act_forward(c->out, c->pre, c->bias, lpc_conv_x_rows(s), s->ci, lpc_conv_x_per_row(s), c->act);
    }
}

static void run(const struct conv_call *c, int path, const struct lpc_conv_shape *s) {
    /* the forward's act_below factor: cuDNN's epilogue on the nhwc path with y channel-last, the kernels'
     * on the implicit_nhwc and direct paths, else a pass over y after the convolution (elementwise: y's
     * layout does not matter) */
    if (c->op == OP_FORWARD && c->act_below != LPC_ACT_NONE && !(path == LPC_CONV_NHWC && s->y_channels_last) &&
        path != LPC_CONV_IMPLICIT_NHWC && path != LPC_CONV_DIRECT) {
        struct conv_call plain = *c;
        plain.pre_below = NULL, plain.act_below = LPC_ACT_NONE;
        run(&plain, path, s);
        lpc_cuda_bias_act_backward(c->out, NULL, c->out, c->pre_below, s->n, s->co, s->ho * s->wo, c->act_below);
        return;
    }
    if (path == LPC_CONV_NHWC) {
        run_channels_last(c, s);
    } else if (path == LPC_CONV_SUBPIXEL) {
        run_subpixel(c, s);
    } else if (path == LPC_CONV_IMPLICIT_NHWC) {
        run_implicit_nhwc(c, s);
    } else if (path == LPC_CONV_CUDNN) {
        run_cudnn(c, s);
    } else if (c->op == OP_FORWARD) {
        if (path == LPC_CONV_GEMM) {
            lpc_gemm_conv_forward(c->out, c->in, c->pre, c->act, s, c->w, cols_for(s));
        } else if (path == LPC_CONV_IMPLICIT) {
            lpc_implicit_conv_forward(c->out, c->in, c->pre, c->act, s, c->w, partials_for(s));
        } else {
            lpc_direct_conv_forward(c->out, c->in, c->pre, c->act, c->pre_below, c->act_below, s, c->w);
        }
    } else {
        if (path == LPC_CONV_GEMM) {
            lpc_gemm_conv_backward_data(c->out, c->pre, c->bias, c->act, c->in, c->w, s, cols_for(s));
        } else if (path == LPC_CONV_IMPLICIT) {
            lpc_implicit_conv_transposed(c->out, c->pre, c->bias, c->act, c->in, c->w, s, partials_for(s));
        } else {
            lpc_direct_conv_transposed(c->out, c->pre, c->bias, c->act, c->in, c->w, s);
        }
    }
}

/* milliseconds per call of one path, as the chain runs it (lpc_cuda_time_calls) */
struct timed_call {
    const struct conv_call *call;
    int path;
    const struct lpc_conv_shape *s;
};
static void run_timed(void *ctx) {
    const struct timed_call *t = ctx;
    run(t->call, t->path, t->s);
}
static float time_path(const struct conv_call *c, int path, const struct lpc_conv_shape *s) {
    struct timed_call t = {c, path, s};
    return lpc_cuda_time_calls(run_timed, &t);
}

/* deterministic auto: a fixed rule from whole-chain measurements with `deterministic = true` on an
 * H200 (bench/RESULTS.md, 2026-11-28; cifar32 and celeba64 at batch 64 and 256). cuDNN restricted to
 * its deterministic algorithms was the slowest path in every row. With fp32 math the implicit kernels
 * (three TF32 products on tensor cores) for the layers with more than 4 image-side channels and the
 * lowering for the image layer were the fastest mix in all four rows (7,686 / 3,379 / 2,531 / 814
 * Langevin steps/s against 7,249 / 2,832 / 2,165 / 674 for the lowering alone); with tf32 math the
 * lowering alone was fastest in three rows and within 1 % in the fourth. The thin (image) layers go to
 * the direct kernels, both operations: faster per call than the lowering, which the rule would take
 * otherwise, in all four rows (bench/RESULTS.md, 2026-11-29). With tf32 math the nhwc path takes the
 * transposed convolution from NHWC_RULE_ELEMENTS elements on the large side (n * ci * h * w) and the
 * forward from NHWC_RULE_CHANNELS large-side channels: in the per-call timings of the four rows it beat
 * the lowering on every such layer and lost on every other one. Taking the forward from 2^18 elements
 * instead, where the timed choices favour it too, made all four rows 15-26 % slower here, where cuDNN's
 * first engine runs untimed (bench/RESULTS.md, 2026-11-29, cuDNN on channel-last copies). */
#define NHWC_RULE_ELEMENTS ((size_t)1 << 20)
#define NHWC_RULE_CHANNELS 64
static int deterministic_path(int op, const struct lpc_conv_shape *s) {
    if (lpc_direct_conv_fits(s)) return LPC_CONV_DIRECT;
    if (has_channels_last(s)) return LPC_CONV_NHWC;
    if (lpc_cuda.tf32 && (op == OP_BACKWARD_DATA ? lpc_conv_x_elements(s) >= NHWC_RULE_ELEMENTS : s->ci >= NHWC_RULE_CHANNELS))
        return LPC_CONV_NHWC;
    return !lpc_cuda.tf32 && s->ci > 4 ? LPC_CONV_IMPLICIT : LPC_CONV_GEMM;
}

/* where a forced path does not take a call: the sub-pixel path's other calls as nhwc, the implicit_nhwc
 * path's thin layers on the direct kernels, every other one on cuDNN */
static int fallback_path(int want, int op, const struct lpc_conv_shape *s) {
    if (want == LPC_CONV_SUBPIXEL && path_fits(LPC_CONV_NHWC, op, s)) return LPC_CONV_NHWC;
    if (want == LPC_CONV_IMPLICIT_NHWC && lpc_direct_conv_fits(s)) return LPC_CONV_DIRECT;
    return LPC_CONV_CUDNN;
}

/* the path for this call's op and shape, plain or fused; the first time, also its workspace. `auto`
 * times the call itself (a fused op as fused, the chain's ops apart from the encoder's and the
 * theta-gradient's plain ones of the same shape) on a copy of its input, since a fused forward may
 * overwrite its input; the timed candidates write only outputs the caller's call then overwrites. */
static int path_for(const struct conv_call *call, const struct lpc_conv_shape *s) {
    if (lpc_cuda.conv_algo == LPC_CONV_CUDNN) return LPC_CONV_CUDNN;
    const int op = call->op;
    struct choice *c = choice_for(s);
    int *path = &c->path[op][is_fused(call)];
    if (*path >= 0) return *path;
    if (lpc_cuda_capturing())
        lpc_die_internal("convolution", "path_for", __func__, __FILE__, __LINE__,
                         "a convolution shape was first seen inside a graph capture");
    if (lpc_cuda.conv_algo != LPC_CONV_AUTO || lpc_cuda.deterministic) {
        int want = lpc_cuda.conv_algo;
        if (want == LPC_CONV_AUTO) want = deterministic_path(op, s);
        *path = path_fits(want, op, s) ? want : fallback_path(want, op, s);
        reserve(*path, call, s);
        return *path;
    }
    const size_t in_bytes = (op == OP_FORWARD ? lpc_conv_x_elements(s) : lpc_conv_y_elements(s)) * sizeof(float);
    struct conv_call timed = *call;
    LPC_CHECK_CUDA(cudaMalloc((void **)&timed.in, in_bytes));
    LPC_CHECK_CUDA(cudaMemcpyAsync(timed.in, call->in, in_bytes, cudaMemcpyDeviceToDevice, (cudaStream_t)lpc_cuda.stream));
    const int candidates[] = {LPC_CONV_CUDNN, LPC_CONV_GEMM,     LPC_CONV_IMPLICIT,     LPC_CONV_DIRECT,
                              LPC_CONV_NHWC,  LPC_CONV_SUBPIXEL, LPC_CONV_IMPLICIT_NHWC};
    float best = 0;
    char report[256] = "";
    int used = 0;
    for (int i = 0; i < (int)(sizeof candidates / sizeof *candidates); i++) {
        if (!path_fits(candidates[i], op, s)) continue;
        /* with fp32 math cuDNN has only CUDA-core engines for channel-last tensors: 1.3-8x slower than the
         * best other path on all 48 calls of the benchmark rows timed (bench/RESULTS.md, 2026-11-29) */
        if ((candidates[i] == LPC_CONV_NHWC || candidates[i] == LPC_CONV_SUBPIXEL) && !lpc_cuda.tf32) continue;
        reserve(candidates[i], call, s);
        const float t = time_path(&timed, candidates[i], s);
        if (*path < 0 || t < best) *path = candidates[i], best = t;
        if (used < (int)sizeof report)
            used += snprintf(report + used, sizeof report - used, "%s %s %.1f us", i ? "," : "", path_name(candidates[i]),
                             1e3 * t);
    }
    LPC_CHECK_CUDA(cudaStreamSynchronize((cudaStream_t)lpc_cuda.stream));
    LPC_CHECK_CUDA(cudaFree(timed.in));
    fprintf(stderr, "lpc: convolution [%d, %d, %d, %d]%s <-> [%d, %d, %d, %d]%s k%d s%d %s%s:%s -> %s\n", s->n, s->ci,
            s->h, s->w, s->x_channels_last ? " channel-last" : "", s->n, s->co, s->ho, s->wo,
            s->y_channels_last ? " channel-last" : "", s->k, s->stride, op == OP_FORWARD ? "forward" : "backward-data",
            is_fused(call) ? " (fused)" : "", report, path_name(*path));
    return *path;
}

static void convolve(const struct conv_call *c, const struct lpc_conv_shape *s) { run(c, path_for(c, s), s); }

void lpc_cuda_conv2d_forward(float *y, const float *x, const float *w, const struct lpc_conv_shape *s) {
    const struct conv_call c = {.op = OP_FORWARD, .out = y, .in = (float *)x, .w = w, .act = LPC_ACT_NONE,
                                .act_below = LPC_ACT_NONE};
    convolve(&c, s);
}

void lpc_cuda_conv2d_backward_data(float *dx, const float *dy, const float *w, const struct lpc_conv_shape *s) {
    const struct conv_call c = {.op = OP_BACKWARD_DATA, .out = dx, .in = (float *)dy, .w = w, .act = LPC_ACT_NONE,
                                .act_below = LPC_ACT_NONE};
    convolve(&c, s);
}

void lpc_cuda_conv2d_backward_filter(float *dw, const float *dy, const float *x, const struct lpc_conv_shape *s) {
    if (!has_channels_last(s)) {
        lpc_cudnn_conv_backward_filter(dw, dy, x, s);
        return;
    }
    const struct lpc_conv_shape g = lpc_conv_geometry(s);
    const struct nchw_buffers b = nchw_for(s);
    lpc_cudnn_conv_backward_filter(dw, y_as_nchw(dy, s, b.y), x_as_nchw(x, s, b.x), &g);
}

/* the decoder layer's fused calls: its forward (a transposed convolution with bias and activation) and
 * the chain's backward through it (act', the forward convolution, act_below') */
static struct conv_call deconv_call(float *out, float *pre, const float *x, const float *w, const float *b, int act) {
    return (struct conv_call){.op = OP_BACKWARD_DATA, .out = out, .in = (float *)x, .pre = pre, .w = w, .bias = b,
                              .act = act, .act_below = LPC_ACT_NONE};
}
static struct conv_call act_conv_call(float *y, float *dout, const float *pre, const float *w, int act,
                                      const float *pre_below, int act_below) {
    return (struct conv_call){.op = OP_FORWARD, .out = y, .in = dout, .pre = (float *)pre, .w = w, .act = act,
                              .pre_below = pre_below, .act_below = act_below};
}

void lpc_cuda_deconv_bias_act_forward(float *out, float *pre, const float *x, const float *w, const float *b,
                                      const struct lpc_conv_shape *s, int act) {
    const struct conv_call c = deconv_call(out, pre, x, w, b, act);
    convolve(&c, s);
}

void lpc_cuda_act_conv2d_forward(float *y, float *dout, const float *pre, const float *w,
                                 const struct lpc_conv_shape *s, int act, const float *pre_below, int act_below) {
    const struct conv_call c = act_conv_call(y, dout, pre, w, act, pre_below, act_below);
    convolve(&c, s);
}

/* the output layer's call as the decoder's fused op, then the likelihood in the direct kernel's epilogue
 * where `auto` or the rule put the call on the direct path and its channel-last kernel takes it, else the
 * likelihood kernel after the call (with the output activation's derivative in its pass) */
void lpc_cuda_deconv_likelihood(float *dpre, float *logp, float *out, float *pre, const float *x, const float *w,
                                const float *b, const float *data, const float *log_sigma,
                                const struct lpc_conv_shape *s, int act, int kind) {
    const struct conv_call c = deconv_call(out, pre, x, w, b, act);
    const int path = path_for(&c, s);
    if (path == LPC_CONV_DIRECT && lpc_direct_likelihood_fits(s)) {
        lpc_direct_conv_transposed_likelihood(dpre, logp, b, act, x, w, s, data, log_sigma, kind);
        return;
    }
    run(&c, path, s);
    lpc_cuda_likelihood_act(logp, dpre, data, out, pre, act, log_sigma, s->n, s->ci * s->h * s->w, kind);
}

/* The chain's output layer and its way back: one kernel (kernels/conv_direct_output.cu) where both calls
 * are on the direct path and it takes the shape, or deconv_likelihood and act_conv2d_forward. Timed `auto`
 * times both forms as the chain runs them; deterministic `auto` takes the kernel up to
 * OUTPUT_RULE_PIXELS small-side pixels (n * ho * wo): in the chain's steps on an H200 it was 11 % faster
 * at 2^14 (cifar32 batch 64) and 2.5-6.5 % slower at 2^16 and 2^18 (bench/RESULTS.md, 2026-11-29); a forced
 * path that puts both calls on the direct kernels takes it wherever it fits. */
#define OUTPUT_RULE_PIXELS ((long long)1 << 14)
struct output_call {
    float *d_below, *dpre, *logp, *out, *pre;
    const float *x, *w, *b, *data, *log_sigma, *pre_below;
    const struct lpc_conv_shape *s;
    int act, kind, act_below, fused;
};
static void run_output(const struct output_call *o) {
    if (o->fused) {
        lpc_direct_output_layer(o->d_below, o->dpre, o->logp, o->act_below == LPC_ACT_NONE ? NULL : o->pre_below,
                                o->act_below, o->b, o->act, o->x, o->w, o->s, o->data, o->log_sigma, o->kind);
        return;
    }
    lpc_cuda_deconv_likelihood(o->dpre, o->logp, o->out, o->pre, o->x, o->w, o->b, o->data, o->log_sigma, o->s, o->act,
                               o->kind);
    lpc_cuda_act_conv2d_forward(o->d_below, o->dpre, o->pre, o->w, o->s, LPC_ACT_NONE, o->pre_below, o->act_below);
}
static void run_output_timed(void *ctx) { run_output(ctx); }

static int output_fused(struct output_call *o) {
    const struct lpc_conv_shape *s = o->s;
    const struct conv_call up = deconv_call(o->out, o->pre, o->x, o->w, o->b, o->act);
    const struct conv_call down = act_conv_call(o->d_below, o->dpre, o->pre, o->w, LPC_ACT_NONE, o->pre_below,
                                                o->act_below);
    if (!lpc_direct_output_layer_fits(s) || path_for(&up, s) != LPC_CONV_DIRECT || path_for(&down, s) != LPC_CONV_DIRECT)
        return 0;
    if (lpc_cuda.conv_algo != LPC_CONV_AUTO) return 1;
    if (lpc_cuda.deterministic) return (long long)s->n * s->ho * s->wo <= OUTPUT_RULE_PIXELS;
    if (lpc_cuda_capturing())
        lpc_die_internal("convolution", "output_fused", __func__, __FILE__, __LINE__,
                         "an output layer's shape was first seen inside a graph capture");
    float ms[2];
    for (o->fused = 0; o->fused < 2; o->fused++) ms[o->fused] = lpc_cuda_time_calls(run_output_timed, o);
    fprintf(stderr,
            "lpc: output layer [%d, %d, %d, %d] <-> [%d, %d, %d, %d] channel-last with the likelihood and its "
            "backward: two ops %.1f us, one kernel %.1f us -> %s\n",
            s->n, s->ci, s->h, s->w, s->n, s->co, s->ho, s->wo, 1e3 * ms[0], 1e3 * ms[1],
            ms[1] < ms[0] ? "one kernel" : "two ops");
    return ms[1] < ms[0];
}

void lpc_cuda_deconv_likelihood_backward(float *d_below, float *dpre, float *logp, float *out, float *pre, const float *x,
                                         const float *w, const float *b, const float *data, const float *log_sigma,
                                         const struct lpc_conv_shape *s, int act, int kind, const float *pre_below,
                                         int act_below) {
    struct output_call o = {d_below, dpre, logp, out, pre, x, w, b, data, log_sigma, pre_below, s, act, kind, act_below,
                            0};
    struct choice *c = choice_for(s);
    const uintptr_t addresses =
        (uintptr_t)d_below | (uintptr_t)x | (uintptr_t)(act_below == LPC_ACT_NONE ? NULL : pre_below);
    if (addresses % 16 == 0) { /* the kernel's 16-byte accesses */
        if (c->output_fused < 0) c->output_fused = output_fused(&o);
        o.fused = c->output_fused;
    }
    run_output(&o);
}
