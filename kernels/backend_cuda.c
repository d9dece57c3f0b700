/* The CUDA backend instance (SPEC.md section 4): device memory, one stream, convolutions on cuDNN,
 * lowered to cuBLAS GEMMs, as implicit-GEMM kernels or direct kernels (kernels/conv.c picks), cuBLAS
 * dense layers, cuRAND's device Philox generator for the noise (the same sequence as the CPU's host
 * generator from the same seed and offset) and the fused kernels of kernels/. */
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <curand.h>
#include <stdio.h>

#include "cuda_internal.h"
#include "lpc/check.h"
#include "lpc/config.h"

struct lpc_cuda_state lpc_cuda;
#define STREAM ((cudaStream_t)lpc_cuda.stream)

static void *cuda_alloc(size_t bytes) {
    void *p;
    LPC_CHECK_CUDA(cudaMalloc(&p, bytes ? bytes : 4));
    LPC_CHECK_CUDA(cudaMemsetAsync(p, 0, bytes ? bytes : 4, STREAM));
    return p;
}
static void cuda_free(void *p) {
    if (p) LPC_CHECK_CUDA(cudaFree(p));
}
static void cuda_upload(void *dst, const void *src, size_t bytes) {
    LPC_CHECK_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, STREAM));
    LPC_CHECK_CUDA(cudaStreamSynchronize(STREAM)); /* the host buffer may be reused at once */
}
static void cuda_download(void *dst, const void *src, size_t bytes) {
    LPC_CHECK_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, STREAM));
    LPC_CHECK_CUDA(cudaStreamSynchronize(STREAM));
}
static void cuda_copy(void *dst, const void *src, size_t bytes) {
    if (bytes) LPC_CHECK_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, STREAM));
}
static void cuda_synchronize(void) { LPC_CHECK_CUDA(cudaStreamSynchronize(STREAM)); }

static size_t free_at_start; /* device memory free once the context and libraries were set up */
static size_t cuda_memory_used(void) {
    size_t free_now, total;
    LPC_CHECK_CUDA(cudaMemGetInfo(&free_now, &total));
    return free_at_start > free_now ? free_at_start - free_now : 0;
}

static void cuda_normal(float *out, size_t n, struct lpc_rng *rng) {
    if (n == 0) return;
    curandGenerator_t g = (curandGenerator_t)lpc_cuda.curand;
    if (!lpc_cuda.curand_seeded || lpc_cuda.curand_seed != rng->seed) {
        LPC_CHECK_CURAND(curandSetPseudoRandomGeneratorSeed(g, rng->seed));
        lpc_cuda.curand_seed = rng->seed;
        lpc_cuda.curand_seeded = 1;
    }
    LPC_CHECK_CURAND(curandSetGeneratorOffset(g, rng->offset));
    LPC_CHECK_CURAND(curandGenerateNormal(g, out, lpc_rng_advance(n), 0.0f, 1.0f));
    rng->offset += lpc_rng_advance(n);
}

static void cuda_channels_last_to_nchw(float *dst, const float *src, int n, int c, int hw) {
    lpc_cuda_from_channels_last(dst, NULL, src, NULL, LPC_ACT_NONE, n, c, hw);
}

/* channel-last decoder activations where both layers run on channel-last paths: conv_algo = nhwc, subpixel
 * or implicit_nhwc, or timed auto with TF32 math, and the layer that writes the activation not thin; a
 * thin layer that reads it (the image layer) runs on the direct kernels, which read and write its small
 * side channel-last where its channel count is a multiple of 4 (so the wide layer's backward needs no
 * copy of its input to channel-last order, bench/RESULTS.md, 2026-11-29, the image layer's wide side
 * channel-last). The dense layer's output likewise (its ops write and read it channel-last at no extra
 * pass). Not with fp32 math, where cuDNN has only CUDA-core engines for channel-last tensors, nor with
 * `deterministic = true`, where its first engine runs untimed: 9-24 % slower than the rule's NCHW mix in
 * all four benchmark rows (bench/RESULTS.md, 2026-11-29, channel-last activations). */
static int cuda_prefers_channels_last(const struct lpc_conv_shape *producer, const struct lpc_conv_shape *consumer) {
    const int timed_tf32 = lpc_cuda.conv_algo == LPC_CONV_AUTO && lpc_cuda.tf32 && !lpc_cuda.deterministic;
    const int channels_last_path = lpc_cuda.conv_algo == LPC_CONV_NHWC || lpc_cuda.conv_algo == LPC_CONV_SUBPIXEL ||
                                   lpc_cuda.conv_algo == LPC_CONV_IMPLICIT_NHWC;
    struct lpc_conv_shape consumer_channels_last = *consumer;
    consumer_channels_last.y_channels_last = 1;
    return (channels_last_path || timed_tf32) && (!producer || !lpc_direct_conv_fits(producer)) &&
           (!lpc_direct_conv_fits(consumer) || lpc_direct_conv_fits(&consumer_channels_last));
}

