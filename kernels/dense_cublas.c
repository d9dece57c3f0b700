/* Dense layers on cuBLAS (SPEC.md section 4), row-major [n, features] tensors read as column-major
 * matrices; TF32 tensor-core math when `math = tf32`. The bias is added by a small kernel
 * (kernels/elementwise.cu), or in cuBLASLt's epilogue with a relu (the decoder's dense layer); its
 * gradient is the per-channel reduction every layer uses (kernels/act.cu). */
#include <cublasLt.h>
#include <cublas_v2.h>
#include <stdint.h>

#include "cuda_internal.h"
#include "lpc/check.h"

static cublasHandle_t handle(void) { return (cublasHandle_t)lpc_cuda.cublas; }

void lpc_cublas_dense_forward(float *y, const float *x, const float *w, const float *b, int n, int in, int out) {
    const float one = 1.0f, zero = 0.0f;
    /* Y (out x n) = W^T (out x in) X (in x n), with W column-major (in x out) */
    LPC_CHECK_CUBLAS(cublasSgemm(handle(), CUBLAS_OP_T, CUBLAS_OP_N, out, n, in, &one, w, in, x, in, &zero, y, out));
    if (b) lpc_cuda_add_bias_rows(y, b, n, out);
}

void lpc_cublas_dense_backward_data(float *dx, const float *dy, const float *w, int n, int in, int out) {
    const float one = 1.0f, zero = 0.0f;
    /* DX (in x n) = W (in x out) DY (out x n) */
    LPC_CHECK_CUBLAS(cublasSgemm(handle(), CUBLAS_OP_N, CUBLAS_OP_N, in, n, out, &one, w, in, dy, out, &zero, dx, in));
}

void lpc_cublas_dense_backward_params(float *dw, float *db, const float *dy, const float *x, int n, int in, int out) {
    const float one = 1.0f;
    /* dW (in x out) += X (in x n) DY^T (n x out) */
    LPC_CHECK_CUBLAS(cublasSgemm(handle(), CUBLAS_OP_N, CUBLAS_OP_T, in, out, n, &one, x, in, dy, out, &one, dw, in));
    if (db) lpc_cuda_bias_grad(db, dy, n, out, 1); /* [n, out] is [n, c = out, hw = 1] */
}

/* cuBLASLt's plans for the forward with its epilogue, one per shape and epilogue: the descriptors and
 * the heuristic's first algorithm (no workspace: these GEMMs need no split of K) */
#define MAX_LT_PLANS 32
struct lt_plan {
    int n, in, out, relu, has_bias;
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t a, b, c;
    cublasLtMatmulAlgo_t algo;
    int ok; /* 0: cuBLASLt offered no algorithm */
};
static struct lt_plan lt_plans[MAX_LT_PLANS];
static int n_lt_plans;
static cublasLtHandle_t lt;

static const struct lt_plan *lt_plan_for(int n, int in, int out, int relu, int has_bias) {
    for (int i = 0; i < n_lt_plans; i++) {
        const struct lt_plan *p = &lt_plans[i];
        if (p->n == n && p->in == in && p->out == out && p->relu == relu && p->has_bias == has_bias) return p;
    }
    if (n_lt_plans == MAX_LT_PLANS) return NULL;
    if (!lt) LPC_CHECK_CUBLAS(cublasLtCreate(&lt));
    struct lt_plan *p = &lt_plans[n_lt_plans++];
    *p = (struct lt_plan){.n = n, .in = in, .out = out, .relu = relu, .has_bias = has_bias};
    LPC_CHECK_CUBLAS(cublasLtMatmulDescCreate(
        &p->desc, lpc_cuda.tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F_PEDANTIC, CUDA_R_32F));
    const cublasOperation_t t = CUBLAS_OP_T;
    LPC_CHECK_CUBLAS(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof t));
    const cublasLtEpilogue_t epilogue = relu ? (has_bias ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_RELU)
                                             : (has_bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT);
    LPC_CHECK_CUBLAS(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue));
    /* Y (out x n) = W^T (out x in) X (in x n), W column-major (in x out) */
    LPC_CHECK_CUBLAS(cublasLtMatrixLayoutCreate(&p->a, CUDA_R_32F, (uint64_t)in, (uint64_t)out, in));
    LPC_CHECK_CUBLAS(cublasLtMatrixLayoutCreate(&p->b, CUDA_R_32F, (uint64_t)in, (uint64_t)n, in));
    LPC_CHECK_CUBLAS(cublasLtMatrixLayoutCreate(&p->c, CUDA_R_32F, (uint64_t)out, (uint64_t)n, out));
    cublasLtMatmulPreference_t pref;
    LPC_CHECK_CUBLAS(cublasLtMatmulPreferenceCreate(&pref));
    const size_t no_workspace = 0;
    const uint32_t align = 16; /* the calls check their pointers against it */
    LPC_CHECK_CUBLAS(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &no_workspace,
                                                          sizeof no_workspace));
    const cublasLtMatmulPreferenceAttributes_t aligns[] = {
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
    for (int i = 0; i < 4; i++) LPC_CHECK_CUBLAS(cublasLtMatmulPreferenceSetAttribute(pref, aligns[i], &align, sizeof align));
    cublasLtMatmulHeuristicResult_t result;
    int found = 0;
    const cublasStatus_t st =
        cublasLtMatmulAlgoGetHeuristic(lt, p->desc, p->a, p->b, p->c, p->c, pref, 1, &result, &found);
    LPC_CHECK_CUBLAS(cublasLtMatmulPreferenceDestroy(pref));
    p->ok = st == CUBLAS_STATUS_SUCCESS && found > 0;
    if (p->ok) p->algo = result.algo;
    return p;
}

int lpc_cublaslt_dense_forward_relu(float *y, const float *x, const float *w, const float *b, int n, int in, int out,
                                    int relu) {
    if ((((uintptr_t)y | (uintptr_t)x | (uintptr_t)w | (uintptr_t)b) & 15) || in % 4 || out % 4) return 0;
    const struct lt_plan *p = lt_plan_for(n, in, out, relu, b != NULL);
    if (!p || !p->ok) return 0;
    if (b) LPC_CHECK_CUBLAS(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &b, sizeof b));
    const float one = 1.0f, zero = 0.0f;
    LPC_CHECK_CUBLAS(cublasLtMatmul(lt, p->desc, &one, w, p->a, x, p->b, &zero, y, p->c, y, p->c, &p->algo, NULL, 0,
                                    (cudaStream_t)lpc_cuda.stream));
    return 1;
}
