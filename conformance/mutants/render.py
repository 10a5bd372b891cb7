"""Rendering of the mutation self-check's results (the JSON `runner.run` writes): the console text, the markdown
section of the compatibility report, and the `--check-sources` matrix."""

import json
from pathlib import Path

from tabulate import tabulate

from .catalog import MUTANTS_BY_ID, PATHS

AREA_HEADERS = ["area", "mutants", "not applicable", "equivalent", "killed", "survived", "timeout/error",
                "kill ratio"]
PATH_HEADERS = ["path"] + AREA_HEADERS[1:]


def _ratio(x):
    return "n/a" if x is None else f"{100 * x:.0f}%"


def area_rows(data, key="areas"):
    """The per-area table's rows (see AREA_HEADERS), then the row of all areas; with key="paths" the per-path
    table's (PATH_HEADERS)."""
    rows = []
    for name, a in data[key].items():
        rows.append([name, a["mutants"], a["not_applicable"], a["declared_equivalent"], a["killed_non_equivalent"],
                     a["survived"], a["timeout"] + a["error"], _ratio(a["kill_ratio"])])
    s = data["score"]
    total = lambda field: sum(a[field] for a in data[key].values())  # noqa: E731
    rows.append(["all", total("mutants"), total("not_applicable"), total("declared_equivalent"), s["killed"],
                 total("survived"), total("timeout") + total("error"), _ratio(s["ratio"])])
    return rows


def path_rows(data):
    """The per-path table's rows (see PATH_HEADERS), then the row of all paths; [] for results without paths."""
    return area_rows(data, "paths") if data.get("paths") else []


def _targets_line(env):
    """Which dtype and attention each path's checks ran with."""
    special = env.get("path_targets") or {}
    default = f"{env['dtype']}, {env['attention']} attention"
    if not special:
        return default
    return default + " (" + "; ".join(f"the {p} path: {t.replace('-', ', ')} attention" for p, t in special.items()) + ")"


def _not_killed(data):
    return [r for r in data["mutants"] if r["status"] in ("survived", "timeout", "error")
            or (r["equivalent"] and r["status"] == "killed")]


def _baseline_line(baseline):
    if baseline["status"] == "pass":
        return (f"Baseline: the {baseline['passed']} checks the mutants select pass on the unmutated package "
                f"({baseline['seconds']:.0f} s), so every kill below is the mutant's.")
    return (f"Baseline: {baseline['status']}; failing on the unmutated package: "
            f"{', '.join(f'`{c}`' for c in baseline['failed']) or 'none'} (kills by these do not count).")


def render_text(data):
    """The console summary: the score line, the per-area table, the baseline and the mutants not killed."""
    env = data["environment"]
    s = data["score"]
    lines = [f"transformers {env['transformers']}: mutation score {s['killed']}/{s['non_equivalent']} "
             f"({_ratio(s['ratio'])}), wall time {data['wall_s']:.0f} s",
             tabulate(area_rows(data), headers=AREA_HEADERS)]
    if path_rows(data):
        lines.append(tabulate(path_rows(data), headers=PATH_HEADERS))
    if data.get("baseline"):
        lines.append(_baseline_line(data["baseline"]).replace("`", ""))
    bad = _not_killed(data)
    lines.append("not killed: " + ("none" if not bad else ""))
    lines += [f"  {r['id']} ({r['status']}): {r['message']}" for r in bad]
    return "\n".join(lines)


def render_sources(versions, rows):
    """The `--check-sources` matrix: how often each mutant's old text occurs per release (* = inside its range)."""
    table = [[i] + [f"{n}{'*' if MUTANTS_BY_ID[i].applies_to(v) else ''}" for v, n in zip(versions, counts)]
             for i, counts in rows]
    return tabulate(table, headers=["mutant"] + versions)


def _killer(r):
    """The check that killed a mutant, and the target it ran on."""
    if not r.get("killed_by"):
        return ""
    return f"`{r['killed_by']}`" + (f" ({r['killed_on']})" if r.get("killed_on") else "")


def _md(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown_section(path, heading="##", others=()):
    """The mutation self-check results in `path` (the JSON `run` writes) as markdown: a summary line, the per-area
    table, the mutants not killed with their reason, the equivalent mutants with their argument, and every mutant.
    `others`: results of runs against other releases (e.g. the AdamW mutants, which only apply before 4.50), each
    summarised in one line."""
    data = json.loads(Path(path).read_text())
    env = data["environment"]
    s = data["score"]
    out = [f"{heading} Mutation self-check", "",
           f"Bugs seeded one at a time into a copy of transformers {env['transformers']} (torch {env['torch']}, "
           f"Python {env['python']}); each must make a check fail ({env['max_examples']} examples, "
           f"{_targets_line(env)}, Hypothesis profile `{env['hypothesis_profile']}`). "
           f"**Mutation score: {s['killed']}/{s['non_equivalent']} ({_ratio(s['ratio'])})** of the applicable "
           f"non-equivalent mutants killed; wall time {data['wall_s']:.0f} s with {env['jobs']} job(s) on "
           f"{env['cpus']} CPU(s).", "",
           tabulate(area_rows(data), headers=AREA_HEADERS, tablefmt="github"), ""]
    if path_rows(data):
        out += ["By path (the kind of check that must kill the mutant: "
                + "; ".join(f"`{p}`, {d}" for p, d in PATHS.items() if p in data["paths"]) + "):", "",
                tabulate(path_rows(data), headers=PATH_HEADERS, tablefmt="github"), ""]
    baseline = data.get("baseline")
    if baseline:
        out += [_baseline_line(baseline), ""]
    for other in others:
        o = json.loads(Path(other).read_text())
        ran = ", ".join(f"`{r['id']}`" for r in o["mutants"] if r["status"] != "not_applicable")
        areas = ", ".join(f"{area} {a['killed_non_equivalent']}/{a['non_equivalent']}" for area, a in o["areas"].items()
                          if a["non_equivalent"])
        paths = ", ".join(f"{p} {a['killed_non_equivalent']}/{a['non_equivalent']}"
                          for p, a in (o.get("paths") or {}).items() if a["non_equivalent"])
        areas += f"; by path: {paths}" if paths else ""
        unkilled = ", ".join(f"`{r['id']}` ({r['status']})" for r in _not_killed(o))
        out += [f"Against transformers {o['environment']['transformers']}: {o['score']['killed']}/"
                f"{o['score']['non_equivalent']} killed ({areas}: {ran})" + (f"; not killed: {unkilled}" if unkilled
                                                                            else "")
                + f"; wall time {o['wall_s']:.0f} s.", ""]
    bad = _not_killed(data)
    out.append(f"{heading}# Not killed")
    out.append("")
    out += [f"- `{r['id']}` ({r['status']}): {r['bug']}. {_md(r['message'] or '')}" for r in bad] or ["None."]
    out.append("")
    equivalent = [r for r in data["mutants"] if r["equivalent"]]
    if equivalent:
        out += [f"{heading}# Equivalent mutants", ""]
        out += [f"- `{r['id']}` ({r['status']}): {r['bug']}. {_md(r['equivalent'])}" for r in equivalent]
        out.append("")
    out += [f"{heading}# Every mutant", ""]
    rows = [[f"`{r['id']}`", r["area"], r.get("path", ""), _md(r["bug"]), r["status"], _killer(r),
             "" if r.get("seconds") is None else f"{r['seconds']:.0f}"] for r in data["mutants"]]
    out.append(tabulate(rows, headers=["mutant", "area", "path", "bug it imitates", "outcome", "killed by",
                                       "seconds"], tablefmt="github"))
    return "\n".join(out) + "\n"
