/* The configuration of lpc: one table of every key (SPEC.md section 6).
 *
 * LPC_CONFIG_KEYS is the single source of truth: the struct fields, the defaults, the allowed values
 * and ranges, the help text of `lpc --help`, the INI reader and writer and the `--key value` parser
 * are all generated from it. Keys are unique across sections. */
#ifndef LPC_CONFIG_H
#define LPC_CONFIG_H

#include <stdio.h>

#define LPC_STRING_MAX 512
#define LPC_LIST_MAX 8

/* X(section, name, type, default, min, max, choices, help)
 * type: INT (long), FLOAT (double), BOOL (int), ENUM (int, index into choices "a|b|c"),
 *       STRING (char[LPC_STRING_MAX]), INTLIST (int[LPC_LIST_MAX] plus name_count). */
#define LPC_CONFIG_KEYS(X)                                                                                      \
    X(data, dataset, ENUM, "fashion_mnist", 0, 0, "fashion_mnist|mnist|cifar10|svhn|celeba|folder",            \
      "data set to train on")                                                                                  \
    X(data, data_path, STRING, "", 0, 0, NULL,                                                                 \
      "folder holding the data set's files; empty: the standard location (fashion_mnist: "                    \
      "/usr/share/datasets/fashion-mnist)")                                                                    \
    X(data, split, ENUM, "train", 0, 0, "train|test|valid|extra", "which split (valid: celeba only; extra: svhn only)") \
    X(data, limit, INT, "0", 0, 1e9, NULL, "use only the first N images of the split (0: all)")               \
    X(data, image_size, INT, "64", 4, 1024, NULL, "side of the square images after crop and resize (celeba, folder)") \
    X(data, crop, INT, "148", 0, 4096, NULL,                                                                   \
      "side of the centred square crop before resizing (celeba, folder; 0: largest centred square)")           \
    X(data, flip, BOOL, "false", 0, 0, NULL, "random horizontal flips of training images")                     \
    X(data, skip_bad_images, BOOL, "false", 0, 0, NULL, "folder: leave out unreadable files instead of stopping") \
    X(model, latent_dim, INT, "16", 1, 4096, NULL, "number of latent dimensions D")                            \
    X(model, channels, INTLIST, "32,64", 1, 4096, NULL,                                                        \
      "channels c_1,...,c_K of the K stride-2 layers (encoder in this order, decoder reversed)")              \
    X(model, activation, ENUM, "relu", 0, 0, "relu|leaky_relu|silu", "activation after every hidden layer")    \
    X(model, likelihood, ENUM, "gaussian", 0, 0, "gaussian|discretized_gaussian", "decoder likelihood p(x|z)")  \
    X(model, sigma, FLOAT, "0.1", 1e-4, 100, NULL, "standard deviation of the likelihood (initial value if learned)") \
    X(model, learn_sigma, BOOL, "true", 0, 0, NULL, "learn one scalar log-sigma with the decoder (starting at sigma)")           \
    X(langevin, langevin_steps, INT, "10", 1, 100000, NULL, "Langevin steps T per minibatch")                  \
    X(langevin, langevin_step_size, FLOAT, "0.05", 1e-8, 100, NULL, "Langevin step size gamma")               \
    X(langevin, precond, BOOL, "true", 0, 0, NULL, "Adam-like second-moment preconditioner of the chain")     \
    X(langevin, precond_beta, FLOAT, "0.99", 0, 0.999999, NULL, "decay of the preconditioner's second moment") \
    X(langevin, precond_eps, FLOAT, "1e-8", 0, 1, NULL, "eps in G = 1/(sqrt(vhat) + eps)")                     \
    X(langevin, noise, BOOL, "true", 0, 0, NULL, "add sqrt(2 gamma G) noise (false: predictive-coding ascent)") \
    X(langevin, init, ENUM, "encoder_sample", 0, 0, "encoder_sample|encoder_mean|prior",                        \
      "warm start of each chain (prior: no encoder)")                                                          \
    X(langevin, theta_samples, INT, "0", 0, 100000, NULL,                                                      \
      "average the decoder gradient over the last S chain states (0: all T)")                                  \
    X(train, algo, ENUM, "lpc", 0, 0, "lpc|vae|pc", "training algorithm")                                      \
    X(train, encoder_objective, ENUM, "jeffreys", 0, 0, "jeffreys|forward_kl|reverse_kl|none",                  \
      "objective of the warm-start encoder (none with init = prior)")                                         \
    X(train, batch_size, INT, "64", 1, 65536, NULL, "images per minibatch")                                    \
    X(train, iters, INT, "1500", 1, 1e9, NULL, "optimiser steps")                                              \
    X(train, epochs, INT, "0", 0, 100000, NULL, "if > 0: train this many epochs instead of iters")             \
    X(train, lr, FLOAT, "1e-3", 0, 10, NULL, "Adam learning rate of the decoder (theta)")                      \
    X(train, lr_encoder, FLOAT, "1e-3", 0, 10, NULL, "Adam learning rate of the encoder (phi)")               \
    X(train, weight_decay, FLOAT, "0", 0, 10, NULL, "decoupled (AdamW) weight decay")                         \
    X(train, grad_clip, FLOAT, "0", 0, 1e9, NULL, "clip each network's gradient to this global norm (0: off)") \
    X(train, seed, INT, "1", 0, 4e18, NULL, "seed of every random number (weights, data order, noise)")      \
    X(train, device, ENUM, "auto", 0, 0, "auto|cpu|cuda", "where to compute (auto: cuda if a GPU is visible)") \
    X(train, math, ENUM, "fp32", 0, 0, "fp32|tf32", "CUDA matrix math (tf32 lets cuDNN/cuBLAS use tensor cores)") \
    X(train, deterministic, BOOL, "true", 0, 0, NULL, "CUDA: only deterministic cuDNN algorithms")           \
    X(train, conv_algo, ENUM, "auto", 0, 0, "auto|cudnn|gemm|implicit|direct|nhwc|subpixel|implicit_nhwc",     \
      "CUDA convolutions: cuDNN, cuBLAS GEMMs with gather kernels, lpc's implicit-GEMM tensor-core kernels, "   \
      "lpc's direct kernels for layers with at most 4 image-side channels (cuDNN for the others), "            \
      "cuDNN on channel-last copies, "                                                                          \
      "transposed convolutions as sub-pixel convolutions on cuDNN (channel-last copies for the others), "       \
      "lpc's implicit-GEMM tensor-core kernels on channel-last tensors (direct kernels or cuDNN for others), "\
      "or auto (the fastest per shape, timed once; with deterministic = true: a fixed rule from measured timings)") \
    X(train, threads, INT, "0", 0, 1024, NULL, "CPU threads (0: all cores)")                                   \
    X(train, run_dir, STRING, "", 0, 0, NULL, "run directory (empty: runs/ALGO-DATASET-DATE-TIME)")           \
    X(train, log_every, INT, "25", 1, 1e9, NULL, "write metrics every N steps")                                \
    X(train, sample_every, INT, "500", 0, 1e9, NULL, "write a sample grid every N steps (0: only at the end)")  \
    X(train, checkpoint_every, INT, "500", 0, 1e9, NULL, "write a checkpoint every N steps (0: only at the end)") \
    X(eval, eval_samples, INT, "64", 1, 100000, NULL, "importance samples K per image for the log-likelihood") \
    X(eval, eval_proposal, ENUM, "encoder", 0, 0, "encoder|langevin",                                          \
      "proposal of the importance sampler (langevin: Gaussian around the chain's last state)")                \
    X(bench, bench_model, ENUM, "cifar32", 0, 0, "fashion28|cifar32|celeba64|config",                          \
      "model of `lpc bench` (config: the [model] keys with the data set's image shape)")                      \
    X(bench, bench_repeats, INT, "5", 1, 1000, NULL, "timed repeats of each benchmark (median and spread)")    \
    X(bench, bench_warmup, INT, "2", 0, 1000, NULL, "untimed warm-up repeats (at least 2 with CUDA graphs)")

