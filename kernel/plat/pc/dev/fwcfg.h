/* fwcfg.h - QEMU's firmware configuration interface (I/O ports 0x510/0x511),
 * used to pass options such as test mode ("-fw_cfg name=opt/fluid/test,
 * string=1").  On real hardware it is simply absent. */
#ifndef FLUID_FWCFG_H
#define FLUID_FWCFG_H
#include <stddef.h>
/* Copy the file `name` into buf (at most cap-1 bytes, NUL-terminated).
 * Returns its length in bytes, or -1 when fw_cfg or the file is absent. */
int fwcfg_read_file(const char *name, char *buf, size_t cap);
#endif
