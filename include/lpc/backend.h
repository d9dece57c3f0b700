/* Choosing the backend for a config (SPEC.md section 4: device = auto | cpu | cuda). */
#ifndef LPC_BACKEND_H
#define LPC_BACKEND_H

#include "lpc/config.h"
#include "lpc/ops.h"

/* The backend the config asks for; auto takes CUDA when a GPU is visible, else the CPU with one line
 * saying so. NULL (with a message) when cuda is asked for and cannot be had. */
const struct lpc_backend *lpc_backend_select(const struct lpc_config *cfg);
/* Applies cfg->threads to OpenMP and OpenBLAS. */
void lpc_backend_set_threads(const struct lpc_config *cfg);

#endif
