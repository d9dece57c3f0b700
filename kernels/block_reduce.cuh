// Block-wide sums in a fixed tree order (no atomics), shared by the CUDA kernels: the same inputs
// always give the same bits. Every thread of the block must call it; all of them get the sums. A
// shuffle tree within each warp, then one over the warps' sums: two barriers instead of one per level.
// And the arrival count of kernels whose last block to finish adds the others' partial results.
#ifndef LPC_BLOCK_REDUCE_CUH
#define LPC_BLOCK_REDUCE_CUH

template <int THREADS, int K>
__device__ __forceinline__ void lpc_block_sums(double (&v)[K]) {
    static_assert(THREADS % 32 == 0 && THREADS <= 1024, "whole warps, at most 32 of them");
    constexpr int WARPS = THREADS / 32;
    __shared__ double s[K][WARPS];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    for (int q = 0; q < K; q++) {
        for (int o = 16; o > 0; o >>= 1) v[q] += __shfl_down_sync(0xffffffffu, v[q], o);
        if (lane == 0) s[q][warp] = v[q];
    }
    __syncthreads();
    for (int q = 0; q < K; q++) { /* every warp adds the warps' sums in the same tree */
        double t = lane < WARPS ? s[q][lane] : 0.0;
        for (int o = 16; o > 0; o >>= 1) t += __shfl_down_sync(0xffffffffu, t, o);
        v[q] = __shfl_sync(0xffffffffu, t, 0);
    }
    __syncthreads(); /* s is free for the next call */
}

// Every thread of the block calls it once its share of the block's partial results is written: true in
// every thread of the last of `arrivals` blocks to arrive at *counter, which it resets to zero for the
// next launch; the partials of all of them are then visible to that block (read them with __ldcg).
__device__ __forceinline__ bool lpc_last_to_arrive(unsigned *counter, unsigned arrivals) {
    __shared__ bool last;
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) {
        last = atomicAdd(counter, 1u) == arrivals - 1;
        if (last) *counter = 0;
    }
    __syncthreads();
    if (last) __threadfence();
    return last;
}

#endif
