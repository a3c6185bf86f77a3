/*
 * stage2.S - stage 2, entered from stage 1 at 0x8000 in real mode with the
 * boot drive in %dl.
 *
 *   1. TSC, E820 memory map, A20; the image header checked as a whole
 *      (stage2_check.c: CRC first, then every region against the others
 *      and against the disk's size from INT 13h AH=48h) before any of its
 *      fields is used.
 *   2. "Unreal" mode (4 GiB data segment limit in real mode) so that sectors
 *      read through the BIOS into a low bounce buffer can be copied above
 *      1 MiB: KERNEL region -> FLUID_KERNEL_LOAD, MODULES -> FLUID_MODULES_LOAD.
 *   3. 32-bit protected mode: stage2_main() (C) checks CRCs and the CPU and
 *      builds identity-mapped page tables for all memory.
 *   4. Long mode; jump to the kernel with %rdi = struct boot_info *.
 * Every BIOS call is checked; failures print one line and halt.
 */
#include "fluid_layout.h"   /* build/gen: tools/genlayout.c */

#define BI          FLUID_BOOTINFO_ADDR
#define BI_DRIVE    (BI + BOOT_INFO_BOOT_DRIVE)
#define BI_TSC      (BI + BOOT_INFO_TSC_STAGE2)
#define BI_TSC_DONE (BI + BOOT_INFO_TSC_STAGE2_DONE)
#define BI_E820N    (BI + BOOT_INFO_E820_COUNT)
#define BI_E820     (BI + BOOT_INFO_E820)
#define BI_IMAGE    (BI + BOOT_INFO_IMAGE)
#define BOUNCE_SEG  0x1000            /* 0x10000: 64 sectors of bounce buffer */
#define CHUNK       64
/* INT 13h AH=48h result (EDD 3.0 layout, a BIOS interface): u16 size,
 * u16 flags, u32 cylinders, heads, sectors per track, u64 total sectors,
 * u16 bytes per sector, then EDD 2.0's configuration pointer. */
#define EDD_PARAMS_BYTES  30
#define EDD_TOTAL_SECTORS 16
#define EDD_SECTOR_BYTES  24

#define SEL_CODE32 0x08
#define SEL_DATA32 0x10
#define SEL_CODE64 0x18
#define SEL_CODE16 0x20

    .code16
    .section .text.entry, "ax"
    .globl _start
_start:
    cli
    xor %ax, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov $0x7C00, %esp                 /* all 32 bits: stage2_check.c uses %esp */
    sti
    cld
    mov %dl, %bl

    /* Zero .bss: only stage 2's file was read, not the memory after it. */
    mov $__bss_start, %di
    mov $__bss_end, %cx
    sub %di, %cx
    xor %al, %al
    rep stosb

    /* Clear the boot info, then record the drive and the entry TSC. */
    mov $BI, %di
    mov $BOOT_INFO_SIZE, %cx
    xor %al, %al
    rep stosb
    mov %bl, BI_DRIVE
    rdtsc
    mov %eax, BI_TSC
    mov %edx, BI_TSC + 4

    mov $msg_hello, %si
    call print

    call e820
    call enable_a20

    /* Keep a copy of the image header for the kernel. */
    mov $FLUID_HEADER_LOAD, %si
    mov $BI_IMAGE, %di
    mov $IMAGE_HEADER_SIZE, %cx
    rep movsb

    /* The header as a whole, before any field is used. */
    call disk_sectors                 /* %edx:%eax, 0 when the BIOS cannot say */
    pushl %edx
    pushl %eax
    pushl $BI_IMAGE
    calll stage2_check_image          /* real-mode C (-m16): NULL or a message */
    add $12, %esp
    test %eax, %eax
    jz 1f
    mov %ax, %si
    jmp die16
1:

    /* KERNEL region and MODULES region, each to its load address. */
    mov $FLUID_REGION_KERNEL, %bp
    mov $FLUID_KERNEL_LOAD, %edi
    mov $FLUID_KERNEL_MAX_BYTES, %ebx
    call load_region
    mov $FLUID_REGION_MODULES, %bp
    mov $FLUID_MODULES_LOAD, %edi
    mov $FLUID_MODULES_MAX_BYTES, %ebx
    call load_region

    /* 32-bit protected mode. */
    cli
    lgdt gdt_desc
    mov %cr0, %eax
    or $1, %eax
    mov %eax, %cr0
    ljmp $SEL_CODE32, $pm32

