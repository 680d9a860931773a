"""Low-level file helpers shared by the dataset readers: locating files, checked reads, downloads, IDX, pickles.

Every failure a user can fix (a missing, truncated or corrupt file, a failed download) is raised as
:class:`common.errors.DataError` with ONE line naming the path, what was expected and where to get it.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from common.errors import DataError

# Environment variable that turns every automatic download off (tests, offline clusters).
NO_DOWNLOAD_ENV = "REPRO_NO_DOWNLOAD"
DOWNLOAD_TIMEOUT_S = 60


def downloads_allowed(download: bool) -> bool:
    """``download`` unless the environment variable ``REPRO_NO_DOWNLOAD`` is set to a non-empty, non-0 value."""
    env = os.environ.get(NO_DOWNLOAD_ENV, "")
    return bool(download) and env in ("", "0")


def first_existing(candidates: Iterable[Path]) -> Path | None:
    for c in candidates:
        if c.exists():
            return c
    return None


def dedupe(paths: Iterable[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p not in out:
            out.append(p)
    return out


def fmt_paths(paths: Sequence[Path]) -> str:
    return " or ".join(str(p) for p in paths)


def read_bytes(path: Path, hint: str = "") -> bytes:
    """Read a file, transparently gunzipping ``*.gz``; truncated / corrupt gzip streams become DataError.

    ``hint`` ("; re-download it from URL") ends the error message.
    """
    hint = hint or "; re-download it"
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except EOFError as e:
        raise DataError(f"{path} is truncated (the gzip stream ends early: {e}){hint}") from None
    except (gzip.BadGzipFile, zlib.error) as e:
        raise DataError(f"{path} is corrupt (not a valid gzip file: {e}){hint}") from None
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from None


def file_digest(path: Path, algo: str) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_checksum(path: Path, md5: str | None, url: str = "") -> None:
    """Raise DataError if the md5 of ``path`` differs from the published ``md5`` (``None``: no check)."""
    if not md5:
        return
    got = file_digest(path, "md5")
    if got != md5:
        raise DataError(f"{path} has md5 {got} but the published md5 is {md5} (truncated or corrupt "
                        f"download); delete it and download it again{' from ' + url if url else ''}")


def download(urls: Sequence[str], dest: Path, md5: str | None, context: str = "", alternative: str = "") -> Path:
    """Download the first working URL of ``urls`` to ``dest`` (temp file + rename), verifying ``md5``.

    Raises DataError (one line: ``context``, the last reason, where to put the file by hand, then ``", or
    <alternative>"`` if given); folders it created for a download that failed are removed again.
    """
    dest = Path(dest)
    created = [p for p in [dest.parent, *dest.parent.parents] if not p.exists()]
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create {dest.parent} to download {dest.name} into: {e.strerror or e}; "
                        f"pass a writable --data_dir") from None
    reasons = []
    for url in urls:
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                req = urllib.request.Request(url, headers={"User-Agent": "repro-datasets/1.0"})
                with urllib.request.urlopen(req, timeout=DOWNLOAD_TIMEOUT_S) as resp:
                    shutil.copyfileobj(resp, out, 1 << 20)
            if md5:
                got = file_digest(Path(tmp), "md5")
                if got != md5:
                    raise ValueError(f"md5 {got} != published {md5}")
            os.replace(tmp, dest)
            return dest
        except (urllib.error.URLError, OSError, ValueError) as e:
            reason = getattr(e, "reason", None) or e
            reasons.append(f"{url}: {reason}")
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    for p in created:  # innermost first
        try:
            p.rmdir()
        except OSError:
            break
    raise DataError(f"{context + '; ' if context else ''}download failed ({reasons[-1]}); download {dest.name} "
                    f"by hand from {urls[0]} and put it at {dest}{', or ' + alternative if alternative else ''}")


def extract_tar(archive: Path, into: Path, md5: str | None = None, url: str = "") -> None:
    """Verify ``md5`` then extract a .tar/.tar.gz archive into ``into`` (rejecting unsafe member paths)."""
    check_checksum(archive, md5, url)
    try:
        with tarfile.open(archive) as tf:
            if hasattr(tarfile, "data_filter"):
                tf.extractall(into, filter="data")
            else:  # pragma: no cover - Python < 3.11.4
                for m in tf.getmembers():
                    if m.name.startswith(("/", "..")) or ".." in Path(m.name).parts:
                        raise DataError(f"{archive} contains an unsafe path {m.name!r}; not extracting it")
                tf.extractall(into)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise DataError(f"{archive} is truncated or corrupt ({e}); delete it and download it again"
                        f"{' from ' + url if url else ''}") from None


# ------------------------------------------------------------------------------------------------------ IDX
_IDX_DTYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def parse_idx(data: bytes, path: Path, hint: str = "") -> np.ndarray:
    """Decode an IDX file (http://yann.lecun.com/exdb/mnist/, "FILE FORMATS"): magic, big-endian dims, data."""
    if len(data) < 4:
        raise DataError(f"{path} is truncated: expected an IDX header, found {len(data)} bytes{hint}")
    zero, code, ndim = int.from_bytes(data[0:2], "big"), data[2], data[3]
    if zero != 0 or code not in _IDX_DTYPES or ndim == 0:
        raise DataError(f"{path} is not an IDX file (magic bytes {data[:4].hex()}){hint}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path} is truncated: expected a {header}-byte IDX header, found {len(data)} bytes{hint}")
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_DTYPES[code]
    expected = header + int(np.prod(dims)) * dtype.itemsize
    if len(data) < expected:
        raise DataError(f"{path} is truncated: expected {expected} bytes (header says {dims}), found "
                        f"{len(data)}{hint}")
    if len(data) > expected:
        raise DataError(f"{path} is corrupt: expected {expected} bytes (header says {dims}), found "
                        f"{len(data)}{hint}")
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path: Path, hint: str = "") -> np.ndarray:
    return parse_idx(read_bytes(Path(path), hint), Path(path), hint)


# ---------------------------------------------------------------------------------------------- pickles
class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler for the CIFAR python batches: plain containers and numpy arrays only, nothing executable."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"), ("_codecs", "encode"),
    }

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            if module.startswith("numpy.core"):
                module = "numpy._core" + module[len("numpy.core"):]
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"unexpected object {module}.{name} in the pickle")


def read_pickle_dict(path: Path, hint: str = "") -> dict:
    """Load a CIFAR-style python pickle (Python 2 ``cPickle``, byte keys) into a dict with ``str`` keys."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        obj = _NumpyOnlyUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except EOFError:
        raise DataError(f"{path} is truncated: the pickle ends early after {len(raw)} bytes{hint}") from None
    except (pickle.UnpicklingError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            UnicodeDecodeError, MemoryError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        kind = "truncated" if "truncated" in msg or "not enough" in msg or "ran out" in msg else "corrupt"
        raise DataError(f"{path} is {kind} or not a CIFAR python pickle ({msg}){hint}") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path} is not a CIFAR python batch (a {type(obj).__name__}, not a dict){hint}")
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}


def decode_names(values) -> list[str]:
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]
