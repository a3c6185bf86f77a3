#!/usr/bin/python3
"""Fluid's profile-guided module loop: profile -> analyze -> apply -> report.

    pgo.py profile [--image build/fluid.img] [--model M.gguf] [--prompt TEXT] [-n N]
    pgo.py profile --serial DEV [--baud 115200] [--export-only | --wait] [--poweroff]
    pgo.py profile --log FILE
    pgo.py analyze [--profile P.json ...] [--profiles-dir profiles]
    pgo.py apply   [--plan P.plan.json] [--image build/fluid.img | --disk /dev/sdX] [--cache-dir cache]
    pgo.py report  [--profile P.json ...] [--before P.json --after P.json] [-o report.html]
    pgo.py cache-info [--image build/fluid.img | --disk /dev/sdX]
    pgo.py carry --into NEW.img [--from OLD.img] [--cache-dir cache] [--model M.gguf]

profile  runs a fixed workload at the prompt: `prof reset`, `gen --temp 0
         -n N PROMPT` (greedy, so repeatable), `prof export`, and saves the
         JSON the kernel prints between its marker lines as
         profiles/<model-id>/<cpu-tag>/<timestamp>.json with a `latest`
         link beside it (pgo_capture.py).  Where it runs:
           --image (default): boots the image headless (QEMU, test mode, or
             --target hosted), then powers it off;
           --serial DEV: a real machine at its prompt, through its COM1 on a
             host tty (opened raw at --baud, 8N1); --export-only sends just
             `prof export` (a profile of what the machine ran since its last
             `prof reset`), --wait sends nothing and waits for someone to
             type `prof export` at the machine; --poweroff ends it after;
           --log FILE: the last export in a captured console log.
analyze  reads the latest profile (or merges several: calls and cycles are
         summed per op) and classifies each module by its share of the total
         module cycles:
             ultra-hot  >= 25 %   -> -O3
             hot        >=  5 %   -> -O2
             warm       >= 0.5 %  -> -O1
             cold       <  0.5 %  -> baseline (not rebuilt)
         never below what the image's per-ISA build runs for this CPU
         (-O2): the very build the image runs (same tag, no shape
         constants to add) is left alone (decision "image"), a lower
         level is raised to it (also when the image's build is for a
         smaller tag, e.g. v4+vnni on a v4+vnni+bf16 CPU)
         all at the -march tag derived from the PROFILED machine's CPUID
         feature list in the profile (never the build host's).  Modules whose
         source uses FLUID_SHAPE_* constants get the model's shapes as
         compile-time constants.  Feedback: when an earlier profile of the
         same model and CPU tag measured that exact variant (-O level, tag)
         at more than 1.05x the baseline's cycles per call (best run of
         each: the minimum over profiles), the same -O
         level for the portable tag (x86-64) is chosen instead, and when that
         was measured slower too, the module stays at baseline
         (--no-feedback turns this off).  Writes
         <profile>.plan.json next to the profile and prints the decision
         table.
apply    compiles each planned module with its flags (the Makefile's
         MOD_CFLAGS/MOD_LDFLAGS, read with `make -s modflags`) into
         cache/<cpu-tag>/, writes cache/<cpu-tag>/registry.json, and writes
         the cache region of an image file (--image) or of a boot disk
         (--disk: a block device holding a dd'ed image, or a file) in place:
         the new generation goes into the slot that does not hold the newest
         valid generation, the commit record (trailer) last, after an fsync,
         so an interrupted apply leaves the previous generation in force.
         Refused before anything is built or written: a medium without a
         valid Fluid image header, shorter than its header says, whose model
         is not the plan's (--other-model allows it), or whose kernel uses
         another module ABI.  Modules of other tags in the current slot are
         kept, and so are the kernel's tuned choices (`tune` at the prompt)
         but those for ops a module of this apply serves.  Nothing outside
         the cache region is touched.  Running it
         again with the same plan writes nothing.
report   writes an HTML page (pgo_report.py): every loop generation of the
         latest model/tag (or the profiles given), per-module cycles per
         token, prefill/decode tok/s, which variant ran, before and after.
carry    fills a freshly built image's cache region from the image it
         replaces or from cache/ (pgo_carry.py; the Makefile's image rule
         runs it) and prints one line: what was kept, or why not.

Formats: profiles/README.md (profile JSON, plan) and cache/README.md (cache
region); C definitions in modules/module_abi.h.  Python 3 (Debian's
/usr/bin/python3) and its standard library; report uses python3-matplotlib.
"""
import argparse
import datetime
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))


