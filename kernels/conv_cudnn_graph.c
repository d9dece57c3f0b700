/* cuDNN's graph API for the channel-last convolution path (`nhwc`, kernels/conv.c): forward and
 * backward-data on [n, h, w, c] tensors with [co, k, k, ci] filters. cuDNN's engine heuristics (mode A,
 * then the fallback list if none of those is usable) propose engine configurations; the first
 * MAX_CANDIDATES that suit the run become execution plans: no tensor-core engine unless `math = tf32`
 * (on fp32 data a tensor-core engine computes in TF32), no nondeterministic one with `deterministic =
 * true`, none that converts the inputs down, reduces in lower precision or uses FFT or Winograd
 * transforms (fp32 accuracy), and a workspace within WORKSPACE_LIMIT. With `deterministic = true` the
 * first is kept, so that a run never depends on a measurement, and no later one is made: a fused graph's
 * engines compile their kernels when the plan is made, about a second per candidate for the forward's
 * epilogue on an H200 (bench/RESULTS.md, 2026-11-29). Otherwise each is timed as the chain runs it
 * (calls replayed in a graph, on scratch buffers) and the fastest kept. cuDNN's legacy algorithms
 * reach only a few of these engines: on an H200 with TF32, the forward convolution from
 * [256, 32, 32, 32] to [256, 64, 16, 16] takes 28.7 us here against 108 us for the best legacy
 * algorithm on NCHW and 194 us on NHWC (bench/RESULTS.md, 2026-11-29).
 * The forward may carry an epilogue that multiplies its output by act'(pre) of a second channel-last
 * tensor of the output's size (the chain's backward: the act' of the layer below, RELU_BWD for ReLU and
 * leaky ReLU, SWISH_BWD for SiLU); where no suitable engine runs that graph, the plain convolution and
 * the act' kernel after it do the same work.
 * Plans are made once per shape, operation and epilogue, outside graph capture, and cached. */
#include <cuda_runtime.h>
#include <cudnn.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "cuda_internal.h"
#include "lpc/check.h"
#include "lpc/config.h"

#define MAX_PLANS 256
#define MAX_CANDIDATES 8
#define HEURISTIC_RESULTS 16
#define WORKSPACE_LIMIT ((size_t)256 << 20)

typedef cudnnBackendDescriptor_t descriptor;
enum { UID_X = 'x', UID_Y = 'y', UID_W = 'w', UID_PRE = 'p', UID_CONV_OUT = 'v' };
#define MAX_PARTS 9

struct engine_plan {
    struct lpc_conv_shape s;
    int backward_data, act_below;
    descriptor plan; /* NULL: no suitable engine runs this graph (only with an epilogue) */
    descriptor config, graph, parts[MAX_PARTS]; /* everything the plan was made from, kept alive */
    int n_parts;
    size_t workspace;
};
static struct engine_plan plans[MAX_PLANS];
static int n_plans;

static cudnnHandle_t handle(void) { return (cudnnHandle_t)lpc_cuda.cudnn; }

static descriptor create(cudnnBackendDescriptorType_t type) {
    descriptor d;
    LPC_CHECK_CUDNN(cudnnBackendCreateDescriptor(type, &d));
    return d;
}

static void set(descriptor d, cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type, int64_t count,
                const void *values) {
    LPC_CHECK_CUDNN(cudnnBackendSetAttribute(d, name, type, count, values));
}

/* a float tensor [n, c, h, w] stored channel-last: strides c*h*w, 1, w*c, c; a virtual one lives only
 * inside a fused graph */
