"""The table registry against the papers' text, the runner protocol with fake packages, and the report.

The paper checks read shared/papers/<paper>.md (env REPRO_PAPERS_DIR, else ../shared/papers next to the repo, else
/work/shared/papers); where the papers are not present those checks are skipped, the hand-read spot values and
the table counts below are checked always.
"""
from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from common import registry, report, run_tables
from common.errors import ConfigError
from common.paths import REPO_ROOT
from common.registry import BASELINE, CITED, OURS, Job, get_table, paper_tables

# Counted by hand in the papers: "Table N." / "TABLE N:" captions.
EXPECTED_TABLES = {"nre": 4, "artifacts": 5, "permutation": 6, "oled": 5}


def _papers_dir() -> Path | None:
    for cand in (os.environ.get("REPRO_PAPERS_DIR"), REPO_ROOT.parent / "shared" / "papers", "/work/shared/papers"):
        if cand and (Path(cand) / "oled.md").is_file():
            return Path(cand)
    return None


PAPERS_DIR = _papers_dir()
needs_papers = pytest.mark.skipif(PAPERS_DIR is None, reason="shared/papers/*.md not found")
CAPTION_RE = re.compile(r"^(?:Table (\d+)\. |TABLE ([IVX]+): )(.*)$")
ROMAN = {"I": 1, "II": 2, "III": 3, "IV": 4, "V": 5, "VI": 6, "VII": 7, "VIII": 8}


def _captions(paper: str) -> dict[int, tuple[int, str]]:
    """{table number: (line index, caption text)} of the paper's markdown."""
    lines = (PAPERS_DIR / f"{paper}.md").read_text(encoding="utf-8").split("\n")
    out = {}
    for i, line in enumerate(lines):
        m = CAPTION_RE.match(line)
        if m:
            out[int(m.group(1)) if m.group(1) else ROMAN[m.group(2)]] = (i, m.group(3).strip())
    return out


# ----------------------------------------------------------------------------------------------- the registry


def test_every_table_of_every_paper_is_registered():
    for paper, n in EXPECTED_TABLES.items():
        assert [t.id for t in paper_tables(paper)] == [f"{paper}.table{i}" for i in range(1, n + 1)]
    assert len(registry.all_tables()) == sum(EXPECTED_TABLES.values())


@needs_papers
def test_table_count_and_captions_match_the_papers():
    for paper in registry.PAPERS:
        caps = _captions(paper)
        assert sorted(caps) == list(range(1, EXPECTED_TABLES[paper] + 1)), paper
        for number, (_, caption) in caps.items():
            assert get_table(f"{paper}.table{number}").caption == caption


def _md_table_lines(paper: str, number: int) -> list[list[str]]:
    """The tab-separated lines of a printed table (tags removed, trailing empty cells dropped)."""
    lines = (PAPERS_DIR / f"{paper}.md").read_text(encoding="utf-8").split("\n")
    i = _captions(paper)[number][0]
    step = -1 if paper == "oled" else 1  # OLED prints captions below the tables
    j = i + step
    while "\t" not in lines[j]:
        j += step
    block = []
    while "\t" in lines[j]:
        block.append(lines[j])
        j += step
    if step == -1:
        block.reverse()
    out = []
    for line in block:
        cells = [re.sub(r"<[^>]+>", "", c).strip() for c in line.split("\t")]
        while cells and not cells[-1]:
            cells.pop()
        out.append(cells)
    return out


def _num(text: str) -> float | None:
    text = text.replace("$", "").replace("\\pm", "").replace("±", "").replace("%", "").strip()
    return None if text in ("-", "–", "") else float(text)


@needs_papers
def test_every_paper_value_matches_the_printed_table():
    for table in registry.all_tables().values():
        number = int(table.id.rsplit("table", 1)[1])
        md = _md_table_lines(table.paper, number)
        if table.id == "nre.table4":  # two Method/EER pairs per printed line
            md = md[-8:]
            printed = [[_num(c[1])] for c in md] + [[_num(c[3])] for c in md]
        else:
            md = md[-len(table.rows):]
            printed = [[_num(c) for c in cells[-len(table.columns):]] for cells in md]
        assert printed == [list(r.values) for r in table.rows], table.id
        for row, cells in zip(table.rows, md):  # text columns ([Ref]) as printed
            if table.text_columns:
                assert tuple(cells[-len(table.columns) - len(table.text_columns):-len(table.columns)]) == row.text