def log(msg):
    print(f"pgo: {msg}", flush=True)


def die(msg):
    print(f"pgo: error: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


try:
    import pgo_image
except ImportError as e:            # build/gen/fluid_layout.py missing or stale: say how to fix it
    if __name__ == "__main__":
        die(str(e))
    raise
from pgo_image import (CACHE_SLOT_BYTES, MOD_HEADER_BYTES, REGION_CACHE, REGION_MODEL, WRITER, ImageError,  # noqa: F401
                       L, Medium, build_slot, model_crc, model_id_crc, parse_module, parse_slot, read_image_header)
from pgo_cputag import cpufeat, march_flags, tag_features, tag_from_features  # noqa: F401
from pgo_modbuild import build_module, modflags, source_sha256  # noqa: F401
from pgo_report import ReportError, per_token, write_report  # noqa: F401
import pgo_capture
from pgo_capture import ProfileError
import pgo_carry

PLAN_SCHEMA = "fluid-pgo-plan"

# Share-of-cycles thresholds (fractions of all module cycles), highest first.
THRESHOLDS = [("ultra-hot", 0.25, 3), ("hot", 0.05, 2), ("warm", 0.005, 1)]


# ---- profile ----

def build_image(image, model, cache_dir):
    """(Re)build `image` with `model` by the Makefile's image rule, which
    carries the cache over (or says why not)."""
    subprocess.run(["make", "-s", "--no-print-directory", "-C", str(ROOT), "image",
                    f"IMAGE={Path(image).resolve()}", f"MODEL={Path(model).resolve()}",
                    f"PGO_CACHE={Path(cache_dir).resolve()}"], check=True)


def profile_image(a):
    """The workload on an image booted headless: (profile, capture)."""
    from fluidvm import boot, kvm_usable
    image = Path(a.image)
    if a.model and pgo_carry.image_model_differs(image, a.model):
        log(f"building {image} with model {a.model}")
        build_image(image, a.model, a.cache_dir)
    if not image.exists():
        die(f"{image} does not exist (run `make image MODEL=...` first)")
    extra = {}
    if a.target == "hosted":
        accel = "native"
        log(f"running {image} hosted (native, {a.mem}, {a.smp or os.cpu_count()} threads"
            f"{', as CPU ' + a.cpu if a.cpu else ''})")
        if a.cpu:
            extra["extra"] = ["--cpu", a.cpu]
    else:
        if a.cpu:
            die("--cpu is for --target hosted (QEMU's -cpu chooses the guest's)")
        accel = a.accel or ("kvm" if kvm_usable() else "tcg")
        log(f"booting {image} headless ({accel}, {a.mem}, {a.smp or os.cpu_count()} cpus)")
    vm = boot(image, target=a.target, mem=a.mem, smp=a.smp, accel=accel, boot_timeout=a.timeout, **extra)
    try:
        for line in vm.text().splitlines():
            if line.startswith(("cache:", "modules:", "model: '")):
                log("  " + line.strip())
        prof, out = pgo_capture.run_workload(vm, a.prompt, a.n, a.warmup, a.timeout, echo=not a.quiet, log=log)
        vm.send("poweroff\r")
        vm.wait_exit(30)
    finally:
        vm.close()
    return prof, dict(source=a.target, image=str(image), accel=accel, prompt=a.prompt, n_predict=a.n, output=out)


def profile_serial(a):
    """The workload (or just the export) on a machine's serial console."""
    con = pgo_capture.SerialConsole(a.serial, a.baud)
    cap = dict(source="serial", image=f"{a.serial} at {a.baud} baud", accel="bare-metal", prompt=None,
               n_predict=None, output=None)
    try:
        if a.wait:
            log(f"waiting for `prof export` on {a.serial} (type it at the machine's prompt; "
                f"{a.timeout:.0f} s at most)")
            return pgo_capture.wait_export(con, a.timeout), cap
        log(f"waiting for the prompt on {a.serial} ({a.baud} baud)")
        con.sync(a.prompt_timeout)
        if a.export_only:
            log("exporting the profile")
            prof = pgo_capture.export(con)
        else:
            prof, out = pgo_capture.run_workload(con, a.prompt, a.n, a.warmup, a.timeout, echo=not a.quiet,
                                                 log=log)
            cap.update(prompt=a.prompt, n_predict=a.n, output=out)
        if a.poweroff:
            con.send("poweroff\r")
        return prof, cap
    finally:
        con.close()


def profile_log(a):
    try:
        text = Path(a.log).read_bytes().decode("utf-8", "replace")
    except OSError as e:
        die(f"{a.log}: {e.strerror}")
    prof = pgo_capture.extract_profile(text, a.log)
    command, out = pgo_capture.last_gen_output(text)
    return prof, dict(source="log", image=str(a.log), accel="bare-metal", prompt=None, n_predict=None,
                      command=command, output=out)


def cmd_profile(a):
    from fluidvm import BootError
    if a.serial and a.log:
        die("--serial and --log are two sources: give one")
    try:
        prof, cap = profile_log(a) if a.log else profile_serial(a) if a.serial else profile_image(a)
    except (ProfileError, BootError) as e:
        die(str(e))
    cap["tool"] = WRITER
    path = pgo_capture.save_profile(prof, cap, a.profiles_dir)
    w = prof["workload"]
    log(f"saved {path} (latest -> {path.name})")
    log(f"prefill {w['prefill_tok_s']:.2f} tok/s, decode {w['decode_tok_s']:.2f} tok/s, "
        f"{prof['total_cycles'] / max(1, w['prompt_tokens'] + w['generated_tokens']):.0f} module cycles/token; "
        f"cache generation {prof.get('cache', {}).get('generation', 0)}")
    print(path)
    return path


# ---- analyze ----

def latest_profile(profiles_dir):
    links = [p for p in Path(profiles_dir).glob("*/*/latest") if p.exists()]
    if not links:
        die(f"no profile under {profiles_dir}/ (run `make pgo-profile` first)")
    return max(links, key=lambda p: p.resolve().stat().st_mtime).resolve()


def merge_profiles(paths):
    profs = [json.loads(Path(p).read_text()) for p in paths]
    base = profs[0]
    for p in profs[1:]:
        if p["cpu"]["tag"] != base["cpu"]["tag"] or (p.get("model") or {}).get("id") != (base.get("model") or {}).get("id"):
            die("cannot merge profiles of different CPUs tags or models")
    ops = {}
    for p in profs:
        for m in p["modules"]:
            o = ops.setdefault(m["op"], dict(op=m["op"], module=m["module"], calls=0, cycles=0,
                                             ran=(m.get("variant"), m.get("opt_level", 1), m.get("march"))))
            o["calls"] += m["calls"]
            o["cycles"] += m["cycles"]
    return base, list(ops.values()), profs


def module_sources():
    return {p.stem: p for p in (ROOT / "modules").glob("*.c") if p.stem != "modrt"}


def declared_shapes(src):
    """Shape constants a module source declares it can use (FLUID_SHAPE_<NAME>)."""
    known = {name.upper(): name for name in L.SHAPES.values()}
    used = set(re.findall(r"FLUID_SHAPE_([A-Z_]+)\b", Path(src).read_text()))
    return sorted(known[u] for u in used if u in known)


REGRESSION_MARGIN = 1.05   # a cached variant measured > 5 % slower per call than the baseline is dropped


def variant_history(paths):
    """{(module, variant, opt_level, march): best cycles per call} over
    profiles: per profile, the module's cycles / calls; over profiles, the
    minimum (the run least disturbed by anything else on the host)."""
    hist = {}
    for p in paths:
        try:
            prof = json.loads(Path(p).read_text())
        except (OSError, ValueError):
            continue
        per = {}
        for o in prof.get("modules", []):
            if not o.get("calls"):
                continue
            k = (o.get("module"), o.get("variant", "baseline"), o.get("opt_level", 1), o.get("march", "x86-64"))
            h = per.setdefault(k, [0, 0])
            h[0] += o["cycles"]
            h[1] += o["calls"]
        for k, (cyc, calls) in per.items():
            cpc = cyc / calls
            hist[k] = min(hist.get(k, cpc), cpc)
    return hist


def classify(share, calls):
    if calls == 0:
        return "cold", 0, "never called"
    for name, thr, opt in THRESHOLDS:
        if share >= thr:
            return name, opt, f"{share * 100:.1f}% of cycles >= {thr * 100:g}%"
    return "cold", 0, f"{share * 100:.2f}% of cycles < {THRESHOLDS[-1][1] * 100:g}%"


def cmd_analyze(a):
    paths = [Path(p) for p in a.profile] if a.profile else [latest_profile(a.profiles_dir)]
    prof, ops, profs = merge_profiles(paths)
    features = prof["cpu"]["features"]
    tag = tag_from_features(features)
    if tag != prof["cpu"]["tag"]:
        log(f"note: the kernel reported tag {prof['cpu']['tag']}, the feature list gives {tag}; using {tag}")
    model = prof.get("model") or {}
    shapes = model.get("shapes", {})
    total = sum(o["cycles"] for o in ops) or 1
    by_mod = {}
    for o in ops:
        m = by_mod.setdefault(o["module"] or "?", dict(calls=0, cycles=0, ops=[]))
        m["calls"] += o["calls"]
        m["cycles"] += o["cycles"]
        m["ops"].append(o["op"])
    sources = module_sources()
    # Feedback from earlier runs of this model on this CPU tag: a variant
    # that was measured slower than the baseline is not built again.
    history_paths = sorted(set(paths) | {p for p in paths[-1].parent.glob("*.json")
                                         if not p.name.endswith(".plan.json")})
    hist = variant_history(history_paths)
    plan_mods = []
    for name, m in sorted(by_mod.items(), key=lambda kv: -kv[1]["cycles"]):
        share = m["cycles"] / total
        cls, opt, reason = classify(share, m["calls"])
        entry = dict(module=name, ops=m["ops"], calls=m["calls"], cycles=m["cycles"], share=round(share, 6),
                     cycles_per_call=m["cycles"] // m["calls"] if m["calls"] else 0, class_=cls,
                     decision="baseline" if opt == 0 else f"-O{opt}", opt_level=opt, reason=reason)
        if name not in sources:
            entry.update(decision="baseline", opt_level=0, reason="no source in modules/")
        entry["march"] = tag
        base_h = hist.get((name, "baseline", 1, "x86-64"))
        if opt and name in sources and base_h and not a.no_feedback:
            # Candidates: the CPU's tag, then the portable tag at the same -O
            # (-O1 x86-64 is the baseline itself).  A candidate measured
            # > REGRESSION_MARGIN x the baseline's cycles per call is skipped.
            cands = [(opt, tag)] + ([(opt, "x86-64")] if tag != "x86-64" and opt > 1 else [])
            notes, chosen = [], None
            for o, t in cands:
                h = hist.get((name, "cache", o, t))
                if h:
                    ratio = h / max(1e-9, base_h)
                    notes.append(f"-O{o} {t} was measured at {ratio:.2f}x the baseline's cycles per call")
                    if ratio > REGRESSION_MARGIN:
                        continue
                    entry["measured_ratio"] = round(ratio, 4)
                chosen = (o, t)
                break
            if chosen is None:
                entry.update(decision="baseline", opt_level=0, march="x86-64",
                             reason=f"{reason}, but {'; '.join(notes)}: kept at baseline")
            else:
                entry.update(decision=f"-O{chosen[0]}", opt_level=chosen[0], march=chosen[1])
                if notes:
                    entry["reason"] += "; " + "; ".join(notes)
        if opt and name in sources:
            want = declared_shapes(sources[name])
            sh = {s: shapes[s] for s in want if s in shapes}
            if sh and not a.no_shapes:
                entry["shapes"] = sh
                entry["reason"] += "; shapes " + ", ".join(f"{k}={v}" for k, v in sh.items())
        # Never below what the image already runs for this CPU (its per-ISA
        # -O2 builds): a lower -O level is raised to it, and the same build
        # without shape constants to add is not rebuilt at all.
        # The image's build may be for a smaller tag than the CPU's (no
        # +bf16 build): a lower -O level is raised all the same.
        ran = next((o["ran"] for o in ops if o["module"] == name and o.get("ran")), (None, 0, None))
        if entry["opt_level"] and ran[0] == "image" and entry["opt_level"] <= ran[1]:
            if ran[2] == entry["march"] and not entry.get("shapes"):
                entry.update(decision="image", opt_level=0,
                             reason=f"{entry['reason']}; the image already runs -O{ran[1]} {ran[2]}: not rebuilt")
            elif entry["opt_level"] < ran[1]:
                entry.update(decision=f"-O{ran[1]}", opt_level=ran[1])
                entry["reason"] += f"; raised to -O{ran[1]}, what the image runs ({ran[2]})"
        entry["class"] = entry.pop("class_")
        plan_mods.append(entry)
    plan = dict(schema=PLAN_SCHEMA, schema_version=1, created=datetime.datetime.now(datetime.timezone.utc)
                .isoformat(timespec="seconds"), profiles=[str(p) for p in paths], model_id=model.get("id", "none"),
                kernel=prof.get("kernel"), tag=tag, march_flags=march_flags(tag), features=sorted(tag_features(tag)),
                thresholds={n: t for n, t, _ in THRESHOLDS}, total_cycles=total, modules=plan_mods)
    out = Path(a.out) if a.out else paths[-1].with_suffix(".plan.json")
    out.write_text(json.dumps(plan, indent=1) + "\n")
    latest = out.parent / "latest.plan"
    tmp = out.parent / ".latest.plan.tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(out.name)
    os.replace(tmp, latest)
    print(f"profile: {', '.join(map(str, paths))}")
    print(f"model {plan['model_id']}, CPU tag {tag} (from the profiled CPU's CPUID), "
          f"{total} module cycles")
    print(f"{'module':<12} {'share':>7} {'calls':>9} {'cyc/call':>11}  {'decision':<22} reason")
    for e in plan_mods:
        dec = e["decision"] if e["opt_level"] == 0 else f"{e['decision']} {e['march']}"
        print(f"{e['module']:<12} {e['share'] * 100:6.2f}% {e['calls']:>9} {e['cycles_per_call']:>11}  "
              f"{dec:<22} {e['class']}: {e['reason']}")
    print(f"plan: {out}")
    return out


# ---- apply ----

def latest_plan(profiles_dir):
    links = [p for p in Path(profiles_dir).glob("*/*/latest.plan") if p.exists()]
    if not links:
        die(f"no plan under {profiles_dir}/ (run `make pgo-analyze` first)")
    return max(links, key=lambda p: p.resolve().stat().st_mtime).resolve()


def open_target(a, plan):
    """The image file or boot disk to write, opened and checked against the
    plan (see `apply` above); dies saying why it is refused."""
    kind, path = ("disk", a.disk) if a.disk else ("image", a.image)
    if kind == "image" and not Path(path).exists():
        die(f"{path} does not exist (run `make image` first)")
    try:
        m = Medium(path, kind, write=True)
    except ImageError as e:
        die(f"refusing {path}: {e}")
    crc, want = model_crc(m.header), model_id_crc(plan["model_id"])
    if crc != want and not a.other_model:
        m.close()
        have = f"model {m.header['model_name']} (CRC {crc})" if crc else "no model"
        die(f"refusing {path}: the {kind} holds {have}, the plan is for {plan['model_id']}; profile this "
            "model first (or --other-model)")
    abi = m.module_abi()
    if abi is not None and abi != L.FLUID_MOD_ABI_VERSION:
        m.close()
        die(f"refusing {path}: its kernel loads module ABI {abi}, this tree builds ABI {L.FLUID_MOD_ABI_VERSION}; "
            f"write the current build/fluid.img to the {kind} first")
    r = m.header["regions"][pgo_image.REGION_KERNEL]
    kid = f"kernel-{r['crc32']:08x}-{r['bytes']}"
    profiled = (plan.get("kernel") or {}).get("build_id")
    if profiled and profiled != kid:
        log(f"note: the {kind}'s kernel ({kid}) is not the profiled one ({profiled}); the modules fit it "
            "(same module ABI), the plan's figures came from the other")
    return m


def cmd_apply(a):
    plan_path = Path(a.plan) if a.plan else latest_plan(a.profiles_dir)
    plan = json.loads(plan_path.read_text())
    if plan.get("schema") != PLAN_SCHEMA:
        die(f"{plan_path} is not a PGO plan")
    tag = a.tag or plan["tag"]
    reg_tag = a.register_as or tag
    medium = open_target(a, plan)
    try:
        apply_to(a, plan, plan_path, tag, reg_tag, medium)
    finally:
        medium.close()


def apply_to(a, plan, plan_path, tag, reg_tag, medium):
    if not (ROOT / "build/tools/modpack").exists():
        subprocess.run(["make", "-s", "-C", str(ROOT), "build/tools/modpack"], check=True)
    mf = modflags()
    log(f"plan {plan_path} (model {plan['model_id']}), tag {tag}" +
        (f", registered as {reg_tag}" if reg_tag != tag else ""))
    outdir = Path(a.cache_dir) / reg_tag
    if outdir.exists():
        for old in outdir.glob("*.fmod"):
            old.unlink()
    built = []
    todo = [m for m in plan["modules"] if m["opt_level"] > 0]
    for i, m in enumerate(todo, 1):
        shapes = {} if a.no_shapes else m.get("shapes", {})
        mtag = a.tag or m.get("march", tag)     # the plan may pick the portable tag for a module
        log(f"[{i}/{len(todo)}] {m['module']}: -O{m['opt_level']} {' '.join(march_flags(mtag))}"
            + (" " + " ".join(f"{k}={v}" for k, v in shapes.items()) if shapes else ""))
        data = build_module(m["module"], m["opt_level"], mtag, shapes, outdir, mf)
        info = parse_module(data)
        built.append(dict(tag=reg_tag, name=m["module"], file=data, opt=info["opt"], flags=info["flags"],
                          sha=info["sha256"].hex(), shapes=shapes, march=mtag,
                          source=source_sha256(m["module"], mf)))

    slots = medium.slots
    cur = medium.newest()
    keep = []
    if cur is not None:
        for e in slots[cur]["info"]["entries"]:
            if e["tag"] != reg_tag:
                try:
                    parse_module(e["file"])
                except ValueError as err:
                    log(f"dropping damaged cached module {e['tag']}/{e['name']}: {err}")
                    continue
                keep.append(dict(tag=e["tag"], name=e["name"], file=e["file"], opt=e["opt"], flags=e["flags"]))
    entries = keep + built
    cur_gen = slots[cur]["info"]["generation"] if cur is not None else 0
    choices, choice_meta = carried_choices(slots[cur]["info"] if cur is not None else None, built)
    same = cur is not None and slots[cur]["info"]["model_id"] == plan["model_id"] and \
        sorted((e["tag"], e["file"]) for e in slots[cur]["info"]["entries"]) == \
        sorted((e["tag"], e["file"]) for e in entries) and choices == slots[cur]["info"]["choices"]
    gen = cur_gen if same else cur_gen + 1
    registry = dict(tag=reg_tag, model_id=plan["model_id"], plan=str(plan_path), generation=gen,
                    module_abi=L.FLUID_MOD_ABI_VERSION,
                    modules=[dict(name=b["name"], opt_level=b["opt"], march=b["march"],
                                  march_flags=march_flags(b["march"]), sha256=b["sha"], shapes=b["shapes"],
                                  source_sha256=b["source"], file=f"{b['name']}.fmod") for b in built])
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / "registry.json").write_text(json.dumps(registry, indent=1) + "\n")
    log(f"{len(built)} modules in {outdir}/ (registry.json)")
    if same and a.stop_after is None:
        log(f"cache up to date: generation {cur_gen} in slot {cur} already holds these modules; nothing written")
        return
    target = 1 - cur if cur is not None else 0
    try:
        slot = build_slot(gen, entries, plan["model_id"], choices, choice_meta)
    except ImageError as e:
        die(str(e))
    if a.stop_after is not None:
        # A fraction of the slot, a byte count, or (negative) all but that many bytes from its end.
        n = int(len(slot) + a.stop_after) if a.stop_after < 0 else \
            int(a.stop_after * len(slot)) if a.stop_after <= 1 else int(a.stop_after)
        log(f"SIMULATED CRASH: writing only {n} of {len(slot)} bytes of generation {gen} to slot {target}")
        medium.write_slot(target, slot, stop_after=n)
        return
    medium.write_slot(target, slot)
    tags = sorted({e["tag"] for e in entries})
    log(f"wrote generation {gen} to slot {target} of {medium.path}: {len(entries)} modules, tags {' '.join(tags)} "
        f"({len(slot)} bytes); slot {1 - target} keeps generation {cur_gen or 'none'}")


