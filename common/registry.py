"""Every table of the four papers as data, and the protocol by which a method package fills its cells.

Tables
------
:func:`all_tables` returns every table of the four papers (``nre``, ``artifacts``, ``permutation``, ``oled``),
transcribed from ``shared/papers/<paper>.md`` into ``common/tables_data/<paper>.py``. A :class:`Table` has an id
``<paper>.table<N>`` (arabic N also for the permutation paper's roman TABLE I-VI), the caption as printed, the
unit, its :class:`Column` s and :class:`Row` s and the paper's value in every cell (``None`` where the paper
prints "-" or nothing). A cell is addressed by ``(row.name, column.name)``; row and column names are the printed
labels with the markup removed (``python -m common.registry --table=oled.table1`` lists them).

Each cell has a *source* (the column's, else the row's): ``"ours"`` (the paper's own method), ``"baseline"``
(another method, but trained and evaluated by the paper's authors) or ``"cited"`` (a number copied from other
work), and the datasets it needs (the row's, else the column's, else the table's), using the names of
``common.datasets`` where one exists (``mnist``, ``fashion_mnist``, ``cifar10``, ``cifar100``, ``stl10``,
``ucsd_ped2``, ``ucf101``, ``imagenet_vid``) and ``imagenet``, ``voc2007``, ``voc2012``, ``places`` otherwise.

Runner protocol (how a package registers cells)
-----------------------------------------------
The method package of a paper (:data:`PACKAGES`: ``nre_tf``, ``artifacts_tf``, ``permutation_tf``, ``oled_tf``)
provides a module ``<pkg>/tables.py`` with a module-level list ``JOBS: list[Job]``. That module must import
cheaply: import TensorFlow and the training code *inside* the ``run`` functions, not at module level.

A :class:`Job` is one unit of work that fills one or more cells of ONE table::

    Job(table="oled.table1", name="class3",
        cells=[("OLED (Ours) s_rec", "AUCROC"), ("OLED (Ours) s_mask", "AUCROC"), ...],
        run=run_mnist_class3,            # run(scale, workdir, data_dir, seed=0) -> {cell: value} or JobResult
        datasets=("mnist",), seeds=(0,), n_parts=10)

* ``run(scale: str, workdir: Path, data_dir: Path | None, seed: int = 0)`` trains/evaluates ONE run with
  ``seed`` (the seed of its config: split, initialisation, shuffling) and returns the values of exactly the
  job's ``cells``, in the paper's units (a fraction where the paper prints 0.9772, a percentage where it
  prints 79.94%), either as a plain ``{(row, col): float}`` or as a :class:`JobResult`, which may also carry
  the seeds actually used and ``extra`` metrics (any JSON-serialisable dict, e.g. per-class values, loss).
  ``scale`` is ``smoke`` (seconds, checks the plumbing), ``quick`` (minutes, a reduced run) or ``paper`` (the
  paper's settings). ``workdir`` is a directory owned by the job (checkpoints, logs; it survives between
  calls so a job may resume); jobs with the same ``workdir_name`` share one (one per seed: seed 0 uses
  ``<workdir_name>``, seed s ``<workdir_name>-seed<s>``). ``data_dir`` is ``--data_dir`` or ``None`` (then use
  ``common.paths.default_data_dir()``). A ``run`` without a ``seed`` parameter is run once, with its own seeds.
* Seeds: ``--seeds=0,1,2`` runs every selected job once per seed (only the seeds a stored result lacks, unless
  ``--force``); the result file keeps every seed's value of every cell (``per_seed``) and the mean; the report
  prints ``mean ± sd (n seeds)`` (sample SD over seeds; for ``n_parts`` cells the SD of the per-seed means over
  the parts). Without ``--seeds`` a job runs with its ``seeds`` (default ``(0,)``).
* Rows the report adds: a job may also fill a row of :data:`ADDED_ROWS` (e.g. :data:`FLOOR_ROW`, the PCA-20
  floor of every one-class table, ``common/floors.py``) in any column of its table. Such a row is not in the
  paper: the report shows it below the paper's rows with the paper's value "–". A job that fills floor cells
  may also give ``floor(scale, workdir, data_dir, seed=0) -> {cell: value}``: those cells alone, from the job's
  own data preparation without training (``python -m common.add_floors`` adds them to older stored results).
* Columns the report adds: a table may list ``added_columns`` (methods the paper ran on other tables but not
  on this one, e.g. the four other pretext tasks of the permutation paper on Fashion-MNIST). Jobs may fill
  them in any row; the report shows them right of the paper's columns with the paper's value "–" and says
  why each was added (``Column.note``). They never count as cells of the paper's table.
* When its data is missing the job raises ``common.errors.DataError`` with one line saying what is missing;
  the runner prints ``skip <table>/<job>: <message>`` and goes on. Any other exception is a bug and stops the
  run (the report is still rendered with what finished).
* ``variant``: ``""`` (default) when the job runs the cells on the paper's datasets. A job that runs the same
  protocol on another dataset (the paper's MNIST protocol on ``mnist5k`` or ``fashion_mnist``, say) names that
  dataset here; its values are reported in a separate sub-table of the same table ("ours on <variant>"), next
  to the paper's values for reference, never mixed with the cells run on the paper's data. Cells may be
  filled once per variant.
* ``n_parts > 1``: the cells are the mean over ``n_parts`` jobs that all declare the same cells (one job per
  normal class, say, when the paper prints the average over classes). The report shows the mean of the parts
  finished so far and says ``k/n parts`` until all are done.

Results: ``python -m common.run_tables --scale=smoke|quick|paper [--only=oled.table1,nre,oled.table1/class3]
[--results_dir=results] [--data_dir=DIR] [--seeds=0,1,2] [--force]`` runs the selected jobs and stores each
finished job as ``<results_dir>/cells/<scale>/<table id>/<job name>.json`` (written to a temporary file and
renamed, so a file that exists is complete). A job with a result file at that scale is not run again unless
``--force``. Then ``<results_dir>/REPORT.md`` is rendered (``python -m common.report`` renders it alone).

This module imports no TensorFlow.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import math
import re
from pathlib import Path
from typing import Any, Callable, Mapping

PAPERS: tuple[str, ...] = ("nre", "artifacts", "permutation", "oled")
PAPER_TITLES: dict[str, str] = {
    "nre": "Self-Supervised Representation Learning via Neighborhood-Relational Encoding (Sabokrou, Khalooei, "
           "Adeli, ICCV 2019)",
    "artifacts": "Self-Supervised Feature Learning by Learning to Spot Artifacts (Jenni, Favaro, CVPR 2018)",
    "permutation": "Self-Supervised Representation Learning for Visual Anomaly Detection (Ali, Khan, Kyung, "
                   "arXiv 2006.09654)",
    "oled": "OLED: One-Class Learned Encoder-Decoder Network with Adversarial Context Masking for Novelty "
            "Detection (Jewell, Khazaie, Mohsenzadeh, WACV 2022)",
}
PACKAGES: dict[str, str] = {"nre": "nre_tf", "artifacts": "artifacts_tf", "permutation": "permutation_tf",
                            "oled": "oled_tf"}
SCALES: tuple[str, ...] = ("smoke", "quick", "paper")  # from smallest to largest

OURS, BASELINE, CITED = "ours", "baseline", "cited"
SOURCES: dict[str, str] = {
    OURS: "the paper's own method, trained by its authors",
    BASELINE: "another method, trained and evaluated by the paper's authors",
    CITED: "a number copied by the paper from other work",
}

_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")

Cell = tuple[str, str]

# Rows the report adds below a table's printed rows (not in the paper; its value is shown as "–").
FLOOR_ROW = "PCA-20 floor (ours)"
RAW_PIXEL_ROW = "Raw-pixel floor (ours)"
RANDOM_ENCODER_ROW = "Random-encoder floor (ours)"
AE_CONTROL_ROW = "AE, NRE's total epochs (control, ours)"
ADDED_ROWS: dict[str, str] = {
    FLOOR_ROW: "floor computed by us in the same job, on the same split: PCA with 20 components fitted on the "
               "training images, anomaly score = reconstruction error (one-class tables, common/floors.py); "
               "for a representation table (NRE Table 1) the same classifier on the 20-d PCA projection",
    RAW_PIXEL_ROW: "floor computed by us in the same job, on the same split: the same classifier on the raw "
                   "pixel values (NRE Table 1, nre_tf/floors.py)",
    RANDOM_ENCODER_ROW: "floor computed by us in the same job, on the same split: the same classifier on E(X) of "
                        "the same encoder at its random initialisation, untrained (NRE Table 1, nre_tf/floors.py)",
    AE_CONTROL_ROW: "control trained by us in the same job: the plain AE trained for as many epochs as NRE "
                    "(default budget: encoder A's converged AE trained E more epochs of plain MSE from the same "
                    "initialisation as NRE's E Eq. 5 epochs; --nre_budget=split: AE warm-up + Eq. 5 epochs, "
                    "nre_tf/representation_eval.py)",
}
# The added rows a job computes without training (``Job.floor``; ``common.add_floors`` adds them to stored results).
FLOOR_ROWS: tuple[str, ...] = (FLOOR_ROW, RAW_PIXEL_ROW, RANDOM_ENCODER_ROW)


@dataclasses.dataclass(frozen=True)
class Column:
    """One numeric column. ``source``/``datasets`` apply to all its cells when set (tables whose columns are
    methods); ``unit`` overrides the table's unit."""
    name: str
    source: str | None = None
    datasets: tuple[str, ...] = ()
    unit: str | None = None
    paper_decimals: int | None = None  # overrides Table.paper_decimals
    note: str = ""                     # for a column the report adds: why it is there (not in the paper)


