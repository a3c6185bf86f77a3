/*
 * genlayout.c - the layouts defined in C headers, printed for what cannot
 * include them (asm-offsets, as Linux does it): offsets and sizes come from
 * the compiler (offsetof, sizeof), constants from the headers' own macros.
 * No number is written here.
 *
 *   genlayout h    build/gen/fluid_layout.h   #defines for the assembly
 *                                             (stage1.S, stage2.S, trampoline.S)
 *   genlayout ld   build/gen/fluid_layout.ld  load addresses and limits for
 *                                             the linker scripts (INCLUDE)
 *   genlayout py   build/gen/fluid_layout.py  constants and struct layouts
 *                                             for tools/pgo.py and the tests
 *
 * Built and run on the host, whose ABI is the kernel's (x86-64).  Stage 2's
 * C is i386: fluid_layout.h, included from C, asserts that the compiling
 * target lays each struct out as it was printed here (stage2_main.c).
 * Each struct's fields are listed in full: generation fails unless they
 * tile the struct exactly, so a field added in C without being listed here
 * stops the build.
 */
#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "fluid/bootinfo.h"
#include "fluid/image.h"
#include "module_abi.h"
#include "smp/trampoline.h"

/* Where each struct and constant is defined; the Python module lists these
 * so tools/pgo.py can tell when it is older than them. */
#define H_IMAGE "kernel/include/fluid/image.h"
#define H_BOOTINFO "kernel/include/fluid/bootinfo.h"
#define H_MODULE "modules/module_abi.h"
#define H_TRAMP "kernel/plat/pc/smp/trampoline.h"
static const char *const sources[] = { H_IMAGE, H_BOOTINFO, H_MODULE, H_TRAMP, "tools/genlayout.c" };

struct constant {
    const char *name;
    unsigned long long value;
    const char *str;             /* string constants (magics): not for ld */
    int ld;                      /* also a linker-script symbol */
};
#define NUM(m) { #m, (unsigned long long)(m), NULL, 0 }
#define ADDR(m) { #m, (unsigned long long)(m), NULL, 1 }
#define STR(m) { #m, 0, m, 0 }

static const struct constant constants[] = {
    /* image.h */
    NUM(FLUID_SECTOR_BYTES), STR(FLUID_IMAGE_MAGIC), NUM(FLUID_IMAGE_VERSION), NUM(FLUID_HEADER_LBA),
    ADDR(FLUID_HEADER_LOAD), ADDR(FLUID_STAGE2_LOAD), ADDR(FLUID_STAGE2_MAX_BYTES),
    ADDR(FLUID_BOOTINFO_ADDR), ADDR(FLUID_KERNEL_LOAD), ADDR(FLUID_KERNEL_MAX_BYTES),
    ADDR(FLUID_MODULES_LOAD), ADDR(FLUID_MODULES_MAX_BYTES), ADDR(FLUID_LOW_RESERVED),
    NUM(FLUID_REGION_ALIGN_SECTORS), NUM(FLUID_CACHE_SLOT_BYTES), NUM(FLUID_CACHE_BYTES),
    NUM(FLUID_REGION_STAGE2), NUM(FLUID_REGION_KERNEL), NUM(FLUID_REGION_MODULES),
    NUM(FLUID_REGION_CACHE), NUM(FLUID_REGION_MODEL), NUM(FLUID_REGION_COUNT),
    NUM(FLUID_REGION_HAS_CRC), NUM(FLUID_REGION_CRC_CHUNKED), NUM(FLUID_CRC_CHUNK_BYTES),
    /* bootinfo.h */
    NUM(FLUID_BOOTINFO_MAGIC), NUM(FLUID_E820_MAX),
    /* module_abi.h */
    STR(FLUID_MOD_MAGIC), NUM(FLUID_MOD_ABI_VERSION), NUM(FLUID_MOD_PAGE), NUM(FLUID_MOD_HEADER_BYTES),
    NUM(FLUID_MOD_MAX_ENTRIES), NUM(FLUID_MOD_MAX_SHAPES), NUM(FLUID_MOD_MAX_PARAMS), NUM(FLUID_MOD_MAX_BODY),
    NUM(FLUID_MOD_FILE_ALIGN), STR(FLUID_MOD_INIT_SYMBOL), NUM(OP_COUNT), NUM(FLUID_SHAPE_ID_MAX), NUM(FLUID_PARAM_ID_MAX),
    NUM(FLUID_MOD_F_BASELINE), NUM(FLUID_MOD_F_SHAPED), NUM(FLUID_MOD_F_ISA), NUM(FLUID_MOD_F_ALT),
    STR(FLUID_CACHE_MAGIC), STR(FLUID_CACHE_END_MAGIC), NUM(FLUID_CACHE_VERSION),
    NUM(FLUID_CACHE_MAX_ENTRIES), NUM(FLUID_CACHE_TAG_BYTES), NUM(FLUID_CACHE_MAX_CHOICES),
    NUM(FLUID_CACHE_CHOICE_ALIGN), NUM(FLUID_CHOICE_ALL), NUM(FLUID_CHOICE_DECODE),
    /* smp/trampoline.h */
    ADDR(SMP_TRAMPOLINE_ADDR), ADDR(SMP_TRAMPOLINE_MAX),
};

