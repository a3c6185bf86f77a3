/*
 * image.h - the Fluid disk image layout, defined once.
 *
 * Used by the bootloader (stage 2, 32-bit C), the kernel and the image
 * tool (tools/mkimage.c).  All fields are little-endian.
 *
 *   LBA 0            MBR: stage 1 + one partition entry covering the image
 *   LBA 1            struct fluid_image_header (this file)
 *   region STAGE2    stage 2 (loaded by stage 1 through BIOS INT 13h)
 *   region KERNEL    flat kernel binary, loaded at FLUID_KERNEL_LOAD
 *   region MODULES   baseline compute modules, loaded at FLUID_MODULES_LOAD
 *   region CACHE     PGO module cache (two slots, read by the kernel itself)
 *   region MODEL     a GGUF file verbatim (read by the kernel's own driver)
 *
 * Assembly, linker scripts and Python get these values (and the struct
 * offsets below) from tools/genlayout.c, never by hand.
 *
 * Stage 2 reads KERNEL and MODULES through the BIOS and checks their CRC32
 * before it jumps; CACHE and MODEL are read by the kernel (BIOS disk I/O is
 * far too slow for gigabytes, see REFERENCE.md).  Regions start on 1 MiB
 * boundaries so the kernel's large reads stay aligned.
 */
#ifndef FLUID_IMAGE_H
#define FLUID_IMAGE_H

#include <stdint.h>

#define FLUID_SECTOR_BYTES 512u
#define FLUID_IMAGE_MAGIC "FLUIDIMG"          /* 8 bytes, no NUL */
#define FLUID_IMAGE_VERSION 1u
#define FLUID_HEADER_LBA 1u
#define FLUID_HEADER_LOAD 0x7E00u             /* stage 1 reads the header here */
#define FLUID_STAGE2_LOAD 0x8000u             /* stage 2 runs here */
#define FLUID_STAGE2_MAX_BYTES (32u * 1024u)  /* 0x8000..0xFFFF */
#define FLUID_BOOTINFO_ADDR 0x6000u           /* struct boot_info */
#define FLUID_KERNEL_LOAD 0x100000u           /* 1 MiB */
#define FLUID_KERNEL_MAX_BYTES (31u << 20)    /* image + bss below 32 MiB */
#define FLUID_MODULES_LOAD 0x2000000u         /* 32 MiB */
#define FLUID_MODULES_MAX_BYTES (16u << 20)
#define FLUID_LOW_RESERVED 0x3000000u         /* allocator starts above */
#define FLUID_REGION_ALIGN_SECTORS 2048u      /* 1 MiB */
#define FLUID_CACHE_SLOT_BYTES (4u << 20)     /* one cache slot */
#define FLUID_CACHE_BYTES (2u * FLUID_CACHE_SLOT_BYTES)

enum fluid_region_id {
    FLUID_REGION_STAGE2 = 0,
    FLUID_REGION_KERNEL = 1,
    FLUID_REGION_MODULES = 2,
    FLUID_REGION_CACHE = 3,
    FLUID_REGION_MODEL = 4,
    FLUID_REGION_COUNT = 5,
};

/* Region flags. */
#define FLUID_REGION_HAS_CRC 1u   /* crc32 covers the first `bytes` bytes */
/* With HAS_CRC: crc32 is the CRC-32 of the little-endian u32 CRC-32s of
 * each FLUID_CRC_CHUNK_BYTES piece of the region (the last may be short),
 * so the kernel can check a multi-GB model on every core at once. */
#define FLUID_REGION_CRC_CHUNKED 2u
#define FLUID_CRC_CHUNK_BYTES (4u << 20)

/* One region: where it starts, how many bytes it holds, how many sectors
 * are reserved for it, and the CRC-32 (IEEE 802.3, as zlib.crc32) of its
 * bytes when FLUID_REGION_HAS_CRC is set. 32 bytes. */
struct fluid_region {
    uint64_t lba;
    uint64_t bytes;
    uint32_t sectors;     /* reserved capacity; bytes <= sectors * 512 */
    uint32_t crc32;
    uint32_t flags;
    uint32_t reserved;
};

/* The image header at FLUID_HEADER_LBA: exactly one sector.  header_crc is
 * the CRC-32 of the 508 bytes before it. */
struct fluid_image_header {
    char magic[8];
    uint32_t version;
    uint32_t header_bytes;            /* sizeof(struct fluid_image_header) */
    uint64_t image_sectors;           /* whole image, MBR included */
    struct fluid_region region[FLUID_REGION_COUNT];
    char model_name[64];              /* file name the model came from */
    uint8_t pad[512 - 24 - 32 * FLUID_REGION_COUNT - 64 - 4];
    uint32_t header_crc;
};

_Static_assert(sizeof(struct fluid_region) == 32, "region size");
_Static_assert(sizeof(struct fluid_image_header) == 512, "header size");
_Static_assert(FLUID_HEADER_LOAD + sizeof(struct fluid_image_header) <= FLUID_STAGE2_LOAD, "header below stage 2");
_Static_assert(FLUID_KERNEL_LOAD + FLUID_KERNEL_MAX_BYTES <= FLUID_MODULES_LOAD, "kernel below the modules");
_Static_assert(FLUID_MODULES_LOAD + FLUID_MODULES_MAX_BYTES <= FLUID_LOW_RESERVED, "modules below the allocator");

#endif
