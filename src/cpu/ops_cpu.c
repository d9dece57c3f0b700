/* The CPU reference backend (SPEC.md section 4): plain C99 + OpenMP, convolutions as im2col +
 * cblas_sgemm over the whole batch (one large GEMM per layer rather than one per image). Every CUDA
 * op is checked against these. Reductions are done in double in a fixed order, so results do not
 * depend on the number of threads. */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "cpu_internal.h"
#include "lpc/check.h"
#include "lpc/config.h"
#include "lpc/ops.h"
#include "lpc/pointwise.h"

int lpc_conv_out_size(int in, int k, int stride, int pad) { return (in + 2 * pad - k) / stride + 1; }
int lpc_conv_x_rows(const struct lpc_conv_shape *s) { return s->x_channels_last ? s->n * s->h * s->w : s->n; }
int lpc_conv_x_per_row(const struct lpc_conv_shape *s) { return s->x_channels_last ? 1 : s->h * s->w; }

/* ---- memory ---------------------------------------------------------------------------------- */
/* Scratch memory for im2col and transposes; grows to the largest layer during the first step and is
 * reused afterwards (no allocation in steady state). */
static float *scratch[2];
static size_t scratch_len[2];

static size_t cpu_bytes; /* parameter, activation and chain buffers */
static void *cpu_alloc(size_t bytes) {
    cpu_bytes += bytes;
    return lpc_xalloc_aligned(bytes);
}
static size_t cpu_memory_used(void) { return cpu_bytes + (scratch_len[0] + scratch_len[1]) * sizeof(float); }
static void cpu_free(void *p) { lpc_free_aligned(p); }
static void cpu_copy(void *dst, const void *src, size_t bytes) {
    if (bytes) memmove(dst, src, bytes);
}
static void cpu_synchronize(void) {}

static float *get_scratch(int which, size_t n) {
    if (scratch_len[which] < n) {
        lpc_free_aligned(scratch[which]);
        scratch[which] = lpc_xalloc_aligned(n * sizeof(float));
        scratch_len[which] = n;
    }
    return scratch[which];
}

/* ---- elementwise and reductions -------------------------------------------------------------- */
static void cpu_fill(float *x, float value, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) x[i] = value;
}
static void cpu_scale(float *x, float a, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) x[i] *= a;
}

#define REDUCE_CHUNKS 64
static double cpu_sum_squares(const float *x, size_t n) {
    double part[REDUCE_CHUNKS];
    size_t chunk = (n + REDUCE_CHUNKS - 1) / REDUCE_CHUNKS;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int c = 0; c < REDUCE_CHUNKS; c++) {
        double s = 0;
        size_t end = (size_t)(c + 1) * chunk < n ? (size_t)(c + 1) * chunk : n;
        for (size_t i = (size_t)c * chunk; i < end; i++) s += (double)x[i] * x[i];
        part[c] = s;
    }
    double s = 0;
    for (int c = 0; c < REDUCE_CHUNKS; c++) s += part[c];
    return s;
}

static void cpu_row_sum_squares(float *out, const float *x, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        double s = 0;
        for (int c = 0; c < cols; c++) s += (double)x[(size_t)r * cols + c] * x[(size_t)r * cols + c];
        out[r] = (float)s;
    }
}

/* db[ch] += sum over the batch and positions of d [n, c, hw], in double (the bias gradient of every layer) */
static void channel_sums(float *db, const float *d, int n, int c, int hw) {
    for (int ch = 0; ch < c; ch++) {
        double s = 0;
        for (int i = 0; i < n; i++) {
            const float *row = d + ((size_t)i * c + ch) * hw;
            for (int j = 0; j < hw; j++) s += row[j];
        }
        db[ch] += (float)s;
    }
}

