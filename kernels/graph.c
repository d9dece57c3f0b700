/* CUDA graphs (SPEC.md section 4): the T-step chain is captured once from the backend's stream and
 * replayed for every minibatch; the buffers it reads (images, weights, noise) are refilled in place
 * between replays. */
#include <cuda_runtime.h>

#include "cuda_internal.h"
#include "lpc/check.h"

#define STREAM ((cudaStream_t)lpc_cuda.stream)

int lpc_cuda_capturing(void) {
    enum cudaStreamCaptureStatus capturing;
    LPC_CHECK_CUDA(cudaStreamIsCapturing(STREAM, &capturing));
    return capturing != cudaStreamCaptureStatusNone;
}

void lpc_cuda_graph_begin(void) { LPC_CHECK_CUDA(cudaStreamBeginCapture(STREAM, cudaStreamCaptureModeThreadLocal)); }

void *lpc_cuda_graph_end(void) {
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    LPC_CHECK_CUDA(cudaStreamEndCapture(STREAM, &graph));
    LPC_CHECK_CUDA(cudaGraphInstantiate(&exec, graph, 0));
    LPC_CHECK_CUDA(cudaGraphDestroy(graph));
    lpc_cuda_workspace_graph_created();
    return exec;
}

void lpc_cuda_graph_launch(void *graph) { LPC_CHECK_CUDA(cudaGraphLaunch((cudaGraphExec_t)graph, STREAM)); }

void lpc_cuda_graph_destroy(void *graph) {
    LPC_CHECK_CUDA(cudaGraphExecDestroy((cudaGraphExec_t)graph));
    lpc_cuda_workspace_graph_destroyed();
}

/* enough calls per replay that launch gaps count as they do in the chain, few enough replays that
 * choosing stays quick */
#define TIMED_CALLS 10
#define TIMED_REPLAYS 3

float lpc_cuda_time_calls(void (*call)(void *), void *ctx) {
    call(ctx);
    lpc_cuda_graph_begin();
    for (int i = 0; i < TIMED_CALLS; i++) call(ctx);
    void *graph = lpc_cuda_graph_end();
    lpc_cuda_graph_launch(graph);
    cudaEvent_t start, stop;
    LPC_CHECK_CUDA(cudaEventCreate(&start));
    LPC_CHECK_CUDA(cudaEventCreate(&stop));
    LPC_CHECK_CUDA(cudaEventRecord(start, STREAM));
    for (int i = 0; i < TIMED_REPLAYS; i++) lpc_cuda_graph_launch(graph);
    LPC_CHECK_CUDA(cudaEventRecord(stop, STREAM));
    LPC_CHECK_CUDA(cudaEventSynchronize(stop));
    float ms;
    LPC_CHECK_CUDA(cudaEventElapsedTime(&ms, start, stop));
    LPC_CHECK_CUDA(cudaEventDestroy(start));
    LPC_CHECK_CUDA(cudaEventDestroy(stop));
    lpc_cuda_graph_destroy(graph);
    return ms / ((float)TIMED_CALLS * TIMED_REPLAYS);
}
