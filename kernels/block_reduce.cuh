// Block-wide sums in a fixed tree order (no atomics), shared by the CUDA kernels: the same inputs
// always give the same bits. Every thread of the block must call it; all of them get the sums.
#ifndef LPC_BLOCK_REDUCE_CUH
#define LPC_BLOCK_REDUCE_CUH

template <int THREADS, int K>
__device__ __forceinline__ void lpc_block_sums(double (&v)[K]) {
    __shared__ double s[K][THREADS];
    for (int q = 0; q < K; q++) s[q][threadIdx.x] = v[q];
    __syncthreads();
    for (int k = THREADS / 2; k > 0; k >>= 1) {
        if (threadIdx.x < k)
            for (int q = 0; q < K; q++) s[q][threadIdx.x] += s[q][threadIdx.x + k];
        __syncthreads();
    }
    for (int q = 0; q < K; q++) v[q] = s[q][0];
    __syncthreads(); /* s is free for the next call */
}

#endif
