/* acpi.h - the few ACPI tables Fluid reads (ACPI 6.x spec, chapter 5):
 * RSDP -> RSDT/XSDT -> FADT (power off, reset) and MADT (processors). */
#ifndef FLUID_ACPI_H
#define FLUID_ACPI_H
#include <stdint.h>

struct acpi_info {
    int present;
    uint16_t pm1a_cnt, pm1b_cnt;     /* I/O ports, 0 if absent */
    int s5_found;
    uint16_t slp_typa, slp_typb;     /* \_S5 sleep types from the DSDT */
    int reset_ok;                    /* FADT reset register usable (I/O) */
    uint16_t reset_port;
    uint8_t reset_value;
    uint64_t lapic_base;             /* from MADT, default 0xFEE00000 */
    int n_cpus;                      /* enabled processor-local APICs */
    uint32_t apic_ids[64];
};

extern struct acpi_info acpi;

/* Find and parse the tables; fills `acpi`.  Returns 0, or -1 when there is
 * no valid RSDP (then n_cpus = 1). */
int acpi_init(void);
#endif
