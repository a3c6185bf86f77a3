/*
 * ahci.c - SATA disks behind an AHCI controller, polled (Serial ATA AHCI
 * 1.3.1 specification, sections 3 (registers), 4.2 (command list, FIS,
 * PRDT), 6.2.2 (error recovery) and 10.1 (initialisation); ATA8-ACS for
 * IDENTIFY DEVICE, READ DMA EXT, WRITE DMA EXT and FLUSH CACHE (EXT)).
 *
 * One command at a time per port (no NCQ), each up to 32768 sectors
 * (16 MiB) described by four 4 MiB PRDT entries: large enough that the
 * model region streams at the disk's speed.  A write is WRITE DMA EXT
 * (command header W bit set: host to device), then FLUSH CACHE EXT (or
 * FLUSH CACHE on a disk without 48-bit commands), so the data is past the
 * disk's volatile write cache when the call returns.  Every command waits
 * at most BLK_TIMEOUT_MS; a failed one is reported with the ATA status and
 * error registers and the port is restarted (AHCI 6.2.2.1) so the next
 * command can run; a port that does not come back is disabled.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "arch/x86/cpu.h"
#include "x86/io.h"
#include "dev/blk.h"
#include "dev/pci.h"
#include "lib/kprintf.h"
#include "mm/phys.h"

#define HBA_GHC 0x04
#define HBA_PI 0x0C
#define GHC_AE (1u << 31)

#define PX(p) (0x100u + 0x80u * (p))
#define PX_CLB 0x00
#define PX_CLBU 0x04
#define PX_FB 0x08
#define PX_FBU 0x0C
#define PX_IS 0x10
#define PX_CMD 0x18
#define PX_TFD 0x20
#define PX_SIG 0x24
#define PX_SSTS 0x28
#define PX_SCTL 0x2C
#define PX_SERR 0x30
#define PX_CI 0x38
#define CMD_ST (1u << 0)
#define CMD_FRE (1u << 4)
#define CMD_FR (1u << 14)
#define CMD_CR (1u << 15)
#define IS_TFES (1u << 30)
#define SIG_ATA 0x00000101u

#define ATA_IDENTIFY 0xEC
#define ATA_READ_DMA_EXT 0x25
#define ATA_WRITE_DMA_EXT 0x35
#define ATA_FLUSH_CACHE 0xE7
#define ATA_FLUSH_CACHE_EXT 0xEA
#define CMDH_WRITE (1u << 6)       /* command header DW0 W: host to device */
#define ID83_LBA48 (1u << 10)      /* IDENTIFY word 83: 48-bit commands */
#define ID83_FLUSH_EXT (1u << 13)  /* IDENTIFY word 83: FLUSH CACHE EXT */
#define MAX_SECTORS 32768u
#define PRD_BYTES (4u << 20)
#define NPRD (MAX_SECTORS * 512u / PRD_BYTES)

struct ahci_port {
    struct blkdev blk;
    volatile uint8_t *abar;
    unsigned port;
    uint32_t *cmd_list;     /* 32 headers of 8 dwords; we use slot 0 */
    uint8_t *table;         /* command table for slot 0 */
    uint8_t flush_cmd;      /* FLUSH CACHE EXT, or FLUSH CACHE without LBA48 */
    int dead;               /* the port did not recover from an error */
    char name[40];
};

static struct ahci_port ports[8];
static int nports;

static uint32_t rd(struct ahci_port *p, uint32_t off) { return *(volatile uint32_t *)(p->abar + PX(p->port) + off); }
static void wr(struct ahci_port *p, uint32_t off, uint32_t v) { *(volatile uint32_t *)(p->abar + PX(p->port) + off) = v; }

/* Wait until (reg & mask) == want, at most `ms` milliseconds. */
static int wait_reg(struct ahci_port *p, uint32_t off, uint32_t mask, uint32_t want, uint32_t ms)
{
    uint64_t end = rdtsc() + cpu.tsc_hz / 1000 * ms;
    while ((rd(p, off) & mask) != want)
        if (rdtsc() > end)
            return -1;
        else
            cpu_relax();
    return 0;
}