static const struct lpc_backend cuda_backend = {
    .name = "cuda",
    .alloc = cuda_alloc,
    .free = cuda_free,
    .upload = cuda_upload,
    .download = cuda_download,
    .copy = cuda_copy,
    .synchronize = cuda_synchronize,
    .memory_used = cuda_memory_used,
    .fill = lpc_cuda_fill,
    .scale = lpc_cuda_scale,
    .sum_squares = lpc_cuda_sum_squares,
    .row_sum_squares = lpc_cuda_row_sum_squares,
    .dense_forward = lpc_cublas_dense_forward,
    .dense_backward_data = lpc_cublas_dense_backward_data,
    .dense_backward_params = lpc_cublas_dense_backward_params,
    .conv2d_forward = lpc_cuda_conv2d_forward,
    .conv2d_backward_data = lpc_cuda_conv2d_backward_data,
    .conv2d_backward_filter = lpc_cuda_conv2d_backward_filter,
    .deconv_bias_act_forward = lpc_cuda_deconv_bias_act_forward,
    .act_conv2d_forward = lpc_cuda_act_conv2d_forward,
    .deconv_likelihood = lpc_cuda_deconv_likelihood,
    .deconv_likelihood_backward = lpc_cuda_deconv_likelihood_backward,
    .dense_bias_act_forward = lpc_cuda_dense_bias_act_forward,
    .act_dense_backward_data = lpc_cuda_act_dense_backward_data,
    .channels_last_to_nchw = cuda_channels_last_to_nchw,
    .bias_act_forward = lpc_cuda_bias_act_forward,
    .bias_act_backward = lpc_cuda_bias_act_backward,
    .likelihood = lpc_cuda_likelihood,
    .langevin_update = lpc_cuda_langevin_update,
    .encoder_sample = lpc_cuda_encoder_sample,
    .encoder_head_backward = lpc_cuda_encoder_head_backward,
    .adam_update = lpc_cuda_adam,
    .normal = cuda_normal,
    .graph_begin = lpc_cuda_graph_begin,
    .graph_end = lpc_cuda_graph_end,
    .graph_launch = lpc_cuda_graph_launch,
    .graph_destroy = lpc_cuda_graph_destroy,
    .prefers_channels_last = cuda_prefers_channels_last,
    .params_fixed_begin = lpc_cuda_params_fixed_begin,
    .params_fixed_end = lpc_cuda_params_fixed_end,
};

const struct lpc_backend *lpc_backend_cuda(int math_tf32, int deterministic, int conv_algo) {
    static int ready;
    if (ready) {
        if (math_tf32 != lpc_cuda.tf32 || deterministic != lpc_cuda.deterministic) {
            lpc_fail("the CUDA backend is already set up with other math/deterministic settings");
            return NULL;
        }
        lpc_cuda.conv_algo = conv_algo;
        return &cuda_backend;
    }
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
        lpc_fail("no CUDA device is visible (%s)", e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
        return NULL;
    }
    LPC_CHECK_CUDA(cudaSetDevice(0));
    cudaStream_t stream;
    LPC_CHECK_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    lpc_cuda.stream = stream;
    lpc_cuda.tf32 = math_tf32;
    lpc_cuda.deterministic = deterministic;
    lpc_cuda.conv_algo = conv_algo;
    cublasHandle_t cb;
    LPC_CHECK_CUBLAS(cublasCreate(&cb));
    LPC_CHECK_CUBLAS(cublasSetStream(cb, stream));
    LPC_CHECK_CUBLAS(cublasSetMathMode(cb, math_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_PEDANTIC_MATH));
    lpc_cuda.cublas = cb;
    cudnnHandle_t dn;
    LPC_CHECK_CUDNN(cudnnCreate(&dn));
    LPC_CHECK_CUDNN(cudnnSetStream(dn, stream));
    lpc_cuda.cudnn = dn;
    curandGenerator_t g;
    LPC_CHECK_CURAND(curandCreateGenerator(&g, CURAND_RNG_PSEUDO_PHILOX4_32_10));
    LPC_CHECK_CURAND(curandSetStream(g, stream));
    lpc_cuda.curand = g;
    LPC_CHECK_CUDA(cudaMalloc((void **)&lpc_cuda.partials, LPC_PARTIALS_LEN * sizeof(double)));
    LPC_CHECK_CUDA(cudaMalloc((void **)&lpc_cuda.done, sizeof(unsigned)));
    LPC_CHECK_CUDA(cudaMemsetAsync(lpc_cuda.done, 0, sizeof(unsigned), stream));
    LPC_CHECK_CUDA(cudaMalloc((void **)&lpc_cuda.tile_done, LPC_SPLIT_TILES * sizeof(unsigned)));
    LPC_CHECK_CUDA(cudaMemsetAsync(lpc_cuda.tile_done, 0, LPC_SPLIT_TILES * sizeof(unsigned), stream));
    size_t total;
    LPC_CHECK_CUDA(cudaMemGetInfo(&free_at_start, &total));
    ready = 1;
    return &cuda_backend;
}
