/* Kernel lab: each fused kernel of the CUDA backend (variant 0, the production kernel, called through
 * the backend) against the unfused sequence it replaces (variant 1, bench/kernel_lab_unfused.cu).
 * Every variant is first checked against the CPU reference on the same inputs (normalised squared
 * error below the threshold of tests/test_gpu.c) and only then timed: CUDA events around 200
 * launches, median of 5 runs. Prints JSON lines.
 * Then the decoder's dense layer ops (fused kernels against cuBLAS plus a kernel), and its layer ops on
 * each convolution path the backend can choose (kernels/conv.c picks per shape): variant 0 the
 * implicit-GEMM kernel, 1 the GEMM lowering (GEMM + fused gather), 2 cuDNN plus the bias-activation
 * kernel (the unfused sequence), 3 cuDNN on channel-last copies, for thin layers 4 the direct kernel,
 * 5 the sub-pixel convolution on cuDNN (the forward op as variant 3), and 6 the implicit GEMM on
 * channel-last tensors (kernels/conv_implicit_nhwc.cu; fp32 math here, its three-product form).
 * usage: kernel_lab [n ...]   (default sizes: 4096 = cifar32's latents at batch 64, and 1,048,576) */
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"
#include "lpc/check.h"
#include "lpc/config.h"
#include "lpc/ops.h"

void lab_langevin_unfused(float *z, float *v, float *stats, const float *grad_lik, const float *xi, float *g, float *G,
                          size_t n, float gamma, float beta, float eps, int t);
void lab_adam_unfused(float *p, float *m, float *v, const float *g, size_t n, float lr, float b1, float b2, float eps,
                      float wd, long step);

static const struct lpc_backend *cpu, *gpu;

static float *host_random(size_t n, unsigned seed, float scale, int positive) {
    float *x = malloc(n * sizeof(float));
    srand(seed);
    for (size_t i = 0; i < n; i++) {
        float u = scale * (2.0f * (float)rand() / (float)RAND_MAX - 1.0f);
        x[i] = positive ? fabsf(u) : u;
    }
    return x;
}

static float *dev_copy(const float *h, size_t n) {
    float *d = gpu->alloc(n * sizeof(float));
    gpu->upload(d, h, n * sizeof(float));
    return d;
}

static double nse(const float *dev, const float *ref, size_t n) {
    float *h = malloc(n * sizeof(float));
    gpu->download(h, dev, n * sizeof(float));
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) num += ((double)h[i] - ref[i]) * ((double)h[i] - ref[i]), den += (double)ref[i] * ref[i];
    free(h);
    return num / (den > 0 ? den : 1e-30);
}

/* the error of a fused forward op: the larger of its output's and its pre-activation's */
static double forward_nse(const float *dev_out, const float *out, const float *dev_pre, const float *pre, size_t n) {
    double a = nse(dev_out, out, n), b = nse(dev_pre, pre, n);
    return a > b ? a : b;
}