enum lpc_key_type { LPC_T_INT, LPC_T_FLOAT, LPC_T_BOOL, LPC_T_ENUM, LPC_T_STRING, LPC_T_INTLIST };

/* Keep each enum in the order of its key's choices string. */
enum lpc_dataset_kind { LPC_DATASET_FASHION_MNIST, LPC_DATASET_MNIST, LPC_DATASET_CIFAR10, LPC_DATASET_SVHN,
                   LPC_DATASET_CELEBA, LPC_DATASET_FOLDER };
enum lpc_split { LPC_SPLIT_TRAIN, LPC_SPLIT_TEST, LPC_SPLIT_VALID, LPC_SPLIT_EXTRA };
enum lpc_activation { LPC_ACT_RELU, LPC_ACT_LEAKY_RELU, LPC_ACT_SILU };
enum lpc_likelihood { LPC_LIK_GAUSSIAN, LPC_LIK_DISCRETIZED_GAUSSIAN };
enum lpc_init { LPC_INIT_ENCODER_SAMPLE, LPC_INIT_ENCODER_MEAN, LPC_INIT_PRIOR };
enum lpc_algo { LPC_ALGO_LPC, LPC_ALGO_VAE, LPC_ALGO_PC };
enum lpc_encoder_objective { LPC_OBJ_JEFFREYS, LPC_OBJ_FORWARD_KL, LPC_OBJ_REVERSE_KL, LPC_OBJ_NONE };
enum lpc_device_kind { LPC_DEVICE_AUTO, LPC_DEVICE_CPU, LPC_DEVICE_CUDA };
enum lpc_math { LPC_MATH_FP32, LPC_MATH_TF32 };
enum lpc_conv_algo { LPC_CONV_AUTO, LPC_CONV_CUDNN, LPC_CONV_GEMM, LPC_CONV_IMPLICIT, LPC_CONV_DIRECT, LPC_CONV_NHWC,
                     LPC_CONV_SUBPIXEL, LPC_CONV_IMPLICIT_NHWC };
