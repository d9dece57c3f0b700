/* Random numbers (SPEC.md section 4): a counter-based Philox stream identified by (seed, offset), drawn
 * with cuRAND's host generator on the CPU and its device generator on the GPU, so both backends see
 * the same sequence and a run resumes exactly from a stored offset. */
#ifndef LPC_RNG_H
#define LPC_RNG_H

#include <stddef.h>
#include <stdint.h>

struct lpc_rng {
    uint64_t seed;
    uint64_t offset; /* in normals drawn so far */
    void *host_generator; /* curandGenerator_t, created on first host draw */
};

/* Every draw of n normals moves the offset by this amount (a multiple of 4, so that draws start on
 * Philox block boundaries and device draws may round n up to an even count). */
static inline uint64_t lpc_rng_advance(size_t n) { return ((uint64_t)n + 3u) / 4u * 4u; }

void lpc_rng_init(struct lpc_rng *rng, uint64_t seed, uint64_t offset);
void lpc_rng_destroy(struct lpc_rng *rng);
/* n normals into host memory (out must hold lpc_rng_advance(n) floats). */
void lpc_rng_normal_host(struct lpc_rng *rng, float *out, size_t n);
/* n uniforms in (0, 1] into host memory, same offset rules. */
void lpc_rng_uniform_host(struct lpc_rng *rng, float *out, size_t n);

/* A small splittable integer generator for data order and flips (splitmix64). */
uint64_t lpc_splitmix64(uint64_t *state);

#endif