static int cmp(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

typedef void (*launch_fn)(void *ctx);
static float time_us(launch_fn f, void *ctx) {
    cudaEvent_t a, b;
    cudaEventCreate(&a), cudaEventCreate(&b);
    float runs[5];
    for (int r = 0; r < 5; r++) {
        gpu->synchronize();
        cudaEventRecord(a, (cudaStream_t)lpc_cuda.stream);
        for (int i = 0; i < 200; i++) f(ctx);
        cudaEventRecord(b, (cudaStream_t)lpc_cuda.stream);
        cudaEventSynchronize(b);
        cudaEventElapsedTime(&runs[r], a, b);
    }
    qsort(runs, 5, sizeof *runs, cmp);
    cudaEventDestroy(a), cudaEventDestroy(b);
    return runs[2] * 1000.0f / 200.0f;
}

struct lv_ctx { int variant; size_t n; float *z, *v, *st, *gl, *xi, *g, *G; };
static void lv_launch(void *c_) {
    struct lv_ctx *c = c_;
    if (c->variant == 0) {
        struct lpc_langevin_params p = {0.05f, 0.99f, 1e-8f, 1, 1, 3, 0};
        gpu->langevin_update(c->z, c->v, c->st, NULL, NULL, c->gl, c->xi, c->n, &p);
    } else {
        lab_langevin_unfused(c->z, c->v, c->st, c->gl, c->xi, c->g, c->G, c->n, 0.05f, 0.99f, 1e-8f, 3);
    }
}

static void lab_langevin(size_t n) {
    float *z = host_random(n, 1, 1, 0), *v = host_random(n, 2, 1, 1), *gl = host_random(n, 3, 3, 0), *xi = host_random(n, 4, 1, 0);
    float *rz = malloc(n * sizeof(float)), *rv = malloc(n * sizeof(float)), rst[2] = {0, 0};
    memcpy(rz, z, n * sizeof(float)), memcpy(rv, v, n * sizeof(float));
    struct lpc_langevin_params p = {0.05f, 0.99f, 1e-8f, 1, 1, 3, 0};
    cpu->langevin_update(rz, rv, rst, NULL, NULL, gl, xi, n, &p);
    for (int variant = 0; variant < 2; variant++) {
        struct lv_ctx c = {variant, n, dev_copy(z, n), dev_copy(v, n), gpu->alloc(2 * sizeof(float)), dev_copy(gl, n), dev_copy(xi, n),
                           gpu->alloc(n * sizeof(float)), gpu->alloc(n * sizeof(float))};
        lv_launch(&c);
        double ez = nse(c.z, rz, n), ev = nse(c.v, rv, n), es = nse(c.st, rst, 2);
        int valid = ez <= 1e-12 && ev <= 1e-12 && es <= 1e-10;
        float us = valid ? time_us(lv_launch, &c) : -1.0f;
        printf("{\"lab\":\"langevin_update\",\"variant\":%d,\"kind\":\"%s\",\"n\":%zu,\"valid\":%s,\"nse_z\":%.2g,\"us\":%.2f}\n", variant,
               variant ? "unfused: 6 kernels" : "production: fused", n, valid ? "true" : "false", ez, us);
        gpu->free(c.z), gpu->free(c.v), gpu->free(c.st), gpu->free(c.gl), gpu->free(c.xi), gpu->free(c.g), gpu->free(c.G);
    }
    free(z), free(v), free(gl), free(xi), free(rz), free(rv);
}

struct adam_ctx { int variant; size_t n; float *p, *m, *v, *g; };
static void adam_launch(void *c_) {
    struct adam_ctx *c = c_;
    struct lpc_adam_params ap = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 7};
    if (c->variant == 0) gpu->adam_update(c->p, c->m, c->v, c->g, c->n, &ap);
    else lab_adam_unfused(c->p, c->m, c->v, c->g, c->n, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 7);
}

static void lab_adam(size_t n) {
    float *p = host_random(n, 5, 1, 0), *m = host_random(n, 6, 0.1f, 0), *v = host_random(n, 7, 0.1f, 1), *g = host_random(n, 8, 1, 0);
    float *rp = malloc(n * sizeof(float)), *rm = malloc(n * sizeof(float)), *rv = malloc(n * sizeof(float));
    memcpy(rp, p, n * sizeof(float)), memcpy(rm, m, n * sizeof(float)), memcpy(rv, v, n * sizeof(float));
    struct lpc_adam_params ap = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 7};
    cpu->adam_update(rp, rm, rv, g, n, &ap);
    for (int variant = 0; variant < 2; variant++) {
        struct adam_ctx c = {variant, n, dev_copy(p, n), dev_copy(m, n), dev_copy(v, n), dev_copy(g, n)};
        adam_launch(&c);
        double ep = nse(c.p, rp, n);
        int valid = ep <= 1e-12 && nse(c.m, rm, n) <= 1e-12 && nse(c.v, rv, n) <= 1e-12;
        float us = valid ? time_us(adam_launch, &c) : -1.0f;
        printf("{\"lab\":\"adam\",\"variant\":%d,\"kind\":\"%s\",\"n\":%zu,\"valid\":%s,\"nse_param\":%.2g,\"us\":%.2f}\n", variant,
               variant ? "unfused: 3 kernels" : "production: fused", n, valid ? "true" : "false", ep, us);
        gpu->free(c.p), gpu->free(c.m), gpu->free(c.v), gpu->free(c.g);
    }
    free(p), free(m), free(v), free(g), free(rp), free(rm), free(rv);
}

/* The decoder's layer ops: variant 0 the implicit-GEMM kernel (one kernel), variant 1 the GEMM
 * lowering (one GEMM and one fused gather kernel), variant 2 the unfused sequence (cuDNN convolution
 * plus the bias-activation kernel), variant 3 cuDNN on channel-last copies (the copies apply act', the
 * bias and the activation), for layers with at most 4 image-side channels variant 4 the direct kernel
 * (one kernel), and variant 5 the transposed convolution as a sub-pixel convolution on cuDNN (one forward
 * convolution into the four output phases and their interleave, which adds the bias and applies the
 * activation; the chain's backward op there is variant 3's). */
struct layer_ctx { int op; struct lpc_conv_shape s; float *in, *w, *b, *pre, *out, *dout, *y; };
static void layer_launch(void *c_) {
    struct layer_ctx *c = c_;
    if (c->op == 0) gpu->deconv_bias_act_forward(c->out, c->pre, c->in, c->w, c->b, &c->s, LPC_ACT_RELU);
    else gpu->act_conv2d_forward(c->y, c->dout, c->pre, c->w, &c->s, LPC_ACT_RELU, NULL, LPC_ACT_NONE);
}

