#!/usr/bin/env python
"""Write the example utterance shipped with every published model (``multistill/examples/``).

KEMDy cannot be redistributed, so the model cards' runnable example uses speech the project makes itself:
a Korean sentence synthesised by espeak-ng (``apt-get install espeak-ng``), resampled to 16 kHz mono 16-bit
PCM with the package's own resampler. Run it from the repository root; the output is committed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's package, whatever is installed

from multistill.audio_utils import load_audio  # noqa: E402

TEXT = "오늘 정말 기분 좋아요. 같이 산책 갈래요?"
OUT = Path(__file__).resolve().parents[1] / "multistill" / "examples"


def main() -> int:
    if len(sys.argv) > 1:
        print(f"error: this script takes no arguments (it writes {OUT}/example.wav and example.txt), got "
              f"{' '.join(sys.argv[1:])}.", file=sys.stderr)
        return 2
    if shutil.which("espeak-ng") is None:
        print("error: espeak-ng is not installed (apt-get install espeak-ng); nothing was written.", file=sys.stderr)
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "espeak.wav"
        subprocess.run(["espeak-ng", "-v", "ko", "-s", "150", "-w", str(raw), TEXT], check=True)
        audio = load_audio(raw, target_rate=16000)
    audio = 0.9 * audio / max(1e-9, float(np.abs(audio).max()))
    with wave.open(str(OUT / "example.wav"), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(np.round(audio * 32767).astype("<i2").tobytes())
    (OUT / "example.txt").write_text(TEXT + "\n", encoding="utf-8")
    print(f"{OUT / 'example.wav'}: {audio.shape[0] / 16000:.2f} s; transcript: {TEXT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