def test_spot_values_read_by_hand():
    spots = [
        ("nre.table1", "Context AE [42]", "R-SVM 100", 0.981),
        ("nre.table2", "NRE_0.5,0.25,0.25 (Ours)", "Classification FC6-8", 71.2),
        ("nre.table2", "Counting [38]", "Classification FC8", None),
        ("nre.table3", "MagNet [35]", "eps=0.2", 0.614),
        ("nre.table4", "Deep-cascade [49]", "EER", 9.0),
        ("nre.table4", "NRE_0.6,0.4,0", "EER", 14.0),
        ("artifacts.table1", "(k) No repair network", "Accuracy", 54.74),
        ("artifacts.table2", "Zhao et al. [46]", "SD", None),
        ("artifacts.table3", "Ours", "Segmentation (mIU)", 38.1),
        ("artifacts.table5", "Ours", "conv4", 37.3),
        ("permutation.table1", "CIFAR-100 13", "Inception CAE [65]", 61.0),
        ("permutation.table2", "Fashion-MNIST 5", "GT [51]", 93.4),
        ("permutation.table3", "ImageNet avg", "Color [25]", 66.315),
        ("permutation.table4", "ILSVRC2015", "Ours", 75.5),
        ("permutation.table6", "UCF101", "Skip = 3", 70.2),
        ("oled.table1", "OLED (Ours) s_mask", "AUCROC", 0.9851),
        ("oled.table2", "OLED (Ours) s_cont", "AUCROC", 0.6673),
        ("oled.table3", "OLED (Ours) s_avg", "EER", 0.0540),
        ("oled.table3", "TSC [43]", "EER", None),
        ("oled.table4", "CAE s_cont", "AUCROC", 0.6869),
        ("oled.table5", "Outlier", "AUCROC", 0.8472),
    ]
    for tid, row, col, value in spots:
        assert get_table(tid).paper_value(row, col) == value, (tid, row, col)
    assert get_table("oled.table3").paper_text("OLED (Ours) s_avg", "EER") == "0.054"
    assert get_table("nre.table1").paper_text("Context AE [42]", "L-SVM 40") == "0.970"
    assert get_table("nre.table4").paper_text("Deep-Anomaly [50]", "EER") == "13.5"


def test_sources_and_datasets():
    t = get_table("oled.table1")
    assert t.source("MemAE [9]", "AUCROC") == CITED and t.source("OLED (Ours) s_rec", "AUCROC") == OURS
    assert get_table("oled.table4").source("CAE s_rec", "AUCROC") == BASELINE
    assert get_table("nre.table3").source("MagNet [35]", "eps=0.1") == BASELINE
    p1 = get_table("permutation.table1")
    assert p1.source("CIFAR-10 0", "GT [51]") == CITED and p1.source("CIFAR-10 0", "RotNet [26]") == BASELINE
    assert get_table("permutation.table4").source("UCF101", "Ours") == OURS
    assert p1.cell_datasets("CIFAR-100 3", "Jigsaw [35]") == ("cifar100",)
    assert p1.cell_datasets("CIFAR-10 avg", "Jigsaw [35]") == ("cifar10",)
    assert get_table("permutation.table5").cell_datasets("ILSVRC2015", "M = 5") == ("imagenet_vid",)
    assert get_table("nre.table2").cell_datasets("AE [20]", "Seg all") == ("imagenet", "voc2012")
    assert get_table("artifacts.table5").cell_datasets("Ours", "conv1") == ("imagenet", "places")
    assert get_table("oled.table3").cell_datasets("ALOCC [29]", "EER") == ("ucsd_ped2",)


