/* power.h - stopping and restarting the machine.
 *
 * Test mode (QEMU started with -fw_cfg name=opt/fluid/test,string=1 and an
 * isa-debug-exit device at port 0xf4): power_off() makes QEMU exit with
 * status 1 and power_fail_stop() with status 3, so tests tell a clean
 * shutdown from a kernel failure. */
#ifndef FLUID_POWER_H
#define FLUID_POWER_H
void power_init(void);
int power_test_mode(void);
__attribute__((noreturn)) void power_off(void);
__attribute__((noreturn)) void power_reboot(void);
/* After a fatal error has been printed: stop (failure status in tests). */
__attribute__((noreturn)) void power_fail_stop(void);
#endif
