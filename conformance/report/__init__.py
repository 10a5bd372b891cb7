"""Compatibility reports: merge the run records of many runs into `COMPATIBILITY.md`, `index.html`, one markdown
page per version (`versions/`) and `mutants.md`.

Records come from the pytest plugin's `--report-dir` (raw format: `conformance.records`) and are kept in the
repository in compact form, one file per implementation and version (`archive`). `load_tree` reads both from a
folder, `merge` builds the matrix (`matrix`), `markdown` and `version_pages` (`markdown_page`) and `html`
(`html_page`) render it with the text of `text`, and `write_reports` writes every file.
Imports run one way: matrix <- archive, text <- markdown_page, html_page <- this module.
"""

import os

from .archive import load_tree
from .html_page import html
from .markdown_page import markdown, mutants_page, version_pages
from .matrix import Cell, Column, Matrix, catalog, merge

__all__ = ["Cell", "Column", "Matrix", "catalog", "html", "load_tree", "markdown", "merge", "version_pages",
           "write_reports"]


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def write_reports(records_dir, out_dir, mutants_dir="reports"):
    """Merge every record under `records_dir` (raw and compact) and write `out_dir/COMPATIBILITY.md`,
    `out_dir/index.html`, `out_dir/versions/<impl>-<version>.md` and, when `mutants_dir/mutants.json` exists,
    `out_dir/mutants.md`. Returns the paths of the first two."""
    matrix = merge(*load_tree(str(records_dir)))
    paths = os.path.join(out_dir, "COMPATIBILITY.md"), os.path.join(out_dir, "index.html")
    for path, text in zip(paths, (markdown(matrix, mutants_dir), html(matrix, mutants_dir=mutants_dir))):
        _write(path, text)
    for name, text in version_pages(matrix).items():
        _write(os.path.join(out_dir, name), text)
    mutants = mutants_page(mutants_dir)
    if mutants is not None:
        _write(os.path.join(out_dir, "mutants.md"), mutants)
    return paths