@dataclasses.dataclass(frozen=True)
class Row:
    """One row: its name (printed label without markup), the paper's values (one per numeric column, ``None``
    where nothing is printed), its source (unless the columns carry it), datasets, and the printed text of the
    table's text columns (e.g. the [Ref] column)."""
    name: str
    values: tuple[float | None, ...]
    source: str | None = None
    datasets: tuple[str, ...] = ()
    text: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Table:
    id: str                      # "<paper>.table<N>"
    paper: str
    label: str                   # as printed: "Table 1" / "TABLE IV"
    caption: str                 # as printed, after "Table N." (markdown/LaTeX kept)
    unit: str                    # e.g. "AUROC (%)"; a column may override it
    decimals: int                # decimals used to print our values and gaps
    columns: tuple[Column, ...]
    rows: tuple[Row, ...]
    row_header: str = ""
    datasets: tuple[str, ...] = ()
    text_columns: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # transcription notes and what each source marking rests on
    paper_decimals: int = 0      # print paper values with at least this many decimals (0.970, not 0.97)
    added_columns: tuple[Column, ...] = ()  # columns the report adds (not in the paper; see the module docstring)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def row_names(self) -> list[str]:
        return [r.name for r in self.rows]

    def row(self, name: str) -> Row:
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(f"{self.id} has no row {name!r}; rows: {self.row_names}")

    @property
    def added_column_names(self) -> list[str]:
        return [c.name for c in self.added_columns]

    def column(self, name: str) -> Column:
        for c in self.columns + self.added_columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.id} has no column {name!r}; columns: {self.column_names}")

    def cells(self) -> list[Cell]:
        return [(r.name, c.name) for r in self.rows for c in self.columns]

    def has_cell(self, cell: Cell) -> bool:
        """Whether ``cell`` is a cell of the printed table."""
        return cell[0] in self.row_names and cell[1] in self.column_names

    def accepts(self, cell: Cell) -> bool:
        """Whether a job may fill ``cell``: a printed cell, a column of a row the report adds
        (:data:`ADDED_ROWS`), or a row of a column the report adds (``added_columns``)."""
        in_row = cell[0] in self.row_names or cell[0] in ADDED_ROWS
        return self.has_cell(cell) or (in_row and cell[1] in self.column_names + self.added_column_names)

    def paper_value(self, row: str, col: str) -> float | None:
        return self.row(row).values[self.column_names.index(col)]

    def source(self, row: str, col: str) -> str:
        return self.column(col).source or self.row(row).source  # validated: one of them is set

    def cell_datasets(self, row: str, col: str) -> tuple[str, ...]:
        return self.row(row).datasets or self.column(col).datasets or self.datasets

    def unit_of(self, col: str) -> str:
        return self.column(col).unit or self.unit

    def paper_text(self, row: str, col: str) -> str:
        """The paper's value as printed (up to trailing zeros beyond ``paper_decimals``); '–' for None."""
        v = self.paper_value(row, col)
        if v is None:
            return "–"
        column = self.column(col)
        minimum = self.paper_decimals if column.paper_decimals is None else column.paper_decimals
        digits = repr(v).split(".")[1].rstrip("0") if "." in repr(v) else ""
        return f"{v:.{max(len(digits), minimum)}f}"

    def validate(self) -> None:
        """Raise ValueError when the transcription is inconsistent (a bug in tables_data)."""
        if not re.fullmatch(rf"{self.paper}\.table\d+", self.id):
            raise ValueError(f"table id {self.id!r} is not '<paper>.table<N>'")
        for what, names in (("row", self.row_names), ("column", self.column_names)):
            dup = {n for n in names if names.count(n) > 1}
            if dup:
                raise ValueError(f"{self.id}: duplicate {what} names {sorted(dup)}")
        for r in self.rows:
            if len(r.values) != len(self.columns):
                raise ValueError(f"{self.id}: row {r.name!r} has {len(r.values)} values for "
                                 f"{len(self.columns)} columns")
            if len(r.text) != len(self.text_columns):
                raise ValueError(f"{self.id}: row {r.name!r} has {len(r.text)} texts for "
                                 f"{len(self.text_columns)} text columns")
            for v in r.values:
                if v is not None and (not isinstance(v, float) or not math.isfinite(v)):
                    raise ValueError(f"{self.id}: row {r.name!r} has a non-float value {v!r}")
            for c in self.columns:
                src = c.source or r.source
                if src not in SOURCES:
                    raise ValueError(f"{self.id}: cell ({r.name!r}, {c.name!r}) has source {src!r}; "
                                     f"expected one of {sorted(SOURCES)}")
                if not (r.datasets or c.datasets or self.datasets):
                    raise ValueError(f"{self.id}: cell ({r.name!r}, {c.name!r}) names no dataset")


