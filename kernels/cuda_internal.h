/* Declarations shared by the CUDA backend's files: kernel launchers (the .cu files, C linkage), the
 * cuDNN and cuBLAS wrappers and the backend's global state (one device, one stream). */
#ifndef LPC_CUDA_INTERNAL_H
#define LPC_CUDA_INTERNAL_H

#include <stddef.h>

#include "lpc/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* fixed launch geometry of every reduction, so results do not depend on anything but the data */
#define LPC_REDUCE_BLOCKS 128
/* the Langevin update's grid is at most this many blocks, two partial sums each */
#define LPC_UPDATE_MAX_BLOCKS 1024
#define LPC_PARTIALS_LEN (2 * LPC_UPDATE_MAX_BLOCKS > LPC_REDUCE_BLOCKS + 1 ? 2 * LPC_UPDATE_MAX_BLOCKS : LPC_REDUCE_BLOCKS + 1)
#define LPC_THREADS 256
/* blocks of LPC_THREADS for a grid-stride loop over n elements: one per LPC_THREADS elements, at least
 * one, at most 65535 * 4 */
static inline unsigned lpc_grid_stride_blocks(size_t n) {
    size_t b = (n + LPC_THREADS - 1) / LPC_THREADS;
    return (unsigned)(b < 1 ? 1 : b > 65535 * 4 ? 65535 * 4 : b);
}
/* tile counters of the implicit-GEMM kernels' split-K reduction (zero between launches) */
#define LPC_SPLIT_TILES 4096

struct lpc_cuda_state {
    void *stream;          /* cudaStream_t */
    void *cublas;          /* cublasHandle_t */
    void *cudnn;           /* cudnnHandle_t */
    void *curand;          /* curandGenerator_t (device Philox) */
    unsigned long long curand_seed;
    int curand_seeded;
    double *partials;      /* LPC_PARTIALS_LEN doubles, device: reduction partials + one result */
    unsigned *done;        /* blocks finished, for kernels whose last block reduces (zero between launches) */
    unsigned *tile_done;   /* LPC_SPLIT_TILES counters: splits finished per tile (zero between launches) */
    int tf32, deterministic;
    int conv_algo;         /* enum lpc_conv_algo */
};
extern struct lpc_cuda_state lpc_cuda;

void lpc_cuda_fill(float *x, float v, size_t n);
void lpc_cuda_scale(float *x, float a, size_t n);
double lpc_cuda_sum_squares(const float *x, size_t n);
void lpc_cuda_row_sum_squares(float *out, const float *x, int rows, int cols);
void lpc_cuda_add_bias_rows(float *y, const float *b, int n, int out);
void lpc_cuda_bias_act_forward(float *out, float *pre, const float *b, int n, int c, int hw, int act);
void lpc_cuda_bias_act_backward(float *dpre, float *db, const float *dout, const float *pre, int n, int c, int hw, int act);
/* db[ch] += sum over the batch and positions of d [n, c, hw], deterministic (biases of every layer) */
void lpc_cuda_bias_grad(float *db, const float *d, int n, int c, int hw);
void lpc_cuda_likelihood(float *logp, float *dmu, float *dlog_sigma, const float *x, const float *mu,
                         const float *log_sigma, int n, int dim, int kind);
/* the same without the log-sigma derivative, dpre = d logp / d mu * act'(pre) (act LPC_ACT_NONE: pre
 * not read) */
void lpc_cuda_likelihood_act(float *logp, float *dpre, const float *x, const float *mu, const float *pre, int act,
                             const float *log_sigma, int n, int dim, int kind);
void lpc_cuda_langevin_update(float *z, float *v, float *stats, float *zsum, float *zsq, const float *grad_lik,
                              const float *xi, size_t n, const struct lpc_langevin_params *p);
void lpc_cuda_encoder_sample(float *z, const float *head, const float *eps, int n, int d);
void lpc_cuda_encoder_head_backward(float *d_head, float *terms, const float *head, const float *eps,
                                    const float *grad_lik, const float *z0, const float *zsum, const float *zsq,
                                    float n_states, int n, int d, float w_fwd, float w_rev, float w_vae, float scale);
void lpc_cuda_adam(float *param, float *m, float *v, const float *grad, size_t n, const struct lpc_adam_params *p);

/* kernels/conv.c: the convolution ops, on cuDNN, the GEMM lowering, the implicit GEMM or the direct
 * kernels by `conv_algo` */
void lpc_cuda_conv2d_forward(float *y, const float *x, const float *w, const struct lpc_conv_shape *s);
void lpc_cuda_conv2d_backward_data(float *dx, const float *dy, const float *w, const struct lpc_conv_shape *s);
void lpc_cuda_conv2d_backward_filter(float *dw, const float *dy, const float *x, const struct lpc_conv_shape *s);
void lpc_cuda_deconv_bias_act_forward(float *out, float *pre, const float *x, const float *w, const float *b,
                                      const struct lpc_conv_shape *s, int act);
