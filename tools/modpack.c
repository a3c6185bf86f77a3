/*
 * modpack.c - turns a linked module ELF into a Fluid module file, and
 * module files into the image's baseline module region
 * (format: modules/module_abi.h).
 *
 *   modpack module -o OUT.fmod --elf IN.elf --name NAME --march TAG --opt N
 *           --features "SSE SSE2 ..." [--compiler STR] [--baseline]
 *           [--shape NAME=VALUE]... [--isa-variant] [--alt-variant]
 *           [--param NAME=VALUE]...
 *   modpack pack -o OUT.bin A.fmod B.fmod ...
 *   modpack info FILE...                 print module headers (files or packs)
 *
 * `module` parses the ELF64 itself and refuses (exit status 1, one line
 * naming the file and the reason):
 *   - any relocation section (REL/RELA/RELR) or dynamic section: the
 *     loader applies no relocations;
 *   - any undefined symbol: a module may reference only itself (kernel
 *     services come through struct fluid_services);
 *   - TLS, or an allocated section of a kind the loader cannot place;
 *   - an image that does not start at address 0, overlaps, or is too big;
 *   - no fluid_module_init, or no function named after an op.
 * The body is the memory image [0, end) with bss as zeros; the header
 * gets the body's SHA-256 and its own CRC-32.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fluid/crc32.h"
#include "lib/sha256.h"
#include "mod/modfmt.h"
#include "module_abi.h"

/* ---- ELF64 (System V gABI; only what is read here) ---- */
struct elf64_ehdr {
    uint8_t ident[16];
    uint16_t type, machine;
    uint32_t version;
    uint64_t entry, phoff, shoff;
    uint32_t flags;
    uint16_t ehsize, phentsize, phnum, shentsize, shnum, shstrndx;
};
struct elf64_shdr {
    uint32_t name, type;
    uint64_t flags, addr, offset, size;
    uint32_t link, info;
    uint64_t addralign, entsize;
};
struct elf64_sym {
    uint32_t name;
    uint8_t info, other;
    uint16_t shndx;
    uint64_t value, size;
};
enum { SHT_PROGBITS = 1, SHT_SYMTAB = 2, SHT_RELA = 4, SHT_DYNAMIC = 6, SHT_NOTE = 7,
       SHT_NOBITS = 8, SHT_REL = 9, SHT_DYNSYM = 11, SHT_RELR = 19 };
#define SHF_WRITE 1u
#define SHF_ALLOC 2u
#define SHF_EXECINSTR 4u
#define SHF_TLS 0x400u
#define STT_FUNC 2
#define SHN_UNDEF 0

static const char *prog_file = "?";

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "modpack: %s: ", prog_file);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die("cannot open: %s", strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0)
        die("cannot seek: %s", strerror(errno));
    long n = ftell(f);
    if (n < 0)
        die("cannot size: %s", strerror(errno));
    rewind(f);
    uint8_t *p = malloc((size_t)n + 1);
    if (!p || fread(p, 1, (size_t)n, f) != (size_t)n)
        die("short read");
    fclose(f);
    *len = (size_t)n;
    return p;
}

static void write_file(const char *path, const void *p, size_t n)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0)
        die("cannot write %s: %s", tmp, strerror(errno));
    if (rename(tmp, path) != 0)
        die("cannot rename %s: %s", tmp, strerror(errno));
}

static const char *const op_names[OP_COUNT] = {
#define OPN(id, name) name,
    FLUID_OP_LIST(OPN)
#undef OPN
};

static int op_by_name(const char *s)
{
    for (int i = 0; i < OP_COUNT; i++)
        if (strcmp(op_names[i], s) == 0)
            return i;
    return -1;
}

static uint64_t feature_bit(const char *name)
{
#define FB(n, bit, leaf, reg, b) if (strcmp(name, #n) == 0) return 1ull << bit;
    FLUID_CPUFEAT_LIST(FB)
#undef FB
    return 0;
}

static int shape_by_name(const char *s)
{
#define SH(id, num, name) if (strcmp(s, name) == 0 || strcmp(s, #id) == 0) return num;
    FLUID_SHAPE_LIST(SH)
#undef SH
    return -1;
}

static int param_by_name(const char *s)
{
#define PR(id, num, name) if (strcmp(s, name) == 0 || strcmp(s, #id) == 0) return num;
    FLUID_PARAM_LIST(PR)
#undef PR
    return -1;
}

static const char *param_name(int id)
{
#define PRN(i, num, name) if (id == num) return name;
    FLUID_PARAM_LIST(PRN)
#undef PRN
    return "?";
}

