// TF32 tensor-core pieces shared by the implicit-GEMM convolution kernels (kernels/conv_implicit.cu on
// NCHW tensors, kernels/conv_implicit_nhwc.cu on channel-last ones): operand rounding, the m16n8k8
// multiply-accumulate and the asynchronous-copy group bookkeeping.
#ifndef LPC_TENSOR_CORE_CUH
#define LPC_TENSOR_CORE_CUH

// TF32 operands: the tensor cores read the top 19 bits of each register, so adding half a TF32 unit
// in the last place rounds to nearest (ties away from zero) in one integer add
__device__ __forceinline__ unsigned tf32_round(float x) { return __float_as_uint(x) + 0x1000u; }
// fp32 as head + tail: the head is x rounded to TF32 (low 13 bits cleared), the tail the rest
__device__ __forceinline__ void tf32_split(float x, unsigned &head, unsigned &tail) {
    head = (__float_as_uint(x) + 0x1000u) & 0xffffe000u;
    tail = tf32_round(x - __uint_as_float(head));
}

__device__ __forceinline__ void copy_commit() { asm volatile("cp.async.commit_group;"); }
template <int N> __device__ __forceinline__ void copy_wait() { asm volatile("cp.async.wait_group %0;" ::"n"(N)); }

__device__ __forceinline__ void mma_tf32(float *d, const unsigned *a, const unsigned *b) {
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// one operand for the tensor cores: x rounded to TF32, or with PRECISE split into head and tail
template <bool PRECISE> __device__ __forceinline__ void tf32_operand(float x, unsigned &head, unsigned &tail) {
    if (PRECISE) tf32_split(x, head, tail);
    else head = tf32_round(x);
}

// one k8 step of a warp's tile: acc[i][j] += a[i] b[j] over its MI x NI fragments; with PRECISE the
// products head*tail and tail*head first, then head*head (fp32-level accuracy from three TF32 products)
template <bool PRECISE, int MI, int NI>
__device__ __forceinline__ void mma_warp_tile(float (&acc)[MI][NI][4], const unsigned (&ah)[MI][4],
                                              const unsigned (&al)[MI][4], const unsigned (&bh)[NI][2],
                                              const unsigned (&bl)[NI][2]) {
#pragma unroll
    for (int i = 0; i < MI; i++)
#pragma unroll
        for (int j = 0; j < NI; j++) {
            if (PRECISE) {
                mma_tf32(acc[i][j], al[i], bh[j]);
                mma_tf32(acc[i][j], ah[i], bl[j]);
            }
            mma_tf32(acc[i][j], ah[i], bh[j]);
        }
}

// a thread's accumulator fragments set to zero
template <int MI, int NI> __device__ __forceinline__ void zero_tile(float (&acc)[MI][NI][4]) {
#pragma unroll
    for (int i = 0; i < MI; i++)
#pragma unroll
        for (int j = 0; j < NI; j++)
#pragma unroll
            for (int r = 0; r < 4; r++) acc[i][j][r] = 0.0f;
}

#endif
