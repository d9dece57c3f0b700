/* Error reporting and checked allocation (DESIGN.md, "Conventions": user errors exit 2 with one
 * line, library failures exit 1 with the failing statement and its location). */
#include "lpc/check.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char last_error[1024];

int lpc_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return -1;
}

const char *lpc_last_error(void) { return last_error; }

void lpc_die_user(const char *fmt, ...) {
    va_list ap;
    fflush(stdout);
    fputs("lpc: error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(LPC_EXIT_USER);
}

void lpc_die_last_error(void) { lpc_die_user("%s", last_error[0] ? last_error : "unknown error"); }

void lpc_die_internal(const char *lib, const char *stmt, const char *func, const char *file, int line,
                      const char *msg) {
    fflush(stdout);
    fprintf(stderr, "lpc: internal error: %s call failed: %s\n  in %s() at %s:%d\n  %s says: %s\n", lib, stmt,
            func, file, line, lib, msg ? msg : "(no message)");
    exit(LPC_EXIT_INTERNAL);
}

static void out_of_memory(size_t bytes) {
    fprintf(stderr, "lpc: error: out of host memory allocating %zu bytes; reduce batch_size or the model size\n",
            bytes);
    exit(LPC_EXIT_INTERNAL);
}

void *lpc_xmalloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) out_of_memory(bytes);
    return p;
}

void *lpc_xcalloc(size_t count, size_t size) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) out_of_memory(count * size);
    return p;
}

void *lpc_xrealloc(void *p, size_t bytes) {
    void *q = realloc(p, bytes ? bytes : 1);
    if (!q) out_of_memory(bytes);
    return q;
}

char *lpc_xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = lpc_xmalloc(n);
    memcpy(d, s, n);
    return d;
}

void *lpc_xalloc_aligned(size_t bytes) {
    size_t rounded = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, rounded ? rounded : 64);
    if (!p) out_of_memory(bytes);
    memset(p, 0, rounded ? rounded : 64);
    return p;
}

void lpc_free_aligned(void *p) { free(p); }

const char *lpc_curand_status_string(int status) {
    switch (status) {
    case 0: return "CURAND_STATUS_SUCCESS";
    case 100: return "CURAND_STATUS_VERSION_MISMATCH";
    case 101: return "CURAND_STATUS_NOT_INITIALIZED";
    case 102: return "CURAND_STATUS_ALLOCATION_FAILED";
    case 103: return "CURAND_STATUS_TYPE_ERROR";
    case 104: return "CURAND_STATUS_OUT_OF_RANGE";
    case 105: return "CURAND_STATUS_LENGTH_NOT_MULTIPLE";
    case 106: return "CURAND_STATUS_DOUBLE_PRECISION_REQUIRED";
    case 201: return "CURAND_STATUS_LAUNCH_FAILURE";
    case 202: return "CURAND_STATUS_PREEXISTING_FAILURE";
    case 203: return "CURAND_STATUS_INITIALIZATION_FAILED";
    case 204: return "CURAND_STATUS_ARCH_MISMATCH";
    case 999: return "CURAND_STATUS_INTERNAL_ERROR";
    default: return "unknown cuRAND status";
    }
}