/* ---- dense ----------------------------------------------------------------------------------- */
static void cpu_dense_forward(float *y, const float *x, const float *w, const float *b, int n, int in, int out) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out, in, 1.0f, x, in, w, in, 0.0f, y, out);
    if (b)
        for (int i = 0; i < n; i++)
            for (int o = 0; o < out; o++) y[(size_t)i * out + o] += b[o];
}
static void cpu_dense_backward_data(float *dx, const float *dy, const float *w, int n, int in, int out) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, in, out, 1.0f, dy, out, w, in, 0.0f, dx, in);
}
static void cpu_dense_backward_params(float *dw, float *db, const float *dy, const float *x, int n, int in,
                                      int out) {
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, n, 1.0f, dy, out, x, in, 1.0f, dw, in);
    if (db) channel_sums(db, dy, n, out, 1);
}

/* ---- convolution: im2col over the batch, col [ci*k*k, n*ho*wo] -------------------------------- */
/* where channel c of image b starts on the x side, and the strides of its rows and columns there
 * (NCHW or channel-last) */
struct plane {
    size_t base, row, col;
};
static struct plane x_plane(const struct lpc_conv_shape *s, int b, int c) {
    if (s->x_channels_last)
        return (struct plane){(size_t)b * s->h * s->w * s->ci + c, (size_t)s->w * s->ci, (size_t)s->ci};
    return (struct plane){((size_t)b * s->ci + c) * s->h * s->w, (size_t)s->w, 1};
}

static void im2col(float *col, const float *x, const struct lpc_conv_shape *s) {
    const size_t cols = (size_t)s->n * s->ho * s->wo, howo = (size_t)s->ho * s->wo;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)s->n * s->ci * s->k * s->k * s->ho * s->wo > 65536)
    for (int c = 0; c < s->ci; c++)
        for (int b = 0; b < s->n; b++) {
            const struct plane p = x_plane(s, b, c);
            const float *xc = x + p.base;
            for (int ki = 0; ki < s->k; ki++)
                for (int kj = 0; kj < s->k; kj++) {
                    float *row = col + ((size_t)(c * s->k + ki) * s->k + kj) * cols + (size_t)b * howo;
                    for (int oy = 0; oy < s->ho; oy++) {
                        int iy = oy * s->stride - s->pad + ki;
                        for (int ox = 0; ox < s->wo; ox++) {
                            int ix = ox * s->stride - s->pad + kj;
                            row[oy * s->wo + ox] = (iy >= 0 && iy < s->h && ix >= 0 && ix < s->w)
                                                       ? xc[(size_t)iy * p.row + (size_t)ix * p.col]
                                                       : 0.0f;
                        }
                    }
                }
        }
}

static void col2im(float *x, const float *col, const struct lpc_conv_shape *s) {
    const size_t cols = (size_t)s->n * s->ho * s->wo, howo = (size_t)s->ho * s->wo;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)s->n * s->ci * s->k * s->k * s->ho * s->wo > 65536)
    for (int b = 0; b < s->n; b++)
        for (int c = 0; c < s->ci; c++) {
            const struct plane p = x_plane(s, b, c);
            float *xc = x + p.base;
            if (p.col == 1) {
                memset(xc, 0, sizeof(float) * s->h * s->w);
            } else {
                for (int iy = 0; iy < s->h; iy++)
                    for (int ix = 0; ix < s->w; ix++) xc[(size_t)iy * p.row + (size_t)ix * p.col] = 0.0f;
            }
            for (int ki = 0; ki < s->k; ki++)
                for (int kj = 0; kj < s->k; kj++) {
                    const float *row = col + ((size_t)(c * s->k + ki) * s->k + kj) * cols + (size_t)b * howo;
                    for (int oy = 0; oy < s->ho; oy++) {
                        int iy = oy * s->stride - s->pad + ki;
                        if (iy < 0 || iy >= s->h) continue;
                        for (int ox = 0; ox < s->wo; ox++) {
                            int ix = ox * s->stride - s->pad + kj;
                            if (ix >= 0 && ix < s->w) xc[(size_t)iy * p.row + (size_t)ix * p.col] += row[oy * s->wo + ox];
                        }
                    }
                }
        }
}

