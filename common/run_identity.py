"""Run identity: which configuration and which code made the state in a workdir, and loading frozen networks
from an earlier run, checked by hash.

A run's workdir holds ``identity.json``::

    {"format": 1, "method": "oled", "config_hash": "<sha256 of the result fields>", "config": {<result fields>},
     "code": {"sources": "<sha256 of the imported sources>", "modules": [...], "git": "<git describe or null>"},
     "created_at": "...", "weights": {"<name>": {"file": "<name>.weights.h5", "sha256": "..."}}}

*Result fields* are every field of the resolved config except those that cannot change a number the run
produces (:data:`NOT_RESULT_FIELDS`: where the run writes, whether it resumes, figures). The *code version* is
a hash of the ``.py`` files the run imports (:func:`code_modules`: the config's ``CODE_ROOTS`` and every
project module they import, read from the sources), so it works without git; ``git
describe`` is recorded beside it for people, not compared.

:func:`prepare_workdir` (called by :func:`common.training.start_run` before anything is read or trained)
compares the identity in ``--workdir`` with the current run's:

* no state, or the same identity with ``--resume`` (the default): the run continues from what is there;
* the same identity with ``--noresume``, or ``--force``: the old state is moved aside into
  ``<workdir>/stale-<UTC time>/`` and the run starts fresh (nothing is deleted);
* another identity, or state without an identity (made before run identity existed): refused with one line
  (:class:`common.errors.ConfigError`) naming the fields that differ; ``--force`` or another ``--workdir``.

``identity.json`` and ``config.json`` are written by :func:`commit` when the run first produces something (its
first checkpoint or its metrics), so a run that fails before that leaves no file that looks like a run.

A later stage loads a frozen network of an earlier run with :func:`load_frozen_weights`; the earlier run
saved it with :func:`save_frozen_weights`, which records the file's sha256 in its identity. Put
:func:`frozen_weights_id` of every upstream network into a config field of the downstream run, so that the
downstream identity changes when an upstream run is retrained.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

from common.errors import ConfigError
from common.jsonio import to_jsonable, write_json_atomic
from common.paths import REPO_ROOT

IDENTITY_FILE = "identity.json"
STALE_PREFIX = "stale-"
FORMAT = 1
# Fields of common.config.RunConfig that never change a result (a subclass may add its own in
# ``NOT_RESULT_FIELDS``, a ClassVar tuple).
NOT_RESULT_FIELDS = frozenset({"workdir", "export_dir", "resume", "force", "figures"})
# What marks a directory as holding a run's state (searched two levels deep): used to refuse state of unknown
# identity. Leftovers of a run that failed before its first checkpoint (tb/, an empty selection/) are not state.
_STATE_MARKERS = ("config.json", "metrics.json", "checkpoint", "backup")


# ------------------------------------------------------------------------------------------------- hashing
def result_fields(config) -> dict:
    """The resolved config's fields that can change a result, plus ``method``, as JSON values."""
    skip = NOT_RESULT_FIELDS | set(getattr(config, "NOT_RESULT_FIELDS", ()))
    values = {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if f.name not in skip}
    return to_jsonable({"method": config.method, **values})


def _digest(obj) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()


def config_hash(config) -> str:
    """sha256 (hex) of :func:`result_fields`."""
    return _digest(result_fields(config))


def code_roots(config) -> tuple[str, ...]:
    """The modules a run of ``config`` starts from: its config class's ``CODE_ROOTS`` (the package's library
    modules) and the config's own module; without ``CODE_ROOTS``, every module of the config's package."""
    module = type(config).__module__
    roots = tuple(getattr(config, "CODE_ROOTS", ()))
    if not roots:
        pkg = module.split(".", 1)[0]
        roots = tuple(".".join(p.relative_to(REPO_ROOT).with_suffix("").parts)
                      for p in sorted((REPO_ROOT / pkg).rglob("*.py")) if "__pycache__" not in p.parts)
    return tuple(dict.fromkeys((*roots, module)))