static const char *shape_name(int id)
{
#define SHN(i, num, name) if (id == num) return name;
    FLUID_SHAPE_LIST(SHN)
#undef SHN
    return "?";
}

static void copy_str(char *dst, size_t cap, const char *src, const char *what)
{
    if (strlen(src) >= cap)
        die("%s '%s' is too long (at most %zu bytes)", what, src, cap - 1);
    memset(dst, 0, cap);
    memcpy(dst, src, strlen(src));
}

/* Check the ELF and build the body; fills h's body fields. */
static uint8_t *elf_body(const uint8_t *f, size_t len, struct fluid_mod_header *h)
{
    struct elf64_ehdr eh;
    if (len < sizeof eh)
        die("too short for an ELF file");
    memcpy(&eh, f, sizeof eh);
    if (memcmp(eh.ident, "\177ELF", 4) != 0)
        die("not an ELF file");
    if (eh.ident[4] != 2 || eh.ident[5] != 1)
        die("not a little-endian ELF64 file");
    if (eh.machine != 62)
        die("not an x86-64 ELF file (e_machine %u)", eh.machine);
    if (eh.type != 2 && eh.type != 3)
        die("not a linked image (ELF type %u; link it with modules/module.ld)", eh.type);
    if (eh.shentsize != sizeof(struct elf64_shdr) || eh.shnum == 0 ||
        eh.shoff > len || (uint64_t)eh.shnum * sizeof(struct elf64_shdr) > len - eh.shoff)
        die("section header table out of bounds");
    const struct elf64_shdr *sh = (const void *)(f + eh.shoff);
    if (eh.shstrndx >= eh.shnum)
        die("bad section name table index");
    const struct elf64_shdr *ss = &sh[eh.shstrndx];
    if (ss->offset > len || ss->size > len - ss->offset)
        die("section name table out of bounds");
    const char *shstr = (const char *)f + ss->offset;
#define SECNAME(s) ((s)->name < ss->size ? shstr + (s)->name : "?")

    uint64_t end = 0;
    for (int i = 1; i < eh.shnum; i++) {
        const struct elf64_shdr *s = &sh[i];
        if (s->type == SHT_REL || s->type == SHT_RELA || s->type == SHT_RELR)
            die("relocation section %s (%llu bytes): the module loader applies no relocations "
                "(a pointer stored in data, or a symbol outside the module?)",
                SECNAME(s), (unsigned long long)s->size);
        if (s->type == SHT_DYNAMIC || s->type == SHT_DYNSYM)
            die("dynamic linking section %s: modules are linked with modules/module.ld", SECNAME(s));
        if (!(s->flags & SHF_ALLOC) || s->size == 0)
            continue;
        if (s->flags & SHF_TLS)
            die("thread-local section %s: modules cannot have TLS", SECNAME(s));
        if (s->type != SHT_PROGBITS && s->type != SHT_NOBITS)
            die("allocated section %s of type %u cannot be loaded", SECNAME(s), s->type);
        if (s->addr > FLUID_MOD_MAX_BODY || s->size > FLUID_MOD_MAX_BODY - s->addr)
            die("section %s lies outside the first %u bytes", SECNAME(s), FLUID_MOD_MAX_BODY);
        if (s->type == SHT_PROGBITS && (s->offset > len || s->size > len - s->offset))
            die("section %s data out of bounds", SECNAME(s));
        for (int j = 1; j < i; j++) {
            const struct elf64_shdr *o = &sh[j];
            if (!(o->flags & SHF_ALLOC) || o->size == 0)
                continue;
            if (s->addr < o->addr + o->size && o->addr < s->addr + s->size)
                die("sections %s and %s overlap", SECNAME(s), SECNAME(o));
        }
        if (s->addr + s->size > end)
            end = s->addr + s->size;
    }
    if (end == 0)
        die("no loadable sections");
    /* W^X: code and read-only data below text_bytes, writable data from
     * it on, with a page boundary between (modules/module.ld). */
    uint64_t text = (end + FLUID_MOD_PAGE - 1) & ~(uint64_t)(FLUID_MOD_PAGE - 1);
    for (int i = 1; i < eh.shnum; i++)
        if ((sh[i].flags & SHF_ALLOC) && (sh[i].flags & SHF_WRITE) && sh[i].size && sh[i].addr < text)
            text = sh[i].addr;
    if (text % FLUID_MOD_PAGE)
        die("the first writable section starts at 0x%llx, not on a %u-byte page (link with modules/module.ld)",
            (unsigned long long)text, FLUID_MOD_PAGE);
    for (int i = 1; i < eh.shnum; i++) {
        const struct elf64_shdr *s = &sh[i];
        if (!(s->flags & SHF_ALLOC) || !s->size)
            continue;
        if ((s->flags & SHF_WRITE) ? s->addr < text : s->addr + s->size > text)
            die("section %s lies on the wrong side of the text/data page boundary 0x%llx", SECNAME(s),
                (unsigned long long)text);
    }
    end = (end + 63) & ~63ull;
    if (end < text)
        end = text;
    h->text_bytes = (uint32_t)text;
    uint8_t *body = calloc(1, end);
    if (!body)
        die("out of memory");
    for (int i = 1; i < eh.shnum; i++) {
        const struct elf64_shdr *s = &sh[i];
        if ((s->flags & SHF_ALLOC) && s->size && s->type == SHT_PROGBITS)
            memcpy(body + s->addr, f + s->offset, s->size);
    }

    /* Symbols: no undefined ones; entries by op name. */
    int found_symtab = 0, have_init = 0;
    for (int i = 1; i < eh.shnum; i++) {
        const struct elf64_shdr *s = &sh[i];
        if (s->type != SHT_SYMTAB)
            continue;
        found_symtab = 1;
        if (s->link >= eh.shnum || s->entsize != sizeof(struct elf64_sym) ||
            s->offset > len || s->size > len - s->offset)
            die("symbol table out of bounds");
        const struct elf64_shdr *st = &sh[s->link];
        if (st->offset > len || st->size > len - st->offset)
            die("string table out of bounds");
        const char *str = (const char *)f + st->offset;
        size_t n = s->size / sizeof(struct elf64_sym);
        for (size_t k = 1; k < n; k++) {
            struct elf64_sym sym;
            memcpy(&sym, f + s->offset + k * sizeof sym, sizeof sym);
            if (sym.name >= st->size)
                die("symbol name out of bounds");
            const char *name = str + sym.name;
            if (memchr(name, 0, st->size - sym.name) == NULL)
                die("unterminated symbol name");
            if (sym.shndx == SHN_UNDEF) {
                if (name[0])
                    die("undefined symbol '%s': a module may reference only itself "
                        "(kernel functions come through struct fluid_services)", name);
                continue;
            }
            if ((sym.info & 15) != STT_FUNC)
                continue;
            /* Only the module's external functions: global, or hidden
             * (-fvisibility=hidden makes them local after the link);
             * a file-static helper that happens to share an op's name
             * is not an entry. */
            if ((sym.info >> 4) == 0 && (sym.other & 3) != 2 /* STV_HIDDEN */)
                continue;
            if (sym.value >= end)
                die("function %s lies outside the image", name);
            if (strcmp(name, FLUID_MOD_INIT_SYMBOL) == 0) {
                h->init_offset = (uint32_t)sym.value;
                have_init = 1;
                continue;
            }
            int op = op_by_name(name);
            if (op < 0)
                continue;
            for (uint32_t e = 0; e < h->n_entries; e++)
                if (h->entry[e].op == op)
                    die("op %s defined twice", name);
            if (h->n_entries >= FLUID_MOD_MAX_ENTRIES)
                die("more than %d ops in one module", FLUID_MOD_MAX_ENTRIES);
            h->entry[h->n_entries].op = (uint16_t)op;
            h->entry[h->n_entries].offset = (uint32_t)sym.value;
            h->n_entries++;
        }
    }
    if (!found_symtab)
        die("no symbol table (do not strip modules before modpack)");
    if (!have_init)
        die("no %s (link modules/modrt.c into every module)", FLUID_MOD_INIT_SYMBOL);
    if (h->n_entries == 0)
        die("no function named after an op (see FLUID_OP_LIST in modules/module_abi.h)");
    h->body_bytes = (uint32_t)end;
    return body;
}

