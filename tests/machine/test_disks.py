"""The model region read through each disk driver (issue 5): the same image
attached as virtio-blk (i440fx) and as a SATA disk on q35's AHCI controller
gives the same logits; load speeds are reported."""
import json
import re

from conftest import build_image, report_figure


def test_ahci_and_virtio_read_the_same_model(tmp_path, gen_model, vm_factory):
    img = build_image(tmp_path / "a.img", gen_model("mini", "Q4_0"))
    outs = {}
    for disk in ("virtio", "ahci"):
        vm = vm_factory(img, disk=disk)
        log = vm.text()
        m = re.search(r"model: .* on (\S+)", log)
        assert m and m.group(1) == ("virtio-blk" if disk == "virtio" else "ahci"), log[-1500:]
        speed = re.search(r"loaded ([0-9.]+) MiB in ([0-9.]+) s \((\d+) MB/s\)", log)
        report_figure(f"{disk}: loaded {speed.group(1)} MiB at {speed.group(3)} MB/s (TCG)")
        out = vm.cmd("eval --top 5 1 450 4996 17354 1701 29916", timeout=300)
        outs[disk] = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
        vm.close()
    assert len(outs["virtio"]) == 6 and outs["virtio"] == outs["ahci"]