def carried_choices(info, built):
    """The tuned choices (kernel `tune`) of the newest slot (info) that a
    new generation keeps: all but those for ops a module of this apply
    (built: [dict(file)]) serves - the plan asked for that module; `tune`
    compares them again.  Returns (choices, choice_meta)."""
    if not info or not info.get("choices"):
        if info and info.get("choices_error"):
            log(f"tuned choices of generation {info['generation']} dropped: {info['choices_error']}")
        return [], None
    served = {op for b in built for op, _ in parse_module(b["file"])["entries"]}
    keep = [c for c in info["choices"] if c["op"] not in served]
    for c in info["choices"]:
        if c["op"] in served:
            log(f"tuned choice for {c['op_name']} ({c['march']} -O{c['opt']}) dropped: this apply builds a new "
                f"module for it (run `tune` at the prompt to compare them)")
    if keep:
        log(f"{len(keep)} tuned choices (measured on {info['choice_meta']['choice_tag']}) carried over")
    return keep, info["choice_meta"]


def cmd_cache_info(a):
    path, kind = (a.disk, "disk") if a.disk else (a.image, "image")
    try:
        m = Medium(path, kind)
    except ImageError as e:
        die(str(e))
    with m:
        cur = m.newest()
        print(f"cache region: sector {m.region['lba']}, {m.region['sectors']} sectors")
        for i, s in enumerate(m.slots):
            if s["state"] == "valid":
                inf = s["info"]
                tags = sorted({e["tag"] for e in inf["entries"]})
                print(f"slot {i}: valid, generation {inf['generation']}, {len(inf['entries'])} modules, "
                      f"tags {' '.join(tags) or '(none)'}, model {inf['model_id']}{'  [newest]' if i == cur else ''}")
                for e in inf["entries"]:
                    print(f"    {e['tag']:<18} {e['name']:<12} -O{e['opt']} sha256 {e['sha256'].hex()[:16]}")
                if inf["choices_error"]:
                    print(f"    tuned choices: ignored: {inf['choices_error']}")
                elif inf["choices"]:
                    m = inf["choice_meta"]
                    print(f"    tuned choices: {len(inf['choices'])}, measured on {m['choice_tag']} "
                          f"({m['choice_cpu']}), model {m['choice_model_id']}")
                    for c in inf["choices"]:
                        name = c["op_name"] + (" decode" if c["phase"] == L.FLUID_CHOICE_DECODE else "")
                        print(f"    tuned {name:<14} {c['module']:<12} {c['march']:<16} -O{c['opt']} "
                              f"sha256 {c['sha256'].hex()[:16]} {c['cycles']} cycles (default {c['default_cycles']})")
            else:
                print(f"slot {i}: {s['state']}: {s['why']}")


