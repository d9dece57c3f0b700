/* Philox random numbers through cuRAND's host generator (SPEC.md section 4): no GPU is needed, and
 * cuRAND's device Philox generator gives the same sequence from the same (seed, offset). */
#include "lpc/rng.h"

#include <curand.h>
#include <string.h>

#include "lpc/check.h"

void lpc_rng_init(struct lpc_rng *rng, uint64_t seed, uint64_t offset) {
    memset(rng, 0, sizeof *rng);
    rng->seed = seed;
    rng->offset = offset;
}

void lpc_rng_destroy(struct lpc_rng *rng) {
    if (rng->host_generator) LPC_CHECK_CURAND(curandDestroyGenerator((curandGenerator_t)rng->host_generator));
    rng->host_generator = NULL;
}

static curandGenerator_t host_generator(struct lpc_rng *rng) {
    if (!rng->host_generator) {
        curandGenerator_t g;
        LPC_CHECK_CURAND(curandCreateGeneratorHost(&g, CURAND_RNG_PSEUDO_PHILOX4_32_10));
        LPC_CHECK_CURAND(curandSetPseudoRandomGeneratorSeed(g, rng->seed));
        rng->host_generator = g;
    }
    curandGenerator_t g = (curandGenerator_t)rng->host_generator;
    LPC_CHECK_CURAND(curandSetGeneratorOffset(g, rng->offset));
    return g;
}

void lpc_rng_normal_host(struct lpc_rng *rng, float *out, size_t n) {
    if (n == 0) return;
    LPC_CHECK_CURAND(curandGenerateNormal(host_generator(rng), out, lpc_rng_advance(n), 0.0f, 1.0f));
    rng->offset += lpc_rng_advance(n);
}

void lpc_rng_uniform_host(struct lpc_rng *rng, float *out, size_t n) {
    if (n == 0) return;
    LPC_CHECK_CURAND(curandGenerateUniform(host_generator(rng), out, lpc_rng_advance(n)));
    rng->offset += lpc_rng_advance(n);
}

uint64_t lpc_splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