/* [n, c, hw] <-> [c, n*hw] */
static void nchw_to_cn(float *dst, const float *src, int n, int c, size_t hw) {
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)n * c * hw > 65536)
    for (int b = 0; b < n; b++)
        for (int ch = 0; ch < c; ch++)
            memcpy(dst + (size_t)ch * n * hw + (size_t)b * hw, src + ((size_t)b * c + ch) * hw, hw * sizeof(float));
}
static void cn_to_nchw(float *dst, const float *src, int n, int c, size_t hw) {
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)n * c * hw > 65536)
    for (int b = 0; b < n; b++)
        for (int ch = 0; ch < c; ch++)
            memcpy(dst + ((size_t)b * c + ch) * hw, src + (size_t)ch * n * hw + (size_t)b * hw, hw * sizeof(float));
}
/* dst [cols, rows] = src [rows, cols] transposed */
static void transpose(float *dst, const float *src, size_t rows, size_t cols) {
#pragma omp parallel for schedule(static) if (rows * cols > 65536)
    for (size_t c = 0; c < cols; c++)
        for (size_t r = 0; r < rows; r++) dst[c * rows + r] = src[r * cols + c];
}
/* the y side [n, co, ho*wo] or channel-last [n*ho*wo, co] <-> [co, n*ho*wo] */
static void y_to_cn(float *dst, const float *src, const struct lpc_conv_shape *s) {
    if (s->y_channels_last) transpose(dst, src, (size_t)s->n * s->ho * s->wo, (size_t)s->co);
    else nchw_to_cn(dst, src, s->n, s->co, (size_t)s->ho * s->wo);
}
static void cn_to_y(float *dst, const float *src, const struct lpc_conv_shape *s) {
    if (s->y_channels_last) transpose(dst, src, (size_t)s->co, (size_t)s->n * s->ho * s->wo);
    else cn_to_nchw(dst, src, s->n, s->co, (size_t)s->ho * s->wo);
}

static void cpu_conv2d_forward(float *y, const float *x, const float *w, const struct lpc_conv_shape *s) {
    const int kk = s->ci * s->k * s->k;
    const size_t cols = (size_t)s->n * s->ho * s->wo;
    float *col = get_scratch(0, (size_t)kk * cols), *tmp = get_scratch(1, (size_t)s->co * cols);
    im2col(col, x, s);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->co, (int)cols, kk, 1.0f, w, kk, col, (int)cols, 0.0f,
                tmp, (int)cols);
    cn_to_y(y, tmp, s);
}

static void cpu_conv2d_backward_data(float *dx, const float *dy, const float *w, const struct lpc_conv_shape *s) {
    const int kk = s->ci * s->k * s->k;
    const size_t cols = (size_t)s->n * s->ho * s->wo;
    float *dcol = get_scratch(0, (size_t)kk * cols), *dyt = get_scratch(1, (size_t)s->co * cols);
    y_to_cn(dyt, dy, s);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, kk, (int)cols, s->co, 1.0f, w, kk, dyt, (int)cols, 0.0f,
                dcol, (int)cols);
    col2im(dx, dcol, s);
}

static void cpu_conv2d_backward_filter(float *dw, const float *dy, const float *x, const struct lpc_conv_shape *s) {
    const int kk = s->ci * s->k * s->k;
    const size_t cols = (size_t)s->n * s->ho * s->wo;
    float *col = get_scratch(0, (size_t)kk * cols), *dyt = get_scratch(1, (size_t)s->co * cols);
    im2col(col, x, s);
    y_to_cn(dyt, dy, s);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s->co, kk, (int)cols, 1.0f, dyt, (int)cols, col, (int)cols,
                1.0f, dw, kk);
}

/* ---- bias + activation ----------------------------------------------------------------------- */
static void cpu_bias_act_forward(float *out, float *pre, const float *b, int n, int c, int hw, int act) {
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)n * c * hw > 65536)
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++) {
            size_t base = ((size_t)i * c + ch) * hw;
            float bias = b ? b[ch] : 0.0f;
            for (int j = 0; j < hw; j++) {
                float v = pre[base + j] + bias;
                pre[base + j] = v;
                out[base + j] = lpc_pw_act(v, act);
            }
        }
}