/* Op id -> name, from the X-macro that numbers them. */
static const char *const ops[] = {
#define FLUID_OP_NAME(id, name) name,
    FLUID_OP_LIST(FLUID_OP_NAME)
#undef FLUID_OP_NAME
};
_Static_assert(sizeof ops / sizeof ops[0] == OP_COUNT, "op names");

struct id_name {
    int id;
    const char *name;
};
#define ID_NAME_ROW(id, num, name) { num, name },
/* Model-shape constant id -> name (FLUID_SHAPE_LIST). */
static const struct id_name shapes[] = { FLUID_SHAPE_LIST(ID_NAME_ROW) };
/* Build parameter id -> name (FLUID_PARAM_LIST). */
static const struct id_name params[] = { FLUID_PARAM_LIST(ID_NAME_ROW) };
#undef ID_NAME_ROW

struct field {
    const char *name;
    size_t offset, size;
    int is_uint;                 /* an unsigned integer (else bytes: arrays, structs) */
};
/* Arrays decay to pointers in _Generic, so only scalar members match. */
#define IS_UINT(x) _Generic((x), uint8_t: 1, uint16_t: 1, uint32_t: 1, uint64_t: 1, default: 0)
#define F(T, m) { #m, offsetof(T, m), sizeof(((T *)0)->m), IS_UINT(((T *)0)->m) }

struct layout {
    const char *prefix;          /* REGION -> REGION_LBA (offset), REGION_SIZE (sizeof) */
    const char *ctype;
    const char *guard;           /* the defining header's include guard */
    size_t size;
    const struct field *fields;
    size_t n_fields;
};
#define QUOTE_(x) #x
#define QUOTE(x) QUOTE_(x)           /* after expansion: "struct fluid_region", not "R" */
#define LAYOUT(prefix, T, guard, ...)                                                          \
    { prefix, QUOTE(T), guard, sizeof(T), (const struct field[]){ __VA_ARGS__ },                     \
      sizeof((const struct field[]){ __VA_ARGS__ }) / sizeof(struct field) }