static const char *cmd_name(uint8_t cmd)
{
    switch (cmd) {
    case ATA_IDENTIFY: return "IDENTIFY DEVICE";
    case ATA_READ_DMA_EXT: return "READ DMA EXT";
    case ATA_WRITE_DMA_EXT: return "WRITE DMA EXT";
    case ATA_FLUSH_CACHE: return "FLUSH CACHE";
    case ATA_FLUSH_CACHE_EXT: return "FLUSH CACHE EXT";
    default: return "ATA command";
    }
}

static void spin_ms(uint32_t ms)
{
    uint64_t end = rdtsc() + cpu.tsc_hz / 1000 * ms;
    while (rdtsc() < end)
        cpu_relax();
}

/* After a failed command: stop the port (PxCMD.ST, wait for PxCMD.CR);
 * a command that never finished (hard: a timeout) or a device still busy
 * gets a COMRESET (PxSCTL.DET = 1 for at least 1 ms, AHCI 1.3.1 10.4.2),
 * which aborts it; then clear PxSERR and PxIS and start the port again
 * (6.2.2.1/6.2.2.2).  A port that does not come back is disabled. */
static void recover(struct ahci_port *p, int hard)
{
    wr(p, PX_CMD, rd(p, PX_CMD) & ~CMD_ST);
    int ok = wait_reg(p, PX_CMD, CMD_CR, 0, 500) == 0;
    if (ok && (hard || (rd(p, PX_TFD) & 0x88))) {
        wr(p, PX_SCTL, (rd(p, PX_SCTL) & ~0xFu) | 1);
        spin_ms(2);
        wr(p, PX_SCTL, rd(p, PX_SCTL) & ~0xFu);
        ok = wait_reg(p, PX_SSTS, 0xF, 3, 1000) == 0;
    }
    if (ok) {
        wr(p, PX_SERR, 0xFFFFFFFFu);
        wr(p, PX_IS, 0xFFFFFFFFu);
        wr(p, PX_CMD, rd(p, PX_CMD) | CMD_ST);
        if (wait_reg(p, PX_TFD, 0x88, 0, 5000) == 0)
            return;
    }
    p->dead = 1;
    kprintf("%s: the port did not recover from the error; disabled\n", p->name);
}

/* Issue one ATA command in slot 0 moving `bytes` (<= 16 MiB) between buf
 * and the disk (write: host to device).  Returns 0, or BLK_EIO /
 * BLK_ETIMEOUT / BLK_EDEAD with the reason in p->blk.error. */