def test_tables_agree_where_the_papers_repeat_numbers():
    t1, t4 = get_table("oled.table1"), get_table("oled.table4")
    for s in ("s_rec", "s_mask", "s_cont", "s_avg"):
        assert t1.row(f"OLED (Ours) {s}").values == t4.row(f"OLED (Ours) {s}").values
    # NRE cites Jenni et al. [22] (the artifacts paper): its row equals the artifacts paper's own VOC numbers.
    jenni = get_table("nre.table2").row("Jenni et al. [22]").values[2:]
    assert jenni == get_table("artifacts.table3").row("Ours").values
    # The avg rows of the permutation paper are the mean of the class rows (to print precision), except the two
    # cells noted in the tables' notes, where the paper itself is inconsistent.
    exceptions = {("CIFAR-10", "Color [25]"), ("Fashion-MNIST", "Jigsaw [35]")}
    for tid, groups in (("permutation.table1", ("CIFAR-10", "CIFAR-100")),
                        ("permutation.table2", ("Fashion-MNIST",)), ("permutation.table3", ("ImageNet",))):
        t = get_table(tid)
        for g in groups:
            rows = [r for r in t.rows if r.name.startswith(g + " ") and not r.name.endswith(" avg")]
            assert len(rows) in (10, 20)
            for j, col in enumerate(t.columns):
                mean = statistics.fmean(r.values[j] for r in rows)
                close = abs(mean - t.row(f"{g} avg").values[j]) <= 0.1
                assert close != ((g, col.name) in exceptions), (tid, g, col.name, mean)


def test_validate_jobs_rejects_bad_jobs():
    def f(scale, workdir, data_dir):
        return {}

    with pytest.raises(ValueError, match="does not have"):
        registry.validate_jobs([Job("oled.table5", "a", [("Inlier", "AUROC")], f)])
    with pytest.raises(ValueError, match="unknown table"):
        registry.validate_jobs([Job("oled.table9", "a", [("Inlier", "AUCROC")], f)])
    with pytest.raises(ValueError, match="n_parts"):
        registry.validate_jobs([Job("oled.table5", "a", [("Inlier", "AUCROC")], f),
                                Job("oled.table5", "b", [("Inlier", "AUCROC")], f)])
    with pytest.raises(ValueError, match="two jobs"):
        registry.validate_jobs([Job("oled.table5", "a", [("Inlier", "AUCROC")], f),
                                Job("oled.table5", "a", [("Outlier", "AUCROC")], f)])
    registry.validate_jobs([Job("oled.table1", f"c{i}", [("OLED (Ours) s_rec", "AUCROC")], f, n_parts=2)
                            for i in range(2)])


# ------------------------------------------------------------------------------------------ runner and report

FAKE_TABLES = """
import json
from pathlib import Path
from common.errors import DataError
from common.registry import Job, JobResult

COUNTER = Path({counter!r})

def _count(name):
    calls = json.loads(COUNTER.read_text()) if COUNTER.exists() else []
    COUNTER.write_text(json.dumps(calls + [name]))

def mask(scale, workdir, data_dir):
    _count("mask")
    assert workdir.is_dir()
    return JobResult({{("Inlier", "AUCROC"): 0.8, ("Outlier", "AUCROC"): 0.9}}, seeds=(1, 2),
                     extra={{"loss": 0.25}})

def ucsd(scale, workdir, data_dir):
    _count("ucsd")
    raise DataError(f"UCSD Ped2 not found under {{data_dir}}/ucsd")

def part(k):
    def run(scale, workdir, data_dir):
        _count(f"class{{k}}")
        return {{("OLED (Ours) s_rec", "AUCROC"): 0.9 + 0.02 * k}}
    return run

JOBS = [
    Job("oled.table5", "mask", [("Inlier", "AUCROC"), ("Outlier", "AUCROC")], mask, datasets=("mnist",)),
    Job("oled.table3", "ped2", [("OLED (Ours) s_rec", "AUCROC")], ucsd),
] + [Job("oled.table1", f"class{{k}}", [("OLED (Ours) s_rec", "AUCROC")], part(k), n_parts=2) for k in range(2)]
"""


@pytest.fixture
def fake_pkg(tmp_path, monkeypatch):
    """A package ``fake_oled_<n>`` with a tables.py, importable from tmp_path; returns (name, counter path)."""
    name = f"fake_oled_{abs(hash(str(tmp_path))) % 10**8}"
    pkg = tmp_path / "pkgs" / name
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    counter = tmp_path / "calls.json"
    (pkg / "tables.py").write_text(FAKE_TABLES.format(counter=str(counter)))
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    yield name, counter
    for mod in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[mod]


