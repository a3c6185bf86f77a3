/*
 * ops_harness.c - run one module kernel on data files, for
 * tests/host/test_ops.py.  Data files are raw little-endian arrays.
 *
 *   quant   TYPE n in.f32 out            TYPE: q8_0 q8_0s q8_0_x86 q8_1 q8_K f16 f32
 *   dequant TYPE n in out.f32            TYPE: f32 f16 q8_0 q4_0 q4_1 q5_0 q5_1
 *                                              q2_K q3_K q4_K q5_K q6_K
 *   mm      TYPE n_in n_out n_tok row0 row1 w x out.f32
 *           (Y is n_tok x n_out, prefilled with 1e30 outside [row0,row1))
 *   rmsnorm n eps x w out | rope n_heads head_dim x cs out
 *   swiglu n g u out | add n y x out | softmax n s out
 *   scores n_pos head_dim stride scale q k out   (q, k: F16)
 *   wsum n_pos head_dim stride p v out           (v: F16)
 *   isa                                   print the compiled-in SIMD paths
 *   mem                                   self-test memcpy/memset/memmove
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mm_common.h"
#include "ops.h"

static void *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *p = malloc((size_t)n + 64);
    if (fread(p, 1, (size_t)n, f) != (size_t)n) {
        perror(path);
        exit(2);
    }
    fclose(f);
    if (len)
        *len = (size_t)n;
    return p;
}

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n) {
        perror(path);
        exit(2);
    }
    fclose(f);
}

struct wtype {
    const char *name;
    int block;          /* weights per block */
    int bytes;          /* bytes per block */
    int act_block, act_bytes;
    void (*mm)(const struct matmul_args *);
    void (*dq)(const void *, float *, int);
    void (*repack)(void *, size_t, int, int, void *);   /* x8 layout, or NULL */
};

static const struct wtype types[] = {
    {"f32", 1, 4, 1, 4, mm_f32, dequant_f32, NULL},
    {"f16", 1, 2, 1, 2, mm_f16, dequant_f16, NULL},
    {"q8_0", 32, 34, 32, 40, mm_q8_0, dequant_q8_0, repack_q8_0},
    {"q4_0", 32, 18, 32, 40, mm_q4_0, dequant_q4_0, repack_q4_0},
    {"q4_1", 32, 20, 32, 36, mm_q4_1, dequant_q4_1, NULL},
    {"q5_0", 32, 22, 32, 34, mm_q5_0, dequant_q5_0, NULL},
    {"q5_1", 32, 24, 32, 36, mm_q5_1, dequant_q5_1, NULL},
    {"q2_K", 256, 84, 256, 292, mm_q2_K, dequant_q2_K, NULL},
    {"q3_K", 256, 110, 256, 292, mm_q3_K, dequant_q3_K, NULL},
    {"q4_K", 256, 144, 256, 292, mm_q4_K, dequant_q4_K, repack_q4_K},
    {"q5_K", 256, 176, 256, 292, mm_q5_K, dequant_q5_K, NULL},
    {"q6_K", 256, 210, 256, 292, mm_q6_K, dequant_q6_K, repack_q6_K},
};

static const struct wtype *find_type(const char *name)
{
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(types[i].name, name))
            return &types[i];
    fprintf(stderr, "unknown type %s\n", name);
    exit(2);
}

static int mem_selftest(void)
{
    unsigned char a[300], b[300], ref[300];
    int bad = 0;
    for (int i = 0; i < 300; i++)
        a[i] = (unsigned char)(i * 7 + 3);
    memcpy(b, a, 300);
    bad |= memcmp(a, b, 300) != 0;
    memset(b + 5, 0xab, 100);
    for (int i = 0; i < 300; i++)
        bad |= b[i] != (i >= 5 && i < 105 ? 0xab : a[i]);
    for (int shift = -40; shift <= 40; shift += 7) {
        for (int i = 0; i < 300; i++)
            ref[i] = b[i] = (unsigned char)(i * 13 + 1);
        int src = 100, dst = 100 + shift, n = 150;
        for (int i = 0; i < n; i++)   /* reference: through a copy */
            a[i] = b[src + i];
        for (int i = 0; i < n; i++)
            ref[dst + i] = a[i];
        memmove(b + dst, b + src, (size_t)n);
        bad |= memcmp(b, ref, 300) != 0;
    }
    puts(bad ? "BAD" : "OK");
    return bad;
}

