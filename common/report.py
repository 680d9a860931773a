"""Render ``results/REPORT.md``: every table of the four papers, the paper's value and ours in every cell.

``python -m common.report [--results_dir=results]`` reads the finished job results under
``<results_dir>/cells/<scale>/<table id>/<job>.json`` (written by ``common.run_tables``; see the docstring of
``common.registry``) and writes ``<results_dir>/REPORT.md``. Each cell reads ``paper / ours (ours - paper)``;
``paper / —`` where we have no result yet. Where a cell has results at several scales the largest is shown
(paper > quick > smoke) and the table's "Ours:" line says which scale and seeds each cell comes from. Cells
filled by ``n_parts`` jobs show the mean of the parts finished (``k/n parts`` until all are done). A cell run
with several seeds (``--seeds``) reads ``paper / mean ± sd (n seeds) (mean - paper)``: the sample SD over the
seeds (of the per-seed means over the parts). Rows the report adds (``common.registry.ADDED_ROWS``, e.g. the
PCA-20 floor) follow the paper's rows with the paper's value "–".

The report holds no timestamps, so rendering it twice from the same results gives the same file.
This module imports no TensorFlow.

``python -m common.report --readmes`` also rewrites the generated results section of each package README
(``<package>/README.md``, the text between ``<!-- results:begin -->`` and ``<!-- results:end -->``): the same
tables as that paper's section of REPORT.md, without the per-job "Extra metrics" (:func:`render_readme_tables`,
:func:`write_readmes`). ``tests/test_readmes.py`` checks that every README equals its regenerated self.
"""
from __future__ import annotations

import argparse
import json
import math
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

from common.config import write_text_atomic
from common.errors import ReproError, exit_on_error
from common.paths import REPO_ROOT
from common.registry import ADDED_ROWS, BASELINE, CITED, PACKAGES, PAPER_TITLES, PAPERS, SCALES, Row, Table, \
    all_tables, paper_tables

DEFAULT_RESULTS_DIR = REPO_ROOT / "results"
RESULT_FORMAT = 1
_MARK = {CITED: " (cited)", BASELINE: " (baseline)"}


def load_results(results_dir: Path) -> list[dict[str, Any]]:
    """Every finished job result under ``<results_dir>/cells`` (files whose name starts with '.' are temporary
    files of a job being written and are ignored)."""
    root = Path(results_dir) / "cells"
    out = []
    if not root.is_dir():
        return out
    for path in sorted(root.glob("*/*/*.json")):
        if path.name.startswith("."):
            continue
        try:
            res = json.loads(path.read_text())
            if res.get("format") != RESULT_FORMAT or res["scale"] not in SCALES:
                raise ValueError("unknown format or scale")
            res["_per_seed"] = {(c["row"], c["col"]): {str(k): float(v) for k, v in c["per_seed"].items()}
                                for c in res["cells"] if c.get("per_seed")}
            res["cells"] = [(c["row"], c["col"], float(c["value"])) for c in res["cells"]]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ReproError(f"{path} is not a result file of common.run_tables ({e}); delete it and run the "
                             f"job again") from None
        res["_path"] = str(path)
        out.append(res)
    return out


def _fmt(v: float, decimals: int, sign: bool = False) -> str:
    return f"{v:+.{decimals}f}" if sign else f"{v:.{decimals}f}"


def _esc(text: str) -> str:
    return text.replace("|", "\\|")


class _CellResult:
    """The results of one cell at one scale: one value per finished part, and per seed where stored."""

    def __init__(self, scale: str, values: list[float], n_parts: int, results: list[dict],
                 per_seed: list[dict[str, float] | None] | None = None):
        self.scale, self.values, self.n_parts, self.results = scale, values, n_parts, results
        self.per_seed = per_seed or [None] * len(values)

    @property
    def mean(self) -> float:
        return math.fsum(self.values) / len(self.values)

    @property
    def complete(self) -> bool:
        return len(self.values) >= self.n_parts

    def seed_means(self) -> list[float]:
        """The cell's value for each seed that every finished part holds (the mean over the parts); [] when a
        part stores no per-seed values."""
        if any(p is None for p in self.per_seed):
            return []
        common = set.intersection(*(set(p) for p in self.per_seed))
        return [math.fsum(p[s] for p in self.per_seed) / len(self.per_seed) for s in sorted(common, key=int)]

    def seed_sd(self) -> tuple[float, int] | None:
        """(sample SD over seeds of :meth:`seed_means`, number of seeds) when there are at least 2 seeds."""
        means = self.seed_means()
        if len(means) < 2:
            return None
        m = math.fsum(means) / len(means)
        return math.sqrt(math.fsum((v - m) ** 2 for v in means) / (len(means) - 1)), len(means)


