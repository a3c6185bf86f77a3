/* optab.c - the module table (see optab.h). */
#include <math.h>
#include <string.h>
#include "mod/optab.h"

struct op_slot optab[OP_COUNT];
/* The built-in (kernel-linked) modules read their services from here. */
const struct fluid_services *fluid_svc;
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
    case GGML_TYPE_Q4_K: return OP_MM_Q4_K;
    case GGML_TYPE_Q5_K: return OP_MM_Q5_K;
    case GGML_TYPE_Q6_K: return OP_MM_Q6_K;
    default: return -1;
    }
}

int op_dequant_for_type(int t)
{
    int mm = op_mm_for_type(t);
    return mm < 0 ? -1 : OP_DQ_F32 + (mm - OP_MM_F32);
}

void optab_init_builtin(void)
{
    static const char *const names[OP_COUNT] = {
#define OP_NAME(id, name) name,
        FLUID_OP_LIST(OP_NAME)
#undef OP_NAME
    };
    void *const fns[OP_COUNT] = {
        (void *)mm_f32, (void *)mm_f16, (void *)mm_q8_0, (void *)mm_q4_0,
        (void *)mm_q4_K, (void *)mm_q5_K, (void *)mm_q6_K,
        (void *)dequant_f32, (void *)dequant_f16, (void *)dequant_q8_0,
        (void *)dequant_q4_0, (void *)dequant_q4_K, (void *)dequant_q5_K,
        (void *)dequant_q6_K,
        (void *)quantize_q8_0, (void *)quantize_q8_K, (void *)convert_f16, (void *)copy_f32,
        (void *)rmsnorm, (void *)rope, (void *)swiglu, (void *)add,
        (void *)attn_scores, (void *)softmax, (void *)attn_wsum,
    };
    fluid_svc = &kernel_services;
    for (int i = 0; i < OP_COUNT; i++) {
        optab[i].name = names[i];
        optab[i].fn = fns[i];
        optab[i].variant = "builtin";
        optab[i].march = "x86-64";
        optab[i].opt_level = 2;
        strcpy(optab[i].hash, "-");
    }
}