def _calls(counter: Path) -> list[str]:
    return json.loads(counter.read_text()) if counter.exists() else []


def _packages(oled: str) -> dict[str, str]:
    return {"nre": "no_such_pkg_nre", "artifacts": "no_such_pkg_art", "permutation": "no_such_pkg_perm",
            "oled": oled}


def test_runner_skips_stores_caches_and_reports(fake_pkg, tmp_path, capsys):
    name, counter = fake_pkg
    results = tmp_path / "results"
    counts = run_tables.run("smoke", only="oled", results_dir=results, data_dir=tmp_path / "d",
                            packages=_packages(name))
    out = capsys.readouterr().out
    assert f"skip oled.table3/ped2: UCSD Ped2 not found under {tmp_path / 'd'}/ucsd" in out
    assert f"skip oled.table2: no job registered in {name}.tables" in out
    assert "nre" not in out  # --only=oled
    assert counts == {"done": 3, "cached": 0, "skipped": 1, "not_run": 2}
    assert sorted(_calls(counter)) == ["class0", "class1", "mask", "ucsd"]

    stored = json.loads((results / "cells/smoke/oled.table5/mask.json").read_text())
    assert stored["cells"] == [{"row": "Inlier", "col": "AUCROC", "value": 0.8},
                               {"row": "Outlier", "col": "AUCROC", "value": 0.9}]
    assert stored["seeds"] == [1, 2] and stored["extra"] == {"loss": 0.25} and stored["datasets"] == ["mnist"]
    assert stored["scale"] == "smoke" and stored["wall_time_s"] >= 0 and stored["finished_at"]
    assert not list(results.glob("cells/**/.*"))  # no temporary file left
    assert not (results / "cells/smoke/oled.table3").exists()  # nothing stored for the skipped job

    text = (results / "REPORT.md").read_text()
    assert "| Inlier | 0.8499 / 0.8000 (-0.0499) |" in text
    assert "| Outlier | 0.8472 / 0.9000 (+0.0528) |" in text
    assert "| OLED (Ours) s_rec | 0.9772 / 0.9100 (-0.0672) |" in text  # mean of the 2 parts
    assert "| OLED (Ours) s_rec | 0.9854 / — | 0.0646 / — |" in text  # oled.table3 not filled
    assert "Ours: 2 of 2 cells; scale=smoke, seeds=[1, 2]: 2 cells." in text
    assert '`smoke/mask`: `{"loss": 0.25}`' in text

    # A second run re-uses the finished jobs; --force runs them again.
    run_tables.run("smoke", only="oled.table5", results_dir=results, packages=_packages(name))
    assert "done oled.table5/mask: cached" in capsys.readouterr().out
    assert len(_calls(counter)) == 4
    run_tables.run("smoke", only="oled.table5", results_dir=results, packages=_packages(name), force=True)
    assert _calls(counter)[4:] == ["mask"]


def test_only_filters_jobs_and_missing_packages(fake_pkg, tmp_path, capsys):
    name, counter = fake_pkg
    results = tmp_path / "results"
    run_tables.run("quick", only="oled.table1/class1,nre", results_dir=results, packages=_packages(name))
    out = capsys.readouterr().out
    assert _calls(counter) == ["class1"]
    assert "skip nre.table1: not implemented yet (no package no_such_pkg_nre)" in out
    assert "skip nre.table4: not implemented yet" in out
    assert "oled.table5" not in out and "artifacts" not in out
    text = (results / "REPORT.md").read_text()
    assert "| OLED (Ours) s_rec | 0.9772 / 0.9200 (-0.0572) 1/2 parts |" in text
    with pytest.raises(ConfigError, match="no job 'oled.table1/class7'"):
        run_tables.run("quick", only="oled.table1/class7", results_dir=results, packages=_packages(name))
    with pytest.raises(ConfigError, match="neither a paper"):
        run_tables.run("quick", only="oled.table9", results_dir=results, packages=_packages(name))