static int command(struct ahci_port *p, uint8_t cmd, uint64_t lba, uint32_t sectors, void *buf, uint32_t bytes,
                   int write)
{
    if (p->dead) {
        snprintf(p->blk.error, sizeof p->blk.error, "%s: port disabled after an earlier failure", cmd_name(cmd));
        return BLK_EDEAD;
    }
    uint8_t *t = p->table;
    memset(t, 0, 0x80 + 16 * NPRD);
    uint8_t *fis = t;                      /* Register H2D FIS */
    fis[0] = 0x27;
    fis[1] = 0x80;                         /* command, not control */
    fis[2] = cmd;
    fis[4] = (uint8_t)lba; fis[5] = (uint8_t)(lba >> 8); fis[6] = (uint8_t)(lba >> 16);
    fis[7] = 0x40;                         /* LBA mode */
    fis[8] = (uint8_t)(lba >> 24); fis[9] = (uint8_t)(lba >> 32); fis[10] = (uint8_t)(lba >> 40);
    fis[12] = (uint8_t)sectors; fis[13] = (uint8_t)(sectors >> 8);
    uint32_t nprd = 0;
    for (uint32_t off = 0; off < bytes; off += PRD_BYTES, nprd++) {
        uint32_t *prd = (uint32_t *)(t + 0x80 + 16 * nprd);
        uint64_t a = (uint64_t)buf + off;
        uint32_t n = bytes - off < PRD_BYTES ? bytes - off : PRD_BYTES;
        prd[0] = (uint32_t)a;
        prd[1] = (uint32_t)(a >> 32);
        prd[3] = n - 1;                    /* byte count - 1 */
    }
    uint32_t *h = p->cmd_list;
    h[0] = 5 | (write ? CMDH_WRITE : 0) | (nprd << 16);   /* CFL = 5 dwords, W, PRDTL */
    h[1] = 0;
    h[2] = (uint32_t)(uint64_t)t;
    h[3] = (uint32_t)((uint64_t)t >> 32);
    wr(p, PX_IS, 0xFFFFFFFFu);
    if (wait_reg(p, PX_TFD, 0x88, 0, 1000) != 0) {   /* BSY, DRQ clear */
        snprintf(p->blk.error, sizeof p->blk.error, "%s at LBA %llu: the disk stays busy (ATA status 0x%02x)",
                 cmd_name(cmd), (unsigned long long)lba, rd(p, PX_TFD) & 0xFF);
        recover(p, 0);
        return BLK_EIO;
    }
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    wr(p, PX_CI, 1);
    uint64_t end = rdtsc() + cpu.tsc_hz / 1000 * BLK_TIMEOUT_MS;
    int timeout = 0;
    while (rd(p, PX_CI) & 1) {
        if (rd(p, PX_IS) & IS_TFES)
            break;
        if (rdtsc() > end) {
            timeout = 1;
            break;
        }
        cpu_relax();
    }
    uint32_t tfd = rd(p, PX_TFD);
    if (timeout) {
        snprintf(p->blk.error, sizeof p->blk.error,
                 "%s at LBA %llu: no answer in %u s (ATA status 0x%02x); port reset", cmd_name(cmd),
                 (unsigned long long)lba, BLK_TIMEOUT_MS / 1000, tfd & 0xFF);
        recover(p, 1);
        return BLK_ETIMEOUT;
    }
    if ((rd(p, PX_IS) & IS_TFES) || (tfd & 1)) {
        if (bytes)
            snprintf(p->blk.error, sizeof p->blk.error, "%s at LBA %llu (%u sectors): ATA status 0x%02x error 0x%02x",
                     cmd_name(cmd), (unsigned long long)lba, sectors, tfd & 0xFF, (tfd >> 8) & 0xFF);
        else
            snprintf(p->blk.error, sizeof p->blk.error, "%s: ATA status 0x%02x error 0x%02x", cmd_name(cmd),
                     tfd & 0xFF, (tfd >> 8) & 0xFF);
        recover(p, 0);
        return BLK_EIO;
    }
    return 0;
}

static int check_range(struct blkdev *b, uint64_t lba, uint64_t bytes)
{
    if (bytes % 512) {
        snprintf(b->error, sizeof b->error, "%llu bytes is not a multiple of 512", (unsigned long long)bytes);
        return BLK_EARG;
    }
    if (lba > b->sectors || bytes / 512 > b->sectors - lba) {
        snprintf(b->error, sizeof b->error, "sectors %llu+%llu lie past the end of the disk (%llu sectors)",
                 (unsigned long long)lba, (unsigned long long)(bytes / 512), (unsigned long long)b->sectors);
        return BLK_ERANGE;
    }
    return 0;
}

/* READ DMA EXT or WRITE DMA EXT over [lba, lba + bytes/512), in
 * commands of up to MAX_SECTORS. */
static int transfer(struct ahci_port *p, int write, uint64_t lba, uint8_t *buf, uint64_t bytes)
{
    int err = check_range(&p->blk, lba, bytes);
    for (uint64_t done = 0; !err && done < bytes;) {
        uint32_t n = bytes - done < MAX_SECTORS * 512u ? (uint32_t)(bytes - done) : MAX_SECTORS * 512u;
        err = command(p, write ? ATA_WRITE_DMA_EXT : ATA_READ_DMA_EXT, lba + done / 512, n / 512, buf + done, n,
                      write);
        done += n;
    }
    return err;
}

static int ahci_read(struct blkdev *b, uint64_t lba, void *buf, uint64_t bytes)
{
    return transfer(b->priv, 0, lba, buf, bytes);
}

