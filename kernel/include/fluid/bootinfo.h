/*
 * bootinfo.h - what stage 2 hands the kernel (at FLUID_BOOTINFO_ADDR,
 * pointer also in %rdi at kernel entry).
 */
#ifndef FLUID_BOOTINFO_H
#define FLUID_BOOTINFO_H

#include <stdint.h>
#include "image.h"

#define FLUID_BOOTINFO_MAGIC 0x464C4249u /* "FLBI" */
#define FLUID_E820_MAX 128

/* One BIOS E820 entry (INT 15h AX=E820h). type 1 = usable RAM,
 * 2 reserved, 3 ACPI reclaimable, 4 ACPI NVS, 5 bad. */
struct e820_entry {
    uint64_t base;   /* bytes */
    uint64_t length; /* bytes */
    uint32_t type;
    uint32_t attr;
};

struct boot_info {
    uint32_t magic;
    uint32_t boot_drive;          /* BIOS drive number (0x80 = first disk) */
    uint64_t tsc_stage2;          /* TSC at stage-2 entry */
    uint64_t tsc_stage2_done;     /* TSC just before the jump to the kernel */
    uint64_t mapped_bytes;        /* identity map covers [0, mapped_bytes) */
    uint32_t page_size;           /* bytes per page of the identity map */
    uint32_t e820_count;
    struct e820_entry e820[FLUID_E820_MAX];
    struct fluid_image_header image;
};

#endif