/* ---- e820: fill boot_info.e820[] (INT 15h AX=E820h). ---- */
e820:
    xor %ebx, %ebx
    mov $BI_E820, %di
1:  movl $1, %es:E820_ENTRY_ATTR(%di) /* ACPI 3.0 "valid" bit if only 20 bytes */
    mov $0xE820, %eax
    mov $0x534D4150, %edx           /* 'SMAP' */
    mov $E820_ENTRY_SIZE, %ecx
    int $0x15
    jc 3f
    cmp $0x534D4150, %eax
    jne err_e820
    mov E820_ENTRY_LENGTH(%di), %eax
    or E820_ENTRY_LENGTH + 4(%di), %eax
    jz 2f                            /* skip empty entries */
    incw BI_E820N
    add $E820_ENTRY_SIZE, %di
    cmpw $FLUID_E820_MAX, BI_E820N
    jae 4f
2:  test %ebx, %ebx
    jnz 1b
    jmp 4f
3:  cmpw $0, BI_E820N               /* carry on the first call: no E820 */
    je err_e820
4:  cmpw $0, BI_E820N
    je err_e820
    ret

/* ---- disk_sectors: the boot drive's size (INT 13h AH=48h, EDD), in
 * 512-byte sectors, in %edx:%eax; 0 when the call fails or reports
 * another sector size. ---- */
disk_sectors:
    movw $EDD_PARAMS_BYTES, edd_params
    mov $edd_params, %si
    mov $0x48, %ah
    mov BI_DRIVE, %dl
    int $0x13
    jc 1f
    cmpw $FLUID_SECTOR_BYTES, edd_params + EDD_SECTOR_BYTES
    jne 1f
    mov edd_params + EDD_TOTAL_SECTORS, %eax
    mov edd_params + EDD_TOTAL_SECTORS + 4, %edx
    ret
1:  xor %eax, %eax
    xor %edx, %edx
    ret

/* ---- enable_a20: BIOS first, then the "fast A20" port; verify. ---- */
enable_a20:
    call a20_on
    jnz 1f
    mov $0x2401, %ax
    int $0x15
    call a20_on
    jnz 1f
    in $0x92, %al
    or $2, %al
    and $0xFE, %al
    out %al, $0x92
    call a20_on
    jz err_a20
1:  ret

/* a20_on: ZF clear when A20 is enabled (0:0x500 and 0xFFFF:0x510 differ). */
a20_on:
    push %ds
    push %es
    xor %ax, %ax
    mov %ax, %ds
    not %ax
    mov %ax, %es
    movb 0x500, %cl
    movb %es:0x510, %ch
    movb $0x00, 0x500
    movb $0xFF, %es:0x510
    cmpb $0xFF, 0x500
    movb %cl, 0x500
    movb %ch, %es:0x510
    pop %es
    pop %ds
    ret                               /* ZF=1 -> wrapped -> A20 off */

/* ---- unreal: give DS and ES a 4 GiB limit, back in real mode. ---- */
unreal:
    cli
    push %ds
    push %es
    lgdt gdt_desc
    mov %cr0, %eax
    or $1, %eax
    mov %eax, %cr0
    jmp 1f
1:  mov $SEL_DATA32, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %cr0, %eax
    and $0xFE, %al
    mov %eax, %cr0
    pop %es
    pop %ds
    sti
    ret

/*
 * load_region: %bp = region index, %edi = destination, %ebx = max bytes.
 * Reads in CHUNK-sector calls into the bounce buffer, copies each above
 * 1 MiB in unreal mode.
 */
load_region:
    imul $REGION_SIZE, %bp, %si
    add $(FLUID_HEADER_LOAD + IMAGE_HEADER_REGION), %si
    mov REGION_BYTES(%si), %eax      /* bytes (low 32 bits) */
    cmpl $0, REGION_BYTES + 4(%si)
    jne err_size
    cmp %ebx, %eax
    ja err_size
    add $511, %eax
    shr $9, %eax
    mov %eax, remaining
    mov REGION_LBA(%si), %eax
    mov %eax, dap_lba
    mov REGION_LBA + 4(%si), %eax
    mov %eax, dap_lba + 4
    mov %edi, dest
