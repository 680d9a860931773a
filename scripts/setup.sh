#!/usr/bin/env bash
# Sets up everything the project needs on a fresh Debian/Ubuntu machine; safe to run again (reuses what exists).
#  - the Debian package dataset-fashion-mnist (real Fashion-MNIST IDX files) when apt is usable (root or sudo);
#  - a virtualenv at <repo>/.venv with requirements.txt, then requirements-nodeps.txt installed --no-deps,
#    then this repository itself in editable mode (pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

# 1. Debian dataset package (optional: the project runs without it, Fashion-MNIST experiments then need --data_dir).
if [ -d /usr/share/datasets/fashion-mnist ]; then
  echo "setup: Fashion-MNIST already present in /usr/share/datasets/fashion-mnist"
elif ! command -v apt-get >/dev/null 2>&1; then
  echo "setup: skipping dataset-fashion-mnist: apt-get not found (not a Debian/Ubuntu machine)"
else
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; fi
  fi
  if [ "$(id -u)" -ne 0 ] && [ -z "$SUDO" ]; then
    echo "setup: skipping dataset-fashion-mnist: not root and no password-less sudo"
  else
    echo "setup: installing Debian package dataset-fashion-mnist"
    if ! ( $SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || \
           { $SUDO apt-get update -qq >/dev/null 2>&1 && $SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1; } ); then
      echo "setup: could not install dataset-fashion-mnist with apt-get (no network to the archive?); continuing without it"
    fi
  fi
fi

# 2. Virtualenv and Python packages.
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.requirements.sha
want=$(cat requirements.txt requirements-nodeps.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python packages into .venv (first run takes a few minutes)"
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -r requirements-nodeps.txt
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e . \
    || .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -e .
  echo "$want" > "$stamp"
else
  echo "setup: .venv is up to date"
fi