static void lab_decoder_layer(int n, int cin, int cout, int side) {
    struct lpc_conv_shape s = {n, cout, 2 * side, 2 * side, cin, side, side, 4, 2, 1, 0, 0};
    size_t nx = (size_t)n * cout * 4 * side * side, ny = (size_t)n * cin * side * side, nw = (size_t)cin * cout * 16;
    float *in = host_random(ny, 1, 1, 0), *w = host_random(nw, 2, 0.1f, 0), *b = host_random(cout, 3, 0.1f, 0);
    float *dout = host_random(nx, 4, 1, 0), *pre = malloc(nx * sizeof(float)), *out = malloc(nx * sizeof(float));
    float *y = malloc(ny * sizeof(float)), *scratch = malloc(nx * sizeof(float));
    cpu->deconv_bias_act_forward(out, pre, in, w, b, &s, LPC_ACT_RELU);
    memcpy(scratch, dout, nx * sizeof(float));
    cpu->act_conv2d_forward(y, scratch, pre, w, &s, LPC_ACT_RELU, NULL, LPC_ACT_NONE);
    const char *names[2] = {"deconv_bias_act_forward", "act_conv2d_forward"};
    const int algos[7] = {LPC_CONV_IMPLICIT, LPC_CONV_GEMM,     LPC_CONV_CUDNN,        LPC_CONV_NHWC,
                          LPC_CONV_DIRECT,   LPC_CONV_SUBPIXEL, LPC_CONV_IMPLICIT_NHWC};
    const char *kinds[7] = {"implicit GEMM, one kernel", "GEMM + fused gather", "unfused: cuDNN + bias-activation kernel",
                            "cuDNN on channel-last copies (the copies fused)", "direct, one kernel",
                            "sub-pixel convolution on cuDNN + interleave (forward: as variant 3)",
                            "implicit GEMM on channel-last tensors, one kernel (+ the input's channel-last copy)"};
    for (int op = 0; op < 2; op++)
        for (int variant = 0; variant < 7; variant++) {
            if (algos[variant] == LPC_CONV_DIRECT && cout > 4) continue; /* the direct kernels take only thin layers */
            lpc_backend_cuda(0, 1, algos[variant]);
            struct layer_ctx c = {op, s, dev_copy(in, ny), dev_copy(w, nw), dev_copy(b, cout), dev_copy(pre, nx),
                                  gpu->alloc(nx * sizeof(float)), dev_copy(dout, nx), gpu->alloc(ny * sizeof(float))};
            layer_launch(&c); /* the act_conv2d_forward check reads the CPU's pre, uploaded above */
            double e = op == 0 ? forward_nse(c.out, out, c.pre, pre, nx) : nse(c.y, y, ny);
            int valid = e <= 1e-9;
            float us = valid ? time_us(layer_launch, &c) : -1.0f;
            printf("{\"lab\":\"%s\",\"variant\":%d,\"kind\":\"%s\",\"shape\":\"n%d %d->%d %dx%d\",\"valid\":%s,"
                   "\"nse\":%.2g,\"us\":%.2f}\n",
                   names[op], variant, kinds[variant],
                   n, cin, cout, side, side, valid ? "true" : "false", e, us);
            gpu->free(c.in), gpu->free(c.w), gpu->free(c.b), gpu->free(c.pre), gpu->free(c.out), gpu->free(c.dout),
                gpu->free(c.y);
        }
    lpc_backend_cuda(0, 1, LPC_CONV_AUTO);
    free(in), free(w), free(b), free(dout), free(pre), free(out), free(y), free(scratch);
}

/* The decoder's dense layer ops: variant 0 the production op (the fused kernel where
 * lpc_fused_dense_pays, else variant 1), 1 the unfused sequence (cuBLAS and the bias-activation or act'
 * kernel), 2 the fused kernel at any size. Outside a graph these calls are bound by launch overhead;
 * the rule of kernels/dense_fused.cu comes from whole-chain measurements. */
struct dense_ctx { int op, variant, n, in, out; float *x, *w, *b, *pre, *y, *dout, *scratch, *dx; };
static void dense_launch(void *c_) {
    struct dense_ctx *c = c_;
    const int n = c->n, in = c->in, out = c->out, relu = LPC_ACT_RELU;
    if (c->op == 0) {
        if (c->variant == 0) gpu->dense_bias_act_forward(c->y, c->pre, c->x, c->w, c->b, n, in, out, relu, 0);
        else if (c->variant == 2) lpc_fused_dense_bias_act_forward(c->y, c->pre, c->x, c->w, c->b, n, in, out, relu);
        else {
            lpc_cublas_dense_forward(c->pre, c->x, c->w, NULL, n, in, out);
            lpc_cuda_bias_act_forward(c->y, c->pre, c->b, n, out, 1, relu);
        }
    } else { /* the production op and the unfused sequence may overwrite dout: they get a copy */
        if (c->variant == 0) gpu->act_dense_backward_data(c->dx, c->scratch, c->pre, c->w, n, in, out, relu, 0);
        else if (c->variant == 2) lpc_fused_act_dense_backward_data(c->dx, c->dout, c->pre, c->w, n, in, out, relu);
        else {
            lpc_cuda_bias_act_backward(c->scratch, NULL, c->dout, c->pre, n, out, 1, relu);
            lpc_cublas_dense_backward_data(c->dx, c->scratch, c->w, n, in, out);
        }
    }
}