static void finish_header(struct fluid_mod_header *h, const uint8_t *body)
{
    sha256(body, h->body_bytes, h->sha256);
    h->header_crc = crc32_update(0, h, offsetof(struct fluid_mod_header, header_crc));
}

/* "NAME=VALUE" of option opt into *r, the id from by_name; VALUE a decimal
 * >= min (1 for shapes, 0 for build parameters) and below 2^31. */
static void name_value(const char *opt, const char *v, int (*by_name)(const char *), long min,
                       struct fluid_mod_shape *r)
{
    char nm[32];
    const char *eq = strchr(v, '=');
    if (!eq || (size_t)(eq - v) >= sizeof nm)
        die("%s wants NAME=VALUE, not '%s'", opt, v);
    memcpy(nm, v, (size_t)(eq - v));
    nm[eq - v] = 0;
    int id = by_name(nm);
    char *e;
    long val = strtol(eq + 1, &e, 10);
    if (id < 0 || *e || eq[1] == 0 || val < min || val > 0x7fffffffL)
        die("%s: bad name or value in '%s'", opt, v);
    r->id = (uint16_t)id;
    r->value = (uint32_t)val;
}

static int cmd_module(int argc, char **argv)
{
    const char *out = NULL, *elf = NULL, *name = NULL, *march = NULL, *feats = NULL;
    const char *compiler = "";
    long opt = -1;
    struct fluid_mod_header h;
    memset(&h, 0, sizeof h);
    for (int i = 2; i < argc; i++) {
        const char *k = argv[i];
        if (!strcmp(k, "--baseline")) {
            h.flags |= FLUID_MOD_F_BASELINE;
            continue;
        }
        if (!strcmp(k, "--isa-variant")) {
            h.flags |= FLUID_MOD_F_ISA;
            continue;
        }
        if (!strcmp(k, "--alt-variant")) {   /* tune's alternative: run only when chosen */
            h.flags |= FLUID_MOD_F_ISA | FLUID_MOD_F_ALT;
            continue;
        }
        if (i + 1 >= argc)
            die("option %s needs a value", k);
        const char *v = argv[++i];
        if (!strcmp(k, "-o")) out = v;
        else if (!strcmp(k, "--elf")) elf = v;
        else if (!strcmp(k, "--name")) name = v;
        else if (!strcmp(k, "--march")) march = v;
        else if (!strcmp(k, "--features")) feats = v;
        else if (!strcmp(k, "--compiler")) compiler = v;
        else if (!strcmp(k, "--opt")) {
            char *e;
            opt = strtol(v, &e, 10);
            if (*e || opt < 0 || opt > 3)
                die("--opt must be 0..3, not '%s'", v);
        } else if (!strcmp(k, "--shape")) {
            if (h.n_shapes >= FLUID_MOD_MAX_SHAPES)
                die("more than %d shape constants", FLUID_MOD_MAX_SHAPES);
            name_value(k, v, shape_by_name, 1, &h.shape[h.n_shapes++]);
            h.flags |= FLUID_MOD_F_SHAPED;
        } else if (!strcmp(k, "--param")) {
            if (h.n_params >= FLUID_MOD_MAX_PARAMS)
                die("more than %d build parameters", FLUID_MOD_MAX_PARAMS);
            name_value(k, v, param_by_name, 0, &h.param[h.n_params++]);
        } else
            die("unknown option %s", k);
    }
    if (!out || !elf || !name || !march || !feats || opt < 0)
        die("module needs -o, --elf, --name, --march, --opt and --features");
    prog_file = elf;
    memcpy(h.magic, FLUID_MOD_MAGIC, 8);
    h.abi_version = FLUID_MOD_ABI_VERSION;
    h.header_bytes = FLUID_MOD_HEADER_BYTES;
    copy_str(h.name, sizeof h.name, name, "module name");
    copy_str(h.march, sizeof h.march, march, "-march tag");
    char comp[sizeof h.compiler];
    snprintf(comp, sizeof comp, "%s", compiler);   /* long version lines are cut */
    copy_str(h.compiler, sizeof h.compiler, comp, "compiler");
    h.opt_level = (uint32_t)opt;
    char fbuf[512];
    snprintf(fbuf, sizeof fbuf, "%s", feats);
    if (!strcmp(feats, "tag")) {           /* what the -march tag implies */
        if (modfmt_tag_features(march, &h.features) != 0)
            die("--features tag: '%s' is not a CPU tag (x86-64, x86-64-v2..v4, +vnni, +bf16)", march);
        fbuf[0] = 0;
    }
    for (char *t = strtok(fbuf, " ,"); t; t = strtok(NULL, " ,")) {
        uint64_t b = feature_bit(t);
        if (!b)
            die("unknown CPU feature '%s' (names: fluid/cpufeat.h)", t);
        h.features |= b;
    }
    size_t len;
    uint8_t *f = read_file(elf, &len);
    uint8_t *body = elf_body(f, len, &h);
    finish_header(&h, body);
    uint8_t *img = malloc(sizeof h + h.body_bytes);
    if (!img)
        die("out of memory");
    memcpy(img, &h, sizeof h);
    memcpy(img + sizeof h, body, h.body_bytes);
    write_file(out, img, sizeof h + h.body_bytes);
    free(img);
    free(body);
    free(f);
    return 0;
}