static void cpu_bias_act_backward(float *dpre, float *db, const float *dout, const float *pre, int n, int c, int hw,
                                  int act) {
    if (!(act == LPC_ACT_NONE && dpre == dout)) { /* an identity in place has nothing to do */
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)n * c * hw > 65536)
        for (int i = 0; i < n; i++)
            for (int ch = 0; ch < c; ch++) {
                size_t base = ((size_t)i * c + ch) * hw;
                for (int j = 0; j < hw; j++) dpre[base + j] = dout[base + j] * lpc_pw_act_derivative(pre[base + j], act);
            }
    }
    if (db) channel_sums(db, dpre, n, c, hw);
}

/* ---- the decoder's fused layer ops: on the CPU, the unfused sequences they stand for ------------ */
static void cpu_deconv_bias_act_forward(float *out, float *pre, const float *x, const float *w, const float *b,
                                        const struct lpc_conv_shape *s, int act) {
    cpu_conv2d_backward_data(pre, x, w, s);
    cpu_bias_act_forward(out, pre, b, lpc_conv_x_rows(s), s->ci, lpc_conv_x_per_row(s), act);
}

static void cpu_act_conv2d_forward(float *y, float *dout, const float *pre, const float *w,
                                   const struct lpc_conv_shape *s, int act, const float *pre_below, int act_below) {
    cpu_bias_act_backward(dout, NULL, dout, pre, lpc_conv_x_rows(s), s->ci, lpc_conv_x_per_row(s), act);
    cpu_conv2d_forward(y, dout, w, s);
    /* elementwise, so the y side's layout does not matter */
    cpu_bias_act_backward(y, NULL, y, pre_below, s->n, s->co, s->ho * s->wo, act_below);
}

static void cpu_deconv_likelihood(float *dpre, float *logp, float *out, float *pre, const float *x, const float *w,
                                  const float *b, const float *data, const float *log_sigma,
                                  const struct lpc_conv_shape *s, int act, int kind) {
    cpu_deconv_bias_act_forward(out, pre, x, w, b, s, act);
    lpc_likelihood_cpu(logp, dpre, NULL, data, out, log_sigma, s->n, s->ci * s->h * s->w, kind);
    cpu_bias_act_backward(dpre, NULL, dpre, pre, lpc_conv_x_rows(s), s->ci, lpc_conv_x_per_row(s), act);
}

static void cpu_deconv_likelihood_backward(float *d_below, float *dpre, float *logp, float *out, float *pre,
                                           const float *x, const float *w, const float *b, const float *data,
                                           const float *log_sigma, const struct lpc_conv_shape *s, int act, int kind,
                                           const float *pre_below, int act_below) {
    cpu_deconv_likelihood(dpre, logp, out, pre, x, w, b, data, log_sigma, s, act, kind);
    cpu_act_conv2d_forward(d_below, dpre, pre, w, s, LPC_ACT_NONE, pre_below, act_below);
}

static void cpu_channels_last_to_nchw(float *dst, const float *src, int n, int c, int hw) {
    for (size_t i = 0; i < (size_t)n; i++) transpose(dst + i * c * hw, src + i * c * hw, (size_t)hw, (size_t)c);
}

/* a channel-last output (channels > 0) is the NCHW result transposed: the same values */
static void cpu_dense_bias_act_forward(float *y, float *pre, const float *x, const float *w, const float *b, int n,
                                       int in, int out, int act, int channels) {
    if (channels) {
        const size_t size = (size_t)n * out, hw = (size_t)(out / channels);
        float *t = get_scratch(0, 2 * size);
        cpu_dense_bias_act_forward(t + size, t, x, w, b, n, in, out, act, 0);
        for (size_t i = 0; i < (size_t)n; i++) {
            if (y != pre) transpose(pre + i * out, t + i * out, (size_t)channels, hw);
            transpose(y + i * out, t + size + i * out, (size_t)channels, hw); /* in place: y */
        }
        return;
    }
    cpu_dense_forward(pre, x, w, NULL, n, in, out);
    cpu_bias_act_forward(y, pre, b, n, out, 1, act);
}