def cell_results(table: Table, results: list[dict], variant: str = "") -> dict[tuple[str, str], _CellResult]:
    """For each cell of ``table`` with results of ``variant``: the values at the largest scale that has any."""
    by: dict[tuple[str, str], dict[str, list[tuple[float, dict, Any]]]] = defaultdict(lambda: defaultdict(list))
    for res in results:
        if res["table"] != table.id or res.get("variant", "") != variant:
            continue
        for r, c, v in res["cells"]:
            if table.accepts((r, c)):
                by[(r, c)][res["scale"]].append((v, res, res.get("_per_seed", {}).get((r, c))))
    out = {}
    for cell, per_scale in by.items():
        scale = max(per_scale, key=SCALES.index)
        entries = per_scale[scale]
        n_parts = max(int(res.get("n_parts", 1)) for _, res, _ in entries)
        out[cell] = _CellResult(scale, [v for v, _, _ in entries], n_parts, [res for _, res, _ in entries],
                                [p for _, _, p in entries])
    return out


def render_table(table: Table, results: list[dict]) -> str:
    """The table with the paper's values and ours on the paper's datasets, then one sub-table per variant
    (the same protocol run on another dataset) that has results."""
    lines = [f"### {table.id} — {table.label}", "", f"> {table.caption}", ""]
    datasets: list[str] = []
    for r, c in table.cells():
        datasets += [d for d in table.cell_datasets(r, c) if d not in datasets]
    lines.append(f"Unit: {table.unit}. Datasets: {', '.join(datasets)}.")
    lines.append("")
    lines += _render_cells(table, results, "")
    variants = sorted({res.get("variant", "") for res in results if res["table"] == table.id} - {""})
    for variant in variants:
        lines += [f"#### {table.id}: ours on `{variant}` (the paper's values are on {', '.join(datasets)}, "
                  f"shown for reference)", ""]
        lines += _render_cells(table, results, variant)
    if table.notes:
        lines += [f"- {n}" for n in table.notes]
    lines.append("")
    return "\n".join(lines)