/* Check one module file image; returns its length or dies. */
static size_t check_module(const uint8_t *p, size_t avail)
{
    struct fluid_mod_header h;
    if (avail < sizeof h)
        die("truncated module header");
    memcpy(&h, p, sizeof h);
    if (memcmp(h.magic, FLUID_MOD_MAGIC, 8) != 0)
        die("not a module file (bad magic)");
    if (h.abi_version != FLUID_MOD_ABI_VERSION)
        die("module ABI version %u, expected %u", h.abi_version, FLUID_MOD_ABI_VERSION);
    if (crc32_update(0, &h, offsetof(struct fluid_mod_header, header_crc)) != h.header_crc)
        die("module header checksum mismatch");
    if (h.body_bytes > avail - sizeof h)
        die("module body truncated");
    uint8_t d[32];
    sha256(p + sizeof h, h.body_bytes, d);
    if (memcmp(d, h.sha256, 32) != 0)
        die("module body SHA-256 mismatch");
    return sizeof h + h.body_bytes;
}

static int cmd_pack(int argc, char **argv)
{
    if (argc < 5 || strcmp(argv[2], "-o") != 0)
        die("usage: modpack pack -o OUT.bin A.fmod ...");
    size_t cap = 1 << 20, n = 0;
    uint8_t *out = calloc(1, cap);
    for (int i = 4; i < argc; i++) {
        prog_file = argv[i];
        size_t len;
        uint8_t *m = read_file(argv[i], &len);
        size_t used = check_module(m, len);
        size_t at = (n + FLUID_MOD_FILE_ALIGN - 1) / FLUID_MOD_FILE_ALIGN * FLUID_MOD_FILE_ALIGN;
        while (at + used > cap) {
            cap *= 2;
            out = realloc(out, cap);
            if (!out)
                die("out of memory");
        }
        memset(out + n, 0, at - n);
        memcpy(out + at, m, used);
        n = at + used;
        free(m);
    }
    prog_file = argv[3];
    write_file(argv[3], out, n);
    free(out);
    return 0;
}

