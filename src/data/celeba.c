/* CelebA aligned faces (SPEC.md section 5): the JPEGs in img_align_celeba/ (178 x 218) and
 * list_eval_partition.txt ("000001.jpg 0": 0 train, 1 valid, 2 test). Centre crop (crop, default 148:
 * top 35, left 15) and area resize to image_size. The decoded split is cached once, beside the data,
 * as a raw uint8 file with a header (source, count, crop, size, checksum); a stale or corrupt cache is
 * detected and rebuilt. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "lpc/check.h"
#include "lpc/data.h"
#include "lpc/fileutil.h"

#define CACHE_MAGIC "LPCIMG01"

struct cache_header {
    char magic[8];
    uint64_t count, crop, size, source; /* source: fingerprint of the partition file */
    uint64_t checksum;                  /* CRC-32 of the pixels */
};

static uint64_t fingerprint(const struct stat *st) {
    return (uint64_t)st->st_size * 1000003u ^ (uint64_t)st->st_mtime;
}

static int read_cache(struct lpc_dataset *d, const char *path, const struct cache_header *want) {
    size_t size;
    unsigned char *buf = lpc_read_file(path, (size_t)1 << 40, &size);
    if (!buf) return -1;
    struct cache_header h;
    size_t image = (size_t)3 * want->size * want->size;
    int ok = size >= sizeof h;
    if (ok) memcpy(&h, buf, sizeof h);
    ok = ok && memcmp(h.magic, CACHE_MAGIC, 8) == 0 && h.crop == want->crop && h.size == want->size &&
         h.source == want->source && h.count == want->count && size == sizeof h + image * h.count &&
         crc32(0L, buf + sizeof h, (uInt)(image * h.count)) == h.checksum;
    if (!ok) {
        free(buf);
        return -1;
    }
    d->n = (long)h.count, d->c = 3, d->h = d->w = (int)h.size;
    d->pixels = lpc_xmalloc(image * h.count);
    memcpy(d->pixels, buf + sizeof h, image * h.count);
    free(buf);
    return 0;
}

int lpc_celeba_load(struct lpc_dataset *d, const char *dir, int split, long limit, int crop, int size) {
    char list[LPC_STRING_MAX + 64];
    snprintf(list, sizeof list, "%s/list_eval_partition.txt", dir);
    struct stat st;
    if (stat(list, &st) != 0)
        return lpc_fail("%s: missing (CelebA needs list_eval_partition.txt beside img_align_celeba/)", list);
    FILE *f = fopen(list, "r");
    if (!f) return lpc_fail("%s: cannot open: %s", list, strerror(errno));
    long cap = 4096, n = 0, line = 0;
    char **paths = lpc_xmalloc(sizeof(char *) * (size_t)cap);
    char name[256];
    int part, rc = 0;
    const int want_part = split == LPC_SPLIT_TEST ? 2 : split == LPC_SPLIT_VALID ? 1 : 0;
    char buf[512];
    while (fgets(buf, sizeof buf, f)) {
        line++;
        if (buf[0] == '\n' || buf[0] == '\r') continue;
        if (sscanf(buf, "%255s %d", name, &part) != 2 || part < 0 || part > 2 || strchr(name, '/')) {
            rc = lpc_fail("%s:%ld: expected 'NNNNNN.jpg 0|1|2'", list, line);
            break;
        }
        if (part != want_part || (limit > 0 && n >= limit)) continue;
        if (n == cap) paths = lpc_xrealloc(paths, sizeof(char *) * (size_t)(cap *= 2));
        char path[LPC_STRING_MAX + 300];
        snprintf(path, sizeof path, "%s/img_align_celeba/%s", dir, name);
        paths[n++] = lpc_xstrdup(path);
    }
    fclose(f);
    if (rc == 0 && n == 0) rc = lpc_fail("%s: no images in the %s partition", list, split == LPC_SPLIT_TEST ? "test" : split == LPC_SPLIT_VALID ? "valid" : "train");
    if (rc == 0) {
        struct cache_header want = {CACHE_MAGIC, (uint64_t)n, (uint64_t)crop, (uint64_t)size, fingerprint(&st), 0};
        char cache[LPC_STRING_MAX + 128];
        snprintf(cache, sizeof cache, "%s/lpc-cache-%d-n%ld-c%d-s%d.u8", dir, want_part, n, crop, size);
        if (!lpc_exists(cache) || read_cache(d, cache, &want) != 0) {
            rc = lpc_decode_images(d, paths, n, crop, size, 0, NULL);
            if (rc == 0) {
                size_t bytes = (size_t)d->n * 3 * size * size;
                want.checksum = crc32(0L, d->pixels, (uInt)bytes);
                const void *parts[2] = {&want, d->pixels};
                size_t sizes[2] = {sizeof want, bytes};
                if (lpc_write_file_atomic(cache, parts, sizes, 2))
                    fprintf(stderr, "lpc: note: cannot write the decoded-image cache (%s); decoding again next time\n", lpc_last_error());
            }
        }
    }
    for (long i = 0; i < n; i++) free(paths[i]);
    free(paths);
    return rc;
}