void lpc_cuda_act_conv2d_forward(float *y, float *dout, const float *pre, const float *w,
                                 const struct lpc_conv_shape *s, int act, const float *pre_below, int act_below);
void lpc_cuda_deconv_likelihood(float *dpre, float *logp, float *out, float *pre, const float *x, const float *w,
                                const float *b, const float *data, const float *log_sigma,
                                const struct lpc_conv_shape *s, int act, int kind);
void lpc_cuda_deconv_likelihood_backward(float *d_below, float *dpre, float *logp, float *out, float *pre, const float *x,
                                         const float *w, const float *b, const float *data, const float *log_sigma,
                                         const struct lpc_conv_shape *s, int act, int kind, const float *pre_below,
                                         int act_below);
/* kernels/fixed_copies.c: the window in which parameters copied to other layouts are kept (contract in
 * lpc/ops.h), and the copies. lpc_cuda_fixed_copy gives where the copy of `src` in layout `form`
 * (`elements` floats) is: the window's own memory, or `scratch` where none can be kept; *make is 1 when
 * the caller must write the copy there now, 0 when it was made earlier in this window. */
enum lpc_fixed_form {
    LPC_FIXED_FILTER_CHANNELS_LAST, /* a convolution filter [co, k, k, ci] */
    LPC_FIXED_FILTER_SUBPIXEL,      /* a transposed convolution's filter by phase (lpc_cuda_subpixel_filter) */
    LPC_FIXED_DENSE_CHANNELS_LAST   /* dense weights or bias, outputs in channel-last feature order */
};
void lpc_cuda_params_fixed_begin(void);
void lpc_cuda_params_fixed_end(void);
float *lpc_cuda_fixed_copy(const float *src, int form, size_t elements, float *scratch, int *make);
/* kernels/conv_gemm.cu: cols is a workspace of lpc_gemm_conv_workspace(s) bytes. forward: y = conv(x, w),
 * or with act >= 0 y = conv(x * act'(pre), w). backward_data: out = conv^T(dy, w), or with bias
 * pre = conv^T(dy, w) + bias, out = act(pre). */
size_t lpc_gemm_conv_workspace(const struct lpc_conv_shape *s);
int lpc_gemm_conv_fits(const struct lpc_conv_shape *s); /* every tensor, workspace included, below 2^31 elements */
void lpc_gemm_conv_forward(float *y, const float *x, const float *pre, int act, const struct lpc_conv_shape *s,
                           const float *w, float *cols);
void lpc_gemm_conv_backward_data(float *out, float *pre, const float *bias, int act, const float *dy, const float *w,
                                 const struct lpc_conv_shape *s, float *cols);
/* kernels/conv_implicit.cu: implicit-GEMM tensor-core kernels; workspace: lpc_implicit_conv_workspace(s)
 * bytes. forward: y = conv(x, w), or with act >= 0 y = conv(x * act'(pre), w). transposed: out =
 * conv^T(dy, w), or with bias pre = conv^T(dy, w) + bias, out = act(pre). */
size_t lpc_implicit_conv_workspace(const struct lpc_conv_shape *s);
int lpc_implicit_conv_fits(const struct lpc_conv_shape *s);
void lpc_implicit_conv_forward(float *y, const float *x, const float *pre, int act, const struct lpc_conv_shape *s,
                               const float *w, void *workspace);
void lpc_implicit_conv_transposed(float *out, float *pre, const float *bias, int act, const float *dy, const float *w,
                                  const struct lpc_conv_shape *s, void *workspace);
/* kernels/conv_implicit_nhwc.cu: implicit-GEMM tensor-core kernels on channel-last inputs and filters;
 * workspace: lpc_implicit_nhwc_workspace(transposed, s) bytes. fits: every channel count a multiple of
 * 32, and for the transposed convolution kernel 4, stride 2, padding 1 with h = 2 ho, w = 2 wo. forward:
 * y = conv(x, w) [n, ho, wo, co] <- [n, h, w, ci] with w [co, k, k, ci], times act_below'(pre_below)
 * unless act_below is LPC_ACT_NONE; transposed: out = conv^T(dy, w) from dy [n, ho, wo, co] with w the
 * sub-pixel filter [4 ci, 2, 2, co] (lpc_cuda_subpixel_filter), or with pre pre = out + bias, out =
 * act(pre). Each output in the layout s gives its side (y_channels_last, x_channels_last). */