def test_report_shows_the_largest_scale(fake_pkg, tmp_path, capsys):
    name, _ = fake_pkg
    results = tmp_path / "results"
    run_tables.run("smoke", only="oled.table5", results_dir=results, packages=_packages(name))
    quick = results / "cells/quick/oled.table5/mask.json"
    record = json.loads((results / "cells/smoke/oled.table5/mask.json").read_text())
    record["scale"] = "quick"
    record["cells"] = record["cells"][:1]
    record["cells"][0]["value"] = 0.85
    record["seeds"] = [0, 1, 2]
    quick.parent.mkdir(parents=True)
    quick.write_text(json.dumps(record))
    (quick.parent / ".mask.json.tmp-1").write_text("{half a fi")  # an interrupted write is ignored
    text = report.render(results)
    assert "| Inlier | 0.8499 / 0.8500 (+0.0001) [quick] |" in text
    assert "| Outlier | 0.8472 / 0.9000 (+0.0528) [smoke] |" in text
    assert "scale=quick, seeds=[0, 1, 2]: 1 cell; scale=smoke, seeds=[1, 2]: 1 cell." in text


def test_import_error_inside_a_package_propagates(tmp_path, monkeypatch):
    pkg = tmp_path / "pkgs" / "fake_broken_pkg_qq"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "tables.py").write_text("import a_module_that_does_not_exist_qq\nJOBS = []\n")
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    try:
        with pytest.raises(ModuleNotFoundError, match="a_module_that_does_not_exist_qq"):
            run_tables.run("smoke", only="oled", results_dir=tmp_path / "r", packages=_packages("fake_broken_pkg_qq"))
        assert (tmp_path / "r" / "REPORT.md").is_file()  # still rendered
    finally:
        for mod in [m for m in sys.modules if m.startswith("fake_broken_pkg_qq")]:
            del sys.modules[mod]


def test_empty_report_lists_every_table_with_paper_numbers(tmp_path):
    text = report.render(tmp_path)
    for t in registry.all_tables().values():
        assert f"### {t.id} — {t.label}" in text
    assert "| OLED (Ours) s_mask | 0.9851 / — |" in text
    assert "| MemAE [9] (cited) | 0.9751 / — |" in text
    assert "| CIFAR-10 0 | 61.7 / — | 74.7 / — | 66.7 / — |" in text
    assert "RotNet [26] (baseline)" in text and "Ours: not run yet." in text
    committed = REPO_ROOT / "results" / "REPORT.md"
    assert committed.is_file()
    if not (REPO_ROOT / "results" / "cells").exists():
        assert committed.read_text(encoding="utf-8") == text


def test_command_lines(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    res = subprocess.run([sys.executable, "-m", "common.run_tables", "--scale=smoke", "--only=oled.table99",
                          f"--results_dir={tmp_path}"], capture_output=True, text=True, env=env, cwd=REPO_ROOT)
    assert res.returncode == 2 and res.stderr.startswith("error: --only: 'oled.table99'"), res.stderr
    res = subprocess.run(["bash", str(REPO_ROOT / "run_all.sh"), "--help"], capture_output=True, text=True)
    assert res.returncode == 0 and "--scale" in res.stdout and "--only" in res.stdout
    # The modules under test import no TensorFlow.
    code = ("import sys, common.run_tables, common.report, common.registry; "
            "common.registry.all_tables(); assert 'tensorflow' not in sys.modules")
    assert subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO_ROOT).returncode == 0


VARIANT_TABLES = """
from common.registry import Job

def run_paper(scale, workdir, data_dir):
    return {("Inlier", "AUCROC"): 0.85}

def run_variant(scale, workdir, data_dir):
    return {("Inlier", "AUCROC"): 0.7}

JOBS = [Job("oled.table5", "mask", [("Inlier", "AUCROC")], run_paper),
        Job("oled.table5", "mask_fmnist", [("Inlier", "AUCROC")], run_variant, variant="fashion_mnist")]
"""