static void lab_dense(int n, int in, int out) {
    const size_t nx = (size_t)n * in, ny = (size_t)n * out, nw = (size_t)out * in;
    float *x = host_random(nx, 5, 1, 0), *w = host_random(nw, 6, 0.1f, 0), *b = host_random(out, 7, 0.1f, 0);
    float *dout = host_random(ny, 8, 1, 0), *pre = malloc(ny * sizeof(float)), *y = malloc(ny * sizeof(float));
    float *dx = malloc(nx * sizeof(float)), *scratch = malloc(ny * sizeof(float));
    cpu->dense_bias_act_forward(y, pre, x, w, b, n, in, out, LPC_ACT_RELU, 0);
    memcpy(scratch, dout, ny * sizeof(float));
    cpu->act_dense_backward_data(dx, scratch, pre, w, n, in, out, LPC_ACT_RELU, 0);
    const char *names[2] = {"dense_bias_act_forward", "act_dense_backward_data"};
    const char *kinds[3] = {"production", "unfused: cuBLAS + kernel", "fused kernel"};
    for (int op = 0; op < 2; op++)
        for (int variant = 0; variant < 3; variant++) {
            struct dense_ctx c = {op, variant, n, in, out, dev_copy(x, nx), dev_copy(w, nw), dev_copy(b, out),
                                  dev_copy(pre, ny), gpu->alloc(ny * sizeof(float)), dev_copy(dout, ny),
                                  dev_copy(dout, ny), gpu->alloc(nx * sizeof(float))};
            dense_launch(&c); /* the backward reads the CPU's pre, uploaded above */
            double e = op == 0 ? forward_nse(c.y, y, c.pre, pre, ny) : nse(c.dx, dx, nx);
            int valid = e <= 1e-9;
            float us = valid ? time_us(dense_launch, &c) : -1.0f;
            printf("{\"lab\":\"%s\",\"variant\":%d,\"kind\":\"%s\",\"shape\":\"n%d %d->%d\",\"fused_pays\":%s,"
                   "\"valid\":%s,\"nse\":%.2g,\"us\":%.2f}\n",
                   names[op], variant, kinds[variant], n, in, out,
                   lpc_fused_dense_pays(n, in, out) ? "true" : "false", valid ? "true" : "false", e, us);
            gpu->free(c.x), gpu->free(c.w), gpu->free(c.b), gpu->free(c.pre), gpu->free(c.y), gpu->free(c.dout),
                gpu->free(c.scratch), gpu->free(c.dx);
        }
    free(x), free(w), free(b), free(dout), free(pre), free(y), free(dx), free(scratch);
}

int main(int argc, char **argv) {
    cpu = lpc_backend_cpu();
    gpu = lpc_backend_cuda(0, 1, LPC_CONV_AUTO);
    if (!gpu) {
        printf("SKIPPED: %s\n", lpc_last_error());
        return 77;
    }
    size_t sizes[8] = {4096, 1048576};
    int count = 2;
    if (argc > 1) {
        count = 0;
        for (int i = 1; i < argc && count < 8; i++) sizes[count++] = (size_t)strtoull(argv[i], NULL, 10);
    }
    for (int i = 0; i < count; i++) {
        lab_langevin(sizes[i]);
        lab_adam(sizes[i]);
    }
    /* the decoder's dense layer of the four benchmark rows (cifar32 and celeba64, batch 64 and 256) */
    lab_dense(64, 64, 2048);
    lab_dense(256, 64, 2048);
    lab_dense(64, 128, 4096);
    lab_dense(256, 128, 4096);
    /* the decoder layers of cifar32 at batch 64 and three of celeba64 at batch 256 (fp32 math, so that
     * the CPU check is tight; the implicit kernels then add three TF32 products per term) */
    lab_decoder_layer(64, 128, 64, 4);
    lab_decoder_layer(64, 64, 32, 8);
    lab_decoder_layer(64, 32, 3, 16);
    lab_decoder_layer(256, 256, 128, 4);
    lab_decoder_layer(256, 64, 32, 16);
    lab_decoder_layer(256, 32, 3, 32);
    return 0;
}
