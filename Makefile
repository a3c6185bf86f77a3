# Fluid: build, run and test.  `make run` and `make test` are all a user
# needs; both install missing Debian packages through tools/install-deps.sh.

CC      := clang-19
LD      := ld.lld-19
OBJCOPY := llvm-objcopy-19
PYTHON  := /usr/bin/python3
B       := build

LLVM_LIB   := /usr/lib/llvm-19/lib
LIBC_A     := $(LLVM_LIB)/libllvmlibc.a

# Facts asked of the compiler.  On a fresh machine clang-19 is installed by
# the `deps` target, i.e. after this Makefile is parsed, so these must not
# be computed at parse time (`:=` would freeze them empty, and the first
# build would fail): each is computed once, on first use in a recipe
# (lazy := on first expansion).
lazy = $(eval $1 := $$(shell $2))$($1)
CLANG_RES  = $(call lazy,CLANG_RES,$(CC) -print-resource-dir 2>/dev/null)
BUILTINS_A = $(call lazy,BUILTINS_A,$(CC) --print-file-name=libclang_rt.builtins-x86_64.a 2>/dev/null)
CC_VERSION = $(call lazy,CC_VERSION,$(CC) --version 2>/dev/null | head -1)

# Default model: TinyLlama-shaped, random weights, real vocabulary; made
# once by tools/make_model.py (no download).  Override with MODEL=path.
DEFAULT_MODEL := models/tinyllama-shaped-Q4_0.gguf
MODEL ?= $(DEFAULT_MODEL)
MEM   ?= 3G
SMP   ?=
CTX   ?=

WARN := -Wall -Wextra -Werror
# The kernel is kernel/core (portable: the model, modules, shell) on one of
# two platforms behind kernel/plat/plat.h: kernel/plat/pc (the unikernel)
# and kernel/plat/hosted (a Linux process).  Core objects are compiled once
# and linked into both, so both compute the same bits.
# The linux-gnu target gives the stack protector's %fs:0x28 canary (the
# llvm-libc convention, and glibc's in the hosted process); -ffreestanding
# -nostdinc keep Linux's headers out of the core.
KCFLAGS = --target=x86_64-linux-gnu -std=c11 -ffreestanding -nostdinc \
  -isystem $(CLANG_RES)/include \
  -Ikernel/include/libc -Ikernel/include -Ikernel -Ikernel/core -Imodules \
  -march=x86-64 -mno-red-zone -mcmodel=small -fno-pic -fno-pie -static \
  -fstack-protector-strong \
  -fno-omit-frame-pointer -O2 -g $(WARN) -MMD -MP
# The pc platform's own sources also see kernel/plat/pc ("dev/...", "x86/...").
PCFLAGS = $(KCFLAGS) -Ikernel/plat/pc -I$(GEN)
# The hosted platform's sources are ordinary Linux C (glibc headers); they
# see the core's headers but not llvm-libc's.
HCFLAGS = -std=gnu11 -D_GNU_SOURCE -O2 -g -fno-pie -fno-omit-frame-pointer $(WARN) -MMD -MP \
  -Ikernel/include -Ikernel -Ikernel/core -Imodules

# Compute kernels (modules/) are not linked into the kernel: each is a
# separate position-independent module (modules/module_abi.h), loaded at
# boot from the image's module region (and the PGO cache).
CORE_SRC   := $(shell find kernel/core kernel/arch kernel/plat/common -name '*.c' | sort)
PC_SRC     := $(shell find kernel/plat/pc -name '*.c' -o -name '*.S' | sort)
HOSTED_SRC := $(shell find kernel/plat/hosted -name '*.c' | sort)
CORE_OBJ   := $(patsubst %,$(B)/%.o,$(CORE_SRC))
PC_OBJ     := $(patsubst %,$(B)/%.o,$(PC_SRC))
HOSTED_OBJ := $(patsubst %,$(B)/%.o,$(HOSTED_SRC))
KERNEL_OBJ := $(CORE_OBJ) $(PC_OBJ)

