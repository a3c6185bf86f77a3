/* optab.c - the module table (see optab.h). */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "mod/optab.h"

struct op_slot optab[OP_COUNT];
int prof_enabled = 1;

static float k_sqrtf(float x) { return __builtin_sqrtf(x); }
const struct fluid_services kernel_services = { FLUID_SERVICES_VERSION, expf, k_sqrtf };

int op_mm_for_type(int t)
{
    switch (t) {
    case GGML_TYPE_F32: return OP_MM_F32;
    case GGML_TYPE_F16: return OP_MM_F16;
    case GGML_TYPE_Q8_0: return OP_MM_Q8_0;
    case GGML_TYPE_Q4_0: return OP_MM_Q4_0;
    case GGML_TYPE_Q4_1: return OP_MM_Q4_1;
    case GGML_TYPE_Q5_0: return OP_MM_Q5_0;
    case GGML_TYPE_Q5_1: return OP_MM_Q5_1;
    case GGML_TYPE_Q2_K: return OP_MM_Q2_K;
    case GGML_TYPE_Q3_K: return OP_MM_Q3_K;
    case GGML_TYPE_Q4_K: return OP_MM_Q4_K;
    case GGML_TYPE_Q5_K: return OP_MM_Q5_K;
    case GGML_TYPE_Q6_K: return OP_MM_Q6_K;
    default: return -1;
    }
}

int op_repack_for_type(int t)
{
    switch (t) {
    case GGML_TYPE_Q8_0: return OP_REPACK_Q8_0;
    case GGML_TYPE_Q4_0: return OP_REPACK_Q4_0;
    case GGML_TYPE_Q4_K: return OP_REPACK_Q4_K;
    case GGML_TYPE_Q6_K: return OP_REPACK_Q6_K;
    default: return -1;
    }
}

int op_dequant_for_type(int t)
{
    switch (t) {
    case GGML_TYPE_F32: return OP_DQ_F32;
    case GGML_TYPE_F16: return OP_DQ_F16;
    case GGML_TYPE_Q8_0: return OP_DQ_Q8_0;
    case GGML_TYPE_Q4_0: return OP_DQ_Q4_0;
    case GGML_TYPE_Q4_1: return OP_DQ_Q4_1;
    case GGML_TYPE_Q5_0: return OP_DQ_Q5_0;
    case GGML_TYPE_Q5_1: return OP_DQ_Q5_1;
    case GGML_TYPE_Q2_K: return OP_DQ_Q2_K;
    case GGML_TYPE_Q3_K: return OP_DQ_Q3_K;
    case GGML_TYPE_Q4_K: return OP_DQ_Q4_K;
    case GGML_TYPE_Q5_K: return OP_DQ_Q5_K;
    case GGML_TYPE_Q6_K: return OP_DQ_Q6_K;
    default: return -1;
    }
}

void optab_init(void)
{
    static const char *const names[OP_COUNT] = {
#define OP_NAME(id, name) name,
        FLUID_OP_LIST(OP_NAME)
#undef OP_NAME
    };
    for (int i = 0; i < OP_COUNT; i++) {
        optab[i].name = names[i];
        optab[i].fn = NULL;
        optab[i].module = NULL;
        optab[i].variant = "none";
        optab[i].march = "-";
        optab[i].opt_level = 0;
        strcpy(optab[i].hash, "-");
        optab[i].dec = (struct op_impl){ .variant = "none", .march = "-", .hash = "-" };
    }
}

int optab_missing(char *buf, int cap)
{
    int n = 0, len = 0;
    if (buf && cap > 0)
        buf[0] = 0;
    for (int i = 0; i < OP_COUNT; i++) {
        if (optab[i].fn)
            continue;
        n++;
        if (buf && len < cap)
            len += snprintf(buf + len, (size_t)(cap - len), "%s%s", len ? " " : "", optab[i].name);
    }
    return n;
}
