/* CIFAR-10 binary batches (SPEC.md section 5): data_batch_1.bin ... data_batch_5.bin (train) and
 * test_batch.bin (test), each 10000 records of 1 label byte and 3072 pixel bytes (R, G, B planes of
 * 32 x 32, row-major), exactly 30,730,000 bytes. Sizes are checked before anything is allocated. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lpc/check.h"
#include "lpc/data.h"

#define RECORD 3073
#define RECORDS_PER_FILE 10000
#define FILE_BYTES ((long)RECORD * RECORDS_PER_FILE)

int lpc_cifar10_load(struct lpc_dataset *d, const char *dir, int split, long limit) {
    const char *train[] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"};
    const char *test[] = {"test_batch.bin"};
    const char **names = split == LPC_SPLIT_TEST ? test : train;
    int files = split == LPC_SPLIT_TEST ? 1 : 5;
    char path[LPC_STRING_MAX + 64];
    for (int f = 0; f < files; f++) { /* every file is checked before any allocation */
        snprintf(path, sizeof path, "%s/%s", dir, names[f]);
        struct stat st;
        if (stat(path, &st) != 0)
            return lpc_fail("%s: cannot open: %s (expected the CIFAR-10 binary version, cifar-10-batches-bin/)", path, strerror(errno));
        if (st.st_size != FILE_BYTES)
            return lpc_fail("%s: %lld bytes, expected exactly %ld (10000 records of 3073 bytes; truncated or not the binary version?)",
                            path, (long long)st.st_size, FILE_BYTES);
    }
    long n = (long)files * RECORDS_PER_FILE;
    if (limit > 0 && limit < n) n = limit;
    d->n = n, d->c = 3, d->h = d->w = 32;
    d->pixels = lpc_xmalloc((size_t)n * 3072);
    d->labels = lpc_xmalloc((size_t)n);
    unsigned char record[RECORD];
    long done = 0;
    int rc = 0;
    for (int f = 0; f < files && done < n && rc == 0; f++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[f]);
        FILE *fp = fopen(path, "rb");
        if (!fp) {
            rc = lpc_fail("%s: cannot open: %s", path, strerror(errno));
            break;
        }
        for (int r = 0; r < RECORDS_PER_FILE && done < n; r++, done++) {
            if (fread(record, 1, RECORD, fp) != RECORD) {
                rc = lpc_fail("%s: read failed at record %d", path, r);
                break;
            }
            if (record[0] > 9) {
                rc = lpc_fail("%s: record %d has label %d, expected 0..9 (corrupt file)", path, r, record[0]);
                break;
            }
            d->labels[done] = record[0];
            memcpy(d->pixels + (size_t)done * 3072, record + 1, 3072); /* already C x H x W */
        }
        fclose(fp);
    }
    if (rc) {
        free(d->pixels), free(d->labels);
        d->pixels = d->labels = NULL;
    }
    return rc;
}