1:  mov remaining, %eax
    test %eax, %eax
    jz 3f
    cmp $CHUNK, %eax
    jbe 2f
    mov $CHUNK, %eax
2:  mov %ax, dap_count
    movw $0, dap_off
    movw $BOUNCE_SEG, dap_seg
    mov $dap, %si
    mov $0x42, %ah
    mov BI_DRIVE, %dl
    int $0x13
    jc err_read
    test %ah, %ah
    jnz err_read
    call unreal
    movzwl dap_count, %ecx
    shl $7, %ecx                      /* dwords */
    mov $0x10000, %esi
    mov dest, %edi
    .byte 0x67                        /* addr32: use %esi/%edi */
    rep movsl
    mov %edi, dest
    movzwl dap_count, %eax
    sub %eax, remaining
    addl %eax, dap_lba
    adcl $0, dap_lba + 4
    jmp 1b
3:  ret

err_e820: mov $msg_e820, %si; jmp die16
err_a20:  mov $msg_a20, %si; jmp die16
err_size: mov $msg_size, %si; jmp die16
err_read:
    mov $msg_read, %si
    call print
    mov dap_lba, %eax
    call print_hex
    mov $msg_nl, %si
die16:
    call print
1:  cli
    hlt
    jmp 1b

/* print: NUL-terminated string at %si to the screen and COM1. */
print:
    lodsb
    test %al, %al
    jz 2f
    call putc
    jmp print
2:  ret

/* putc: %al to the screen (INT 10h teletype) and COM1. */
putc:
    push %ax
    push %bx
    push %dx
    mov %al, %bl
    mov $0x3FD, %dx
1:  in %dx, %al
    test $0x20, %al
    jz 1b
    mov $0x3F8, %dx
    mov %bl, %al
    out %al, %dx
    mov $0x0E, %ah
    xor %bh, %bh
    int $0x10
    pop %dx
    pop %bx
    pop %ax
    ret

/* print_hex: %eax as 8 hex digits. */
print_hex:
    mov $8, %cx
1:  rol $4, %eax
    push %eax
    and $15, %al
    add $'0', %al
    cmp $'9', %al
    jbe 2f
    add $7, %al
2:  call putc
    pop %eax
    loop 1b
    ret

/* ---- 32-bit protected mode ---- */
    .code32
pm32:
    mov $SEL_DATA32, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %ax, %fs
    mov %ax, %gs
    mov $0x7C00, %esp
    push $BI
    call stage2_main                  /* returns the PML4 address */
    add $4, %esp
    mov %eax, %cr3
    mov %cr4, %eax
    or $(1 << 5), %eax                /* PAE */
    mov %eax, %cr4
    mov $0xC0000080, %ecx             /* EFER */
    rdmsr
    or $(1 << 8), %eax                /* LME */
    wrmsr
    mov %cr0, %eax
    or $0x80000000, %eax              /* PG */
    mov %eax, %cr0
    ljmp $SEL_CODE64, $lm64

    .code64
lm64:
    mov $SEL_DATA32, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    rdtsc
    mov %eax, BI_TSC_DONE
    mov %edx, BI_TSC_DONE + 4
    mov $BI, %edi
    mov $FLUID_KERNEL_LOAD, %eax
    jmp *%rax

    .section .data
    .balign 8
gdt:
    .quad 0
    .quad 0x00CF9A000000FFFF          /* 0x08 code32 */
    .quad 0x00CF92000000FFFF          /* 0x10 data32 (also 64-bit data) */
    .quad 0x00AF9A000000FFFF          /* 0x18 code64 */
gdt_desc:
    .word gdt_desc - gdt - 1
    .long gdt

    .balign 4
dap:       .byte 16, 0
dap_count: .word 0
dap_off:   .word 0
dap_seg:   .word 0
dap_lba:   .long 0, 0
remaining: .long 0
dest:      .long 0
edd_params: .space EDD_PARAMS_BYTES

msg_hello: .asciz "Fluid stage 2: loading kernel\r\n"
msg_e820:  .asciz "stage2: BIOS E820 memory map unavailable\r\n"
msg_a20:   .asciz "stage2: cannot enable the A20 line\r\n"
msg_size:  .asciz "stage2: kernel or module region too large for its load area\r\n"
msg_read:  .asciz "stage2: disk read failed at LBA 0x"
msg_nl:    .asciz "\r\n"
