/* pci.h - PCI configuration space through mechanism #1 (ports 0xCF8/0xCFC,
 * PCI Local Bus spec 3.0 section 3.2.2.3.2). */
#ifndef FLUID_PCI_H
#define FLUID_PCI_H
#include <stdint.h>

struct pci_dev {
    uint8_t bus, dev, fn;
    uint16_t vendor, device;
    uint8_t class_code, subclass, prog_if;
};

uint32_t pci_read32(const struct pci_dev *d, uint8_t off);
void pci_write32(const struct pci_dev *d, uint8_t off, uint32_t v);
uint16_t pci_read16(const struct pci_dev *d, uint8_t off);
void pci_write16(const struct pci_dev *d, uint8_t off, uint16_t v);
/* BAR i as an address (I/O port or memory; 64-bit BARs combined). */
uint64_t pci_bar(const struct pci_dev *d, int i, int *is_io);
/* Set I/O, memory and bus-master enable in the command register. */
void pci_enable(const struct pci_dev *d);
/* Call fn for every function present; stop early when fn returns nonzero.
 * Returns fn's nonzero value, or 0. */
int pci_scan(int (*fn)(const struct pci_dev *d, void *ctx), void *ctx);
#endif
