/* Small file helpers: atomic writes (temp file, fsync, rename), whole-file reads with a size cap,
 * directories. Errors are recorded with lpc_fail() and returned as -1 (or NULL). */
#ifndef LPC_FILEUTIL_H
#define LPC_FILEUTIL_H

#include <stddef.h>

/* Writes the concatenation of the parts to path atomically: a reader sees the old file or the new
 * one, never a mix; an existing file is untouched if anything fails. */
int lpc_write_file_atomic(const char *path, const void *const *parts, const size_t *sizes, int n_parts);
/* Reads a whole file; refuses files larger than max_bytes before allocating. */
unsigned char *lpc_read_file(const char *path, size_t max_bytes, size_t *size);
int lpc_mkdirs(const char *path);
int lpc_is_dir(const char *path);
int lpc_exists(const char *path);

#endif
