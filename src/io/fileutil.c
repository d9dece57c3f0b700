/* File helpers: atomic writes and bounded reads (SPEC.md section 7: "writes are atomic"). */
#define _POSIX_C_SOURCE 200809L
#include "lpc/fileutil.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lpc/check.h"

static int write_all(int fd, const void *data, size_t n) {
    const char *p = data;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w, n -= (size_t)w;
    }
    return 0;
}

int lpc_write_file_atomic(const char *path, const void *const *parts, const size_t *sizes, int n_parts) {
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return lpc_fail("%s: path too long", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return lpc_fail("%s: cannot create: %s", tmp, strerror(errno));
    for (int i = 0; i < n_parts; i++)
        if (write_all(fd, parts[i], sizes[i])) {
            int e = errno;
            close(fd);
            unlink(tmp);
            return lpc_fail("%s: write failed: %s (is the disk full?)", path, strerror(e));
        }
    if (fsync(fd) || close(fd)) {
        int e = errno;
        unlink(tmp);
        return lpc_fail("%s: cannot flush to disk: %s", path, strerror(e));
    }
    if (rename(tmp, path)) {
        int e = errno;
        unlink(tmp);
        return lpc_fail("%s: cannot rename the finished file into place: %s", path, strerror(e));
    }
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", path);
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        fsync(dfd); /* make the rename durable; failure here cannot lose the file */
        close(dfd);
    }
    return 0;
}

unsigned char *lpc_read_file(const char *path, size_t max_bytes, size_t *size) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        lpc_fail("%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        close(fd);
        lpc_fail("%s: not a regular file", path);
        return NULL;
    }
    if ((unsigned long long)st.st_size > max_bytes) {
        close(fd);
        lpc_fail("%s: file is %lld bytes, more than the %zu expected at most", path, (long long)st.st_size, max_bytes);
        return NULL;
    }
    size_t n = (size_t)st.st_size, got = 0;
    unsigned char *buf = lpc_xmalloc(n + 1);
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            close(fd);
            free(buf);
            lpc_fail("%s: read failed: %s", path, r < 0 ? strerror(errno) : "file shrank while reading");
            return NULL;
        }
        got += (size_t)r;
    }
    close(fd);
    buf[n] = 0;
    *size = n;
    return buf;
}

int lpc_mkdirs(const char *path) {
    char buf[4200];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) return lpc_fail("%s: path too long", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0755) && errno != EEXIST) return lpc_fail("%s: cannot create directory: %s", buf, strerror(errno));
            *p = '/';
        }
    if (mkdir(buf, 0755) && errno != EEXIST) return lpc_fail("%s: cannot create directory: %s", buf, strerror(errno));
    if (!lpc_is_dir(buf)) return lpc_fail("%s: exists and is not a directory", buf);
    return 0;
}

int lpc_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int lpc_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}