static void print_module(const uint8_t *p, size_t off)
{
    struct fluid_mod_header h;
    memcpy(&h, p, sizeof h);
    char hex[65];
    sha256_hex(h.sha256, 32, hex);
    printf("@%-8zu %-12s -O%u %-16s %7u bytes sha256 %s\n", off, h.name, h.opt_level, h.march,
           h.body_bytes, hex);
    printf("          features 0x%llx flags 0x%x compiler '%s'\n", (unsigned long long)h.features,
           h.flags, h.compiler);
    printf("          init @0x%x; ops:", h.init_offset);
    for (uint32_t e = 0; e < h.n_entries && e < FLUID_MOD_MAX_ENTRIES; e++)
        printf(" %s@0x%x", h.entry[e].op < OP_COUNT ? op_names[h.entry[e].op] : "?", h.entry[e].offset);
    printf("\n");
    for (uint32_t s = 0; s < h.n_shapes && s < FLUID_MOD_MAX_SHAPES; s++)
        printf("          shape %s = %u\n", shape_name(h.shape[s].id), h.shape[s].value);
    for (uint32_t s = 0; s < h.n_params && s < FLUID_MOD_MAX_PARAMS; s++)
        printf("          param %s = %u\n", param_name(h.param[s].id), h.param[s].value);
}

static int cmd_info(int argc, char **argv)
{
    for (int i = 2; i < argc; i++) {
        prog_file = argv[i];
        size_t len, off = 0;
        uint8_t *f = read_file(argv[i], &len);
        printf("%s:\n", argv[i]);
        while (off + FLUID_MOD_HEADER_BYTES <= len && memcmp(f + off, FLUID_MOD_MAGIC, 8) == 0) {
            size_t used = check_module(f + off, len - off);
            print_module(f + off, off);
            off = (off + used + FLUID_MOD_FILE_ALIGN - 1) / FLUID_MOD_FILE_ALIGN * FLUID_MOD_FILE_ALIGN;
        }
        if (off < len)
            die("trailing bytes at offset %zu are not a module", off);
        free(f);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "module"))
        return cmd_module(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "pack"))
        return cmd_pack(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "info"))
        return cmd_info(argc, argv);
    fprintf(stderr, "usage: modpack module -o OUT.fmod --elf IN.elf --name N --march TAG --opt N "
                    "--features \"...\" [--compiler S] [--baseline] [--isa-variant] [--alt-variant]\n"
                    "              [--shape NAME=V]... [--param NAME=V]...\n"
                    "       modpack pack -o OUT.bin A.fmod ...\n"
                    "       modpack info FILE...\n");
    return 2;
}
