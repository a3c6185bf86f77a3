"""Carrying the applied PGO cache into a rebuilt image.

The Makefile's image rule writes a new image with an empty cache region,
then runs `pgo.py carry --into NEW --from OLD --cache-dir cache --model M`
before it renames NEW over OLD.  carry() fills NEW's cache region from the
first usable source:

  1. the newest valid slot of OLD, the image being replaced: copied byte
     for byte into the same slot, so its generation stays what boot prints;
  2. cache/<tag>/ (registry.json and the .fmod files `make pgo-apply` last
     built), every tag built for NEW's model, as one slot of the
     generation recorded in the registries.

A source is used only when all of these hold, else it is dropped and the
one line printed says why:
  - the cache's model id (`<name>-<crc32>`) names NEW's model: its CRC is
    the image header's CRC of the model region (kernel/core/shell/cmd_mod.c);
  - every cached module checks (parse_module) and uses the module ABI of
    NEW's kernel (the ABI version in NEW's MODULES region, built together
    with that kernel from modules/module_abi.h);
  - every shape-specialised module's constants equal the model's shapes
    (the GGUF's hyper-parameters, derived as kernel/core/llm/llama_model.c
    does);
  - no module's inputs changed since it was built (the source fingerprint
    registry.json records, pgo_modbuild.source_sha256): a stale build
    would override the image's newer code.
"""
import json
from pathlib import Path

from pgo_image import L, ImageError, Medium, build_slot, model_crc, model_id_crc, parse_module, read_image_header

ROOT = Path(__file__).resolve().parent.parent


def model_shapes(path):
    """{shape name: value} of a GGUF model as the kernel derives them
    (read_hparams in kernel/core/llm/llama_model.c), or None when the file
    cannot be read (the kernel will then refuse it itself)."""
    import gguf
    try:
        kv = gguf.GGUFReader(path).kv
        n_embd, n_head = int(kv["llama.embedding_length"]), int(kv["llama.attention.head_count"])
        n_head_kv = int(kv.get("llama.attention.head_count_kv", n_head))
        head_dim = n_embd // n_head
        return dict(n_embd=n_embd, n_ff=int(kv["llama.feed_forward_length"]), head_dim=head_dim, n_head=n_head,
                    n_head_kv=n_head_kv, n_embd_kv=head_dim * n_head_kv, n_vocab=len(kv["tokenizer.ggml.tokens"]),
                    n_layer=int(kv["llama.block_count"]))
    except (OSError, ValueError, KeyError, ZeroDivisionError):
        return None


class Nothing(LookupError):
    """A source that holds no cache at all (not a reason to report)."""


class Unfit(LookupError):
    """A source whose cache does not fit the new image: args[0] is
    [(where, reason)]."""


def registries(cache_dir):
    """[(tag directory, registry dict)] of cache_dir/*/registry.json
    ([] for None or a missing directory)."""
    out = []
    for p in sorted(Path(cache_dir).glob("*/registry.json")) if cache_dir else ():
        try:
            out.append((p.parent, json.loads(p.read_text())))
        except (OSError, ValueError):
            continue
    return out


class Checker:
    """The compatibility rules above, for one new image."""

    def __init__(self, new, model_path, cache_dir):
        self.new = new
        self.crc = model_crc(new.header)
        self.model_file = new.header["model_name"]
        self.abi = new.module_abi()
        self.model_path = model_path
        self._shapes = False
        self._mf = None
        # (tag, module, body SHA-256 hex) -> the source fingerprint it was built from.
        self.built_from = {}
        for d, reg in registries(cache_dir):
            for m in reg.get("modules", []):
                if m.get("source_sha256"):
                    self.built_from[(reg.get("tag", d.name), m["name"], m["sha256"])] = m["source_sha256"]

    def shapes(self):
        if self._shapes is False:
            self._shapes = model_shapes(self.model_path) if self.model_path else None
        return self._shapes

    def fingerprint(self, name):
        from pgo_modbuild import modflags, source_sha256
        if self._mf is None:
            self._mf = modflags()
        return source_sha256(name, self._mf)

    def why_not(self, model_id, entries, generation):
        """None when entries ([{tag, name, file}]) built for model_id may
        run on the new image, else the reason."""
        if self.crc is None:
            return "the image has no model"
        if model_id_crc(model_id) != self.crc:
            return (f"generation {generation} was built for model {model_id or '?'}, but the image's model "
                    f"({self.model_file}) has CRC {self.crc} (profile it for a cache of its own)")
        for e in entries:
            try:
                m = parse_module(e["file"])
            except ValueError as err:
                return f"cached module {e['tag']}/{e['name']} is damaged: {err}"
            if self.abi is not None and m["abi"] != self.abi:
                return f"its modules use module ABI {m['abi']}, the image's kernel ABI {self.abi}"
            if m["shapes"] and self.shapes():
                for sid, v in sorted(m["shapes"].items()):
                    name = L.SHAPES.get(sid, f"shape {sid}")
                    if self.shapes().get(name) != v:
                        return (f"{m['name']} was specialised for {name}={v}, the model has "
                                f"{name}={self.shapes().get(name)}")
            was = self.built_from.get((e["tag"], m["name"], m["sha256"].hex()))
            if was and was != self.fingerprint(m["name"]):
                return (f"modules/{m['name']}.c or a module header changed since generation {generation} was "
                        "built (make pgo-apply rebuilds it)")
        return None