def cmd_carry(a):
    try:
        print(pgo_carry.carry(a.into, old=a.from_, cache_dir=a.cache_dir, model=a.model or None), flush=True)
    except ImageError as e:
        die(str(e))


# ---- report ----

def cmd_report(a):
    if a.profile:
        paths = [Path(p) for p in a.profile]
    elif a.before or a.after:
        if not (a.before and a.after):
            die("--before and --after go together")
        paths = [Path(a.before), Path(a.after)]
    else:
        latest = latest_profile(a.profiles_dir)
        paths = sorted((p for p in latest.parent.glob("*.json") if not p.name.endswith(".plan.json")),
                       key=lambda p: p.stat().st_mtime)
    out = Path(a.out) if a.out else paths[-1].parent / "report.html"
    try:
        rep = write_report(paths, out)
    except ReportError as e:
        die(str(e))
    for g in rep["generations"]:
        log(f"{g['label']}: {g['runs']} run(s), prefill {g['prefill']:.2f} tok/s, decode {g['decode']:.2f} tok/s, "
            f"{g['module_cpt']:.0f} module cycles/token")
    log(f"report: {out} (open it in a browser: xdg-open {out})")
    print(out)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("profile", help="run the workload (or read an export) and save the profile")
    p.add_argument("--image", default=str(ROOT / "build/fluid.img"))
    p.add_argument("--model", help="GGUF file; the image is (re)built with it when it differs")
    p.add_argument("--serial", metavar="DEV", help="a real machine's COM1 on this host tty (bare metal)")
    p.add_argument("--baud", type=int, default=115200, help="serial line speed (default 115200, the kernel's)")
    p.add_argument("--log", metavar="FILE", help="a captured console log holding a `prof export`")
    p.add_argument("--export-only", action="store_true", help="--serial: send only `prof export`")
    p.add_argument("--wait", action="store_true", help="--serial: send nothing, wait for the user's `prof export`")
    p.add_argument("--poweroff", action="store_true", help="--serial: send `poweroff` after the export")
    p.add_argument("--prompt-timeout", type=float, default=120, help="--serial: seconds to wait for the prompt")
    p.add_argument("--prompt", default="Once upon a time, in a small village by the sea,")
    p.add_argument("-n", type=int, default=32, help="decode tokens (default 32)")
    p.add_argument("--warmup", type=int, default=0, help="tokens generated before the counters are cleared")
    p.add_argument("--profiles-dir", default=str(ROOT / "profiles"))
    p.add_argument("--cache-dir", default=str(ROOT / "cache"), help="carried into a rebuilt image")
    p.add_argument("--mem", default="3G")
    p.add_argument("--smp", type=int)
    p.add_argument("--accel", choices=["kvm", "tcg"])
    p.add_argument("--target", choices=["qemu", "hosted"], default="qemu",
                   help="qemu: the unikernel; hosted: build/fluid-hosted at native speed (make HOSTED=1)")
    p.add_argument("--cpu", metavar="TAG", help="hosted: profile as a CPU with only TAG's instruction sets "
                   "(fluid-hosted --cpu), e.g. for a machine with a smaller CPU than this one")
    p.add_argument("--timeout", type=float, default=1800)
    p.add_argument("--quiet", action="store_true", help="do not echo the generated text")
    p = sub.add_parser("analyze", help="classify modules and write a plan")
    p.add_argument("--profile", action="append", help="profile JSON (repeat to merge); default: the latest")
    p.add_argument("--profiles-dir", default=str(ROOT / "profiles"))
    p.add_argument("--out", help="plan path (default: next to the profile)")
    p.add_argument("--no-shapes", action="store_true", help="do not offer model shapes as constants")
    p.add_argument("--no-feedback", action="store_true",
                   help="ignore earlier profiles' measurements of cached variants")
    p = sub.add_parser("apply", help="build the planned modules and write the cache region of an image or disk")
    p.add_argument("--plan", help="plan JSON (default: the latest)")
    p.add_argument("--profiles-dir", default=str(ROOT / "profiles"))
    p.add_argument("--image", default=str(ROOT / "build/fluid.img"))
    p.add_argument("--disk", metavar="DEV", help="a boot disk holding a Fluid image (instead of --image)")
    p.add_argument("--cache-dir", default=str(ROOT / "cache"))
    p.add_argument("--other-model", action="store_true", help="write even when the medium's model is not the plan's")
    p.add_argument("--tag", help="build for this CPU tag instead of the plan's (tests)")
    p.add_argument("--register-as", help="register the modules under this tag (tests: a module "
                   "whose features the CPU of that tag lacks)")
    p.add_argument("--no-shapes", action="store_true")
    p.add_argument("--stop-after", type=float, help=argparse.SUPPRESS)   # tests: simulated crash
    p = sub.add_parser("report", help="HTML page over every loop generation")
    p.add_argument("--profile", action="append", help="profile JSON (repeat); default: all of the latest model/tag")
    p.add_argument("--before")
    p.add_argument("--after")
    p.add_argument("--profiles-dir", default=str(ROOT / "profiles"))
    p.add_argument("-o", "--out")
    p = sub.add_parser("cache-info", help="print the cache region of an image or disk")
    p.add_argument("--image", default=str(ROOT / "build/fluid.img"))
    p.add_argument("--disk", metavar="DEV")
    p = sub.add_parser("carry", help="carry the cache into a rebuilt image (the Makefile's image rule)")
    p.add_argument("--into", required=True, help="the new image (its cache region is written)")
    p.add_argument("--from", dest="from_", help="the image it replaces")
    p.add_argument("--cache-dir", default=str(ROOT / "cache"))
    p.add_argument("--model", help="the new image's GGUF file (its shapes are checked)")
    a = ap.parse_args(argv)
    return {"profile": cmd_profile, "analyze": cmd_analyze, "apply": cmd_apply, "report": cmd_report,
            "cache-info": cmd_cache_info, "carry": cmd_carry}[a.cmd](a)


if __name__ == "__main__":
    main()