#define R struct fluid_region
#define IH struct fluid_image_header
#define EE struct e820_entry
#define BI struct boot_info
#define ME struct fluid_mod_entry
#define MS struct fluid_mod_shape
#define MH struct fluid_mod_header
#define CS struct fluid_cache_slot
#define CE struct fluid_cache_entry
#define CT struct fluid_cache_trailer
#define CC struct fluid_cache_choice
#define SB struct smp_boot_slot
static const struct layout layouts[] = {
    LAYOUT("REGION", R, "FLUID_IMAGE_H",
           F(R, lba), F(R, bytes), F(R, sectors), F(R, crc32), F(R, flags), F(R, reserved)),
    LAYOUT("IMAGE_HEADER", IH, "FLUID_IMAGE_H",
           F(IH, magic), F(IH, version), F(IH, header_bytes), F(IH, image_sectors), F(IH, region),
           F(IH, model_name), F(IH, pad), F(IH, header_crc)),
    LAYOUT("E820_ENTRY", EE, "FLUID_BOOTINFO_H",
           F(EE, base), F(EE, length), F(EE, type), F(EE, attr)),
    LAYOUT("BOOT_INFO", BI, "FLUID_BOOTINFO_H",
           F(BI, magic), F(BI, boot_drive), F(BI, tsc_stage2), F(BI, tsc_stage2_done),
           F(BI, mapped_bytes), F(BI, page_size), F(BI, e820_count), F(BI, e820), F(BI, image)),
    LAYOUT("MOD_ENTRY", ME, "FLUID_MODULE_ABI_H", F(ME, op), F(ME, reserved), F(ME, offset)),
    LAYOUT("MOD_SHAPE", MS, "FLUID_MODULE_ABI_H", F(MS, id), F(MS, reserved), F(MS, value)),
    LAYOUT("MOD_HEADER", MH, "FLUID_MODULE_ABI_H",
           F(MH, magic), F(MH, abi_version), F(MH, header_bytes), F(MH, name), F(MH, march),
           F(MH, compiler), F(MH, features), F(MH, opt_level), F(MH, flags), F(MH, body_bytes),
           F(MH, init_offset), F(MH, n_entries), F(MH, n_shapes), F(MH, entry), F(MH, shape),
           F(MH, sha256), F(MH, text_bytes), F(MH, n_params), F(MH, param), F(MH, reserved),
           F(MH, header_crc)),
    LAYOUT("CACHE_SLOT", CS, "FLUID_MODULE_ABI_H",
           F(CS, magic), F(CS, version), F(CS, header_bytes), F(CS, generation), F(CS, slot_bytes),
           F(CS, n_entries), F(CS, registry_offset), F(CS, registry_bytes), F(CS, registry_sha256),
           F(CS, created_unix), F(CS, writer), F(CS, model_id), F(CS, choice_offset), F(CS, n_choices),
           F(CS, choice_sha256), F(CS, choice_tag), F(CS, choice_cpu), F(CS, choice_model_id),
           F(CS, choice_tsc_hz), F(CS, reserved), F(CS, header_crc)),
    LAYOUT("CACHE_CHOICE", CC, "FLUID_MODULE_ABI_H",
           F(CC, op), F(CC, phase), F(CC, opt_level), F(CC, module), F(CC, march), F(CC, sha256),
           F(CC, flags), F(CC, reserved1), F(CC, cycles), F(CC, default_cycles), F(CC, reserved)),
    LAYOUT("CACHE_ENTRY", CE, "FLUID_MODULE_ABI_H",
           F(CE, tag), F(CE, name), F(CE, offset), F(CE, bytes), F(CE, sha256), F(CE, opt_level),
           F(CE, flags)),
    LAYOUT("CACHE_TRAILER", CT, "FLUID_MODULE_ABI_H",
           F(CT, magic), F(CT, generation), F(CT, header_crc), F(CT, slot_bytes), F(CT, reserved),
           F(CT, trailer_crc)),
    LAYOUT("SMP_BOOT_SLOT", SB, "FLUID_SMP_TRAMPOLINE_H", F(SB, apic_id), F(SB, cpu_id), F(SB, stack_top)),
};
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Every byte of the struct in exactly one listed field, in order. */
static int check_complete(const struct layout *l)
{
    size_t at = 0;
    for (size_t i = 0; i < l->n_fields; i++) {
        if (l->fields[i].offset != at) {
            fprintf(stderr, "genlayout: %s: bytes %zu..%zu are in no field listed in tools/genlayout.c "
                    "(before %s)\n", l->ctype, at, l->fields[i].offset, l->fields[i].name);
            return 0;
        }
        at += l->fields[i].size;
    }
    if (at != l->size) {
        fprintf(stderr, "genlayout: %s: bytes %zu..%zu are in no field listed in tools/genlayout.c\n",
                l->ctype, at, l->size);
        return 0;
    }
    return 1;
}

static void upper(char *out, const char *s)
{
    while (*s)
        *out++ = (char)toupper((unsigned char)*s++);
    *out = 0;
}

/* Counts read better in decimal, addresses and masks in hex. */
static const char *num(unsigned long long v)
{
    static char buf[32];
    snprintf(buf, sizeof buf, v < 4096 ? "%llu" : "%#llx", v);
    return buf;
}

static void gen_h(void)
{
    printf("/* Generated by tools/genlayout.c: do not edit. */\n"
           "#ifndef FLUID_GEN_LAYOUT_H\n#define FLUID_GEN_LAYOUT_H\n"
           "#ifdef __ASSEMBLER__\n");
    for (size_t i = 0; i < COUNT(constants); i++) {
        const struct constant *c = &constants[i];
        if (c->str)
            printf("#define %s \"%s\"\n", c->name, c->str);
        else
            printf("#define %s %s\n", c->name, num(c->value));
    }
    for (size_t i = 0; i < COUNT(layouts); i++) {
        const struct layout *l = &layouts[i];
        printf("/* %s */\n#define %s_SIZE %zu\n", l->ctype, l->prefix, l->size);
        for (size_t j = 0; j < l->n_fields; j++) {
            char up[64];
            upper(up, l->fields[j].name);
            printf("#define %s_%s %zu\n", l->prefix, up, l->fields[j].offset);
        }
    }
    /* From C (another target, e.g. stage 2's i386): the same layouts, or
     * the build stops.  Each block applies once its header is included. */
    printf("#else\n#include <stddef.h>\n");
    for (size_t i = 0; i < COUNT(layouts); i++) {
        const struct layout *l = &layouts[i];
        printf("#ifdef %s\n", l->guard);
        printf("_Static_assert(sizeof(%s) == %zu, \"%s: size differs from the one the assembly was given\");\n",
               l->ctype, l->size, l->ctype);
        for (size_t j = 0; j < l->n_fields; j++)
            printf("_Static_assert(offsetof(%s, %s) == %zu, \"%s.%s: offset differs from the one the assembly "
                   "was given\");\n", l->ctype, l->fields[j].name, l->fields[j].offset, l->ctype,
                   l->fields[j].name);
        printf("#endif\n");
    }
    printf("#endif\n#endif\n");
}