def test_variant_jobs_fill_a_separate_sub_table(tmp_path, monkeypatch, capsys):
    name = f"fake_variant_{abs(hash(str(tmp_path))) % 10**8}"
    pkg = tmp_path / "pkgs" / name
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "tables.py").write_text(VARIANT_TABLES)
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    try:
        run_tables.run("smoke", only="oled.table5", results_dir=tmp_path / "r", packages=_packages(name))
    finally:
        for mod in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[mod]
    stored = json.loads((tmp_path / "r/cells/smoke/oled.table5/mask_fmnist.json").read_text())
    assert stored["variant"] == "fashion_mnist"
    text = (tmp_path / "r/REPORT.md").read_text()
    main, sub = text.split("#### oled.table5: ours on `fashion_mnist`")
    assert "| Inlier | 0.8499 / 0.8500 (+0.0001) |" in main.split("### oled.table5")[1]
    sub = sub.split("###")[0]
    assert "| Inlier | 0.8499 / 0.7000 (-0.1499) |" in sub and "Outlier" not in sub
    # The same cell may be filled once per variant, but not twice within one.
    from common.registry import Job, validate_jobs
    f = lambda *a: {}
    validate_jobs([Job("oled.table5", "a", [("Inlier", "AUCROC")], f),
                   Job("oled.table5", "b", [("Inlier", "AUCROC")], f, variant="mnist5k")])
    with pytest.raises(ValueError, match="variant mnist5k"):
        validate_jobs([Job("oled.table5", "a", [("Inlier", "AUCROC")], f, variant="mnist5k"),
                       Job("oled.table5", "b", [("Inlier", "AUCROC")], f, variant="mnist5k")])


# ------------------------------------------------------------------------------- seeds and rows the report adds

SEED_TABLES = """
import json
from pathlib import Path
from common.registry import FLOOR_ROW, Job, JobResult

COUNTER = Path({counter!r})

def part(k):
    def run(scale, workdir, data_dir, seed=0):
        calls = json.loads(COUNTER.read_text()) if COUNTER.exists() else []
        COUNTER.write_text(json.dumps(calls + [[k, seed, str(workdir)]]))
        return JobResult({{("OLED (Ours) s_rec", "AUCROC"): 0.9 + 0.02 * k + 0.01 * seed,
                           (FLOOR_ROW, "AUCROC"): 0.7 + 0.1 * k}}, extra={{"seed_seen": seed}})
    return run

JOBS = [Job("oled.table1", f"class{{k}}", [("OLED (Ours) s_rec", "AUCROC"), (FLOOR_ROW, "AUCROC")], part(k),
            n_parts=2) for k in range(2)]
"""


def test_seeds_per_cell_mean_sd_and_the_floor_row(tmp_path, monkeypatch, capsys):
    name = f"fake_seeds_{abs(hash(str(tmp_path))) % 10**8}"
    pkg = tmp_path / "pkgs" / name
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    counter = tmp_path / "calls.json"
    (pkg / "tables.py").write_text(SEED_TABLES.format(counter=str(counter)))
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    results = tmp_path / "r"
    try:
        # A result of an older single-seed run (no per-seed values) is kept as seed 0; only seed 1 runs.
        run_tables.run("smoke", only="oled.table1", results_dir=results, packages=_packages(name))
        old = json.loads((results / "cells/smoke/oled.table1/class0.json").read_text())
        for c in old["cells"]:
            del c["per_seed"]
        (results / "cells/smoke/oled.table1/class0.json").write_text(json.dumps(old))
        text = (results / "REPORT.md").read_text()
        assert "| OLED (Ours) s_rec | 0.9772 / 0.9100 (-0.0672) |" in text  # one seed: rendered as before
        assert "| PCA-20 floor (ours) | – / 0.7500 |" in text
        assert "Ours: 1 of 10 cells; scale=smoke, seeds=[0]: 1 cell." in text  # the floor row is not counted
        counter.unlink()
        run_tables.run("smoke", only="oled.table1", results_dir=results, packages=_packages(name), seeds="0,1")
        calls = json.loads(counter.read_text())
        assert [(k, s) for k, s, _ in calls] == [(0, 1), (1, 1)]
        assert calls[0][2].endswith("oled.table1/class0-seed1")
        stored = json.loads((results / "cells/smoke/oled.table1/class1.json").read_text())
        assert stored["seeds"] == [0, 1] and stored["extra"] == {"seed0": {"seed_seen": 0}, "seed1": {"seed_seen": 1}}
        assert stored["cells"][0]["per_seed"] == {"0": 0.92, "1": 0.93}
        assert stored["cells"][0]["value"] == pytest.approx(0.925)
        # Per-seed means over the 2 parts: 0.91 and 0.92 -> 0.915 +- 0.0071 (sample SD).
        text = (results / "REPORT.md").read_text()
        assert "| OLED (Ours) s_rec | 0.9772 / 0.9150 ± 0.0071 (2 seeds) (-0.0622) |" in text
        assert "| PCA-20 floor (ours) | – / 0.7500 ± 0.0000 (2 seeds) |" in text
        assert 'Row "PCA-20 floor (ours)" is not in the paper' in text
        # Cached per seed: a third seed runs only seed 2; a run without --seeds reuses everything.
        run_tables.run("smoke", only="oled.table1", results_dir=results, packages=_packages(name), seeds=(0, 1, 2))
        assert [(k, s) for k, s, _ in json.loads(counter.read_text())[2:]] == [(0, 2), (1, 2)]
        run_tables.run("smoke", only="oled.table1", results_dir=results, packages=_packages(name))
        assert len(json.loads(counter.read_text())) == 4
        assert "| OLED (Ours) s_rec | 0.9772 / 0.9200 ± 0.0100 (3 seeds) (-0.0572) |" in \
            (results / "REPORT.md").read_text()
    finally:
        for mod in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[mod]
    capsys.readouterr()
    with pytest.raises(ConfigError, match="--seeds"):
        run_tables.parse_seeds("0,x")
    with pytest.raises(ConfigError, match="distinct"):
        run_tables.parse_seeds("1,1")
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    res = subprocess.run([sys.executable, "-m", "common.run_tables", "--scale=smoke", "--seeds=-1",
                          f"--results_dir={tmp_path / 'r2'}"], capture_output=True, text=True, env=env, cwd=REPO_ROOT)
    assert res.returncode == 2 and res.stderr.startswith("error: --seeds='-1'"), res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "r2" / "cells").exists()


