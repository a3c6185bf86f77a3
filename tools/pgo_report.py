"""The PGO report: one HTML page (inline SVG charts, no scripts, no network)
over every loop generation of one model on one CPU tag.

    write_report(profile_paths, out) -> summary dict

Profiles are grouped into generations: the cache generation the profile
ran (`cache.generation`, 0 before any loop) together with which variant
ran each op (module, variant, -O, -march, hash), so two images that both
call their cache "generation 1" but run different builds are two groups.
Groups are ordered by capture time.  For each, over its runs (medians):
prefill and decode tok/s, decode TSC cycles per generated token, and per
module the TSC cycles per token (prompt + generated) of the workload.
The first group is "before", the last "after".

Charts are drawn by matplotlib (SVG backend); each generation has the
colour GEN_COLOURS[i % len] in both charts, and nothing else on the page
uses those colours (tests/prompt/test_pgo_user_loop.py finds the bars in
a screenshot by them).
"""
import html
import io
import json
import statistics
from pathlib import Path

# Tableau 10: distinguishable, and none of them a grey the axes use.
GEN_COLOURS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
               "#9c755f", "#17becf"]
CHART_IDS = ("chart-modules", "chart-throughput")


class ReportError(Exception):
    """Nothing to report on; str() says why."""


def ran_key(p):
    return tuple(sorted((m.get("module") or m["op"], m.get("variant"), m.get("opt_level"), m.get("march"),
                         m.get("hash")) for m in p["modules"] if m.get("calls")))


def group_generations(profiles):
    """[(label, [profile, ...])] in capture order (see the module doc)."""
    groups = {}
    for p in sorted(profiles, key=lambda p: (p.get("capture") or {}).get("time", "")):
        key = ((p.get("cache") or {}).get("generation", 0), ran_key(p))
        groups.setdefault(key, []).append(p)
    out, seen = [], {}
    for (gen, _), runs in groups.items():
        label = f"gen {gen}" + (" (no cache)" if gen == 0 else "")
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            label += f" #{seen[label]}"
        out.append((label, runs))
    return out


def tokens(p):
    w = p["workload"]
    return max(1, w["prompt_tokens"] + w["generated_tokens"])


def per_token(p):
    """{decode_cycles_per_token, module_cycles_per_token} of one profile."""
    w = p["workload"]
    return dict(decode_cycles_per_token=w["decode_cycles"] / max(1, w["generated_tokens"]),
                module_cycles_per_token=p["total_cycles"] / tokens(p))


def summarise(label, runs):
    """Medians over the runs of one generation."""
    mods = {}
    for p in runs:
        per = {}
        for m in p["modules"]:
            name = m.get("module") or m["op"]
            d = per.setdefault(name, dict(cycles=0, calls=0, ran=set()))
            d["cycles"] += m["cycles"]
            d["calls"] += m["calls"]
            if m["calls"]:
                d["ran"].add(f"{m['variant']} -O{m['opt_level']} {m['march']}")
        for name, d in per.items():
            e = mods.setdefault(name, dict(cpt=[], calls=[], ran=set()))
            e["cpt"].append(d["cycles"] / tokens(p))
            e["calls"].append(d["calls"])
            e["ran"] |= d["ran"]
    med = statistics.median
    return dict(label=label, runs=len(runs), generation=(runs[0].get("cache") or {}).get("generation", 0),
                prefill=med(p["workload"]["prefill_tok_s"] for p in runs),
                decode=med(p["workload"]["decode_tok_s"] for p in runs),
                decode_cpt=med(per_token(p)["decode_cycles_per_token"] for p in runs),
                module_cpt=med(per_token(p)["module_cycles_per_token"] for p in runs),
                output=(runs[-1].get("capture") or {}).get("output"),
                modules={n: dict(cpt=med(e["cpt"]), calls=med(e["calls"]), ran=sorted(e["ran"]))
                         for n, e in mods.items()})