static void gen_ld(void)
{
    printf("/* Generated by tools/genlayout.c from " H_IMAGE " and " H_TRAMP ": do not edit. */\n");
    for (size_t i = 0; i < COUNT(constants); i++)
        if (constants[i].ld)
            printf("%s = %s;\n", constants[i].name, num(constants[i].value));
}

static void gen_py(void)
{
    printf("\"\"\"Fluid's constants and struct layouts, generated by tools/genlayout.c from\n"
           "the C headers in SOURCES: do not edit (make regenerates it).\"\"\"\n\n");
    printf("SOURCES = (\n");
    for (size_t i = 0; i < COUNT(sources); i++)
        printf("    \"%s\",\n", sources[i]);
    printf(")\n\n\n");
    printf("class Struct:\n"
           "    \"\"\"A C struct: its size and {field: (offset, bytes, is_uint)}.\"\"\"\n\n"
           "    def __init__(self, ctype, size, fields):\n"
           "        self.ctype, self.size, self.fields = ctype, size, fields\n\n"
           "    def off(self, field):\n"
           "        return self.fields[field][0]\n\n"
           "    def get(self, buf, field, base=0):\n"
           "        \"\"\"The field of the struct at buf[base:]: an int (little-endian) or bytes.\"\"\"\n"
           "        off, n, is_uint = self.fields[field]\n"
           "        b = bytes(buf[base + off:base + off + n])\n"
           "        if len(b) != n:\n"
           "            raise ValueError(f\"{self.ctype}: {field} lies past the end of the data\")\n"
           "        return int.from_bytes(b, \"little\") if is_uint else b\n\n"
           "    def put(self, buf, field, value, base=0):\n"
           "        \"\"\"Store an int, or bytes zero-padded to the field's size.\"\"\"\n"
           "        off, n, is_uint = self.fields[field]\n"
           "        b = value.to_bytes(n, \"little\") if is_uint else bytes(value)\n"
           "        if len(b) > n:\n"
           "            raise ValueError(f\"{self.ctype}: {len(b)} bytes do not fit {field} ({n})\")\n"
           "        buf[base + off:base + off + n] = b.ljust(n, b\"\\0\")\n\n\n");
    for (size_t i = 0; i < COUNT(constants); i++) {
        const struct constant *c = &constants[i];
        if (c->str)
            printf("%s = b\"%s\"\n", c->name, c->str);
        else
            printf("%s = %s\n", c->name, num(c->value));
    }
    printf("OPS = (  # op id -> name\n");
    for (size_t i = 0; i < COUNT(ops); i++)
        printf("    \"%s\",\n", ops[i]);
    printf(")\n\n");
    printf("SHAPES = {  # shape constant id -> name (module header, -DFLUID_SHAPE_<NAME>)\n");
    for (size_t i = 0; i < COUNT(shapes); i++)
        printf("    %d: \"%s\",\n", shapes[i].id, shapes[i].name);
    printf("}\n\n");
    printf("PARAMS = {  # build parameter id -> name (module header param[])\n");
    for (size_t i = 0; i < COUNT(params); i++)
        printf("    %d: \"%s\",\n", params[i].id, params[i].name);
    printf("}\n\n");
    for (size_t i = 0; i < COUNT(layouts); i++) {
        const struct layout *l = &layouts[i];
        printf("%s = Struct(\"%s\", %zu, {\n", l->prefix, l->ctype, l->size);
        for (size_t j = 0; j < l->n_fields; j++)
            printf("    \"%s\": (%zu, %zu, %s),\n", l->fields[j].name, l->fields[j].offset, l->fields[j].size,
                   l->fields[j].is_uint ? "True" : "False");
        printf("})\n");
    }
}

int main(int argc, char **argv)
{
    int ok = 1;
    for (size_t i = 0; i < COUNT(layouts); i++)
        ok &= check_complete(&layouts[i]);
    if (!ok)
        return 1;
    if (argc == 2 && !strcmp(argv[1], "h"))
        gen_h();
    else if (argc == 2 && !strcmp(argv[1], "ld"))
        gen_ld();
    else if (argc == 2 && !strcmp(argv[1], "py"))
        gen_py();
    else {
        fprintf(stderr, "usage: genlayout h|ld|py\n");
        return 2;
    }
    return fflush(stdout) == 0 ? 0 : 1;
}
