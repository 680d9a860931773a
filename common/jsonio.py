"""Atomic JSON / text files (temporary file, then rename), so an interrupted run never leaves a file that looks
like a result. Imported by :mod:`common.config` and :mod:`common.run_identity` alike (it imports neither)."""
from __future__ import annotations

import dataclasses
import json
import os
import sys
import tempfile
from pathlib import Path


def to_jsonable(obj):
    """``obj`` with paths, numpy scalars / arrays, tuples and dataclasses turned into JSON values (numpy is not
    imported here: where it is not loaded there are no numpy values, and the plan of ``run_all.sh --dry_run``
    needs no third-party package)."""
    np = sys.modules.get("numpy")
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if np is not None and isinstance(obj, np.generic):
        return obj.item()
    if np is not None and isinstance(obj, np.ndarray):
        return obj.tolist()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    return obj


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` via a temporary file and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_json_atomic(obj, path: str | os.PathLike) -> Path:
    """Write ``obj`` as indented JSON to ``path`` via a temporary file and an atomic rename."""
    return write_text_atomic(path, json.dumps(to_jsonable(obj), indent=2, sort_keys=True, allow_nan=True) + "\n")
