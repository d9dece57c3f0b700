/* .npz output (SPEC.md section 6, `lpc sample --out FILE.npz`): a zip archive holding one stored
 * (uncompressed) NumPy array arr_0.npy of uint8 [N, H, W, C], which numpy.load, pytorch-fid and
 * clean-fid read. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "lpc/check.h"
#include "lpc/fileutil.h"
#include "lpc/image_io.h"

static void put16(unsigned char *p, unsigned v) { p[0] = (unsigned char)v, p[1] = (unsigned char)(v >> 8); }
static void put32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

int lpc_npz_write(const char *path, const unsigned char *images_nchw, int n, int c, int h, int w) {
    /* .npy version 1.0: magic, version, header length, header padded to a multiple of 64 with '\n' */
    char dict[256];
    int dl = snprintf(dict, sizeof dict, "{'descr': '|u1', 'fortran_order': False, 'shape': (%d, %d, %d, %d), }", n,
                      h, w, c);
    size_t header_total = (10 + (size_t)dl + 1 + 63) / 64 * 64;
    size_t data_bytes = (size_t)n * h * w * c, npy_bytes = header_total + data_bytes;
    if (npy_bytes >= 0xFFFFFFFFu) return lpc_fail("%s: %zu bytes is too large for a .npz without zip64; use fewer samples", path, npy_bytes);
    unsigned char *npy = lpc_xmalloc(npy_bytes);
    memcpy(npy, "\x93NUMPY\x01\x00", 8);
    put16(npy + 8, (unsigned)(header_total - 10));
    memset(npy + 10, ' ', header_total - 10);
    memcpy(npy + 10, dict, (size_t)dl);
    npy[header_total - 1] = '\n';
    unsigned char *data = npy + header_total;
    for (int i = 0; i < n; i++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int ch = 0; ch < c; ch++)
                    data[(((size_t)i * h + y) * w + x) * c + ch] = images_nchw[(((size_t)i * c + ch) * h + y) * w + x];
    uint32_t crc = (uint32_t)crc32(0L, npy, (uInt)npy_bytes);

    static const char name[] = "arr_0.npy";
    const unsigned name_len = sizeof name - 1;
    unsigned char local[30 + sizeof name], central[46 + sizeof name], end[22];
    memset(local, 0, sizeof local), memset(central, 0, sizeof central), memset(end, 0, sizeof end);
    put32(local, 0x04034b50);
    put16(local + 4, 20);
    put32(local + 14, crc);
    put32(local + 18, (uint32_t)npy_bytes);
    put32(local + 22, (uint32_t)npy_bytes);
    put16(local + 26, name_len);
    memcpy(local + 30, name, name_len);
    put32(central, 0x02014b50);
    put16(central + 4, 20);
    put16(central + 6, 20);
    put32(central + 16, crc);
    put32(central + 20, (uint32_t)npy_bytes);
    put32(central + 24, (uint32_t)npy_bytes);
    put16(central + 28, name_len);
    put32(central + 42, 0); /* offset of the local header */
    memcpy(central + 46, name, name_len);
    put32(end, 0x06054b50);
    put16(end + 8, 1);
    put16(end + 10, 1);
    put32(end + 12, 46 + name_len);
    put32(end + 16, (uint32_t)(30 + name_len + npy_bytes));
    const void *parts[4] = {local, npy, central, end};
    size_t sizes[4] = {30 + name_len, npy_bytes, 46 + name_len, 22};
    int rc = lpc_write_file_atomic(path, parts, sizes, 4);
    free(npy);
    return rc;
}
