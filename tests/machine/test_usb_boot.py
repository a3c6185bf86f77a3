"""What README "Bare metal" says of a USB stick, in QEMU: the firmware
(SeaBIOS) boots Fluid from a USB stick (xHCI, usb-storage) through INT 13h,
but the kernel has no USB mass-storage driver, so it comes up without the
model and says why; with the same image also on a SATA disk (AHCI), it
reads the model from there."""
import shutil

from conftest import ROOT, build_image

# One baseline module per modules/*.c but the run-time support (Makefile MOD_SRC).
N_MODULES = len([p for p in (ROOT / "modules").glob("*.c") if p.name != "modrt.c"])


def test_usb_stick_boots_but_holds_no_model_for_the_kernel(tmp_path, gen_model, vm_factory):
    img = build_image(tmp_path / "usb.img", gen_model("tiny", "Q8_0"))
    vm = vm_factory(img, disk="usb")
    log = vm.text()
    assert "Fluid stage 2: loading kernel" in log and f"modules: {N_MODULES} baseline modules loaded" in log
    assert "disk: none of the 0 disks found (virtio-blk, AHCI) holds the image this kernel booted from" in log
    assert "model: cannot find the boot disk to read the model from" in log
    assert "no model is loaded" in vm.cmd("gen hi")


def test_usb_boot_reads_the_model_from_a_sata_copy(tmp_path, gen_model, vm_factory):
    img = build_image(tmp_path / "usb.img", gen_model("tiny", "Q8_0"))
    sata = tmp_path / "sata.img"
    shutil.copyfile(img, sata)
    vm = vm_factory(img, disk="usb", extra=["-drive", f"file={sata},format=raw,if=none,id=s",
                                            "-device", "ide-hd,drive=s,bus=ide.0"])
    assert "model: tiny-Q8_0-s1.gguf, 4 MiB on ahci" in vm.text()
    assert "generated: 2 tokens" in vm.cmd("gen -n 2 --temp 0 hi", timeout=120)
