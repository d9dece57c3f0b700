/* IDX files (MNIST, Fashion-MNIST; SPEC.md section 5), gzipped or raw, read through zlib. The header's
 * counts are checked against the file's size (for .gz, the size recorded in the gzip trailer) before
 * any large allocation. */
#define _POSIX_C_SOURCE 200809L /* fileno */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "lpc/check.h"
#include "lpc/data.h"

#define IDX_MAX_ITEMS 100000000L

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Size of the content: the file size for raw files, the gzip ISIZE trailer (mod 2^32) for .gz files. */
static int content_size(const char *path, uint64_t *size, int *is_gzip) {
    FILE *f = fopen(path, "rb");
    if (!f) return lpc_fail("%s: cannot open (is the data set installed? see datasets/README.md)", path);
    unsigned char magic[2] = {0, 0};
    size_t got = fread(magic, 1, 2, f);
    struct stat st;
    fstat(fileno(f), &st);
    *is_gzip = got == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
    *size = (uint64_t)st.st_size;
    if (*is_gzip) {
        unsigned char tail[4];
        if (st.st_size < 18 || fseek(f, -4, SEEK_END) || fread(tail, 1, 4, f) != 4) {
            fclose(f);
            return lpc_fail("%s: truncated gzip file", path);
        }
        *size = (uint32_t)tail[0] | (uint32_t)tail[1] << 8 | (uint32_t)tail[2] << 16 | (uint32_t)tail[3] << 24;
    }
    fclose(f);
    return 0;
}

/* Opens an IDX file, checks its magic (0x0000 08 ndim) and returns its dimensions. */
static gzFile idx_open(const char *path, int ndim, uint32_t *dims) {
    uint64_t size = 0;
    int gz = 0;
    if (content_size(path, &size, &gz)) return NULL;
    gzFile f = gzopen(path, "rb");
    if (!f) {
        lpc_fail("%s: cannot open", path);
        return NULL;
    }
    unsigned char head[16];
    int want = 4 + 4 * ndim;
    if (gzread(f, head, (unsigned)want) != want) {
        gzclose(f);
        lpc_fail("%s: truncated IDX header (expected %d bytes)", path, want);
        return NULL;
    }
    uint32_t magic = be32(head);
    if (magic != (0x0800u | (uint32_t)ndim)) {
        gzclose(f);
        lpc_fail("%s: wrong magic number 0x%08x, expected 0x%08x (an IDX file of unsigned bytes with %d dimensions)",
                 path, magic, 0x0800u | (uint32_t)ndim, ndim);
        return NULL;
    }
    uint64_t items = 1;
    for (int i = 0; i < ndim; i++) {
        dims[i] = be32(head + 4 + 4 * i);
        items *= dims[i] ? dims[i] : 1;
    }
    if (dims[0] == 0 || dims[0] > IDX_MAX_ITEMS || (ndim == 3 && (dims[1] == 0 || dims[1] > 4096 || dims[2] == 0 || dims[2] > 4096))) {
        gzclose(f);
        lpc_fail("%s: implausible dimensions in the header (count %u)", path, dims[0]);
        return NULL;
    }
    uint64_t expected = (uint64_t)want + items;
    int matches = gz ? (uint32_t)expected == (uint32_t)size : expected == size;
    if (!matches) {
        gzclose(f);
        lpc_fail("%s: header says %u items (%llu bytes of content) but the file holds %llu bytes (truncated or corrupt)",
                 path, dims[0], (unsigned long long)expected, (unsigned long long)size);
        return NULL;
    }
    return f;
}

static int read_all(gzFile f, const char *path, unsigned char *dst, uint64_t n) {
    while (n) {
        unsigned chunk = n > (1u << 30) ? (1u << 30) : (unsigned)n;
        int r = gzread(f, dst, chunk);
        if (r <= 0) return lpc_fail("%s: truncated or corrupt data (gzip stream ended early)", path);
        dst += r, n -= (unsigned)r;
    }
    return 0;
}

int lpc_idx_load(struct lpc_dataset *d, const char *images_path, const char *labels_path, long limit) {
    uint32_t idims[3], ldims[1];
    gzFile fi = idx_open(images_path, 3, idims);
    if (!fi) return -1;
    gzFile fl = idx_open(labels_path, 1, ldims);
    if (!fl) {
        gzclose(fi);
        return -1;
    }
    if (ldims[0] != idims[0]) {
        gzclose(fi), gzclose(fl);
        return lpc_fail("%s: %u labels for %u images in %s", labels_path, ldims[0], idims[0], images_path);
    }
    long n = (long)idims[0];
    if (limit > 0 && limit < n) n = limit;
    d->n = n, d->c = 1, d->h = (int)idims[1], d->w = (int)idims[2];
    d->pixels = lpc_xmalloc((size_t)n * idims[1] * idims[2]);
    d->labels = lpc_xmalloc((size_t)n);
    if (read_all(fi, images_path, d->pixels, (uint64_t)n * idims[1] * idims[2]) ||
        read_all(fl, labels_path, d->labels, (uint64_t)n)) {
        gzclose(fi), gzclose(fl);
        free(d->pixels), free(d->labels);
        d->pixels = d->labels = NULL;
        return -1;
    }
    gzclose(fi), gzclose(fl);
    return 0;
}