static descriptor tensor(int64_t uid, int64_t n, int64_t c, int64_t h, int64_t w, int is_virtual) {
    descriptor d = create(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
    const int64_t dims[4] = {n, c, h, w}, strides[4] = {c * h * w, 1, w * c, c}, alignment = 16;
    const cudnnDataType_t type = CUDNN_DATA_FLOAT;
    const bool virtual_tensor = is_virtual;
    set(d, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &type);
    set(d, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims);
    set(d, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, strides);
    set(d, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid);
    set(d, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &alignment);
    set(d, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &virtual_tensor);
    LPC_CHECK_CUDNN(cudnnBackendFinalize(d));
    return d;
}

/* the epilogue dx = dy * act'(x), as cuDNN's pointwise backward of the activation; NULL for an
 * activation it has no such mode for */
static descriptor act_backward(int act, descriptor dy, descriptor x, descriptor dx, descriptor *pointwise_out) {
    cudnnPointwiseMode_t mode;
    if (act == LPC_ACT_RELU || act == LPC_ACT_LEAKY_RELU) mode = CUDNN_POINTWISE_RELU_BWD;
    else if (act == LPC_ACT_SILU) mode = CUDNN_POINTWISE_SWISH_BWD;
    else return NULL;
    descriptor pw = create(CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
    const cudnnDataType_t precision = CUDNN_DATA_FLOAT;
    set(pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode);
    set(pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &precision);
    if (act == LPC_ACT_LEAKY_RELU) { /* x <= 0: slope times dy */
        const double slope = LPC_LEAKY_RELU_SLOPE;
        set(pw, CUDNN_ATTR_POINTWISE_RELU_LOWER_CLIP_SLOPE, CUDNN_TYPE_DOUBLE, 1, &slope);
    }
    if (act == LPC_ACT_SILU) { /* SiLU is swish with beta 1 */
        const double beta = 1.0;
        set(pw, CUDNN_ATTR_POINTWISE_SWISH_BETA, CUDNN_TYPE_DOUBLE, 1, &beta);
    }
    LPC_CHECK_CUDNN(cudnnBackendFinalize(pw));
    descriptor op = create(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR);
    set(op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &pw);
    set(op, CUDNN_ATTR_OPERATION_POINTWISE_DYDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &dy);
    set(op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x);
    set(op, CUDNN_ATTR_OPERATION_POINTWISE_DXDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &dx);
    LPC_CHECK_CUDNN(cudnnBackendFinalize(op));
    *pointwise_out = pw;
    return op;
}

/* the operation graph of one convolution, forward with the act_below epilogue when that is not
 * LPC_ACT_NONE; parts receives the descriptors to destroy with it, *n_parts their count */
static descriptor operation_graph(const struct lpc_conv_shape *s, int backward_data, int act_below,
                                  descriptor parts[MAX_PARTS], int *n_parts) {
    const int epilogue = !backward_data && act_below != LPC_ACT_NONE;
    /* with the epilogue the convolution writes a virtual tensor, which the pointwise op reads */
    descriptor x = tensor(UID_X, s->n, s->ci, s->h, s->w, 0), y = tensor(UID_Y, s->n, s->co, s->ho, s->wo, 0),
               w = tensor(UID_W, s->co, s->ci, s->k, s->k, 0);
    descriptor conv_out = epilogue ? tensor(UID_CONV_OUT, s->n, s->co, s->ho, s->wo, 1) : y;
    descriptor conv = create(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR);
    const cudnnDataType_t compute = CUDNN_DATA_FLOAT;
    const cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
    const int64_t dims = 2, dilation[2] = {1, 1}, stride[2] = {s->stride, s->stride}, pad[2] = {s->pad, s->pad};
    set(conv, CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &compute);
    set(conv, CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode);
    set(conv, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, 1, &dims);
    set(conv, CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, 2, dilation);
    set(conv, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, 2, stride);
    set(conv, CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, 2, pad);
    set(conv, CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, 2, pad);
    LPC_CHECK_CUDNN(cudnnBackendFinalize(conv));
    /* forward: y = conv(x, w); backward-data: x = conv^T(y, w); the same tensors in other attributes */
    static const struct {
        cudnnBackendDescriptorType_t type;
        cudnnBackendAttributeName_t x, w, y, conv, alpha, beta;
    } ops[2] = {{CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X,
                 CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y,
                 CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA,
                 CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA},
                {CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DX,
                 CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_W, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DY,
                 CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_CONV_DESC, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_ALPHA,
                 CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_BETA}};
    const int which = backward_data ? 1 : 0;
    const float one = 1.0f, zero = 0.0f;
    descriptor op = create(ops[which].type);
    set(op, ops[which].x, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x);
    set(op, ops[which].w, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &w);
    set(op, ops[which].y, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &conv_out);
    set(op, ops[which].conv, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &conv);
    set(op, ops[which].alpha, CUDNN_TYPE_FLOAT, 1, &one);
    set(op, ops[which].beta, CUDNN_TYPE_FLOAT, 1, &zero);
    LPC_CHECK_CUDNN(cudnnBackendFinalize(op));
    int n = 0;
    parts[n++] = x, parts[n++] = y, parts[n++] = w, parts[n++] = conv, parts[n++] = op;
    descriptor graph_ops[2] = {op, NULL};
    if (epilogue) {
        descriptor pre = tensor(UID_PRE, s->n, s->co, s->ho, s->wo, 0), pointwise = NULL;
        graph_ops[1] = act_backward(act_below, conv_out, pre, y, &pointwise);
        parts[n++] = conv_out, parts[n++] = pre, parts[n++] = pointwise, parts[n++] = graph_ops[1];
    }
    descriptor graph = create(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
    cudnnHandle_t h = handle();
    set(graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, epilogue ? 2 : 1, graph_ops);
    set(graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &h);
    /* a graph no engine supports may fail here already: the caller then has no candidates */
    if (cudnnBackendFinalize(graph) != CUDNN_STATUS_SUCCESS) {
        cudnnBackendDestroyDescriptor(graph);
        graph = NULL;
    }
    *n_parts = n;
    return graph;
}

/* does this engine configuration's engine suit the run's math and determinism? */
static int engine_suits(descriptor config) {
    descriptor engine = create(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
    int64_t got = 0;
    LPC_CHECK_CUDNN(cudnnBackendGetAttribute(config, CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &got,
                                             &engine));
    cudnnBackendNumericalNote_t notes[CUDNN_NUMERICAL_NOTE_TYPE_COUNT];
    int64_t n_notes = 0;
    LPC_CHECK_CUDNN(cudnnBackendGetAttribute(engine, CUDNN_ATTR_ENGINE_NUMERICAL_NOTE, CUDNN_TYPE_NUMERICAL_NOTE,
                                             CUDNN_NUMERICAL_NOTE_TYPE_COUNT, &n_notes, notes));
    cudnnBackendDestroyDescriptor(engine);
    if (n_notes > CUDNN_NUMERICAL_NOTE_TYPE_COUNT) n_notes = CUDNN_NUMERICAL_NOTE_TYPE_COUNT;
    for (int64_t i = 0; i < n_notes; i++) {
        const cudnnBackendNumericalNote_t note = notes[i];
        if ((note == CUDNN_NUMERICAL_NOTE_TENSOR_CORE && !lpc_cuda.tf32) ||
            (note == CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC && lpc_cuda.deterministic) ||
            note == CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS || note == CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION ||
            note == CUDNN_NUMERICAL_NOTE_FFT || note == CUDNN_NUMERICAL_NOTE_WINOGRAD ||
            note == CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_4x4 || note == CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_6x6 ||
            note == CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_13x13)
            return 0;
    }
    return 1;
}

/* execution plans (and their configurations) for the suitable configurations that heuristics `mode`
 * proposes, best first: only the first with deterministic = true */
static int candidate_plans(descriptor graph, cudnnBackendHeurMode_t mode, descriptor *plans_out, descriptor *configs_out,
                           size_t *workspace) {
    descriptor heuristics = create(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
    set(heuristics, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &graph);
    set(heuristics, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode);
    int found = 0;
    if (cudnnBackendFinalize(heuristics) == CUDNN_STATUS_SUCCESS) {
        descriptor configs[HEURISTIC_RESULTS];
        for (int i = 0; i < HEURISTIC_RESULTS; i++) configs[i] = create(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
        int64_t count = 0;
        if (cudnnBackendGetAttribute(heuristics, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                                     HEURISTIC_RESULTS, &count, configs) != CUDNN_STATUS_SUCCESS)
            count = 0;
        if (count > HEURISTIC_RESULTS) count = HEURISTIC_RESULTS;
        cudnnHandle_t h = handle();
        const int wanted = lpc_cuda.deterministic ? 1 : MAX_CANDIDATES;
        for (int64_t i = 0; i < count && found < wanted; i++) {
            if (!engine_suits(configs[i])) continue;
            descriptor plan = create(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
            set(plan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &h);
            set(plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &configs[i]);
            int64_t bytes = 0, got = 0;
            if (cudnnBackendFinalize(plan) != CUDNN_STATUS_SUCCESS ||
                cudnnBackendGetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1, &got,
                                         &bytes) != CUDNN_STATUS_SUCCESS ||
                bytes < 0 || (size_t)bytes > WORKSPACE_LIMIT) {
                cudnnBackendDestroyDescriptor(plan);
                continue;
            }
            plans_out[found] = plan, configs_out[found] = configs[i], workspace[found] = (size_t)bytes;
            configs[i] = NULL; /* now the caller's */
            found++;
        }
        for (int i = 0; i < HEURISTIC_RESULTS; i++)
            if (configs[i]) cudnnBackendDestroyDescriptor(configs[i]);
    }
    cudnnBackendDestroyDescriptor(heuristics);
    return found;
}

/* pre: the epilogue's second operand (NULL for a plan without one) */
static void execute(descriptor plan, float *x, float *y, const float *w, const float *pre, void *workspace) {
    descriptor pack = create(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
    const int64_t uids[4] = {UID_X, UID_Y, UID_W, UID_PRE};
    void *pointers[4] = {x, y, (void *)w, (void *)pre};
    const int64_t count = pre ? 4 : 3;
    set(pack, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, count, uids);
    set(pack, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, count, pointers);
    set(pack, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &workspace);
    LPC_CHECK_CUDNN(cudnnBackendFinalize(pack));
    LPC_CHECK_CUDNN(cudnnBackendExecute(handle(), plan, pack));
    LPC_CHECK_CUDNN(cudnnBackendDestroyDescriptor(pack));
}

struct timed_plan {
    descriptor plan;
    float *x, *y, *w, *pre;
    void *workspace;
};
static void run_timed(void *ctx) {
    const struct timed_plan *t = ctx;
    execute(t->plan, t->x, t->y, t->w, t->pre, t->workspace);
}

/* the fastest of the candidates, timed on scratch buffers (the first, with deterministic = true) */
static int pick(const struct lpc_conv_shape *s, int epilogue, descriptor *candidates, const size_t *workspace,
                int count) {
    if (count == 1 || lpc_cuda.deterministic) return 0;
    size_t most = 0;
    for (int i = 0; i < count; i++) most = workspace[i] > most ? workspace[i] : most;
    const size_t x_bytes = lpc_conv_x_elements(s) * sizeof(float), y_bytes = lpc_conv_y_elements(s) * sizeof(float);
    const size_t w_bytes = lpc_conv_w_elements(s) * sizeof(float);
    struct timed_plan t = {NULL, NULL, NULL, NULL, NULL, NULL};
    LPC_CHECK_CUDA(cudaMalloc((void **)&t.x, x_bytes));
    LPC_CHECK_CUDA(cudaMalloc((void **)&t.y, y_bytes));
    LPC_CHECK_CUDA(cudaMalloc((void **)&t.w, w_bytes));
    if (epilogue) LPC_CHECK_CUDA(cudaMalloc((void **)&t.pre, y_bytes));
    LPC_CHECK_CUDA(cudaMalloc(&t.workspace, most ? most : 4));
    cudaStream_t stream = (cudaStream_t)lpc_cuda.stream;
    LPC_CHECK_CUDA(cudaMemsetAsync(t.x, 0, x_bytes, stream));
    LPC_CHECK_CUDA(cudaMemsetAsync(t.y, 0, y_bytes, stream));
    LPC_CHECK_CUDA(cudaMemsetAsync(t.w, 0, w_bytes, stream));
    if (epilogue) LPC_CHECK_CUDA(cudaMemsetAsync(t.pre, 0, y_bytes, stream));
    int best = 0;
    float best_ms = 0;
    for (int i = 0; i < count; i++) {
        t.plan = candidates[i];
        const float ms = lpc_cuda_time_calls(run_timed, &t);
        if (i == 0 || ms < best_ms) best = i, best_ms = ms;
    }
    LPC_CHECK_CUDA(cudaStreamSynchronize(stream));
    LPC_CHECK_CUDA(cudaFree(t.x));
    LPC_CHECK_CUDA(cudaFree(t.y));
    LPC_CHECK_CUDA(cudaFree(t.w));
    if (t.pre) LPC_CHECK_CUDA(cudaFree(t.pre));
    LPC_CHECK_CUDA(cudaFree(t.workspace));
    return best;
}

/* the tensors here are always channel-last: shapes that differ only in the caller's layout flags share a plan */
static struct engine_plan *plan_for(const struct lpc_conv_shape *shape, int backward_data, int act_below) {
    const struct lpc_conv_shape geometry = lpc_conv_geometry(shape), *s = &geometry;
    if (backward_data) act_below = LPC_ACT_NONE;
    for (int i = 0; i < n_plans; i++)
        if (plans[i].backward_data == backward_data && plans[i].act_below == act_below &&
            memcmp(&plans[i].s, s, sizeof *s) == 0)
            return &plans[i];
    if (n_plans == MAX_PLANS)
        lpc_die_internal("cuDNN", "plan_for", __func__, __FILE__, __LINE__, "too many convolution shapes");
    struct engine_plan *p = &plans[n_plans];
    memset(p, 0, sizeof *p);
    p->graph = operation_graph(s, backward_data, act_below, p->parts, &p->n_parts);
    descriptor candidates[MAX_CANDIDATES], configs[MAX_CANDIDATES];
    size_t workspace[MAX_CANDIDATES];
    int count = 0;
    if (p->graph) count = candidate_plans(p->graph, CUDNN_HEUR_MODE_A, candidates, configs, workspace);
    if (p->graph && count == 0)
        count = candidate_plans(p->graph, CUDNN_HEUR_MODE_FALLBACK, candidates, configs, workspace);
    p->s = *s, p->backward_data = backward_data, p->act_below = act_below;
    if (count == 0) {
        if (act_below == LPC_ACT_NONE)
            lpc_die_internal("cuDNN", "plan_for", __func__, __FILE__, __LINE__,
                             "no engine runs this convolution on channel-last tensors");
        /* the epilogue unsupported: the plain plan (made after this one is stored) and the act' kernel */
        n_plans++;
        p->workspace = plan_for(s, 0, LPC_ACT_NONE)->workspace;
        return p;
    }
    const int best = pick(s, act_below != LPC_ACT_NONE, candidates, workspace, count);
    for (int i = 0; i < count; i++)
        if (i != best) cudnnBackendDestroyDescriptor(candidates[i]), cudnnBackendDestroyDescriptor(configs[i]);
    p->plan = candidates[best], p->config = configs[best], p->workspace = workspace[best];
    n_plans++;
    return p;
}

size_t lpc_cudnn_graph_workspace(const struct lpc_conv_shape *s, int backward_data, int act_below) {
    return plan_for(s, backward_data, act_below)->workspace;
}

void lpc_cudnn_graph_forward(float *y, const float *x, const float *w, const float *pre_below, int act_below,
                             const struct lpc_conv_shape *s, void *workspace) {
    const struct engine_plan *p = plan_for(s, 0, act_below);
    if (p->plan) {
        execute(p->plan, (float *)x, y, w, act_below == LPC_ACT_NONE ? NULL : pre_below, workspace);
        return;
    }
    execute(plan_for(s, 0, LPC_ACT_NONE)->plan, (float *)x, y, w, NULL, workspace);
    lpc_cuda_bias_act_backward(y, NULL, y, pre_below, s->n, s->co, s->ho * s->wo, act_below);
}

void lpc_cudnn_graph_backward_data(float *dx, const float *dy, const float *w, const struct lpc_conv_shape *s,
                                   void *workspace) {
    execute(plan_for(s, 1, LPC_ACT_NONE)->plan, dx, (float *)dy, w, NULL, workspace);
}