def svg_bars(title, labels, series, ylabel):
    """A grouped bar chart as inline SVG; series: [(name, colour, values)]."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(labels) + 2), 3.8))
    n = len(series)
    width = 0.8 / max(1, n)
    for k, (name, colour, values) in enumerate(series):
        xs = [i + (k - (n - 1) / 2) * width for i in range(len(labels))]
        ax.bar(xs, values, width, label=name, color=colour, linewidth=0)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    plt.close(fig)
    svg = buf.getvalue()
    return svg[svg.index("<svg"):]


def fmt(v, digits=2):
    return "-" if v is None else f"{v:,.{digits}f}"


def write_report(paths, out):
    """Write the page for the profiles at `paths` to `out`; returns
    {generations: [summary, ...], out}.  Raises ReportError for no
    profiles or profiles of different models or CPU tags."""
    if not paths:
        raise ReportError("no profiles to report on (run `make pgo-profile` first)")
    profs = [json.loads(Path(p).read_text()) for p in paths]
    ids = {((p.get("model") or {}).get("id"), p["cpu"]["tag"]) for p in profs}
    if len(ids) > 1:
        raise ReportError(f"the profiles are of different models or CPU tags: {sorted(map(str, ids))}")
    gens = [summarise(label, runs) for label, runs in group_generations(profs)]
    first, last = gens[0], gens[-1]
    names = sorted((n for n in first["modules"] if any(g["modules"].get(n, {}).get("calls") for g in gens)),
                   key=lambda n: -max(g["modules"].get(n, {}).get("cpt", 0) for g in gens))
    colours = [GEN_COLOURS[i % len(GEN_COLOURS)] for i in range(len(gens))]
    chart1 = svg_bars("Module cycles per token, by loop generation", names,
                      [(g["label"], c, [g["modules"].get(n, {}).get("cpt", 0) for n in names])
                       for g, c in zip(gens, colours)], "TSC cycles / token")
    chart2 = svg_bars("Throughput by loop generation", ["prefill tok/s", "decode tok/s"],
                      [(g["label"], c, [g["prefill"], g["decode"]]) for g, c in zip(gens, colours)], "tokens/s")
    e = html.escape
    p0 = profs[-1]

    def ratio(a, b):
        return f"{a / b:.2f}x" if a and b else "-"

    rows = [f"<tr><td>{e(g['label'])}</td><td>{g['runs']}</td><td>{fmt(g['prefill'])}</td>"
            f"<td>{fmt(g['decode'])}</td><td>{fmt(g['decode_cpt'], 0)}</td><td>{fmt(g['module_cpt'], 0)}</td>"
            f"<td>{'-' if g['output'] is None or first['output'] is None else ('identical' if g['output'] == first['output'] else 'DIFFERENT')}</td></tr>"
            for g in gens]
    head = "".join(f"<th>{e(g['label'])}<br>cycles/token</th><th>{e(g['label'])}<br>variant</th>" for g in gens)
    mrows = []
    for n in names:
        cells = "".join(f"<td>{fmt(g['modules'].get(n, {}).get('cpt'), 0)}</td>"
                        f"<td>{e(', '.join(g['modules'].get(n, {}).get('ran', [])) or '-')}</td>" for g in gens)
        b, a = first["modules"].get(n, {}).get("cpt"), last["modules"].get(n, {}).get("cpt")
        mrows.append(f"<tr><td>{e(n)}</td>{cells}<td>{ratio(b, a)}</td></tr>")
    outputs = [g["output"] for g in gens if g["output"] is not None]
    same = ("unknown (the profiles lack the captured output)" if len(outputs) < 2 else
            "identical in every generation" if len(set(outputs)) == 1 else "DIFFERENT between generations")
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Fluid PGO report</title>
<style>body{{font-family:sans-serif;margin:2em;color:#222}} table{{border-collapse:collapse;margin-bottom:1.5em}}
td,th{{border:1px solid #999;padding:3px 8px;text-align:right}} td:first-child{{text-align:left}}
.chart{{margin:1em 0}}</style></head>
<body><h1>Fluid PGO report</h1>
<p>model <b>{e(str((p0.get('model') or {}).get('id')))}</b>, CPU tag <b>{e(p0['cpu']['tag'])}</b>
({e(p0['cpu'].get('brand', ''))}); pmu: {e(json.dumps(p0.get('pmu')))};
{len(profs)} profiles in {len(gens)} loop generations; before = {e(first['label'])}, after = {e(last['label'])}</p>
<h2>Loop generations</h2>
<table><tr><th>generation</th><th>runs</th><th>prefill tok/s</th><th>decode tok/s</th>
<th>decode cycles / token</th><th>module cycles / token</th><th>generated text vs first</th></tr>
{''.join(rows)}
<tr><td>after / before</td><td></td><td>{ratio(last['prefill'], first['prefill'])}</td>
<td>{ratio(last['decode'], first['decode'])}</td><td>{ratio(last['decode_cpt'], first['decode_cpt'])}</td>
<td>{ratio(last['module_cpt'], first['module_cpt'])}</td><td></td></tr></table>
<p>generated text: {same}</p>
<h2>Per module (medians over each generation's runs)</h2>
<table><tr><th>module</th>{head}<th>speed-up before/after</th></tr>
{''.join(mrows)}</table>
<h2>Charts</h2>
<div class="chart" id="{CHART_IDS[0]}">{chart1}</div>
<div class="chart" id="{CHART_IDS[1]}">{chart2}</div>
<p>profiles: {'<br>'.join(e(str(p)) for p in paths)}</p>
</body></html>
"""
    Path(out).write_text(page)
    return dict(generations=gens, out=Path(out), colours=colours)
