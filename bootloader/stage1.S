/*
 * stage1.S - the 512-byte MBR.
 *
 * The BIOS loads this sector at 0x7C00 with the boot drive in %dl.  It
 * reads the image header (LBA 1) and stage 2 with INT 13h extensions
 * (AH=42h), checks every call and stage 2's CRC-32, and jumps to stage 2 at
 * 0x8000 with the drive still in %dl.  Any failure prints one line on the
 * screen and on COM1 and halts: never a silent hang.
 *
 * Bytes 446..509 hold the partition table, filled in by tools/mkimage.c.
 */
#include "fluid_layout.h"   /* build/gen: tools/genlayout.c */

/* Region 0 of the image header as read to FLUID_HEADER_LOAD. */
#define STAGE2_REGION (FLUID_HEADER_LOAD + IMAGE_HEADER_REGION + FLUID_REGION_STAGE2 * REGION_SIZE)

    .code16
    .section .text
    .globl _start
_start:
    cli
    xor %ax, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov $0x7C00, %sp
    ljmp $0, $1f
1:  sti
    cld
    mov %dl, drive

    /* COM1: 115200 8N1, FIFO on.  The BIOS may not have set it up. */
    mov $0x3F9, %dx; xor %al, %al; out %al, %dx      /* no interrupts */
    mov $0x3FB, %dx; mov $0x80, %al; out %al, %dx    /* DLAB */
    mov $0x3F8, %dx; mov $1, %al; out %al, %dx       /* divisor 1 */
    mov $0x3F9, %dx; xor %al, %al; out %al, %dx
    mov $0x3FB, %dx; mov $0x03, %al; out %al, %dx    /* 8N1 */
    mov $0x3FA, %dx; mov $0xC7, %al; out %al, %dx    /* FIFO */

    mov $msg_boot, %si
    call print

    /* INT 13h extensions present? */
    mov $0x41, %ah
    mov $0x55AA, %bx
    mov drive, %dl
    int $0x13
    jc err_edd
    cmp $0xAA55, %bx
    jne err_edd

    /* Header: one sector at LBA 1 -> 0x7E00. */
    movw $1, dap_count
    movw $FLUID_HEADER_LOAD, dap_off
    movl $FLUID_HEADER_LBA, dap_lba
    call read
    mov $(FLUID_HEADER_LOAD + IMAGE_HEADER_MAGIC), %si
    mov $magic, %di
    mov $(magic_end - magic), %cx
    repe cmpsb
    jne err_magic

    /* Stage 2: region 0 -> 0x8000, at most 64 sectors. */
    mov STAGE2_REGION + REGION_BYTES, %ax
    add $511, %ax
    shr $9, %ax
    jz err_magic
    cmp $(FLUID_STAGE2_MAX_BYTES / FLUID_SECTOR_BYTES), %ax
    ja err_magic
    mov %ax, dap_count
    movw $FLUID_STAGE2_LOAD, dap_off
    mov STAGE2_REGION + REGION_LBA, %eax
    mov %eax, dap_lba
    call read

    /* CRC-32 (IEEE, reflected 0xEDB88320) of stage 2. */
    mov $FLUID_STAGE2_LOAD, %si
    mov STAGE2_REGION + REGION_BYTES, %cx
    or $-1, %edx
2:  lodsb
    xor %al, %dl
    mov $8, %bl
3:  shr $1, %edx
    jnc 4f
    xor $0xEDB88320, %edx
4:  dec %bl
    jnz 3b
    loop 2b
    not %edx
    cmp STAGE2_REGION + REGION_CRC32, %edx
    jne err_crc

    mov drive, %dl
    ljmp $0, $FLUID_STAGE2_LOAD

/* read: DAP transfer, halting with a message when the BIOS reports failure. */
read:
    mov $dap, %si
    mov $0x42, %ah
    mov drive, %dl
    int $0x13
    jc err_read
    test %ah, %ah
    jnz err_read
    ret

err_edd:   mov $msg_edd, %si;   jmp die
err_read:  mov $msg_read, %si;  jmp die
err_magic: mov $msg_magic, %si; jmp die
err_crc:   mov $msg_crc, %si
die:
    call print
5:  cli
    hlt
    jmp 5b

/* print: NUL-terminated string at %si to the screen (INT 10h) and COM1. */
print:
    lodsb
    test %al, %al
    jz 7f
    mov $0x0E, %ah
    xor %bx, %bx
    int $0x10
    mov %al, %bl
    mov $0x3FD, %dx
6:  in %dx, %al
    test $0x20, %al
    jz 6b
    mov $0x3F8, %dx
    mov %bl, %al
    out %al, %dx
    jmp print
7:  ret

msg_boot:  .asciz "Fluid\r\n"
msg_edd:   .asciz "stage1: no INT 13h ext\r\n"
msg_read:  .asciz "stage1: disk read error\r\n"
msg_magic: .asciz "stage1: bad image header\r\n"
msg_crc:   .asciz "stage1: stage 2 CRC bad\r\n"
magic:     .ascii FLUID_IMAGE_MAGIC
magic_end:

    .balign 4
dap:       .byte 16, 0
dap_count: .word 0
dap_off:   .word 0
dap_seg:   .word 0
dap_lba:   .long 0, 0
drive:     .byte 0
