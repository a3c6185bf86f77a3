/* acpi.c - RSDP search (EBDA and 0xE0000-0xFFFFF), RSDT/XSDT walk, FADT and
 * MADT parsing, and the \_S5 package in the DSDT (ACPI 6.4 sections 5.2.5,
 * 5.2.9, 5.2.12, 7.4.2).  Tables are reached through the identity map. */
#include <stdint.h>
#include <string.h>
#include "dev/acpi.h"

struct acpi_info acpi;

struct sdt {
    char sig[4];
    uint32_t length;
    uint8_t rev, checksum;
    char oem[6], oem_table[8];
    uint32_t oem_rev, creator, creator_rev;
} __attribute__((packed));

static int sum_ok(const void *p, uint32_t n)
{
    uint8_t s = 0;
    for (uint32_t i = 0; i < n; i++)
        s += ((const uint8_t *)p)[i];
    return s == 0;
}

static const uint8_t *find_rsdp(void)
{
    uint32_t ebda = (uint32_t)(*(volatile uint16_t *)0x40E) << 4;
    const uint32_t ranges[2][2] = { { ebda, ebda + 1024 }, { 0xE0000, 0x100000 } };
    for (int r = 0; r < 2; r++)
        for (uint32_t a = ranges[r][0]; a && a < ranges[r][1]; a += 16) {
            const uint8_t *p = (const uint8_t *)(uintptr_t)a;
            if (memcmp(p, "RSD PTR ", 8) == 0 && sum_ok(p, 20))
                return p;
        }
    return 0;
}

static void parse_s5(const struct sdt *dsdt)
{
    const uint8_t *p = (const uint8_t *)dsdt + sizeof *dsdt;
    const uint8_t *end = (const uint8_t *)dsdt + dsdt->length;
    for (; p + 12 < end; p++) {
        /* NameOp "_S5_" PackageOp PkgLength NumElements {BytePrefix v | v} x2 */
        if (memcmp(p, "_S5_", 4) != 0 || p[4] != 0x12)
            continue;
        const uint8_t *q = p + 5;
        q += ((*q >> 6) & 3) + 1;   /* PkgLength: lead byte + follow bytes */
        q++;                        /* NumElements */
        uint16_t v[2];
        for (int i = 0; i < 2; i++) {
            if (*q == 0x0A) { v[i] = q[1]; q += 2; }   /* BytePrefix */
            else if (*q == 0x00 || *q == 0x01) { v[i] = *q; q++; }  /* Zero/One */
            else return;
        }
        acpi.slp_typa = v[0];
        acpi.slp_typb = v[1];
        acpi.s5_found = 1;
        return;
    }
}

static void parse_fadt(const struct sdt *t)
{
    const uint8_t *f = (const uint8_t *)t;
    uint32_t dsdt = *(const uint32_t *)(f + 40);
    acpi.pm1a_cnt = (uint16_t)*(const uint32_t *)(f + 64);
    acpi.pm1b_cnt = (uint16_t)*(const uint32_t *)(f + 68);
    if (t->length >= 129) {
        /* RESET_REG: generic address at 116 (space id 1 = system I/O),
         * RESET_VALUE at 128; FADT flags bit 10 = RESET_REG_SUP. */
        uint32_t flags = *(const uint32_t *)(f + 112);
        if ((flags & (1u << 10)) && f[116] == 1) {
            acpi.reset_ok = 1;
            acpi.reset_port = (uint16_t)*(const uint64_t *)(f + 120);
            acpi.reset_value = f[128];
        }
    }
    if (t->length >= 148 && *(const uint64_t *)(f + 140))
        dsdt = (uint32_t)*(const uint64_t *)(f + 140);
    const struct sdt *d = (const struct sdt *)(uintptr_t)dsdt;
    if (d && memcmp(d->sig, "DSDT", 4) == 0)
        parse_s5(d);
}

static void parse_madt(const struct sdt *t)
{
    const uint8_t *m = (const uint8_t *)t;
    acpi.lapic_base = *(const uint32_t *)(m + 36);
    for (uint32_t off = 44; off + 2 <= t->length;) {
        uint8_t type = m[off], len = m[off + 1];
        if (len < 2)
            break;
        if (type == 0 && len >= 8) {            /* processor local APIC */
            uint32_t flags = *(const uint32_t *)(m + off + 4);
            if ((flags & 1) && acpi.n_cpus < 64)
                acpi.apic_ids[acpi.n_cpus++] = m[off + 3];
        } else if (type == 9 && len >= 16) {    /* local x2APIC */
            uint32_t flags = *(const uint32_t *)(m + off + 8);
            if ((flags & 1) && acpi.n_cpus < 64)
                acpi.apic_ids[acpi.n_cpus++] = *(const uint32_t *)(m + off + 4);
        } else if (type == 5 && len >= 12) {    /* 64-bit LAPIC address */
            acpi.lapic_base = *(const uint64_t *)(m + off + 4);
        }
        off += len;
    }
}

int acpi_init(void)
{
    acpi.lapic_base = 0xFEE00000u;
    const uint8_t *rsdp = find_rsdp();
    if (!rsdp) {
        acpi.n_cpus = 1;
        return -1;
    }
    acpi.present = 1;
    uint64_t root = *(const uint32_t *)(rsdp + 16);
    int entry = 4;
    if (rsdp[15] >= 2 && *(const uint64_t *)(rsdp + 24)) {
        root = *(const uint64_t *)(rsdp + 24);
        entry = 8;
    }
    const struct sdt *r = (const struct sdt *)(uintptr_t)root;
    uint32_t n = (r->length - sizeof *r) / entry;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *e = (const uint8_t *)r + sizeof *r + i * entry;
        uint64_t a = entry == 8 ? *(const uint64_t *)e : *(const uint32_t *)e;
        const struct sdt *t = (const struct sdt *)(uintptr_t)a;
        if (!t || !sum_ok(t, t->length))
            continue;
        if (memcmp(t->sig, "FACP", 4) == 0)
            parse_fadt(t);
        else if (memcmp(t->sig, "APIC", 4) == 0)
            parse_madt(t);
    }
    if (acpi.n_cpus == 0)
        acpi.n_cpus = 1;
    return 0;
}
