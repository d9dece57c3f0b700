/* The safetensors format (SPEC.md section 7): an 8-byte little-endian header length, a JSON header
 * {"__metadata__": {str: str}, NAME: {"dtype", "shape", "data_offsets": [begin, end]}}, then the data.
 * Files written here load with safetensors.torch.load_file. Reading validates every entry before it
 * is used. */
#ifndef LPC_SAFETENSORS_H
#define LPC_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define LPC_ST_MAX_DIMS 8
#define LPC_ST_NAME_MAX 128

enum lpc_st_dtype { LPC_ST_F32, LPC_ST_I64, LPC_ST_U8, LPC_ST_I32 };

struct lpc_st_tensor {
    char name[LPC_ST_NAME_MAX];
    enum lpc_st_dtype dtype;
    int ndim;
    int64_t shape[LPC_ST_MAX_DIMS];
    const void *data;
    size_t nbytes;
};

struct lpc_st_meta {
    const char *key, *value;
};

int lpc_safetensors_write(const char *path, const struct lpc_st_tensor *tensors, int n, const struct lpc_st_meta *meta,
                          int n_meta);

struct lpc_st_file {
    char path[1024];
    unsigned char *buf;
    size_t size;
    struct lpc_st_tensor *tensors;
    int count;
    struct lpc_st_meta *meta;
    int n_meta;
};

/* Reads and validates a file (at most max_bytes). -1 with a message naming the file and the entry. */
int lpc_safetensors_read(struct lpc_st_file *f, const char *path, size_t max_bytes);
void lpc_safetensors_free(struct lpc_st_file *f);
const struct lpc_st_tensor *lpc_safetensors_find(const struct lpc_st_file *f, const char *name);
const char *lpc_safetensors_meta(const struct lpc_st_file *f, const char *key);
/* Finds name and checks dtype and shape; -1 with a message that names the tensor and both shapes. */
int lpc_safetensors_expect(const struct lpc_st_file *f, const char *name, enum lpc_st_dtype dtype, int ndim,
                           const int64_t *shape, const struct lpc_st_tensor **out);
const char *lpc_st_dtype_name(enum lpc_st_dtype d);
size_t lpc_st_dtype_size(enum lpc_st_dtype d);

#endif
