/* Backend selection (SPEC.md section 4). */
#include "lpc/backend.h"

#include <omp.h>
#include <stdio.h>

#include "lpc/check.h"

void openblas_set_num_threads(int n); /* from OpenBLAS; cblas.h does not always declare it */

#ifndef LPC_HAVE_CUDA
const struct lpc_backend *lpc_backend_cuda(int math_tf32, int deterministic, int conv_algo) {
    (void)math_tf32, (void)deterministic, (void)conv_algo;
    lpc_fail("this lpc was built without the CUDA backend (configure with -DLPC_CUDA=ON)");
    return NULL;
}
#endif

const struct lpc_backend *lpc_backend_select(const struct lpc_config *cfg) {
    if (cfg->device == LPC_DEVICE_CPU) return lpc_backend_cpu();
    const struct lpc_backend *be = lpc_backend_cuda(cfg->math == LPC_MATH_TF32, cfg->deterministic, cfg->conv_algo);
    if (be) return be;
    char why[512];
    snprintf(why, sizeof why, "%s", lpc_last_error()); /* lpc_fail() writes the buffer it would read */
    if (cfg->device == LPC_DEVICE_CUDA) {
        lpc_fail("device = cuda: %s; use device = cpu or auto", why);
        return NULL;
    }
    fprintf(stderr, "lpc: device = auto: no usable GPU (%s); running on the CPU\n", why);
    return lpc_backend_cpu();
}

void lpc_backend_set_threads(const struct lpc_config *cfg) {
    if (cfg->threads > 0) {
        omp_set_num_threads((int)cfg->threads);
        openblas_set_num_threads((int)cfg->threads);
    }
}