def _module_file(name: str) -> Path | None:
    """The ``.py`` file of project module ``name`` (a package: its ``__init__.py``), or None when ``name`` is
    not a module of this repository (the standard library, TensorFlow, ...)."""
    base = REPO_ROOT.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imported_names(path: Path, module: str) -> set[str]:
    """Every module named by an ``import`` statement anywhere in ``path`` (inside functions too), with
    ``from pkg import name`` giving both ``pkg`` and ``pkg.name`` (``name`` may be a submodule)."""
    import ast

    tree = ast.parse(path.read_bytes(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names)
    return names


def code_modules(roots) -> dict[str, Path]:
    """The project modules a run imports: ``roots`` and, transitively, every project module named by an import
    statement of one of them (parent packages included), found by reading the sources, not by importing them.
    Modules nothing here imports (the report, run_tables, other packages) are left out, so editing
    them leaves every workdir resumable."""
    found: dict[str, Path] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in found:
            continue
        path = _module_file(name)
        if path is None:
            continue
        found[name] = path
        parents = [name.rsplit(".", i)[0] for i in range(1, name.count(".") + 1)]
        todo += [n for n in (*parents, *_imported_names(path, name)) if n not in found]
    return found


def source_hash(roots) -> str:
    """sha256 over the relative paths and bytes of the ``.py`` files of :func:`code_modules` of ``roots``."""
    h = hashlib.sha256()
    for path in sorted(set(code_modules(roots).values())):
        h.update(str(path.relative_to(REPO_ROOT)).encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


def _git_describe() -> str | None:
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--tags"], cwd=REPO_ROOT,
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None


def code_version(roots) -> dict:
    """``{"sources": sha256, "modules": [...], "git": describe or None}`` (only ``sources`` is compared)."""
    return {"sources": source_hash(roots), "modules": sorted(code_modules(roots)), "git": _git_describe()}


def identity(config) -> dict:
    """The identity record of a resolved config (without ``created_at`` / ``weights``)."""
    return {"format": FORMAT, "method": config.method, "config_hash": config_hash(config),
            "config": result_fields(config), "code": code_version(code_roots(config))}


def short_hash(config, n: int = 8) -> str:
    """The first ``n`` hex digits of :func:`config_hash` (used in default workdir names)."""
    return config_hash(config)[:n]


# -------------------------------------------------------------------------------------------- the workdir
def read_identity(run_dir) -> dict | None:
    """``<run_dir>/identity.json`` or None when there is none; a corrupt file is a ConfigError."""
    path = Path(run_dir) / IDENTITY_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror}") from None
    try:
        ident = json.loads(text)
        ident["config_hash"], ident["code"]["sources"], ident["config"]  # noqa: B018 (shape check)
    except (ValueError, KeyError, TypeError):
        raise ConfigError(f"{path} is not a run identity file (corrupt?); use --force to move the run aside or "
                          "choose another --workdir") from None
    return ident


def _has_state(workdir: Path) -> bool:
    """True when ``workdir`` holds a run's files (identity, config, metrics or checkpoints), two levels deep."""
    if not workdir.is_dir():
        return False
    top = [p for p in workdir.iterdir() if not p.name.startswith(STALE_PREFIX)]
    names = {p.name for p in top} | {q.name for p in top if p.is_dir() for q in p.iterdir()}
    return IDENTITY_FILE in names or any(m in names for m in _STATE_MARKERS)


def describe_difference(old: dict, new: dict, limit: int = 8) -> str:
    """``"seed: 0 -> 5, mask: 'learned' -> 'random'; code: sources 1a2b3c4d -> 5e6f7a8b"`` (old -> new)."""
    parts = []
    oc, nc = old.get("config", {}), new.get("config", {})
    for k in sorted(set(oc) | set(nc)):
        if oc.get(k, "<unset>") != nc.get(k, "<unset>"):
            parts.append(f"{k}: {oc.get(k, '<unset>')!r} -> {nc.get(k, '<unset>')!r}")
    shown = ", ".join(parts[:limit]) + (f" and {len(parts) - limit} more" if len(parts) > limit else "")
    o_src, n_src = old.get("code", {}).get("sources", "?"), new.get("code", {}).get("sources", "?")
    if o_src != n_src:
        o_git = old.get("code", {}).get("git")
        code = f"code: sources {o_src[:8]}{f' (git {o_git})' if o_git else ''} -> {n_src[:8]}"
        shown = f"{shown}; {code}" if shown else code
    return shown


def move_aside(workdir) -> Path | None:
    """Move everything in ``workdir`` except earlier ``stale-*`` folders into ``<workdir>/stale-<UTC time>/``;
    returns that folder (None when there was nothing to move)."""
    workdir = Path(workdir)
    if not workdir.is_dir():
        return None
    entries = [p for p in workdir.iterdir() if not p.name.startswith(STALE_PREFIX)]
    if not entries:
        return None
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    target, n = workdir / f"{STALE_PREFIX}{stamp}", 1
    while target.exists():
        n += 1
        target = workdir / f"{STALE_PREFIX}{stamp}-{n}"
    target.mkdir()
    for p in entries:
        shutil.move(str(p), str(target / p.name))
    return target


@dataclasses.dataclass
class _ActiveRun:
    config: object
    workdir: Path
    identity: dict
    committed: bool = False


_ACTIVE: _ActiveRun | None = None


def same_run(old: dict | None, new: dict) -> bool:
    """Whether the identity record ``old`` (or None) names the same config and code version as ``new``."""
    return old is not None and old["config_hash"] == new["config_hash"] \
        and old["code"]["sources"] == new["code"]["sources"]


def finished_metrics(config) -> dict | None:
    """The ``metrics.json`` of a finished run of exactly this resolved config and code version in
    ``config.workdir`` (its identity: :func:`same_run`), else None. Lets a table job re-read a finished run
    instead of training it again; state of another config or code is never re-read."""
    workdir = Path(config.workdir)
    if not same_run(read_identity(workdir), identity(config)):
        return None
    try:
        return json.loads((workdir / "metrics.json").read_text())
    except (OSError, ValueError):
        return None


def prepare_workdir(config, workdir=None) -> bool:
    """Check ``workdir`` (default ``config.workdir``) against ``config`` before the run reads or trains anything
    (see the module docstring); returns True when the run will resume this config's state. Makes the run the
    active one for :func:`commit`."""
    global _ACTIVE
    workdir = Path(workdir or config.workdir)
    new = identity(config)
    old = read_identity(workdir)
    force, resume = bool(getattr(config, "force", False)), bool(getattr(config, "resume", True))
    resuming = False
    if _has_state(workdir):
        same = same_run(old, new)
        if same and resume and not force:
            resuming = True
        elif same or force:
            moved = move_aside(workdir)
            if moved is not None:
                print(f"{'--force' if force else '--noresume'}: moved the previous contents of {workdir} to "
                      f"{moved}; training starts fresh", flush=True)
        elif old is None:
            raise ConfigError(f"--workdir {workdir} holds a run without an identity record (made before run "
                              f"identity existed, or not a run of this repository), so it cannot be resumed safely; "
                              f"use --force to move it aside and start fresh, or choose another --workdir")
        else:
            raise ConfigError(f"--workdir {workdir} holds a run of another configuration "
                              f"({describe_difference(old, new)}); resuming it would mix the two: use --force to "
                              f"move it aside into {workdir}/{STALE_PREFIX}<time>/ and start fresh, or choose "
                              f"another --workdir")
    _ACTIVE = _ActiveRun(config, workdir, new, committed=resuming)
    if resuming:
        write_json_atomic(config.to_dict(), workdir / "config.json")  # the latest invocation's output flags (export_dir, ...)
    return resuming


def commit(path=None) -> None:
    """Write ``config.json`` and ``identity.json`` of the active run (once per run); a no-op when there is no
    active run or ``path`` lies outside its workdir. Called before the first checkpoint and by
    :func:`common.config.write_metrics`."""
    run = _ACTIVE
    if run is None or run.committed or (path is not None and not _inside(path, run.workdir)):
        return
    record = {**run.identity, "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
              "weights": {}}
    write_json_atomic(run.config.to_dict(), run.workdir / "config.json")
    write_json_atomic(record, run.workdir / IDENTITY_FILE)
    run.committed = True


def _inside(path, root: Path) -> bool:
    try:
        Path(path).resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


# ---------------------------------------------------------------------------------------- frozen weights
def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_frozen_weights(run_dir, name: str, model) -> Path:
    """Save ``model``'s weights as ``<run_dir>/<name>.weights.h5`` (temporary file, then rename) and record the
    file's sha256 under ``weights[name]`` in the run's identity (written first if the run has not committed)."""
    run_dir = Path(run_dir)
    commit(run_dir)
    ident = read_identity(run_dir)
    if ident is None:
        raise ConfigError(f"{run_dir} has no {IDENTITY_FILE}: save frozen weights from inside a run "
                          f"(common.training.start_run)")
    path = run_dir / f"{name}.weights.h5"
    tmp = run_dir / f".{name}.{os.getpid()}.tmp.weights.h5"
    model.save_weights(str(tmp))
    os.replace(tmp, path)
    ident.setdefault("weights", {})[name] = {"file": path.name, "sha256": file_sha256(path)}
    write_json_atomic(ident, run_dir / IDENTITY_FILE)
    return path


def frozen_weights_id(run_dir, name: str) -> str:
    """``"<config_hash[:16]>:<weights sha256[:16]>"`` of network ``name`` of the run in ``run_dir``: put it in a
    config field of the run that loads it, so that retraining the upstream run changes the downstream identity."""
    ident, entry, _ = _frozen_entry(run_dir, name)
    return f"{ident['config_hash'][:16]}:{entry['sha256'][:16]}"


def _frozen_entry(run_dir, name: str):
    run_dir = Path(run_dir)
    ident = read_identity(run_dir)
    if ident is None:
        raise ConfigError(f"{run_dir} is not a run directory of this repository (no {IDENTITY_FILE}); pass the "
                          f"--workdir of the earlier run")
    weights = ident.get("weights", {})
    if name not in weights:
        raise ConfigError(f"the run in {run_dir} recorded no frozen network {name!r} (it recorded: "
                          f"{', '.join(sorted(weights)) or 'none'}); did that run finish?")
    return ident, weights[name], run_dir / weights[name]["file"]


def load_frozen_weights(run_dir, model, name: str, expected: dict | None = None) -> dict:
    """Load network ``name`` saved by :func:`save_frozen_weights` in the earlier run ``run_dir`` into ``model``.

    Checks, each failure being one-line :class:`common.errors.ConfigError`: ``run_dir`` has an identity; every
    key of ``expected`` matches (``method`` against the run's method, any other key against its resolved
    config, e.g. ``{"method": "artifacts_ae", "dataset": "stl10", "seed": 0}``); the weights file exists and its
    sha256 is the one the run recorded. Returns the earlier run's identity record (for provenance)."""
    ident, entry, path = _frozen_entry(run_dir, name)
    if expected:
        have = {"method": ident.get("method"), **ident["config"]}
        bad = [f"{k}: expected {v!r}, the run has {have.get(k, '<unset>')!r}" for k, v in sorted(expected.items())
               if have.get(k, "<unset>") != v]
        if bad:
            raise ConfigError(f"the run in {run_dir} is not the one expected for {name!r} ({', '.join(bad)}); "
                              f"pass the --workdir of a matching run")
    if not path.is_file():
        raise ConfigError(f"{path} is missing although the run in {run_dir} recorded it; re-run that stage")
    digest = file_sha256(path)
    if digest != entry["sha256"]:
        raise ConfigError(f"{path} changed after the run recorded it (sha256 {digest[:12]} != recorded "
                          f"{entry['sha256'][:12]}); re-run that stage or restore the file")
    model.load_weights(str(path))
    return ident