def from_old_image(old, check):
    """(slot index, slot bytes, summary) from the image being replaced, or
    raises LookupError with the reason it cannot be used."""
    try:
        with Medium(old) as m:
            slots = m.slots
            cur = m.newest()
    except ImageError as e:
        raise Unfit([(str(old), str(e))]) from None
    if cur is None:
        bad = [f"slot {i}: {s['why']}" for i, s in enumerate(slots) if s["state"] != "empty"]
        if bad:
            raise Unfit([(str(old), "its cache is unusable: " + "; ".join(bad))])
        raise Nothing(f"{old} has no cache")
    info = slots[cur]["info"]
    why = check.why_not(info["model_id"], info["entries"], info["generation"])
    if why:
        raise Unfit([(str(old), why)])
    return cur, info["data"], summary(info["generation"], info["entries"], info["model_id"], f"of {old}")


def from_cache_dir(cache_dir, check):
    """(0, slot bytes, summary) assembled from cache_dir/<tag>/, or raises
    LookupError with the reason."""
    entries, gens, model_id, dropped = [], [], None, []
    regs = registries(cache_dir)
    if not regs:
        raise Nothing(f"{cache_dir}/ holds no registry.json")
    for d, reg in regs:
        tag = reg.get("tag", d.name)
        mine = []
        try:
            for m in reg.get("modules", []):
                data = (d / m["file"]).read_bytes()
                mine.append(dict(tag=tag, name=m["name"], file=data))
                if parse_module(data)["sha256"].hex() != m["sha256"]:
                    raise ValueError(f"{d / m['file']} is not the module registry.json lists")
        except (OSError, ValueError, KeyError) as e:
            dropped.append((str(d), str(e)))
            continue
        gen = reg.get("generation", 1)
        why = check.why_not(reg.get("model_id"), mine, gen)
        if why:
            dropped.append((str(d), why))
            continue
        entries += mine
        gens.append(gen)
        model_id = reg.get("model_id")
    if not entries:
        raise Unfit(dropped)
    gen = max(gens)
    note = f"; not {explain(dropped)}" if dropped else ""
    return 0, build_slot(gen, entries, model_id), summary(gen, entries, model_id, f"from {cache_dir}/") + note


def summary(generation, entries, model_id, where):
    tags = " ".join(sorted({e["tag"] for e in entries}))
    return f"generation {generation} {where} ({len(entries)} modules, tags {tags}, model {model_id})"


def carry(new, old=None, cache_dir=None, model=None):
    """Fill the cache region of image `new` (fresh from mkimage) from `old`
    or `cache_dir` under the rules above.  Returns the one line to print:
    what was kept, or why nothing was.  Raises ImageError only when `new`
    itself is not a writable Fluid image."""
    with Medium(new, write=True) as dst:
        check = Checker(dst, model, cache_dir)
        reasons = []
        for source, arg in ((from_old_image, old), (from_cache_dir, cache_dir)):
            if not arg or not Path(arg).exists():
                continue
            try:
                index, slot, what = source(arg, check)
            except Nothing:
                continue
            except Unfit as e:
                reasons += e.args[0]
                continue
            dst.write_slot(index, slot)
            return f"cache: kept {what}"
        if not reasons:
            return "cache: none to carry over (no PGO cache applied yet)"
        return f"cache: dropped, the image's modules run: {explain(reasons)}"


def explain(reasons):
    """[(where, reason)] as one phrase: each reason once, with where it held."""
    by = {}
    for where, why in reasons:
        by.setdefault(why, []).append(where)
    return "; ".join(f"{why} [{', '.join(wh)}]" for why, wh in by.items())


def image_model_differs(image, model):
    """True when `image` is missing, unreadable, or holds another model file
    than `model` (by size and file name, as the header records them)."""
    import os
    try:
        hdr = read_image_header(image)
    except ImageError:
        return True
    r = hdr["regions"][L.FLUID_REGION_MODEL]
    return r["bytes"] != os.path.getsize(model) or hdr["model_name"] != os.path.basename(model)[:63]