static int ahci_write(struct blkdev *b, uint64_t lba, const void *buf, uint64_t bytes)
{
    struct ahci_port *p = b->priv;
    int err = transfer(p, 1, lba, (uint8_t *)(uintptr_t)buf, bytes);
    if (!err && bytes)
        err = command(p, p->flush_cmd, 0, 0, NULL, 0, 0);
    return err;
}

/* Stop the port, give it our command list and FIS area, start it. */
static int port_start(struct ahci_port *p)
{
    wr(p, PX_CMD, rd(p, PX_CMD) & ~(CMD_ST | CMD_FRE));
    if (wait_reg(p, PX_CMD, CMD_CR | CMD_FR, 0, 500) != 0)
        return -1;
    uint64_t mem = phys_alloc(&kphys, 3 * 4096 + 16 * NPRD, 4096);
    if (!mem)
        return -1;
    memset((void *)mem, 0, 3 * 4096);
    p->cmd_list = (uint32_t *)mem;          /* 1 KiB, 1 KiB aligned */
    uint64_t fis = mem + 4096;               /* 256 B, 256 B aligned */
    p->table = (uint8_t *)(mem + 8192);      /* 128 B aligned */
    wr(p, PX_CLB, (uint32_t)mem);
    wr(p, PX_CLBU, (uint32_t)(mem >> 32));
    wr(p, PX_FB, (uint32_t)fis);
    wr(p, PX_FBU, (uint32_t)(fis >> 32));
    wr(p, PX_SERR, 0xFFFFFFFFu);
    wr(p, PX_IS, 0xFFFFFFFFu);
    wr(p, PX_CMD, rd(p, PX_CMD) | CMD_FRE);
    wr(p, PX_CMD, rd(p, PX_CMD) | CMD_ST);
    return 0;
}

static int probe(const struct pci_dev *d, void *ctx)
{
    (void)ctx;
    if (d->class_code != 0x01 || d->subclass != 0x06 || d->prog_if != 0x01)
        return 0;
    int is_io;
    uint64_t bar = pci_bar(d, 5, &is_io);
    if (is_io || !bar)
        return 0;
    pci_enable(d);
    volatile uint8_t *abar = (volatile uint8_t *)bar;
    *(volatile uint32_t *)(abar + HBA_GHC) |= GHC_AE;
    uint32_t pi = *(volatile uint32_t *)(abar + HBA_PI);
    for (unsigned i = 0; i < 32 && nports < 8; i++) {
        if (!(pi & (1u << i)))
            continue;
        struct ahci_port *p = &ports[nports];
        memset(p, 0, sizeof *p);
        p->abar = abar;
        p->port = i;
        snprintf(p->name, sizeof p->name, "ahci %02x:%02x.%x port %u", d->bus, d->dev, d->fn, i);
        if ((rd(p, PX_SSTS) & 0xF) != 3 || rd(p, PX_SIG) != SIG_ATA)
            continue;   /* no device, or not a disk (ATAPI, port multiplier) */
        static uint16_t id[256] __attribute__((aligned(512)));
        if (port_start(p) != 0 || command(p, ATA_IDENTIFY, 0, 0, id, 512, 0) != 0) {
            kprintf("%s: disk does not answer%s%s\n", p->name, p->blk.error[0] ? ": " : "", p->blk.error);
            continue;
        }
        uint64_t sectors = (uint64_t)id[100] | (uint64_t)id[101] << 16 | (uint64_t)id[102] << 32 |
                           (uint64_t)id[103] << 48;
        if (!(id[83] & ID83_LBA48))
            sectors = (uint64_t)id[60] | (uint64_t)id[61] << 16;   /* LBA28 only */
        p->flush_cmd = (id[83] & ID83_FLUSH_EXT) ? ATA_FLUSH_CACHE_EXT : ATA_FLUSH_CACHE;
        p->blk = (struct blkdev){ .name = p->name, .sectors = sectors, .read = ahci_read, .write = ahci_write,
                                  .priv = p };
        blk_register(&p->blk);
        nports++;
    }
    return 0;
}

void ahci_probe(void)
{
    pci_scan(probe, NULL);
}
