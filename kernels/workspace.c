/* The CUDA backend's one device workspace (SPEC.md section 4): cuDNN's algorithms, the convolution
 * lowering's column matrices, the implicit-GEMM kernels' partial tiles, the bias gradient's partial
 * sums and the likelihood's per-row sums all use it, one op at a time on the backend's single stream.
 * It only grows, and never inside a graph capture (every op reserves what a shape needs when the
 * shape is first seen, outside capture).
 *
 * A captured CUDA graph keeps the workspace address it was captured with, so a buffer that growth
 * replaces is not freed while any graph exists: it is retired, and the retired buffers are freed when
 * the last graph is destroyed (so with no graph alive, none are left). */
#include <cuda_runtime.h>
#include <stdlib.h>

#include "cuda_internal.h"
#include "lpc/check.h"

#define STREAM ((cudaStream_t)lpc_cuda.stream)

static void *workspace;
static size_t workspace_bytes;
static void **retired;
static size_t n_retired, retired_cap;
static int graphs_alive;

static void free_retired(void) {
    if (n_retired == 0) return;
    LPC_CHECK_CUDA(cudaStreamSynchronize(STREAM));
    for (size_t i = 0; i < n_retired; i++) LPC_CHECK_CUDA(cudaFree(retired[i]));
    n_retired = 0;
}

static void retire(void *p) {
    if (n_retired == retired_cap) {
        size_t cap = retired_cap ? 2 * retired_cap : 8;
        void **grown = realloc(retired, cap * sizeof *grown);
        if (!grown) lpc_die_internal("CUDA", "workspace", __func__, __FILE__, __LINE__, "out of host memory");
        retired = grown, retired_cap = cap;
    }
    retired[n_retired++] = p;
}

void *lpc_cuda_workspace(size_t bytes) {
    if (bytes <= workspace_bytes) return workspace;
    if (lpc_cuda_capturing())
        lpc_die_internal("CUDA", "workspace", __func__, __FILE__, __LINE__,
                         "the workspace had to grow inside a graph capture");
    /* grow by at least half, so that a run of growing shapes allocates a few times, not once each */
    size_t want = workspace_bytes + workspace_bytes / 2;
    if (want < bytes) want = bytes;
    void *p;
    LPC_CHECK_CUDA(cudaMalloc(&p, want));
    if (workspace) {
        if (graphs_alive) {
            retire(workspace);
        } else {
            LPC_CHECK_CUDA(cudaStreamSynchronize(STREAM));
            LPC_CHECK_CUDA(cudaFree(workspace));
        }
    }
    workspace = p, workspace_bytes = want;
    return workspace;
}

void lpc_cuda_workspace_graph_created(void) { graphs_alive++; }

void lpc_cuda_workspace_graph_destroyed(void) {
    if (--graphs_alive == 0) free_retired();
}
