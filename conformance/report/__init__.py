"""Compatibility reports: merge the run records of many runs into `COMPATIBILITY.md` and `index.html`.

Records come from the pytest plugin's `--report-dir` (format: `conformance.records`). `load` reads every record
under a folder (`reports/records/<impl>-<version>/` for each env), `merge` builds the matrix (`matrix`), `markdown`
(`markdown_page`) and `html` (`html_page`) render it with the text of `text`, and `write_reports` writes both files.
Imports run one way: matrix <- text <- markdown_page, html_page <- this module.
"""

import os

from ..records import load
from .html_page import html
from .markdown_page import markdown
from .matrix import Cell, Column, Matrix, catalog, merge

__all__ = ["Cell", "Column", "Matrix", "catalog", "html", "load", "markdown", "merge", "write_reports"]


def write_reports(records_dir, out_dir):
    """Merge every record under `records_dir` and write `out_dir/COMPATIBILITY.md` and `out_dir/index.html`.
    Returns the two paths."""
    matrix = merge(*load(records_dir))
    os.makedirs(out_dir, exist_ok=True)
    paths = os.path.join(out_dir, "COMPATIBILITY.md"), os.path.join(out_dir, "index.html")
    for path, text in zip(paths, (markdown(matrix), html(matrix))):
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    return paths
