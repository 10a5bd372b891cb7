"""Markdown summary of run records (JSON lines written by the pytest plugin's --report-dir)."""

import glob
import json
import os

from tabulate import tabulate

SYMBOL = {"passed": "pass", "explained": "explained", "failed": "FAIL", "skipped": "n/a"}


def load_records(directory):
    records = []
    for path in sorted(glob.glob(os.path.join(directory, "**", "*.jsonl"), recursive=True)):
        with open(path) as f:
            records.extend(json.loads(line) for line in f if line.strip())
    return records


def cell(record):
    text = SYMBOL.get(record["outcome"], record["outcome"])
    if record.get("max_error_ratio") and record["outcome"] == "passed":
        text += f" ({record['max_error_ratio']:.1e})"
    return text


def markdown(records):
    """One table per implementation version: rows are checks grouped by area, columns device-dtype-attention;
    each cell is the outcome and the largest error-to-tolerance ratio seen."""
    from .registry import CHECKS_BY_ID

    out = ["# Compatibility report", ""]
    versions = sorted({(r["env"]["implementation"], r["env"]["version"]) for r in records})
    for impl, version in versions:
        rs = [r for r in records if (r["env"]["implementation"], r["env"]["version"]) == (impl, version)]
        env = rs[0]["env"]
        columns = sorted({f"{r['device']}-{r['dtype']}-{r['attn']}" for r in rs})
        checks = sorted({r["check"] for r in rs}, key=lambda c: (rs_area(rs, c), c))
        grid = {(r["check"], f"{r['device']}-{r['dtype']}-{r['attn']}"): r for r in rs}
        rows = [[rs_area(rs, c), c] + [cell(grid[c, col]) if (c, col) in grid else "—" for col in columns]
                for c in checks]
        counts = {k: sum(r["outcome"] == k for r in rs) for k in SYMBOL}
        out += [f"## {impl} {version}", "",
                f"torch {env['torch']}, numpy {env['numpy']}, Python {env['python']}, Hypothesis profile "
                f"`{env['hypothesis_profile']}`; examples drawn: {sum(r.get('examples') or 0 for r in rs)}; "
                + ", ".join(f"{v} {k}" for k, v in counts.items() if v), "",
                "Cells: outcome (largest error / tolerance seen). `explained` is a known, documented difference; "
                "`—`: not run there (checks of losses, relations and errors run under one attention implementation).",
                "", tabulate(rows, headers=["area", "check"] + columns, tablefmt="github"), ""]
        explained = sorted({e for r in rs for e in (r.get("explained") or [])})
        if explained:
            out += ["### Explained differences", ""]
            for check in CHECKS_BY_ID.values():
                for k in check.known:
                    if k.id in explained:
                        out.append(f"- `{k.id}` ({check.id}): {k.description}")
                        explained.remove(k.id)
            out.append("")
        failures = [r for r in rs if r["outcome"] == "failed"]
        if failures:
            out += ["### Failures", ""]
            for r in failures:
                out += [f"#### {r['check']} on {r['device']}-{r['dtype']}-{r['attn']}", "", "```",
                        (r.get("message") or "").strip(), "```", ""]
    return "\n".join(out)


def write_markdown(records_dir, path):
    text = markdown(load_records(records_dir))
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return path


def rs_area(records, check):
    return next(r["area"] for r in records if r["check"] == check)