static void cpu_act_dense_backward_data(float *dx, float *dout, const float *pre, const float *w, int n, int in, int out,
                                        int act, int channels) {
    cpu_bias_act_backward(dout, NULL, dout, pre, n, out, 1, act); /* elementwise: either layout */
    if (channels) {
        float *t = get_scratch(0, (size_t)n * out);
        cpu_channels_last_to_nchw(t, dout, n, channels, out / channels);
        cpu_dense_backward_data(dx, t, w, n, in, out);
        return;
    }
    cpu_dense_backward_data(dx, dout, w, n, in, out);
}

/* ---- Langevin step and Adam ------------------------------------------------------------------ */
static void cpu_langevin_update(float *z, float *precond_v, float *stats, float *zsum, float *zsq,
                                const float *grad_lik, const float *xi, size_t n, const struct lpc_langevin_params *p) {
    const float bias_correction = (float)(1.0 - pow((double)p->beta, (double)p->t));
    double sum_abs_g = 0, sum_G = 0;
    for (size_t i = 0; i < n; i++) {
        float g_abs, G;
        float z_new = lpc_pw_langevin(z[i], &precond_v[i], grad_lik[i], p->noise ? xi[i] : 0.0f, p->step_size, p->beta,
                                      p->eps, bias_correction, p->precond, p->noise, &g_abs, &G);
        z[i] = z_new;
        if (p->accumulate) zsum[i] += z_new, zsq[i] += z_new * z_new;
        sum_abs_g += g_abs;
        sum_G += G;
    }
    stats[0] += (float)sum_abs_g;
    stats[1] += (float)sum_G;
}

static void cpu_adam_update(float *param, float *m, float *v, const float *grad, size_t n,
                            const struct lpc_adam_params *p) {
    const float c1 = (float)(1.0 - pow((double)p->beta1, (double)p->step));
    const float c2 = (float)(1.0 - pow((double)p->beta2, (double)p->step));
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++)
        lpc_pw_adam(&param[i], &m[i], &v[i], grad[i], p->lr, p->beta1, p->beta2, p->eps, p->weight_decay, c1, c2);
}

static void cpu_normal(float *out, size_t n, struct lpc_rng *rng) { lpc_rng_normal_host(rng, out, n); }

static const struct lpc_backend cpu_backend = {
    .name = "cpu",
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_copy,
    .download = cpu_copy,
    .copy = cpu_copy,
    .synchronize = cpu_synchronize,
    .memory_used = cpu_memory_used,
    .fill = cpu_fill,
    .scale = cpu_scale,
    .sum_squares = cpu_sum_squares,
    .row_sum_squares = cpu_row_sum_squares,
    .dense_forward = cpu_dense_forward,
    .dense_backward_data = cpu_dense_backward_data,
    .dense_backward_params = cpu_dense_backward_params,
    .conv2d_forward = cpu_conv2d_forward,
    .conv2d_backward_data = cpu_conv2d_backward_data,
    .conv2d_backward_filter = cpu_conv2d_backward_filter,
    .deconv_bias_act_forward = cpu_deconv_bias_act_forward,
    .act_conv2d_forward = cpu_act_conv2d_forward,
    .deconv_likelihood = cpu_deconv_likelihood,
    .deconv_likelihood_backward = cpu_deconv_likelihood_backward,
    .dense_bias_act_forward = cpu_dense_bias_act_forward,
    .act_dense_backward_data = cpu_act_dense_backward_data,
    .channels_last_to_nchw = cpu_channels_last_to_nchw,
    .bias_act_forward = cpu_bias_act_forward,
    .bias_act_backward = cpu_bias_act_backward,
    .likelihood = lpc_likelihood_cpu,
    .langevin_update = cpu_langevin_update,
    .encoder_sample = lpc_encoder_sample_cpu,
    .encoder_head_backward = lpc_encoder_head_backward_cpu,
    .adam_update = cpu_adam_update,
    .normal = cpu_normal,
};

const struct lpc_backend *lpc_backend_cpu(void) { return &cpu_backend; }
