/* Error handling for lpc (DESIGN.md, "Conventions").
 *
 * Two kinds of failure:
 *  - a user mistake (bad config, missing or corrupt file): library code records one clear line with
 *    lpc_fail() and returns -1; the command line prints it and exits with LPC_EXIT_USER (2);
 *  - a library or system failure (CUDA, cuDNN, cuBLAS, cuRAND, out of memory): the LPC_CHECK_*
 *    macros print the statement, function, file:line and the library's message and exit(1).
 * The checks are always on; nothing here is compiled out by NDEBUG. */
#ifndef LPC_CHECK_H
#define LPC_CHECK_H

#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LPC_EXIT_USER 2
#define LPC_EXIT_INTERNAL 1

#if defined(__GNUC__)
#define LPC_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define LPC_NORETURN __attribute__((noreturn))
#else
#define LPC_PRINTF(a, b)
#define LPC_NORETURN
#endif

/* Records a one-line user-facing error message (printf style) and returns -1. */
int lpc_fail(const char *fmt, ...) LPC_PRINTF(1, 2);
/* The message recorded by the last lpc_fail() of this thread ("" if none). */
const char *lpc_last_error(void);
/* Prints "lpc: error: <msg>" to stderr and exits with LPC_EXIT_USER. */
LPC_NORETURN void lpc_die_user(const char *fmt, ...) LPC_PRINTF(1, 2);
/* Prints the last recorded error and exits with LPC_EXIT_USER. */
LPC_NORETURN void lpc_die_last_error(void);
/* Prints a library failure with its location and exits with LPC_EXIT_INTERNAL. */
LPC_NORETURN void lpc_die_internal(const char *lib, const char *stmt, const char *func, const char *file,
                                   int line, const char *msg);

/* Allocation that never returns NULL: on failure it says how much was asked for and exits. */
void *lpc_xmalloc(size_t bytes);
void *lpc_xcalloc(size_t count, size_t size);
void *lpc_xrealloc(void *p, size_t bytes);
char *lpc_xstrdup(const char *s);
/* Aligned (64 bytes) zeroed allocation, freed with lpc_free_aligned(). */
void *lpc_xalloc_aligned(size_t bytes);
void lpc_free_aligned(void *p);

#define LPC_CHECK_SYS(stmt)                                                                         \
    do {                                                                                           \
        if ((stmt) != 0) lpc_die_internal("system", #stmt, __func__, __FILE__, __LINE__, "failed"); \
    } while (0)

#define LPC_CHECK_CURAND(stmt)                                                                   \
    do {                                                                                         \
        curandStatus_t lpc_st_ = (stmt);                                                         \
        if (lpc_st_ != CURAND_STATUS_SUCCESS)                                                    \
            lpc_die_internal("cuRAND", #stmt, __func__, __FILE__, __LINE__,                      \
                             lpc_curand_status_string((int)lpc_st_));                           \
    } while (0)

#define LPC_CHECK_CUDA(stmt)                                                                              \
    do {                                                                                                  \
        cudaError_t lpc_st_ = (stmt);                                                                     \
        if (lpc_st_ != cudaSuccess)                                                                       \
            lpc_die_internal("CUDA", #stmt, __func__, __FILE__, __LINE__, cudaGetErrorString(lpc_st_));  \
    } while (0)

#define LPC_CHECK_CUDNN(stmt)                                                                            \
    do {                                                                                                 \
        cudnnStatus_t lpc_st_ = (stmt);                                                                  \
        if (lpc_st_ != CUDNN_STATUS_SUCCESS)                                                             \
            lpc_die_internal("cuDNN", #stmt, __func__, __FILE__, __LINE__, cudnnGetErrorString(lpc_st_)); \
    } while (0)

#define LPC_CHECK_CUBLAS(stmt)                                                                             \
    do {                                                                                                   \
        cublasStatus_t lpc_st_ = (stmt);                                                                   \
        if (lpc_st_ != CUBLAS_STATUS_SUCCESS)                                                              \
            lpc_die_internal("cuBLAS", #stmt, __func__, __FILE__, __LINE__, cublasGetStatusString(lpc_st_)); \
    } while (0)

/* cuRAND has no status-to-string function of its own. */
const char *lpc_curand_status_string(int status);

#ifdef __cplusplus
}
#endif

#endif
