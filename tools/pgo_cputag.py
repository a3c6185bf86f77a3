"""CPU feature names and -march tags, from kernel/include/fluid/cpufeat.h
(the one list of feature bits and x86-64 psABI levels).

    cpufeat()                  ({name: bit}, {level: set(names)})
    tag_features(tag)          the feature names a tag implies (as the kernel's
                               modfmt_tag_features)
    tag_from_features(names)   the tag of a CPUID feature list (as the kernel's
                               derive_level, kernel/arch/x86/cpu.c)
    march_flags(tag)           clang flags for a tag

Tags: x86-64, x86-64-v2, x86-64-v3, x86-64-v4[+vnni][+bf16].  An unknown
tag raises ValueError naming it.
"""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TAG_RE = r"(x86-64(?:-v[234])?)((?:\+vnni|\+bf16)*)"


def cpufeat():
    """{name: bit} and {level: set(names)} parsed from cpufeat.h."""
    text = (ROOT / "kernel/include/fluid/cpufeat.h").read_text()
    bits = {m.group(1): int(m.group(2)) for m in re.finditer(r"X\((\w+),\s*(\d+),", text)}
    levels = {}
    for lv in (2, 3, 4):
        body = text[text.index(f"#define FLUID_LEVEL_V{lv}"):]
        lines = []
        for line in body.splitlines():   # the macro ends at the first line without a backslash
            lines.append(line)
            if not line.rstrip().endswith("\\"):
                break
        levels[lv] = set(re.findall(r"FEAT_BIT\((\w+)\)", "\n".join(lines)))
    return bits, levels


def tag_features(tag):
    """Feature names a CPU tag implies (as modfmt_tag_features in the kernel)."""
    _, levels = cpufeat()
    m = re.fullmatch(r"x86-64(?:-v([234]))?((?:\+vnni|\+bf16)*)", tag)
    if not m:
        raise ValueError(f"unknown CPU tag {tag!r}")
    level = int(m.group(1) or 1)
    feats = {"SSE", "SSE2"}
    for lv in (2, 3, 4):
        if level >= lv:
            feats |= levels[lv]
    extras = m.group(2)
    if extras and level < 4:
        raise ValueError(f"tag {tag!r}: +vnni/+bf16 need x86-64-v4")
    if "+vnni" in extras:
        feats.add("AVX512VNNI")
    if "+bf16" in extras:
        feats.add("AVX512BF16")
    return feats


def tag_from_features(features):
    """The -march tag for a CPUID feature list, by the rules of
    kernel/arch/x86/cpu.c (derive_level)."""
    _, levels = cpufeat()
    f = set(features)
    level = 1
    for lv in (2, 3, 4):
        if levels[lv] <= f:
            level = lv
        else:
            break
    tag = "x86-64" if level == 1 else f"x86-64-v{level}"
    if level == 4 and "AVX512VNNI" in f:
        tag += "+vnni"
    if level == 4 and "AVX512BF16" in f:
        tag += "+bf16"
    return tag


def march_flags(tag):
    """clang flags for a tag: -march=<level> plus the extension flags."""
    m = re.fullmatch(TAG_RE, tag)
    if not m:
        raise ValueError(f"unknown CPU tag {tag!r}")
    flags = [f"-march={m.group(1)}"]
    if "+vnni" in m.group(2):
        flags.append("-mavx512vnni")
    if "+bf16" in m.group(2):
        flags.append("-mavx512bf16")
    return flags