def _render_cells(table: Table, results: list[dict], variant: str) -> list[str]:
    cells = cell_results(table, results, variant)
    scales_used = {cr.scale for cr in cells.values()}
    lines = []
    added_cols = [c for c in table.added_columns if any(cell[1] == c.name for cell in cells)]
    columns = list(table.columns) + added_cols
    header = [table.row_header or ""] + list(table.text_columns) + [
        _esc(c.name) + _MARK.get(c.source or "", "") + (f" [{c.unit}]" if c.unit else "")
        + (" (added)" if c in added_cols else "") for c in columns]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    added = [Row(name, (None,) * len(table.columns), text=("",) * len(table.text_columns))
             for name in ADDED_ROWS if any((name, c.name) in cells for c in columns)]
    rows = list(table.rows if not variant else [r for r in table.rows if any((r.name, c.name) in cells
                                                                                for c in columns)])
    for row in rows + added:
        out = [_esc(row.name) + _MARK.get(row.source or "", "")] + [_esc(t) for t in row.text]
        for col, paper in zip(columns, tuple(row.values) + (None,) * len(added_cols)):
            text = (table.paper_text(row.name, col.name) if table.has_cell((row.name, col.name)) else "–") + " / "
            cr = cells.get((row.name, col.name))
            if cr is None:
                text += "—"
            else:
                text += _fmt(cr.mean, table.decimals)
                sd = cr.seed_sd()
                if sd is not None:
                    text += f" ± {_fmt(sd[0], table.decimals)} ({sd[1]} seeds)"
                if paper is not None:
                    text += f" ({_fmt(cr.mean - paper, table.decimals, sign=True)})"
                if not cr.complete:
                    text += f" {len(cr.values)}/{cr.n_parts} parts"
                if len(scales_used) > 1:
                    text += f" [{cr.scale}]"
            out.append(text)
        lines.append("| " + " | ".join(out) + " |")
    lines.append("")
    if not cells:
        lines.append("Ours: not run yet.")
    else:
        groups: dict[tuple[str, str], int] = defaultdict(int)
        for cell, cr in cells.items():
            if not table.has_cell(cell):
                continue  # rows the report adds are explained below
            seeds = sorted({s for res in cr.results for s in res.get("seeds", [])})
            groups[(cr.scale, json.dumps(seeds))] += 1
        parts = [f"scale={scale}, seeds={seeds}: {n} cell{'s' if n > 1 else ''}"
                 for (scale, seeds), n in sorted(groups.items(), key=lambda kv: -SCALES.index(kv[0][0]))]
        total = len(table.cells())
        n_paper = sum(1 for cell in cells if table.has_cell(cell))
        lines.append(f"Ours: {n_paper} of {total} cells; "
                     + "; ".join(parts or ["only rows or columns the report adds"]) + ".")
        if added:
            lines += [""] + [f"Row \"{_esc(r.name)}\" is not in the paper: {ADDED_ROWS[r.name]}." for r in added]
        if added_cols:
            lines += [""] + [f"Column \"{_esc(c.name)}\" (added) is not in the paper's table: {c.note}"
                             for c in added_cols]
        extras = {}
        for cr in cells.values():
            for res in cr.results:
                if res.get("extra"):
                    extras[f"{res['scale']}/{res['job']}"] = res["extra"]
        if extras:
            lines += ["", "<details><summary>Extra metrics</summary>", ""]
            lines += [f"- `{k}`: `{json.dumps(v, sort_keys=True)}`" for k, v in sorted(extras.items())]
            lines += ["", "</details>"]
    lines.append("")
    return lines


def render(results_dir: Path = DEFAULT_RESULTS_DIR) -> str:
    results = load_results(results_dir)
    tables = all_tables()
    n_run = {p: 0 for p in PAPERS}
    n_cells = {p: 0 for p in PAPERS}
    for t in tables.values():
        n_run[t.paper] += sum(1 for cell in cell_results(t, results) if t.has_cell(cell))
        n_cells[t.paper] += len(t.cells())
    lines = [
        "# Reproduction report",
        "",
        "Generated by `python -m common.report` (also at the end of `./run_all.sh`) from the job results in "
        "`results/cells/`; do not edit by hand.",
        "",
        "Each cell reads **paper / ours (ours − paper)**, in the unit of the table; `—` means not run yet and "
        "`–` that the paper prints no value. Where a cell was run at several scales the largest is shown "
        "(paper > quick > smoke); each table's \"Ours:\" line gives the scale and seeds. `± sd (n seeds)`: "
        "sample standard deviation over n seeds. A row \"PCA-20 floor (ours)\" is not in the paper: it is a "
        "floor computed in the same job on the same split (common/floors.py); a learned method below it is "
        "visible at a glance.",
        "Rows or columns marked (cited) hold numbers the paper copied from other work; (baseline) marks other "
        "methods that the paper's authors trained and evaluated themselves; unmarked ones are the paper's own "
        "method.",
        "",
        "| paper | tables | cells with our value |",
        "|---|---|---|",
    ]
    for p in PAPERS:
        lines.append(f"| {p} | {len(paper_tables(p))} | {n_run[p]} of {n_cells[p]} |")
    lines.append("")
    for p in PAPERS:
        lines += [f"## {p}: {PAPER_TITLES[p]}", ""]
        for t in paper_tables(p):
            lines.append(render_table(t, results))
    return "\n".join(lines).rstrip("\n") + "\n"


