/*
 * lapic.h - the local APIC, only as far as starting and stopping other
 * cores needs it: its ID, software enable, and inter-processor interrupts
 * (Intel SDM vol. 3A chapter 10 "Advanced Programmable Interrupt
 * Controller (APIC)", 10.6 "Issuing Interprocessor Interrupts"; the
 * chapter is 11 in editions from 2023 on: section numbers below are the
 * older ones, as is the brief's "8.4.4").
 *
 * Works in xAPIC mode (registers memory-mapped at the MADT's base) and in
 * x2APIC mode (registers as MSRs 0x800.., SDM 10.12) when the firmware
 * left the APIC in it.  Interrupts stay off everywhere in Fluid: the APIC
 * is used to send IPIs, never to receive maskable interrupts.
 */
#ifndef FLUID_SMP_LAPIC_H
#define FLUID_SMP_LAPIC_H

#include <stdint.h>

/* ICR delivery modes (SDM 10.6.1, "Interrupt Command Register"). */
#define LAPIC_DM_FIXED 0x000u
#define LAPIC_DM_NMI 0x400u
#define LAPIC_DM_INIT 0x500u
#define LAPIC_DM_STARTUP 0x600u
#define LAPIC_LEVEL_ASSERT 0x4000u
#define LAPIC_TRIGGER_LEVEL 0x8000u
#define LAPIC_DEST_ALL_BUT_SELF 0xC0000u   /* destination shorthand 11b */

/* Set up the bootstrap processor's APIC: `base` is the physical MMIO base
 * from the MADT (identity-mapped here if the boot page tables do not cover
 * it).  Detects x2APIC mode from IA32_APIC_BASE (MSR 0x1B) and sets the
 * software-enable bit of the spurious-vector register.  Returns 0, or -1
 * when the APIC is globally disabled (IA32_APIC_BASE bit 11 clear) or the
 * CPU has none; then no other core can be started. */
int lapic_init(uint64_t base);

/* Spurious-interrupt vector programmed by lapic_init*() (SDM 10.9). */
#define LAPIC_SPURIOUS_VECTOR 0xFF

/* Software-enable the calling CPU's APIC with LAPIC_SPURIOUS_VECTOR
 * (lapic_init() does it on the BSP; APs call it after it ran). */
void lapic_init_ap(void);

/* 1 when fixed interrupt `vector` (32..255) is in service on this CPU
 * (its ISR bit, SDM 10.8.4), i.e. it was delivered and needs an EOI. */
int lapic_in_service(uint8_t vector);

/* Signal end of interrupt for the highest-priority in-service vector. */
void lapic_eoi(void);

/* APIC ID of the calling CPU (32 bits in x2APIC mode, else 8). */
uint32_t lapic_id(void);

/* 1 when the APIC is in x2APIC mode (IDs above 254 reachable). */
int lapic_x2apic(void);

/* Send one IPI: `icr` is the low ICR word (vector, delivery mode, level,
 * trigger, shorthand), `dest` the destination APIC ID (ignored with a
 * shorthand).  Waits up to ~100 us for the previous IPI to leave
 * (delivery-status bit, xAPIC only).  Returns 0, or -1 if the ICR stayed
 * busy (the IPI is then not sent). */
int lapic_send_ipi(uint32_t dest, uint32_t icr);

#endif