@dataclasses.dataclass(frozen=True)
class JobResult:
    """What a job's ``run`` may return instead of a plain ``{cell: value}`` dict."""
    values: Mapping[Cell, float]
    seeds: tuple[int, ...] | None = None   # the seeds actually used (default: the Job's seeds)
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # JSON-serialisable extra metrics


RunFn = Callable[..., "Mapping[Cell, float] | JobResult"]  # run(scale, workdir, data_dir[, seed])


def takes_seed(run: Callable) -> bool:
    """Whether a job's ``run`` accepts a ``seed`` argument (see the module docstring)."""
    import inspect

    try:
        params = inspect.signature(run).parameters
    except (TypeError, ValueError):
        return False
    return "seed" in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


@dataclasses.dataclass(frozen=True)
class Job:
    """One unit of work filling ``cells`` of table ``table``. See the module docstring."""
    table: str
    name: str
    cells: tuple[Cell, ...]
    run: RunFn
    datasets: tuple[str, ...] = ()   # default: the datasets of its cells in the registry
    seeds: tuple[int, ...] = (0,)
    n_parts: int = 1
    workdir_name: str | None = None   # default "<table>/<name>"
    description: str = ""
    variant: str = ""                 # "" = the paper's datasets; else the dataset the cells are run on instead
    # floor(scale, workdir, data_dir, seed=0) -> {cell: value}: the job's FLOOR_ROW cells alone, from the job's
    # own data preparation without training (common.add_floors adds them to results stored before the floor).
    floor: Callable[..., Mapping[Cell, float]] | None = None

    def __post_init__(self):
        object.__setattr__(self, "cells", tuple((str(r), str(c)) for r, c in self.cells))
        if isinstance(self.datasets, str):
            object.__setattr__(self, "datasets", (self.datasets,))
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))

    @property
    def key(self) -> str:
        return f"{self.table}/{self.name}"

    def needed_datasets(self) -> tuple[str, ...]:
        if self.datasets:
            return tuple(self.datasets)
        table = get_table(self.table)
        out: list[str] = []
        for r, c in self.cells:
            cell_ds = table.cell_datasets(r, c) if table.has_cell((r, c)) else (table.column(c).datasets
                                                                                 or table.datasets)
            out += [d for d in cell_ds if d not in out]
        return tuple(out)


