"""SavedModel export in the layout TF Serving loads, and a check that the export reloads in a fresh process.

Layout: ``<export_dir>/<model_name>/<version>/{saved_model.pb, variables/}`` with an integer version (the
server serves the highest). The ``serving_default`` signature takes one float32 tensor named ``images``
(``frames`` for video) of shape ``[batch, ...]`` with any batch size, and returns a dict of named outputs
that contains at least ``anomaly_score``. Further named signatures (:class:`Signature`) can sit beside it,
e.g. OLED on UCSD: ``serving_default`` takes ``frames`` and a ``patches`` signature takes ``images``. Those
names are the REST contract::

    POST /v1/models/<model_name>:predict  {"inputs": {"images": [...]}}  ->  {"outputs": {"anomaly_score": ...}}
    POST /v1/models/<model_name>:predict  {"signature_name": "patches", "inputs": {"images": [...]}}

The export is written to a temporary folder and renamed when complete, so a failed export never leaves a
version folder behind that TF Serving would pick up.

``python -m common.export --saved_model=DIR --inputs=x.npy --output=out.npz [--signature=NAME --input_name=N]``
loads ``DIR`` with ``tf.saved_model.load`` (no Keras, no project code), calls the signature on the inputs and
saves every output: :func:`check_export` runs it in a fresh process and compares with the in-process model.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from common.errors import ReproError


METADATA_FILE = "assets.extra/export.json"


def read_metadata(version_dir) -> dict | None:
    """The ``assets.extra/export.json`` of an export version folder, or None (an export without one)."""
    import json

    try:
        return json.loads((Path(version_dir) / METADATA_FILE).read_text())
    except (OSError, ValueError):
        return None


def find_same_export(export_dir, model_name: str, metadata: dict) -> Path | None:
    """The highest version of ``<export_dir>/<model_name>`` when its metadata equals ``metadata`` (same weights
    digest, signatures and preprocessing): exporting it again would only add a copy. None otherwise."""
    model_dir = Path(export_dir) / model_name
    latest = next_version(model_dir) - 1
    if latest < 1:
        return None
    path = model_dir / str(latest)
    return path if read_metadata(path) == json_roundtrip(metadata) else None


def json_roundtrip(obj):
    """``obj`` as it reads back from a JSON file (tuples become lists, numpy scalars numbers)."""
    import json

    from common.jsonio import to_jsonable

    return json.loads(json.dumps(to_jsonable(obj), sort_keys=True))


def next_version(model_dir: Path) -> int:
    """1 + the highest integer version folder already in ``model_dir`` (1 when there is none)."""
    versions = [int(p.name) for p in model_dir.glob("*") if p.is_dir() and p.name.isdigit()] if model_dir.exists() else []
    return max(versions, default=0) + 1


@dataclasses.dataclass(frozen=True)
class Signature:
    """One exported signature: ``fn`` maps one float32 tensor named ``input_name`` of shape ``[batch,
    *input_shape]`` (``None`` = any size) to a dict of named tensors."""

    fn: Callable
    input_shape: tuple
    input_name: str = "images"


def export_saved_model(model, serve_fn: Callable | None, export_dir: str | os.PathLike, model_name: str,
                       input_shape: tuple | None = None, input_name: str = "images", version: int | None = None,
                       signatures: dict[str, Signature] | None = None, metadata: dict | None = None) -> Path:
    """Export ``serve_fn`` (a function of one float32 batch returning a dict of tensors) as ``serving_default``,
    plus every entry of ``signatures`` (``{name: Signature}``; a ``"serving_default"`` entry there replaces
    ``serve_fn``, which may then be None).

    ``model`` is the Keras model (or list of layers/models) whose variables the functions use; it must be
    built. ``metadata`` (JSON) is written to ``<version>/assets.extra/export.json`` (:data:`METADATA_FILE`;
    TF Serving ignores it): what a client needs to know that the graph does not say, e.g. the input range.
    Returns the version folder.
    """
    import keras
    import tensorflow as tf

    sigs = dict(signatures or {})
    if serve_fn is not None:
        sigs = {"serving_default": Signature(serve_fn, tuple(input_shape), input_name), **sigs}
    if "serving_default" not in sigs:
        raise ValueError("an export needs a serving_default signature")
    model_dir = Path(export_dir) / model_name
    version = next_version(model_dir) if version is None else int(version)
    final = model_dir / str(version)
    if final.exists():
        raise ReproError(f"export folder {final} already exists; choose another --export_dir or version")
    model_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=model_dir, prefix=f".{version}.tmp"))
    try:
        archive = keras.export.ExportArchive()
        for m in (model if isinstance(model, (list, tuple)) else [model]):
            archive.track(m)
        for name, sig in sigs.items():
            spec = tf.TensorSpec((None, *sig.input_shape), tf.float32, name=sig.input_name)
            archive.add_endpoint(name=name, fn=sig.fn, input_signature=[spec])
        archive.write_out(str(tmp), verbose=False)
        if metadata is not None:
            from common.jsonio import write_json_atomic

            write_json_atomic(metadata, tmp / METADATA_FILE)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


# Where check_export reloads an export. True (always, in the runs): a fresh Python process, as TF Serving would,
# with no state of this one. The paper-size network tests set it to False (the same comparison after a
# tf.saved_model.load in this process): what they check is shapes and dtypes at the paper's sizes, and the
# fresh-process reload itself is tested on every method's smoke-size export.
FRESH_PROCESS = True


def _reload_outputs(saved_model_dir, inputs, input_name: str, signature: str) -> dict[str, np.ndarray]:
    """The outputs of ``signature`` of the reloaded export on ``inputs`` (see :data:`FRESH_PROCESS`)."""
    if not FRESH_PROCESS:
        import tensorflow as tf

        fn = tf.saved_model.load(str(saved_model_dir)).signatures[signature]
        return {k: v.numpy() for k, v in fn(**{input_name: tf.constant(np.asarray(inputs, np.float32))}).items()}
    with tempfile.TemporaryDirectory() as tmp:
        x_path, out_path = Path(tmp) / "x.npy", Path(tmp) / "out.npz"
        np.save(x_path, np.asarray(inputs, np.float32))
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        proc = subprocess.run([sys.executable, "-m", "common.export", f"--saved_model={saved_model_dir}",
                               f"--inputs={x_path}", f"--output={out_path}", f"--input_name={input_name}",
                               f"--signature={signature}"],
                              capture_output=True, text=True, env=env,
                              cwd=str(Path(__file__).resolve().parent.parent))
        if proc.returncode != 0:
            raise ReproError(f"reloading {saved_model_dir} in a fresh process failed: "
                             f"{proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}")
        return dict(np.load(out_path))


def check_export(saved_model_dir: str | os.PathLike, inputs: np.ndarray, expected: dict[str, np.ndarray],
                 input_name: str = "images", atol: float = 1e-4, rtol: float = 1e-4,
                 signature: str = "serving_default") -> dict[str, float]:
    """Reload the export in a fresh Python process, run ``signature`` on ``inputs`` and compare every output
    named in ``expected``. Returns the max absolute difference per output; raises ReproError on a mismatch or a
    missing output."""
    got = _reload_outputs(saved_model_dir, inputs, input_name, signature)
    diffs = {}
    for name, want in expected.items():
        if name not in got:
            raise ReproError(f"export {saved_model_dir} ({signature}) has no output {name!r}; it has {sorted(got)}")
        want = np.asarray(want, np.float32)
        if got[name].shape != want.shape:
            raise ReproError(f"export output {name!r} has shape {got[name].shape}, model gives {want.shape}")
        diffs[name] = float(np.max(np.abs(got[name] - want))) if want.size else 0.0
        if not np.allclose(got[name], want, atol=atol, rtol=rtol):
            raise ReproError(f"export output {name!r} ({signature}) differs from the in-process model by "
                             f"{diffs[name]:.3g}")
    return diffs


def _main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(description="Run a SavedModel's signature (default serving_default) on a .npy batch.")
    p.add_argument("--saved_model", required=True)
    p.add_argument("--inputs", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--input_name", default="images")
    p.add_argument("--signature", default="serving_default")
    a = p.parse_args(argv)
    import tensorflow as tf

    fn = tf.saved_model.load(a.saved_model).signatures[a.signature]
    out = fn(**{a.input_name: tf.constant(np.load(a.inputs))})
    np.savez(a.output, **{k: v.numpy() for k, v in out.items()})
    return 0


if __name__ == "__main__":
    sys.exit(_main())
