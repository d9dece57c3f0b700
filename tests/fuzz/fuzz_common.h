/* Shared by the libFuzzer targets: each writes the input to a file of its own and runs a parser on it
 * under AddressSanitizer; a parser must refuse bad input with a message, never crash or overrun. */
#ifndef LPC_FUZZ_COMMON_H
#define LPC_FUZZ_COMMON_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* mkdtemp; each target includes this header first */
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void fuzz_write(const char *path, const uint8_t *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
}

/* the directory for the input files: LPC_FUZZ_DIR (tests/fuzz/run.sh passes one it removes afterwards),
 * else a fresh one under TMPDIR or /tmp (left for the caller to remove) */
static const char *fuzz_dir(void) {
    static char dir[4096];
    if (!dir[0]) {
        const char *given = getenv("LPC_FUZZ_DIR"), *tmp = getenv("TMPDIR");
        if (given && given[0]) {
            snprintf(dir, sizeof dir, "%s", given);
        } else {
            snprintf(dir, sizeof dir, "%s/lpc_fuzz_XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
            if (!mkdtemp(dir)) abort();
        }
    }
    return dir;
}

#endif