_TABLES: dict[str, Table] | None = None


def all_tables() -> dict[str, Table]:
    """Every table of the four papers, in paper order then table order, keyed by id."""
    global _TABLES
    if _TABLES is None:
        tables: dict[str, Table] = {}
        for paper in PAPERS:
            module = importlib.import_module(f"common.tables_data.{paper}")
            for t in module.TABLES:
                if t.paper != paper or t.id in tables:
                    raise ValueError(f"table {t.id!r} is misplaced or duplicated in common/tables_data")
                t.validate()
                tables[t.id] = t
        _TABLES = tables
    return _TABLES


def get_table(table_id: str) -> Table:
    tables = all_tables()
    if table_id not in tables:
        raise KeyError(f"unknown table {table_id!r}; known: {', '.join(tables)}")
    return tables[table_id]


def paper_tables(paper: str) -> list[Table]:
    return [t for t in all_tables().values() if t.paper == paper]


def validate_jobs(jobs: list[Job]) -> None:
    """Raise ValueError when jobs name unknown tables or cells, repeat a name, or share cells inconsistently."""
    seen: set[str] = set()
    by_cell: dict[tuple[str, str, str, str], list[Job]] = {}
    for job in jobs:
        if not isinstance(job, Job):
            raise ValueError(f"JOBS holds {job!r}, not a common.registry.Job")
        if not _NAME_RE.match(job.name):
            raise ValueError(f"job name {job.name!r} must match {_NAME_RE.pattern}")
        if job.key in seen:
            raise ValueError(f"two jobs are named {job.key!r}")
        seen.add(job.key)
        if job.table not in all_tables():
            raise ValueError(f"job {job.key} names unknown table {job.table!r}; known: {', '.join(all_tables())}")
        table = get_table(job.table)
        if not job.cells:
            raise ValueError(f"job {job.key} fills no cell")
        for cell in job.cells:
            if not table.accepts(cell):
                raise ValueError(f"job {job.key} names cell {cell!r}, which {job.table} does not have; rows: "
                                 f"{table.row_names} (or one the report adds: {list(ADDED_ROWS)}); columns: "
                                 f"{table.column_names + table.added_column_names}")
            by_cell.setdefault((job.table, job.variant, *cell), []).append(job)
        if job.n_parts < 1:
            raise ValueError(f"job {job.key} has n_parts={job.n_parts}")
    for (tid, variant, r, c), js in by_cell.items():
        parts = {j.n_parts for j in js}
        if len(parts) != 1 or len(js) != parts.pop():
            where = f"{tid} (variant {variant})" if variant else tid
            raise ValueError(f"cell ({r!r}, {c!r}) of {where} is filled by {len(js)} jobs "
                             f"({', '.join(j.name for j in js)}) whose n_parts are "
                             f"{sorted(j.n_parts for j in js)}; n jobs sharing a cell must all say n_parts={len(js)}")


def result_path(results_dir: Path, scale: str, table_id: str, job_name: str) -> Path:
    """Where the result of one finished job is stored."""
    return Path(results_dir) / "cells" / scale / table_id / f"{job_name}.json"


def _list_main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m common.registry",
                                     description="List the registered tables, or the rows and columns of one.")
    parser.add_argument("--table", help="a table id, e.g. oled.table1")
    args = parser.parse_args(argv)
    if args.table is None:
        for t in all_tables().values():
            print(f"{t.id}\t{len(t.rows)} rows x {len(t.columns)} columns\t{t.unit}")
        return
    t = get_table(args.table)
    print(f"{t.id} ({t.label}): {t.caption}")
    print("columns:", " | ".join(f"{c.name}" + (f" [{c.source}]" if c.source else "") for c in t.columns))
    for r in t.rows:
        print(f"row {r.name!r}" + (f" [{r.source}]" if r.source else "") + f": {list(r.values)}")


if __name__ == "__main__":
    _list_main()