# ---- modules: one per modules/<name>.c, each linked alone with modrt.c ----
# The baseline set: -O1 for the portable tag (-march=x86-64, SSE2 only).
# tools/pgo.py builds the cache variants with the same MOD_CFLAGS/MOD_LDFLAGS
# (it reads them with `make -s modflags`).
MOD_SRC    := $(filter-out modules/modrt.c,$(wildcard modules/*.c))
MOD_NAMES  := $(basename $(notdir $(MOD_SRC)))
MOD_CFLAGS = --target=x86_64-linux-gnu -std=c11 -ffreestanding -nostdinc \
  -isystem $(CLANG_RES)/include -Ikernel/include -Imodules \
  -fno-builtin -fPIC -fno-stack-protector -mno-red-zone -fvisibility=hidden \
  -ffp-contract=off -fno-asynchronous-unwind-tables -fno-unwind-tables $(WARN)
MOD_LDFLAGS := -pie --no-dynamic-linker -nostdlib -T modules/module.ld
MOD_HDRS   := $(wildcard modules/*.h) kernel/include/fluid/cpufeat.h
MB         := $(B)/modules/base

$(MB)/%.o: modules/%.c $(MOD_HDRS) Makefile | deps
	@mkdir -p $(dir $@)
	@echo "  MODCC   $<"
	@$(CC) $(MOD_CFLAGS) -O1 -march=x86-64 -c $< -o $@

$(MB)/%.elf: $(MB)/%.o $(MB)/modrt.o modules/module.ld
	@$(LD) $(MOD_LDFLAGS) $< $(MB)/modrt.o -o $@

$(MB)/%.fmod: $(MB)/%.elf $(B)/tools/modpack
	@$(B)/tools/modpack module -o $@ --elf $< --name $* --march x86-64 --opt 1 \
	  --features "SSE SSE2" --compiler "$(CC_VERSION)" --baseline

# Per-ISA builds of every module (-O2), after the baselines in the image's
# module region: the kernel loads each one the CPU can run, in this order,
# so the highest level it has wins (modules/module_abi.h FLUID_MOD_F_ISA);
# the scalar baseline stays as the verified fallback.  The PGO loop then adds
# what only a profile can (shape constants, -O levels) in the cache.
# Directory name -> -march tag and clang flags.
ISA_DIRS        := v2 v3 v4vnni
ISA_TAG_v2      := x86-64-v2
ISA_TAG_v3      := x86-64-v3
ISA_TAG_v4vnni  := x86-64-v4+vnni
ISA_FLAGS_v2    := -march=x86-64-v2
ISA_FLAGS_v3    := -march=x86-64-v3
ISA_FLAGS_v4vnni := -march=x86-64-v4 -mavx512vnni
ISA_OPT         := 2
define isa_rules
$(B)/modules/$(1)/%.o: modules/%.c $(MOD_HDRS) Makefile | deps
	@mkdir -p $$(dir $$@)
	@echo "  MODCC   $$< ($(ISA_TAG_$(1)))"
	@$$(CC) $$(MOD_CFLAGS) -O$(ISA_OPT) $(ISA_FLAGS_$(1)) -c $$< -o $$@

$(B)/modules/$(1)/%.elf: $(B)/modules/$(1)/%.o $(MB)/modrt.o modules/module.ld
	@$$(LD) $$(MOD_LDFLAGS) $$< $(MB)/modrt.o -o $$@

$(B)/modules/$(1)/%.fmod: $(B)/modules/$(1)/%.elf $(B)/tools/modpack
	@$(B)/tools/modpack module -o $$@ --elf $$< --name $$* --march $(ISA_TAG_$(1)) --opt $(ISA_OPT) \
	  --features tag --compiler "$$(CC_VERSION)" --isa-variant

.SECONDARY: $(MOD_NAMES:%=$(B)/modules/$(1)/%.o) $(MOD_NAMES:%=$(B)/modules/$(1)/%.elf)
endef
$(foreach d,$(ISA_DIRS),$(eval $(call isa_rules,$(d))))

# Alternative builds for `tune` (issue 10, part 3): the hot matrix products
# of the v3 and v4+vnni sets again with other software-prefetch distances
# (mm_common.h MM_PREFETCH_OVERRIDE; the best one depends on the CPU: 16 KiB
# for Q4_K on one host, none on another).  Loaded, never run by default:
# `tune` times them beside the defaults and keeps the fastest
# (modules/module_abi.h FLUID_MOD_F_ALT).  A value equal to a type's
# default is the same code, which tune lists as such.
ALT_MODS  := mm_q4_0 mm_q8_0 mm_q4_K mm_q6_K
ALT_ISAS  := v3 v4vnni
ALT_PF    := 0 1024 4096 16384
define alt_rules
$(B)/modules/$(1)-pf$(2)/%.o: modules/%.c $(MOD_HDRS) Makefile | deps
	@mkdir -p $$(dir $$@)
	@echo "  MODCC   $$< ($(ISA_TAG_$(1)), prefetch $(2))"
	@$$(CC) $$(MOD_CFLAGS) -O$(ISA_OPT) $(ISA_FLAGS_$(1)) -DMM_PREFETCH_OVERRIDE=$(2) -c $$< -o $$@

$(B)/modules/$(1)-pf$(2)/%.elf: $(B)/modules/$(1)-pf$(2)/%.o $(MB)/modrt.o modules/module.ld
	@$$(LD) $$(MOD_LDFLAGS) $$< $(MB)/modrt.o -o $$@

$(B)/modules/$(1)-pf$(2)/%.fmod: $(B)/modules/$(1)-pf$(2)/%.elf $(B)/tools/modpack
	@$(B)/tools/modpack module -o $$@ --elf $$< --name $$* --march $(ISA_TAG_$(1)) --opt $(ISA_OPT) \
	  --features tag --compiler "$$(CC_VERSION)" --alt-variant --param prefetch=$(2)

.SECONDARY: $(ALT_MODS:%=$(B)/modules/$(1)-pf$(2)/%.o) $(ALT_MODS:%=$(B)/modules/$(1)-pf$(2)/%.elf)
endef
$(foreach d,$(ALT_ISAS),$(foreach p,$(ALT_PF),$(eval $(call alt_rules,$(d),$(p)))))
ALT_FILES := $(foreach d,$(ALT_ISAS),$(foreach p,$(ALT_PF),$(ALT_MODS:%=$(B)/modules/$(d)-pf$(p)/%.fmod)))
MOD_FILES := $(MOD_NAMES:%=$(MB)/%.fmod) $(foreach d,$(ISA_DIRS),$(MOD_NAMES:%=$(B)/modules/$(d)/%.fmod)) \
  $(ALT_FILES)

$(B)/modules.bin: $(MOD_FILES) $(B)/tools/modpack
	@echo "  MODPACK $@ ($(words $(MOD_NAMES)) modules: baseline + $(words $(ISA_DIRS)) ISA levels;" \
	  "$(words $(ALT_FILES)) prefetch alternatives for tune)"
	@$(B)/tools/modpack pack -o $@ $(MOD_FILES)

modules: $(B)/modules.bin
.SECONDARY: $(MOD_NAMES:%=$(MB)/%.o) $(MOD_NAMES:%=$(MB)/%.elf) $(MB)/modrt.o

# For tools/pgo.py: the module toolchain and flags, one per line.
modflags:
	@echo "CC=$(CC)"
	@echo "LD=$(LD)"
	@echo "CC_VERSION=$(CC_VERSION)"
	@echo "MOD_CFLAGS=$(MOD_CFLAGS)"
	@echo "MOD_LDFLAGS=$(MOD_LDFLAGS)"
	@echo "MOD_HDRS=$(MOD_HDRS)"

.PHONY: all image run test deps clean help modules modflags hosted layout mmbench roofline
all: image

help:
	@echo "make run [MODEL=file.gguf] [MEM=3G] [SMP=n] [CTX=n]  build and boot Fluid in QEMU (CTX: context size)"
	@echo "make run HOSTED=1 [...]                        the same image as a Linux process (native speed)"
	@echo "make hosted                                    build $(B)/fluid-hosted only"
	@echo "make image [MODEL=...]                         build $(B)/fluid.img only"
	@echo "make test                                      run the whole test suite"
	@echo "make layout                                    $(B)/gen/fluid_layout.{h,ld,py} from the C headers"
	@echo "make bench [MODEL=...] [SMP=n] [BENCH_P=128 BENCH_N=64 BENCH_R=3]  Fluid vs llama.cpp speed"
	@echo "make pgo-profile [MODEL=...] [PGO_N=32] [HOSTED=1]  profile a workload into profiles/"
	@echo "make pgo-profile SERIAL=/dev/ttyUSB0 [BAUD=115200] the same on a real machine's COM1"
	@echo "make pgo-analyze                               classify modules, write a plan"
	@echo "make pgo-apply [DISK=/dev/sdX]                 build the plan into the image's (or disk's) cache"
	@echo "make pgo-report                                HTML: every loop generation compared"
	@echo "make fuzz [FUZZ_RUNS=10000000] [FUZZ_JOBS=2]    the load-path fuzzer's campaign (libFuzzer, ASan, UBSan)"

deps:
	@bash tools/install-deps.sh

# ---- layouts: generated from the C headers (tools/genlayout.c) ----
# The image, boot-info, module and cache layouts are defined once, in C
# headers; the assembly (fluid_layout.h), the linker scripts (INCLUDE
# fluid_layout.ld) and the Python tools (fluid_layout.py) get them here.
GEN         := $(B)/gen
# The tools (pgo.py, bench.py, roofline.py, tests) use the build dir in use
# (B=...): its image layout and its fluid-hosted.
export FLUID_LAYOUT := $(abspath $(GEN)/fluid_layout.py)
export FLUID_HOSTED := $(abspath $(B)/fluid-hosted)
LAYOUT_HDRS := kernel/include/fluid/image.h kernel/include/fluid/bootinfo.h modules/module_abi.h \
  kernel/include/fluid/cpufeat.h kernel/plat/pc/smp/trampoline.h
LAYOUT_GEN  := $(GEN)/fluid_layout.h $(GEN)/fluid_layout.ld $(GEN)/fluid_layout.py

$(B)/tools/genlayout: tools/genlayout.c $(LAYOUT_HDRS) | deps
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 $(WARN) -Ikernel/include -Imodules -Ikernel/plat/pc -o $@ $<

$(GEN)/fluid_layout.%: $(B)/tools/genlayout
	@mkdir -p $(dir $@)
	@echo "  GEN     $@"
	@$< $* > $@.tmp && mv $@.tmp $@

layout: $(LAYOUT_GEN)

# ---- bootloader ----
$(B)/bootloader/stage1.bin: bootloader/stage1.S bootloader/stage1.ld $(GEN)/fluid_layout.h | deps
	@mkdir -p $(dir $@)
	$(CC) --target=i386-elf -I$(GEN) -c $< -o $(B)/bootloader/stage1.o
	$(LD) -m elf_i386 -T bootloader/stage1.ld $(B)/bootloader/stage1.o -o $(B)/bootloader/stage1.elf
	$(OBJCOPY) -O binary $(B)/bootloader/stage1.elf $@

S2CFLAGS := --target=i386-elf -march=i686 -ffreestanding -fno-pic -mno-sse -mno-mmx \
  -O2 -std=c11 $(WARN) -Ikernel/include -I$(GEN)
# stage2_check.c runs in real mode, before the first BIOS read: -m16.
S2_OBJ := $(B)/bootloader/stage2_s.o $(B)/bootloader/stage2_check.o $(B)/bootloader/stage2_c.o
$(B)/bootloader/stage2.bin: bootloader/stage2.S bootloader/stage2_main.c bootloader/stage2_check.c \
    bootloader/stage2.ld $(GEN)/fluid_layout.h $(GEN)/fluid_layout.ld kernel/include/fluid/image.h \
    kernel/include/fluid/image_check.h kernel/include/fluid/bootinfo.h kernel/include/fluid/crc32.h | deps
	@mkdir -p $(dir $@)
	$(CC) $(S2CFLAGS) -c bootloader/stage2.S -o $(B)/bootloader/stage2_s.o
	$(CC) $(S2CFLAGS) -m16 -c bootloader/stage2_check.c -o $(B)/bootloader/stage2_check.o
	$(CC) $(S2CFLAGS) -c bootloader/stage2_main.c -o $(B)/bootloader/stage2_c.o
	$(LD) -m elf_i386 -T bootloader/stage2.ld -L $(GEN) $(S2_OBJ) -o $(B)/bootloader/stage2.elf
	$(OBJCOPY) -O binary $(B)/bootloader/stage2.elf $@

# ---- kernel: the core, and the pc platform (the unikernel) ----
# Flags by where a source lives: the pc platform, the hosted one, or the
# portable core (kernel/core, kernel/arch, kernel/plat/common).
kflags = $(if $(filter kernel/plat/pc/%,$1),$(PCFLAGS),$(if $(filter kernel/plat/hosted/%,$1),$(HCFLAGS),$(KCFLAGS)))
$(B)/kernel/%.o: kernel/% Makefile | deps
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(call kflags,$<) -c $< -o $@

# trampoline.S includes the generated header; kernel.ld the generated symbols.
$(B)/kernel/plat/pc/smp/trampoline.S.o: $(GEN)/fluid_layout.h

$(B)/kernel.elf: $(KERNEL_OBJ) kernel/plat/pc/kernel.ld $(GEN)/fluid_layout.ld
	@echo "  LD      $@"
	@$(LD) -T kernel/plat/pc/kernel.ld -L $(GEN) -nostdlib --gc-sections -o $@ $(KERNEL_OBJ) $(LIBC_A) $(BUILTINS_A)

$(B)/kernel.bin: $(B)/kernel.elf
	$(OBJCOPY) -O binary $< $@

# ---- the hosted platform: the same core objects as a Linux process ----
# llvm-libc comes before glibc, so the core's libc calls (snprintf, expf,
# strtof, ...) bind to the very functions the unikernel runs: the same
# bits on both; the platform's own files use glibc (threads, termios).
$(B)/fluid-hosted: $(CORE_OBJ) $(HOSTED_OBJ)
	@echo "  LD      $@"
	@$(CC) -no-pie -o $@ $(CORE_OBJ) $(HOSTED_OBJ) $(LIBC_A) -lpthread

hosted: $(B)/fluid-hosted

# ---- host tools ----
$(B)/tools/mkimage: tools/mkimage.c kernel/include/fluid/image.h kernel/include/fluid/image_check.h \
    kernel/include/fluid/crc32.h | deps
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 $(WARN) -Ikernel/include -o $@ $<

$(B)/tools/modpack: tools/modpack.c kernel/core/lib/sha256.c kernel/core/lib/sha256.h modules/module_abi.h \
    kernel/core/mod/modfmt.c kernel/core/mod/modfmt.h \
    kernel/include/fluid/cpufeat.h kernel/include/fluid/crc32.h | deps
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 $(WARN) -Ikernel/include -Ikernel/core -Imodules -o $@ tools/modpack.c kernel/core/mod/modfmt.c \
	  kernel/core/lib/sha256.c

# ---- image ----
# IMAGE: the image `make image / run / bench / test` and the pgo-* targets
# use.  PGO_CACHE and PGO_PROFILES: where the PGO loop keeps its builds and
# profiles (cache/README.md, profiles/README.md).
IMAGE        ?= $(B)/fluid.img
PGO_CACHE    ?= cache
PGO_PROFILES ?= profiles
IMAGE_DEPS := $(B)/tools/mkimage $(B)/bootloader/stage1.bin $(B)/bootloader/stage2.bin $(B)/kernel.bin \
  $(B)/modules.bin $(GEN)/fluid_layout.py
MODEL_FILE := $(if $(MODEL),$(MODEL),)

# Rebuilt every time (FORCE: the model file may change in place).  The
# applied PGO cache is carried over from the image being replaced or from
# $(PGO_CACHE)/ when it still fits (same model, module ABI, shapes and
# module sources; tools/pgo_carry.py), else one line says why it was dropped.
$(IMAGE): $(IMAGE_DEPS) $(MODEL_FILE) FORCE
	@$(B)/tools/mkimage -o $@.tmp --stage1 $(B)/bootloader/stage1.bin --stage2 $(B)/bootloader/stage2.bin \
	  --kernel $(B)/kernel.bin --modules $(B)/modules.bin --model "$(MODEL_FILE)"
	@$(PYTHON) tools/pgo.py carry --into $@.tmp --from $@ --cache-dir $(PGO_CACHE) --model "$(MODEL_FILE)"
	@mv $@.tmp $@
	@echo "image: $@ (model: $(if $(MODEL_FILE),$(MODEL_FILE),none))"

# fluid_layout.py too: the Python tools (tools/pgo.py) read images with it.
image: $(IMAGE) $(GEN)/fluid_layout.py

# HOSTED=1: run the image as a Linux process (native speed) instead of in QEMU.
HOSTED ?=
run: image $(if $(HOSTED),$(B)/fluid-hosted)
	@$(PYTHON) tools/fluidvm.py run $(IMAGE) $(if $(HOSTED),--hosted) --mem $(MEM) $(if $(SMP),--smp $(SMP)) \
	  $(if $(CTX),--ctx-size $(CTX))

# ---- bench: Fluid's `bench` next to llama.cpp (node-llama-cpp) on the same file ----
BENCH_P ?= 128
BENCH_N ?= 64
BENCH_R ?= 3
.PHONY: bench
bench: image $(B)/fluid-hosted
	@bash tools/peer-deps.sh
	@$(PYTHON) tools/bench.py $(IMAGE) --model "$(MODEL)" -p $(BENCH_P) -n $(BENCH_N) -r $(BENCH_R) \
	  $(if $(HOSTED),--target hosted) \
	  --mem $(MEM) $(if $(SMP),--smp $(SMP))

# ---- mmbench: the matrix-product modules alone, native, TinyLlama shapes ----
# (tools/mmbench.c; issue 9's roofline figures).  MMBENCH_FLAGS picks the
# build, by default the image's x86-64-v3 one.
MMBENCH_FLAGS ?= -O2 -march=x86-64-v3
MMBENCH_SRC := tools/mmbench.c $(filter modules/mm_%.c,$(MOD_SRC)) modules/quantize.c
$(B)/tools/mmbench: $(MMBENCH_SRC) $(MOD_HDRS) Makefile | deps
	@mkdir -p $(dir $@)
	@$(CC) -std=c11 $(MMBENCH_FLAGS) -ffp-contract=off -Imodules -Ikernel/include $(MMBENCH_SRC) -lpthread -o $@

mmbench: $(B)/tools/mmbench
	@$(B)/tools/mmbench bw -t 1; $(B)/tools/mmbench bw -t $(or $(SMP),2)
	@$(B)/tools/mmbench peak -t $(or $(SMP),2)
	@for t in q4_0 q4_K q8_0; do $(B)/tools/mmbench model $$t -t $(or $(SMP),2); \
	  $(B)/tools/mmbench model $$t -n 128 -t $(or $(SMP),2) -r 3; done

# ---- roofline: per-module cycles, GB/s and GOP/s of decode and prefill ----
roofline: image $(B)/fluid-hosted $(B)/tools/mmbench
	@$(PYTHON) tools/roofline.py $(B)/fluid.img --mmbench $(B)/tools/mmbench --mem $(MEM) $(if $(SMP),--smp $(SMP))

$(DEFAULT_MODEL): | deps
	@bash tools/npm-deps.sh
	$(PYTHON) tools/make_model.py --preset tinyllama --type Q4_0 -o $@

# ---- PGO loop (tools/pgo.py; profiles/README.md, cache/README.md) ----
# pgo-profile boots $(IMAGE) (built first only if missing, or when MODEL=
# names another model), or, with SERIAL=/dev/ttyUSB0 [BAUD=115200], runs
# the workload on a real machine's serial console; pgo-apply writes the
# cache into $(IMAGE), or with DISK=/dev/sdX into a boot disk in place.
PGO_PROMPT ?= Once upon a time, in a small village by the sea,
PGO_N      ?= 32
PGO_ARGS   ?=
SERIAL     ?=
BAUD       ?= 115200
DISK       ?=
.PHONY: pgo-profile pgo-analyze pgo-apply pgo-report
pgo-profile: $(B)/tools/mkimage $(B)/modules.bin $(GEN)/fluid_layout.py $(if $(HOSTED),$(B)/fluid-hosted)
	@$(PYTHON) tools/pgo.py profile --image $(IMAGE) --prompt "$(PGO_PROMPT)" -n $(PGO_N) \
	  --profiles-dir $(PGO_PROFILES) --cache-dir $(PGO_CACHE) \
	  $(if $(HOSTED),--target hosted) $(if $(SERIAL),--serial $(SERIAL) --baud $(BAUD)) \
	  $(if $(filter command line,$(origin MODEL)),--model "$(MODEL)") $(if $(SMP),--smp $(SMP)) --mem $(MEM) $(PGO_ARGS)

pgo-analyze: $(GEN)/fluid_layout.py
	@$(PYTHON) tools/pgo.py analyze --profiles-dir $(PGO_PROFILES) $(PGO_ARGS)

pgo-apply: $(B)/tools/modpack $(GEN)/fluid_layout.py
	@$(PYTHON) tools/pgo.py apply $(if $(DISK),--disk $(DISK),--image $(IMAGE)) \
	  --profiles-dir $(PGO_PROFILES) --cache-dir $(PGO_CACHE) $(PGO_ARGS)

pgo-report: $(GEN)/fluid_layout.py
	@$(PYTHON) tools/pgo.py report --profiles-dir $(PGO_PROFILES) $(PGO_ARGS)

# ---- tests ----
# peer-deps.sh: node-llama-cpp, llama.cpp as the oracle of
# tests/prompt/test_llamacpp_oracle.py (a no-op once installed).
test: image $(B)/fluid-hosted $(GEN)/fluid_layout.py
	@bash tools/npm-deps.sh
	@bash tools/peer-deps.sh
	@bash tools/report-deps.sh
	$(PYTHON) -m pytest -q tests

# ---- fuzzing: the load-path fuzzer's campaign (tests/host/fuzzload.py) ----
# FUZZ_RUNS executions in all over FUZZ_JOBS jobs (nice 19), or FUZZ_SECONDS
# of it; the corpus grows in $(B)/fuzz/corpus, crashes land in
# $(B)/fuzz/artifacts.  make test runs a bounded 20000 (tests/host/test_load_fuzz.py).
FUZZ_RUNS ?= 10000000
FUZZ_JOBS ?= 2
FUZZ_SECONDS ?=
.PHONY: fuzz
fuzz: | deps
	@bash tools/npm-deps.sh
	@$(PYTHON) tests/host/fuzzload.py campaign --runs $(FUZZ_RUNS) --jobs $(FUZZ_JOBS) \
	  $(if $(FUZZ_SECONDS),--seconds $(FUZZ_SECONDS))

clean:
	rm -rf $(B)

FORCE:

-include $(KERNEL_OBJ:.o=.d) $(HOSTED_OBJ:.o=.d)