int lpc_implicit_nhwc_fits(int transposed, const struct lpc_conv_shape *s);
size_t lpc_implicit_nhwc_workspace(int transposed, const struct lpc_conv_shape *s);
void lpc_implicit_nhwc_forward(float *y, const float *x, const float *w, const float *pre_below, int act_below,
                               const struct lpc_conv_shape *s, void *workspace);
void lpc_implicit_nhwc_transposed(float *out, float *pre, const float *bias, int act, const float *dy, const float *w,
                                  const struct lpc_conv_shape *s, void *workspace);
/* kernels/conv_direct.cu: direct kernels for layers with at most 4 channels on the large side (no
 * workspace; the small side y may be channel-last where co is a multiple of 4); the transposed contract
 * of the implicit kernels; the forward's as theirs plus the epilogue y *= act_below'(pre_below) (pre_below
 * in y's layout; none for LPC_ACT_NONE) */
int lpc_direct_conv_fits(const struct lpc_conv_shape *s);
void lpc_direct_conv_forward(float *y, const float *x, const float *pre, int act, const float *pre_below,
                             int act_below, const struct lpc_conv_shape *s, const float *w);
void lpc_direct_conv_transposed(float *out, float *pre, const float *bias, int act, const float *dy, const float *w,
                                const struct lpc_conv_shape *s);
/* the chain's output layer with the likelihood in the transposed kernel's epilogue (ops.h
 * deconv_likelihood; no out or pre written), where the small side is channel-last, kernel 4, stride 2,
 * padding 1 and n <= LPC_SPLIT_TILES (one arrival counter per image) */
int lpc_direct_likelihood_fits(const struct lpc_conv_shape *s);
void lpc_direct_conv_transposed_likelihood(float *dpre, float *logp, const float *bias, int act, const float *dy,
                                           const float *w, const struct lpc_conv_shape *s, const float *data,
                                           const float *log_sigma, int kind);
/* kernels/conv_direct_output.cu: the chain's output layer in one kernel (ops.h
 * deconv_likelihood_backward: deconv_likelihood, then the forward of dpre times act_below'(pre_below) into
 * d_below, channel-last), where the direct likelihood kernel takes the shape, co is a multiple of 8 and
 * its shared memory suffices; d_below, pre_below and dy 16-byte aligned */
int lpc_direct_output_layer_fits(const struct lpc_conv_shape *s);
void lpc_direct_output_layer(float *d_below, float *dpre, float *logp, const float *pre_below, int act_below,
                             const float *bias, int act, const float *dy, const float *w,
                             const struct lpc_conv_shape *s, const float *data, const float *log_sigma, int kind);
/* a shape without its layout flags: what the libraries, which take one layout per call, are given */
static inline struct lpc_conv_shape lpc_conv_geometry(const struct lpc_conv_shape *s) {
    struct lpc_conv_shape g = *s;
    g.x_channels_last = g.y_channels_last = 0;
    return g;
}
/* elements of a shape's x, y and filter tensors */
static inline size_t lpc_conv_x_elements(const struct lpc_conv_shape *s) { return (size_t)s->n * s->ci * s->h * s->w; }
static inline size_t lpc_conv_y_elements(const struct lpc_conv_shape *s) { return (size_t)s->n * s->co * s->ho * s->wo; }
static inline size_t lpc_conv_w_elements(const struct lpc_conv_shape *s) { return (size_t)s->co * s->ci * s->k * s->k; }
/* kernels/conv_cudnn.c: cuDNN's legacy API on NCHW tensors; workspace: lpc_cudnn_conv_workspace(s) bytes
 * (which makes the shape's plan: outside graph capture the first time) */
size_t lpc_cudnn_conv_workspace(const struct lpc_conv_shape *s);
void lpc_cudnn_conv_forward(float *y, const float *x, const float *w, const struct lpc_conv_shape *s);
void lpc_cudnn_conv_backward_data(float *dx, const float *dy, const float *w, const struct lpc_conv_shape *s);
void lpc_cudnn_conv_backward_filter(float *dw, const float *dy, const float *x, const struct lpc_conv_shape *s);
/* kernels/conv_cudnn_graph.c: cuDNN's graph API on channel-last tensors [n, h, w, c] and [co, k, k, ci]
 * filters; workspace: lpc_cudnn_graph_workspace(s, backward_data, act_below) bytes (which makes the
 * plan: outside graph capture the first time). The forward multiplies y by act_below'(pre_below) (a
 * channel-last tensor of y's size; act_below LPC_ACT_NONE: no factor), in the convolution's epilogue
 * where an engine runs it so, else in a pass over y after it. */
size_t lpc_cudnn_graph_workspace(const struct lpc_conv_shape *s, int backward_data, int act_below);
void lpc_cudnn_graph_forward(float *y, const float *x, const float *w, const float *pre_below, int act_below,
                             const struct lpc_conv_shape *s, void *workspace);