enum lpc_eval_proposal { LPC_PROPOSAL_ENCODER, LPC_PROPOSAL_LANGEVIN };
enum lpc_bench_model { LPC_BENCH_FASHION28, LPC_BENCH_CIFAR32, LPC_BENCH_CELEBA64, LPC_BENCH_CONFIG };

#define LPC_KEY_ID(section, name, ...) LPC_KEY_##name,
enum lpc_key_id { LPC_CONFIG_KEYS(LPC_KEY_ID) LPC_N_KEYS };
#undef LPC_KEY_ID

#define LPC_FIELD_INT(name) long name
#define LPC_FIELD_FLOAT(name) double name
#define LPC_FIELD_BOOL(name) int name
#define LPC_FIELD_ENUM(name) int name
#define LPC_FIELD_STRING(name) char name[LPC_STRING_MAX]
#define LPC_FIELD_INTLIST(name) int name[LPC_LIST_MAX]; int name##_count
#define LPC_FIELD(section, name, type, ...) LPC_FIELD_##type(name);

struct lpc_config {
    LPC_CONFIG_KEYS(LPC_FIELD)
    unsigned char is_set[LPC_N_KEYS]; /* set by the user (INI or command line), not a default */
};
#undef LPC_FIELD

struct lpc_key_info {
    const char *section, *name;
    enum lpc_key_type type;
    const char *default_value;
    double min, max;
    const char *choices; /* "a|b|c" for ENUM */
    const char *help;
};

extern const struct lpc_key_info lpc_config_keys[LPC_N_KEYS];

void lpc_config_defaults(struct lpc_config *cfg);
/* Sets one key from text; -1 with lpc_last_error() naming the key and the allowed values. */
int lpc_config_set(struct lpc_config *cfg, const char *key, const char *value);
/* Reads an INI file (sections [data] [model] [langevin] [train] [eval] [bench]); -1 with
 * "FILE:LINE: ..." on the first bad line. */
int lpc_config_load_ini(struct lpc_config *cfg, const char *path);
/* Same, from INI text (the config stored in a checkpoint). origin names it in messages. */
int lpc_config_load_ini_string(struct lpc_config *cfg, const char *text, const char *origin);
/* Applies the algorithm's implied settings and checks combinations of keys; -1 on a conflict. */
int lpc_config_finalize(struct lpc_config *cfg);
/* Writes every key, grouped by section, as INI. Returns a malloc'd string. */
char *lpc_config_to_ini(const struct lpc_config *cfg);
/* Text of one value as it would be written to INI (into buf). */
const char *lpc_config_value_string(const struct lpc_config *cfg, int key, char *buf, size_t len);
/* The table of keys for --help; sections: NULL for all, else a "|"-separated list. */
void lpc_config_print_help(FILE *out, const char *sections);
/* Index of a key, or -1. */
int lpc_config_find_key(const char *name);
/* The known key closest to name (edit distance). */
const char *lpc_config_closest_key(const char *name);
/* Name of an enum value, e.g. lpc_config_choice(LPC_KEY_algo, cfg->algo) == "lpc". */
const char *lpc_config_choice(int key, int value);

#endif
