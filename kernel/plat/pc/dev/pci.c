/* pci.c - PCI configuration access and bus scan (mechanism #1). */
#include "x86/io.h"
#include "dev/pci.h"

static uint32_t addr(const struct pci_dev *d, uint8_t off)
{
    return 0x80000000u | (uint32_t)d->bus << 16 | (uint32_t)d->dev << 11 |
           (uint32_t)d->fn << 8 | (off & 0xFC);
}

uint32_t pci_read32(const struct pci_dev *d, uint8_t off)
{
    outl(0xCF8, addr(d, off));
    return inl(0xCFC);
}

void pci_write32(const struct pci_dev *d, uint8_t off, uint32_t v)
{
    outl(0xCF8, addr(d, off));
    outl(0xCFC, v);
}

uint16_t pci_read16(const struct pci_dev *d, uint8_t off)
{
    return (uint16_t)(pci_read32(d, off) >> ((off & 2) * 8));
}

void pci_write16(const struct pci_dev *d, uint8_t off, uint16_t v)
{
    uint32_t old = pci_read32(d, off);
    int sh = (off & 2) * 8;
    pci_write32(d, off, (old & ~(0xFFFFu << sh)) | (uint32_t)v << sh);
}

uint64_t pci_bar(const struct pci_dev *d, int i, int *is_io)
{
    uint32_t lo = pci_read32(d, (uint8_t)(0x10 + 4 * i));
    *is_io = lo & 1;
    if (lo & 1)
        return lo & ~3u;
    uint64_t a = lo & ~15u;
    if (((lo >> 1) & 3) == 2)   /* 64-bit memory BAR */
        a |= (uint64_t)pci_read32(d, (uint8_t)(0x14 + 4 * i)) << 32;
    return a;
}

void pci_enable(const struct pci_dev *d)
{
    pci_write16(d, 0x04, (uint16_t)(pci_read16(d, 0x04) | 0x7));
}

int pci_scan(int (*fn)(const struct pci_dev *d, void *ctx), void *ctx)
{
    for (int bus = 0; bus < 256; bus++)
        for (int dev = 0; dev < 32; dev++)
            for (int f = 0; f < 8; f++) {
                struct pci_dev d = { (uint8_t)bus, (uint8_t)dev, (uint8_t)f, 0, 0, 0, 0, 0 };
                uint32_t id = pci_read32(&d, 0);
                if ((id & 0xFFFF) == 0xFFFF) {
                    if (f == 0)
                        break;
                    continue;
                }
                d.vendor = (uint16_t)id;
                d.device = (uint16_t)(id >> 16);
                uint32_t cls = pci_read32(&d, 8);
                d.class_code = (uint8_t)(cls >> 24);
                d.subclass = (uint8_t)(cls >> 16);
                d.prog_if = (uint8_t)(cls >> 8);
                int r = fn(&d, ctx);
                if (r)
                    return r;
                if (f == 0 && !(pci_read32(&d, 0x0C) & 0x00800000u))
                    break;   /* not multi-function */
            }
    return 0;
}