def write_report(results_dir: Path = DEFAULT_RESULTS_DIR) -> Path:
    """Render and write ``<results_dir>/REPORT.md`` atomically; return its path."""
    results_dir = Path(results_dir)
    text = render(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / "REPORT.md"
    tmp = results_dir / f".REPORT.md.tmp-{os.getpid()}"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


# ------------------------------------------------------------------------------ package READMEs
README_BEGIN = "<!-- results:begin -->"
README_END = "<!-- results:end -->"
_EXTRAS_OPEN = "<details><summary>Extra metrics</summary>"


def readme_path(paper: str, root: Path = REPO_ROOT) -> Path:
    """``<root>/<package>/README.md`` of ``paper`` (``common.registry.PACKAGES``)."""
    return Path(root) / PACKAGES[paper] / "README.md"


def _without_extras(text: str) -> str:
    """``text`` without its "Extra metrics" <details> blocks (per-job JSON, kept in REPORT.md only), and with
    runs of blank lines reduced to one."""
    out: list[str] = []
    skipping = False
    for line in text.split("\n"):
        if line == _EXTRAS_OPEN:
            skipping = True
        elif skipping:
            skipping = line != "</details>"
        elif line or (out and out[-1]):
            out.append(line)
    return "\n".join(out)


def render_readme_tables(paper: str, results: list[dict]) -> str:
    """The generated results section of ``paper``'s package README: every table of the paper as in its section of
    REPORT.md (:func:`render_table`: paper value, ours, gap, scale and seeds), without the "Extra metrics"."""
    lines = [
        "_Generated by `python -m common.report --readmes` from `results/cells/`; do not edit by hand. The same "
        "tables as this paper's section of [results/REPORT.md](../results/REPORT.md), which also lists each "
        "job's extra metrics._",
        "",
        "Each cell reads **paper / ours (ours − paper)** in the table's unit; `—`: not run yet; `–`: the paper "
        "prints no value. Each table's \"Ours:\" line gives the scale and seeds of our cells (`± sd (n seeds)`: "
        "sample SD over seeds). (cited): numbers the paper copied from other work; (baseline): other methods the "
        "authors ran themselves. Sub-tables \"ours on `<dataset>`\" hold runs on a stand-in dataset, beside the "
        "paper's values for reference.",
        "",
    ]
    for t in paper_tables(paper):
        lines.append(_without_extras(render_table(t, results)).rstrip("\n"))
        lines.append("")
    return "\n".join(lines).rstrip("\n")


def replace_readme_section(text: str, section: str, where: str = "README") -> str:
    """``text`` with everything between :data:`README_BEGIN` and :data:`README_END` replaced by ``section``
    (each marker on its own line, once, begin before end; ReproError naming ``where`` otherwise)."""
    lines = text.split("\n")
    begins = [i for i, line in enumerate(lines) if line.strip() == README_BEGIN]
    ends = [i for i, line in enumerate(lines) if line.strip() == README_END]
    if len(begins) != 1 or len(ends) != 1 or begins[0] > ends[0]:
        raise ReproError(f"{where} needs exactly one line {README_BEGIN} followed by one line {README_END} "
                         f"(found {len(begins)} and {len(ends)})")
    return "\n".join(lines[:begins[0] + 1] + [section] + lines[ends[0]:])


def render_readmes(results_dir: Path = DEFAULT_RESULTS_DIR, root: Path = REPO_ROOT) -> dict[Path, str]:
    """``{README path: its text with the results section regenerated from <results_dir>/cells}`` for the four
    package READMEs under ``root`` (nothing is written)."""
    results = load_results(results_dir)
    out = {}
    for p in PAPERS:
        path = readme_path(p, root)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise ReproError(f"cannot read {path} ({e})") from None
        out[path] = replace_readme_section(text, render_readme_tables(p, results), str(path))
    return out


def write_readmes(results_dir: Path = DEFAULT_RESULTS_DIR, root: Path = REPO_ROOT) -> list[Path]:
    """Regenerate the results section of every package README (atomically; a README already up to date is not
    touched); return the paths rewritten."""
    written = []
    for path, text in render_readmes(results_dir, root).items():
        if path.read_text(encoding="utf-8") != text:
            write_text_atomic(path, text)
            written.append(path)
    return written


@exit_on_error
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m common.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--results_dir", default=str(DEFAULT_RESULTS_DIR),
                        help="directory holding cells/ (default: <repo>/results)")
    parser.add_argument("--readmes", action="store_true",
                        help="also rewrite the generated results section of the four package READMEs")
    args = parser.parse_args(argv)
    print(f"wrote {write_report(Path(args.results_dir))}")
    if args.readmes:
        written = write_readmes(Path(args.results_dir))
        for p in PAPERS:
            path = readme_path(p)
            print(f"{'wrote' if path in written else 'up to date'} {path}")


if __name__ == "__main__":
    main()