int main(int argc, char **argv)
{
    static const struct fluid_services svc = {FLUID_SERVICES_VERSION, expf, sqrtf};
    fluid_module_init(&svc);
    if (argc < 2)
        return 2;
    const char *cmd = argv[1];
#define ARGS(k)                                                              \
    if (argc != (k) + 2) {                                                   \
        fprintf(stderr, "%s: want %d args\n", cmd, k);                       \
        return 2;                                                            \
    }
    if (!strcmp(cmd, "isa")) {
        printf("avx2=%d avx512=%d vnni=%d f16c=%d\n",
#ifdef FLUID_AVX2
               1,
#else
               0,
#endif
#ifdef FLUID_AVX512
               1,
#else
               0,
#endif
#ifdef FLUID_VNNI
               1,
#else
               0,
#endif
#ifdef __F16C__
               1
#else
               0
#endif
        );
        return 0;
    }
    if (!strcmp(cmd, "mem"))
        return mem_selftest();
    if (!strcmp(cmd, "quant")) {
        ARGS(4);
        const int n = atoi(argv[3]);
        const float *x = read_file(argv[4], NULL);
        size_t out_bytes;
        void *y;
        if (!strcmp(argv[2], "q8_0")) {
            out_bytes = (size_t)n / 32 * 34;
            quantize_q8_0(x, y = malloc(out_bytes), n);
        } else if (!strcmp(argv[2], "q8_0s")) {
            out_bytes = (size_t)n / 32 * sizeof(struct block_q8_0s);
            quantize_q8_0s(x, y = malloc(out_bytes), n);
        } else if (!strcmp(argv[2], "q8_0_x86")) {
            out_bytes = (size_t)n / 32 * 34;
            quantize_q8_0_x86(x, y = malloc(out_bytes), n);
        } else if (!strcmp(argv[2], "q8_1")) {
            out_bytes = (size_t)n / 32 * 36;
            quantize_q8_1(x, y = malloc(out_bytes), n);
        } else if (!strcmp(argv[2], "q8_K")) {
            out_bytes = (size_t)n / 256 * 292;
            quantize_q8_K(x, y = malloc(out_bytes), n);
        } else if (!strcmp(argv[2], "f16")) {
            out_bytes = (size_t)n * 2;
            convert_f16(x, y = malloc(out_bytes), n);
        } else {
            out_bytes = (size_t)n * 4;
            copy_f32(x, y = malloc(out_bytes), n);
        }
        write_file(argv[5], y, out_bytes);
        return 0;
    }
    if (!strcmp(cmd, "dequant")) {
        ARGS(4);
        const struct wtype *t = find_type(argv[2]);
        const int n = atoi(argv[3]);
        float *y = malloc((size_t)n * 4);
        t->dq(read_file(argv[4], NULL), y, n);
        write_file(argv[5], y, (size_t)n * 4);
        return 0;
    }
    if (!strcmp(cmd, "mm")) {
        ARGS(9);
        const struct wtype *t = find_type(argv[2]);
        const int n_in = atoi(argv[3]), n_out = atoi(argv[4]), n_tok = atoi(argv[5]);
        struct matmul_args a = {
            .w = read_file(argv[8], NULL),
            .w_row_bytes = (size_t)n_in / t->block * t->bytes,
            .x = read_file(argv[9], NULL),
            .x_row_bytes = (size_t)n_in / t->act_block * t->act_bytes,
            .ldy = (size_t)n_out,
            .n_in = n_in,
            .row0 = atoi(argv[6]),
            .row1 = atoi(argv[7]),
            .n_tok = n_tok,
        };
        a.n_rows = n_out;
        if (t->repack) {   /* as the kernel does at load (llm/repack.c) */
            void *tmp = malloc(8 * a.w_row_bytes);
            t->repack((void *)a.w, a.w_row_bytes, 0, n_out / 8, tmp);
            free(tmp);
        }
        const size_t ny = (size_t)n_out * n_tok;
        a.y = malloc(ny * 4);
        for (size_t i = 0; i < ny; i++)
            a.y[i] = 1e30f;
        t->mm(&a);
        write_file(argv[10], a.y, ny * 4);
        return 0;
    }
    if (!strcmp(cmd, "rmsnorm")) {
        ARGS(5);
        const int n = atoi(argv[2]);
        float *x = read_file(argv[4], NULL);
        rmsnorm(x, x, read_file(argv[5], NULL), n, strtof(argv[3], NULL));
        write_file(argv[6], x, (size_t)n * 4);
        return 0;
    }
    if (!strcmp(cmd, "rope")) {
        ARGS(5);
        const int nh = atoi(argv[2]), hd = atoi(argv[3]);
        float *x = read_file(argv[4], NULL);
        rope(x, nh, hd, read_file(argv[5], NULL));
        write_file(argv[6], x, (size_t)nh * hd * 4);
        return 0;
    }
    if (!strcmp(cmd, "swiglu") || !strcmp(cmd, "add")) {
        ARGS(4);
        const int n = atoi(argv[2]);
        float *g = read_file(argv[3], NULL);
        const float *u = read_file(argv[4], NULL);
        if (!strcmp(cmd, "add"))
            add(g, u, n);
        else
            swiglu(g, g, u, n);
        write_file(argv[5], g, (size_t)n * 4);
        return 0;
    }
    if (!strcmp(cmd, "softmax")) {
        ARGS(3);
        const int n = atoi(argv[2]);
        float *s = read_file(argv[3], NULL);
        softmax(s, n);
        write_file(argv[4], s, (size_t)n * 4);
        return 0;
    }
    if (!strcmp(cmd, "scores") || !strcmp(cmd, "wsum")) {
        const int scores = !strcmp(cmd, "scores");
        if (argc != (scores ? 9 : 8))
            return 2;
        const int n_pos = atoi(argv[2]), hd = atoi(argv[3]);
        const size_t stride = (size_t)atol(argv[4]);
        if (scores) {
            float *s = malloc((size_t)n_pos * 4);
            attn_scores(read_file(argv[6], NULL), read_file(argv[7], NULL), stride,
                        n_pos, hd, strtof(argv[5], NULL), s);
            write_file(argv[8], s, (size_t)n_pos * 4);
        } else {
            float *o = malloc((size_t)hd * 4);
            attn_wsum(read_file(argv[5], NULL), read_file(argv[6], NULL), stride,
                      n_pos, hd, o);
            write_file(argv[7], o, (size_t)hd * 4);
        }
        return 0;
    }
    fprintf(stderr, "unknown command %s\n", cmd);
    return 2;
}
