/* `folder`: every PNG, JPEG or BMP file of a directory, in name order, crop and resize as for celeba
 * (SPEC.md section 5). A file that is not a readable image is refused by name, or left out and
 * counted with skip_bad_images. */
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lpc/check.h"
#include "lpc/data.h"
#include "lpc/fileutil.h"

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int lpc_folder_load(struct lpc_dataset *d, const char *dir, long limit, int crop, int size, int skip_bad) {
    DIR *dp = opendir(dir);
    if (!dp) return lpc_fail("%s: cannot open the image folder", dir);
    long cap = 1024, n = 0;
    char **paths = lpc_xmalloc(sizeof(char *) * (size_t)cap);
    struct dirent *e;
    while ((e = readdir(dp))) {
        if (e->d_name[0] == '.') continue;
        char path[LPC_STRING_MAX + 300];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (lpc_is_dir(path)) continue;
        if (n == cap) paths = lpc_xrealloc(paths, sizeof(char *) * (size_t)(cap *= 2));
        paths[n++] = lpc_xstrdup(path);
    }
    closedir(dp);
    int rc = 0;
    if (n == 0) rc = lpc_fail("%s: the folder holds no files (expected PNG, JPEG or BMP images)", dir);
    if (rc == 0) {
        qsort(paths, (size_t)n, sizeof *paths, cmp_names);
        long use = limit > 0 && limit < n ? limit : n, skipped = 0;
        rc = lpc_decode_images(d, paths, use, crop, size, skip_bad, &skipped);
        if (rc == 0 && skipped) fprintf(stderr, "lpc: %s: left out %ld unreadable file(s)\n", dir, skipped);
    }
    for (long i = 0; i < n; i++) free(paths[i]);
    free(paths);
    return rc;
}
