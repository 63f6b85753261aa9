#!/usr/bin/env bash
# Idempotent set-up: a virtual environment in .venv with CPU PyTorch, this package and its test extra,
# and the FFmpeg libraries that torchcodec (the `datasets` Audio backend) needs.
# Source it (`. scripts/setup.sh`) to get the environment activated.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MULTISTILL_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

_log() { echo "[setup] $*" >&2; }

_install_ffmpeg() {
  if ldconfig -p 2>/dev/null | grep -q 'libavutil\.so'; then return 0; fi
  _log "FFmpeg libraries not found; installing the Debian package 'ffmpeg' (needed by torchcodec)."
  local SUDO=""
  if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
      _log "ERROR: cannot install FFmpeg without root. Run: sudo apt-get install -y ffmpeg"; return 1; fi
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    _log "ERROR: no apt-get on this machine. Install the FFmpeg 4-7 shared libraries (libavutil, libavcodec, libavformat) with your package manager."
    return 1
  fi
  if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq ffmpeg >/dev/null; }; then
    _log "ERROR: 'apt-get install ffmpeg' failed. Audio decoding (torchcodec) needs the FFmpeg libraries; install them and re-run."
    return 1
  fi
}

_install_ffmpeg

if [ ! -x "$VENV/bin/python" ]; then
  _log "creating virtual environment $VENV"
  if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
    _log "python3 -m venv failed; installing python3-venv"
    SUDO=""; [ "$(id -u)" != "0" ] && SUDO="sudo"
    $SUDO apt-get install -y -qq python3-venv >/dev/null
    "$PYTHON" -m venv "$VENV"
  fi
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"

STAMP="$VENV/.multistill-installed"
if [ ! -f "$STAMP" ] || [ "$ROOT/pyproject.toml" -nt "$STAMP" ]; then
  _log "installing torch==2.13.0 (CPU), then multistill[test,bench,whisper-base,faster-whisper,plots]"
  python -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored" >&2 || true
  # Pinned first: an unpinned torch would pull a multi-GB CUDA build.
  python -m pip install -q "torch==2.13.0" 2>&1 | grep -v "is ignored" >&2 || true
  python -m pip install -q "torchcodec==0.13.0" -e "$ROOT[test,bench,whisper-base,faster-whisper,plots]" 2>&1 | grep -v "is ignored" >&2 || true
  python -c "import torch, transformers, datasets, torchcodec" || { _log "ERROR: installation failed (see pip output above)"; exit 1; }
  touch "$STAMP"
fi
