# Fluid: build, run and test.  `make run` and `make test` are all a user
# needs; both install missing Debian packages through tools/install-deps.sh.

CC      := clang-19
LD      := ld.lld-19
OBJCOPY := llvm-objcopy-19
PYTHON  := /usr/bin/python3
B       := build

LLVM_LIB   := /usr/lib/llvm-19/lib
LIBC_A     := $(LLVM_LIB)/libllvmlibc.a
BUILTINS_A := $(shell $(CC) --print-file-name=libclang_rt.builtins-x86_64.a 2>/dev/null || true)

# Default model: TinyLlama-shaped, random weights, real vocabulary; made
# once by tools/make_model.py (no download).  Override with MODEL=path.
DEFAULT_MODEL := models/tinyllama-shaped-Q4_0.gguf
MODEL ?= $(DEFAULT_MODEL)
MEM   ?= 3G
SMP   ?=

WARN := -Wall -Wextra -Werror
# The linux-gnu target gives the stack protector's %fs:0x28 canary (the
# llvm-libc convention); -ffreestanding -nostdinc keep Linux out of it.
KCFLAGS := --target=x86_64-linux-gnu -std=c11 -ffreestanding -nostdinc \
  -isystem $(shell $(CC) -print-resource-dir 2>/dev/null)/include \
  -Ikernel/include/libc -Ikernel/include -Ikernel -Imodules \
  -march=x86-64 -mno-red-zone -mcmodel=small -fno-pic -fno-pie -static \
  -fstack-protector-strong \
  -fno-omit-frame-pointer -O2 -g $(WARN) -MMD -MP

# Compute kernels (modules/) are linked in as the built-in baseline;
# modrt.c is the modules' own runtime and stays out.
KERNEL_SRC := $(shell find kernel -name '*.c' | sort) \
  $(filter-out modules/modrt.c,$(wildcard modules/*.c))
KERNEL_ASM := $(shell find kernel -name '*.S' | sort)
KERNEL_OBJ := $(patsubst %,$(B)/%.o,$(KERNEL_SRC) $(KERNEL_ASM))

$(B)/modules/%.c.o: modules/%.c Makefile | deps
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(KCFLAGS) -c $< -o $@

.PHONY: all image run test deps clean help
all: image

help:
	@echo "make run [MODEL=file.gguf] [MEM=3G] [SMP=n]   build and boot Fluid in QEMU"
	@echo "make image [MODEL=...]                         build $(B)/fluid.img only"
	@echo "make test                                      run the whole test suite"

deps:
	@bash tools/install-deps.sh

# ---- bootloader ----
$(B)/bootloader/stage1.bin: bootloader/stage1.S bootloader/stage1.ld bootloader/layout.inc | deps
	@mkdir -p $(dir $@)
	$(CC) --target=i386-elf -c $< -o $(B)/bootloader/stage1.o
	$(LD) -m elf_i386 -T bootloader/stage1.ld $(B)/bootloader/stage1.o -o $(B)/bootloader/stage1.elf
	$(OBJCOPY) -O binary $(B)/bootloader/stage1.elf $@

S2CFLAGS := --target=i386-elf -march=i686 -ffreestanding -fno-pic -mno-sse -mno-mmx \
  -O2 -std=c11 $(WARN) -Ikernel/include
$(B)/bootloader/stage2.bin: bootloader/stage2.S bootloader/stage2_main.c bootloader/stage2.ld \
    bootloader/layout.inc kernel/include/fluid/image.h kernel/include/fluid/bootinfo.h \
    kernel/include/fluid/crc32.h | deps
	@mkdir -p $(dir $@)
	$(CC) $(S2CFLAGS) -c bootloader/stage2.S -o $(B)/bootloader/stage2_s.o
	$(CC) $(S2CFLAGS) -c bootloader/stage2_main.c -o $(B)/bootloader/stage2_c.o
	$(LD) -m elf_i386 -T bootloader/stage2.ld $(B)/bootloader/stage2_s.o $(B)/bootloader/stage2_c.o -o $(B)/bootloader/stage2.elf
	$(OBJCOPY) -O binary $(B)/bootloader/stage2.elf $@

# ---- kernel ----
$(B)/kernel/%.c.o: kernel/%.c Makefile | deps
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(KCFLAGS) -c $< -o $@

$(B)/kernel/%.S.o: kernel/%.S Makefile | deps
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(KCFLAGS) -c $< -o $@

$(B)/kernel.elf: $(KERNEL_OBJ) kernel/kernel.ld
	@echo "  LD      $@"
	@$(LD) -T kernel/kernel.ld -nostdlib --gc-sections -o $@ $(KERNEL_OBJ) $(LIBC_A) $(BUILTINS_A)

$(B)/kernel.bin: $(B)/kernel.elf
	$(OBJCOPY) -O binary $< $@

# ---- host tools ----
$(B)/tools/mkimage: tools/mkimage.c kernel/include/fluid/image.h kernel/include/fluid/crc32.h | deps
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 $(WARN) -Ikernel/include -o $@ $<

# ---- image ----
IMAGE_DEPS := $(B)/tools/mkimage $(B)/bootloader/stage1.bin $(B)/bootloader/stage2.bin $(B)/kernel.bin
MODEL_FILE := $(if $(MODEL),$(MODEL),)

$(B)/fluid.img: $(IMAGE_DEPS) $(MODEL_FILE) FORCE
	@$(B)/tools/mkimage -o $@.tmp --stage1 $(B)/bootloader/stage1.bin --stage2 $(B)/bootloader/stage2.bin \
	  --kernel $(B)/kernel.bin --model "$(MODEL_FILE)"
	@mv $@.tmp $@
	@echo "image: $@ (model: $(if $(MODEL_FILE),$(MODEL_FILE),none))"

image: $(B)/fluid.img

run: image
	@$(PYTHON) tools/fluidvm.py run $(B)/fluid.img --mem $(MEM) $(if $(SMP),--smp $(SMP))

$(DEFAULT_MODEL): | deps
	@bash tools/npm-deps.sh
	$(PYTHON) tools/make_model.py --preset tinyllama --type Q4_0 -o $@

# ---- tests ----
test: image
	@bash tools/npm-deps.sh
	$(PYTHON) -m pytest -q tests

clean:
	rm -rf $(B)

FORCE:

-include $(KERNEL_OBJ:.o=.d)
