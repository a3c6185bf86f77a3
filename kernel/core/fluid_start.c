/* fluid_start.c - what every platform runs once it is set up (see
 * fluid_start.h): the same boot sequence on pc and hosted. */
#include <stdio.h>
#include "fluid_start.h"
#include "arch/x86/cpu.h"
#include "lib/kprintf.h"
#include "llm/model.h"
#include "mod/loader.h"
#include "mod/optab.h"
#include "plat/plat.h"
#include "shell/shell.h"

void fluid_start(void)
{
    char why[200];
    if (cpu_kernel_check(why, sizeof why) != 0) {
        kprintf("fluid: cannot run: %s\n", why);   /* before the first libc math call faults */
        plat_fail_stop();
    }
    optab_init();
    plat_pmu_init();
    if (mod_boot_load() == 0) {   /* modules before the model: it needs them */
        model_boot_load();
        if (model.loaded)
            mod_check_shapes(&model.m.hp);
    } else {
        snprintf(model.error, sizeof model.error,
                 "not loaded: some ops have no usable module (see the boot log)");
    }
    if (!model.loaded && plat_image()->region[FLUID_REGION_MODEL].bytes)
        plat_model_failed();
    plat_prompt_ready();
    shell_run();
}