def test_rows_the_report_adds_are_accepted_only_by_name():
    f = lambda *a: {}  # noqa: E731
    registry.validate_jobs([Job("oled.table3", "a", [(registry.FLOOR_ROW, "EER")], f)])
    with pytest.raises(ValueError, match="does not have"):
        registry.validate_jobs([Job("oled.table3", "a", [("PCA-30 floor (ours)", "EER")], f)])
    with pytest.raises(ValueError, match="does not have"):
        registry.validate_jobs([Job("oled.table3", "a", [(registry.FLOOR_ROW, "F1")], f)])
    assert Job("oled.table3", "a", [(registry.FLOOR_ROW, "EER")], f).needed_datasets() == ("ucsd_ped2",)
    assert registry.takes_seed(lambda scale, workdir, data_dir, seed=0: {})
    assert not registry.takes_seed(lambda scale, workdir, data_dir: {})


def test_columns_the_report_adds_render_right_of_the_papers_and_do_not_count():
    from common.report import render_table

    table = registry.get_table("permutation.table2")
    assert table.added_column_names == ["Count [38]", "Inpaint [36]"]
    f = lambda *a: {}  # noqa: E731
    registry.validate_jobs([Job("permutation.table2", "a", [("Fashion-MNIST 3", "Count [38]"),
                                                              (registry.FLOOR_ROW, "Count [38]")], f)])
    with pytest.raises(ValueError, match="does not have"):  # an added column still needs a known row
        registry.validate_jobs([Job("permutation.table2", "a", [("Fashion-MNIST 12", "Count [38]")], f)])
    with pytest.raises(ValueError, match="does not have"):  # only the added columns this table lists
        registry.validate_jobs([Job("permutation.table2", "a", [("Fashion-MNIST 3", "Color [25]")], f)])
    res = {"table": "permutation.table2", "scale": "quick", "job": "count_class3", "n_parts": 1, "seeds": [0],
           "cells": [("Fashion-MNIST 3", "Count [38]", 81.25), ("Fashion-MNIST 3", "Jigsaw [35]", 90.0)]}
    text = render_table(table, [res])
    assert "| Jigsaw [35] (baseline) | RotNet [26] (baseline) | Count [38] (added) |" in text
    assert "| 90.7 / 90.0 (-0.7) | 90.4 / — | – / 81.2 |" in text
    assert "Inpaint [36] (added)" not in text  # an added column without results is not shown
    assert "Ours: 1 of 55 cells" in text and 'Column "Count [38]" (added) is not in the paper' in text