void lpc_cudnn_graph_backward_data(float *dx, const float *dy, const float *w, const struct lpc_conv_shape *s,
                                   void *workspace);
/* kernels/layout.cu: batched [rows, cols] <-> [cols, rows] copies for the channel-last paths.
 * to: dst[b][col][row] = src[b][row][col] * act'(pre[b][row][col]) (pre NULL: no factor).
 * from: v = src[b][col][row] + bias[row] (bias NULL: + 0); with pre, pre[b][row][col] = v and
 * out[b][row][col] = act(v), else out[b][row][col] = v. */
void lpc_cuda_to_channels_last(float *dst, const float *src, const float *pre, int act, int batch, int rows, int cols);
void lpc_cuda_from_channels_last(float *out, float *pre, const float *src, const float *bias, int act, int batch,
                                 int rows, int cols);
/* kernels/layout.cu: dst [b][a][inner] = src [a][b][inner] (the dense layer's weights and bias in
 * channel-last feature order: a = channels, b = positions) */
void lpc_cuda_swap_axes(float *dst, const float *src, int a, int b, int inner);
/* kernels/layout.cu, the sub-pixel form of a transposed convolution of kernel 4, stride 2, padding 1
 * (h, w: its input's size): the filter [4 ci, 2, 2, co] from w [co, ci, 4, 4]; the output [n, c, 2h, 2w]
 * (channel-last: [n, 2h, 2w, c]) from the phases [n, h + 1, w + 1, 4 c], with bias and activation as
 * lpc_cuda_from_channels_last applies them */
void lpc_cuda_subpixel_filter(float *dst, const float *w, int co, int ci);
void lpc_cuda_subpixel_interleave(float *out, float *pre, const float *phases, const float *bias, int act, int n, int c,
                                  int h, int w, int channels_last);
/* kernels/dense_cublas.c */
void lpc_cublas_dense_forward(float *y, const float *x, const float *w, const float *b, int n, int in, int out);
void lpc_cublas_dense_backward_data(float *dx, const float *dy, const float *w, int n, int in, int out);
void lpc_cublas_dense_backward_params(float *dw, float *db, const float *dy, const float *x, int n, int in, int out);
/* y = x w^T + b (b NULL: no bias), relu applied where `relu`, on cuBLASLt with the bias and relu in its
 * epilogue; 0 (nothing done) where it cannot: pointers off 16-byte alignment, in or out not a multiple of
 * 4, or no algorithm offered */
int lpc_cublaslt_dense_forward_relu(float *y, const float *x, const float *w, const float *b, int n, int in, int out,
                                    int relu);
/* kernels/dense_fused.cu: the decoder's dense layer ops (contracts in lpc/ops.h): the fused kernels where
 * lpc_fused_dense_pays (fp32 math, small layers), else cuBLAS and the bias-activation or act' kernel
 * (or cuBLASLt with the bias and relu in its epilogue);
 * the fused kernels alone for the kernel lab */
int lpc_fused_dense_pays(int n, int in, int out);
void lpc_fused_dense_bias_act_forward(float *y, float *pre, const float *x, const float *w, const float *b, int n,
                                      int in, int out, int act);
void lpc_fused_act_dense_backward_data(float *dx, const float *dout, const float *pre, const float *w, int n, int in,
                                       int out, int act);
void lpc_cuda_dense_bias_act_forward(float *y, float *pre, const float *x, const float *w, const float *b, int n, int in,
                                     int out, int act, int channels);
void lpc_cuda_act_dense_backward_data(float *dx, float *dout, const float *pre, const float *w, int n, int in, int out,
                                      int act, int channels);

/* kernels/workspace.c: the one device workspace. lpc_cuda_workspace(bytes) returns it, grown to at
 * least `bytes` first if needed (outside graph capture only); a pointer it returned stays valid for
 * every graph captured with it. graph.c reports graphs made and destroyed. */
void *lpc_cuda_workspace(size_t bytes);
void lpc_cuda_workspace_graph_created(void);
void lpc_cuda_workspace_graph_destroyed(void);

/* kernels/graph.c. lpc_cuda_time_calls: milliseconds per call of call(ctx) as the chain runs it,
 * 10 calls captured as one graph and replayed 3 times after one call outside the graph and one
 * untimed replay; outside any capture only. lpc_cuda_capturing: whether the backend's stream is being
 * captured into a graph now. */
int lpc_cuda_capturing(void);
void lpc_cuda_graph_begin(void);
void *lpc_cuda_graph_end(void);
void lpc_cuda_graph_launch(void *graph);
void lpc_cuda_graph_destroy(void *graph);
float lpc_cuda_time_calls(void (*call)(void *), void *ctx);

#ifdef __cplusplus
}
#endif

#endif
