#!/usr/bin/env python
"""What the loop guards of a converted Whisper folder change for users of the plain transformers pipeline.

:func:`multistill.tools.whisper_convert.convert_ct2_whisper` writes :data:`~multistill.tools.whisper_convert.DECODING_GUARDS`
and a length cap (``max_new_tokens`` = :func:`~multistill.tools.whisper_convert.decoding_length_cap`) into every
converted folder's ``generation_config.json`` (issue 22.8: without them Whisper base loops on short KEMDy
utterances). This script builds two variants of the same converted folder in a temporary directory, one with
the guards and one without them (the keys removed, ``max_length`` the decoder's context, 448 for Whisper), and
runs ``pipeline("automatic-speech-recognition", model=FOLDER)`` with ``generate_kwargs={"language": "ko"}``
(nothing else) on the same ``--n`` random utterances of one KEMDy19 session (``--seed``).

It writes ``--output_json``: per variant the corpus CER (characters without spaces, as
:func:`multistill.asr.normalize_for_cer`), the longest hypothesis and how many hypotheses are over 3x their
reference's length; per utterance only its id, audio seconds, reference / hypothesis character counts and CER
(no transcript text: KEMDy cannot be redistributed); and the command, git commit and date. The source folder
is only read (the variants link to its weights).

    OMP_NUM_THREADS=1 python scripts/asr_loop_guards.py --data_dir /work/kemdy_dev \\
        --output_json results/asr_loop_guards/session02_n16_seed22.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
PROG = "asr_loop_guards.py"
CORPUS = "KEMDy19"
LANGUAGE = "ko"
#: a hypothesis longer than this many times its reference counts as a runaway (loop) output
OVER_FACTOR = 3
#: variant name -> whether its generation_config.json carries the guards (table order)
VARIANTS = {"without_guards": False, "with_guards": True}
#: files a converted transformers Whisper folder needs besides its weights
FOLDER_FILES = ("config.json", "generation_config.json")


class UsageError(ValueError):
    """A bad command-line argument; :func:`main` prints it as one ``error:`` line and exits with status 2."""


# --- arguments (checked before torch, transformers or any data is loaded) ----------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", required=True, help="KEMDy root with KEMDy19/wav/SessionNN/ (WAV + TXT).")
    parser.add_argument("--session", type=int, default=2, help="KEMDy19 session number (default 2).")
    parser.add_argument("--n", type=int, default=16, help="Utterances drawn at random (default 16).")
    parser.add_argument("--seed", type=int, default=22, help="Seed of the draw (default 22).")
    parser.add_argument("--folder", default=None,
                        help="A converted transformers Whisper folder (default: the registry's Whisper base, "
                             "multistill.tools.whisper_base.transformers_folder()). Only read.")
    parser.add_argument("--output_json", required=True, help="Where the result JSON goes.")
    return parser.parse_args(argv)


def session_dir(data_dir: str | Path, session: int) -> Path:
    return Path(data_dir) / CORPUS / "wav" / f"Session{session:02d}"


def check_args(args: argparse.Namespace) -> None:
    """Raise :class:`UsageError` naming the first bad argument (reads only folder listings)."""
    data_dir = Path(args.data_dir)
    if not data_dir.is_dir():
        raise UsageError(f"--data_dir {args.data_dir} is not a folder.")
    if args.session < 1:
        raise UsageError(f"--session must be a positive session number, got {args.session}.")
    folder = session_dir(data_dir, args.session)
    if not folder.is_dir():
        raise UsageError(f"--data_dir {args.data_dir} has no {folder.relative_to(data_dir)} "
                         f"(--session {args.session}; expected ETRI's KEMDy layout).")
    if args.n < 1:
        raise UsageError(f"--n must be at least 1, got {args.n}.")
    if args.seed < 0:
        raise UsageError(f"--seed must be non-negative, got {args.seed}.")
    if args.folder is not None:
        path = Path(args.folder)
        if not path.is_dir():
            raise UsageError(f"--folder {args.folder} is not a folder.")
        missing = [name for name in FOLDER_FILES if not (path / name).is_file()]
        if missing:
            raise UsageError(f"--folder {args.folder} lacks {', '.join(missing)}: not a converted Whisper folder.")
    output = Path(args.output_json)
    if output.is_dir():
        raise UsageError(f"--output_json {args.output_json} is a folder; give a file name.")
    if output.suffix != ".json":
        raise UsageError(f"--output_json {args.output_json} should end in .json.")
    parent = next((p for p in output.absolute().parents if p.exists()), None)
    if parent is None or not parent.is_dir() or not os.access(parent, os.W_OK):
        raise UsageError(f"--output_json {args.output_json}: cannot create it (no writable parent folder).")


# --- the two variants --------------------------------------------------------------------------------------

def variant_generation_config(generation: dict[str, Any], guards: bool, max_target_positions: int) -> dict[str, Any]:
    """``generation_config.json`` of a variant: the converter's guards and length cap set (``guards``), or removed
    with ``max_length`` the decoder's context, as folders were written before the guards. Other keys are kept."""
    from multistill.tools.whisper_convert import DECODING_GUARDS, decoding_length_cap

    out = {k: v for k, v in generation.items() if k not in (*DECODING_GUARDS, "max_new_tokens", "max_length")}
    if guards:
        out.update(DECODING_GUARDS, max_new_tokens=decoding_length_cap(max_target_positions))
    else:
        out["max_length"] = max_target_positions
    return out


def build_variants(folder: str | Path, work_dir: str | Path) -> dict[str, Path]:
    """Folders ``work_dir/<variant>`` (see :data:`VARIANTS`): links to every file of ``folder`` (copies where
    links fail) except ``generation_config.json``, written anew by :func:`variant_generation_config`.
    ``folder`` is only read."""
    folder, work_dir = Path(folder).resolve(), Path(work_dir)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    generation = json.loads((folder / "generation_config.json").read_text(encoding="utf-8"))
    max_target_positions = int(config["max_target_positions"])
    out = {}
    for name, guards in VARIANTS.items():
        target = work_dir / name
        target.mkdir(parents=True)
        for path in sorted(folder.iterdir()):
            if path.name == "generation_config.json" or not path.is_file():
                continue
            try:
                (target / path.name).symlink_to(path)
            except OSError:
                shutil.copy2(path, target / path.name)
        settings = variant_generation_config(generation, guards, max_target_positions)
        (target / "generation_config.json").write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n",
                                                       encoding="utf-8")
        out[name] = target
    return out


# --- data, decoding, report ---------------------------------------------------------------------------------

def sample_session(data_dir: str | Path, session: int, n: int, seed: int) -> list[tuple[Path, str]]:
    """``n`` (WAV, cleaned transcript) pairs drawn with ``random.Random(seed)`` from the session's sorted WAVs
    that have a non-empty transcript (the project's transcript reading: :mod:`multistill.annotations`)."""
    from multistill.annotations import decode_transcript
    from multistill.processing_multistill import clean_transcript

    usable = []
    for wav in sorted(session_dir(data_dir, session).rglob("*.wav")):
        txt = wav.with_suffix(".txt")
        if txt.exists():
            text = clean_transcript(decode_transcript(txt.read_bytes(), str(txt)))
            if text:
                usable.append((wav, text))
    if len(usable) < n:
        raise UsageError(f"--n {n}: {CORPUS} session {session} has only {len(usable)} utterances with a transcript.")
    return random.Random(seed).sample(usable, n)


def decode_variant(name: str, folder: Path, utterances: list[tuple[Path, str]]) -> dict[str, Any]:
    from tqdm import tqdm
    from transformers import pipeline

    from multistill.asr import edit_distance, normalize_for_cer
    from multistill.audio_utils import TARGET_SAMPLING_RATE, load_audio

    pipe = pipeline("automatic-speech-recognition", model=str(folder), device="cpu")
    rows, errors, chars, start = [], 0, 0, time.perf_counter()
    for wav, ref in tqdm(utterances, desc=name, unit="utt", file=sys.stderr):
        audio, rate = load_audio(wav, where=f"--data_dir ({wav.name})"), TARGET_SAMPLING_RATE
        hyp = pipe({"raw": audio, "sampling_rate": rate}, generate_kwargs={"language": LANGUAGE})["text"].strip()
        gold, said = normalize_for_cer(ref), normalize_for_cer(hyp)
        distance = edit_distance(gold, said)
        errors, chars = errors + distance, chars + len(gold)
        rows.append({"id": wav.stem, "audio_s": round(len(audio) / rate, 2), "ref_chars": len(ref),
                     "hyp_chars": len(hyp), "cer": round(distance / max(1, len(gold)), 3)})
    longest = max(rows, key=lambda r: r["hyp_chars"])
    return {
        "cer": round(errors / max(1, chars), 4), "char_errors": errors, "reference_chars": chars,
        "longest_hyp_chars": longest["hyp_chars"], "longest_id": longest["id"],
        "longest_ref_chars": longest["ref_chars"],
        f"over_{OVER_FACTOR}x_reference": sum(r["hyp_chars"] > OVER_FACTOR * r["ref_chars"] for r in rows),
        "decode_s": round(time.perf_counter() - start, 1), "utterances": rows,
    }


def provenance(argv: list[str]) -> dict[str, Any]:
    """The benchmarks' provenance (command, commit, tree state) plus the library versions and threads."""
    import torch
    import transformers

    sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
    from bench_lib import provenance as command_provenance

    return {
        **command_provenance(argv, "scripts/asr_loop_guards.py"),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "torch": torch.__version__, "transformers": transformers.__version__, "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }


def table(report: dict[str, Any]) -> str:
    over = f"over_{OVER_FACTOR}x_reference"
    lines = [f"{'variant':<16} {'CER':>7} {'longest hyp':>12} {f'>{OVER_FACTOR}x ref':>9} {'decode s':>9}"]
    for name, run in report["variants"].items():
        lines.append(f"{name:<16} {run['cer']:>7.4f} {run['longest_hyp_chars']:>12} {run[over]:>9} "
                     f"{run['decode_s']:>9.1f}")
    return "\n".join(lines)


def run(args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    utterances = sample_session(args.data_dir, args.session, args.n, args.seed)
    if args.folder is None:
        from multistill.tools.whisper_base import transformers_folder

        folder = transformers_folder()
    else:
        folder = Path(args.folder)
    from multistill.tools.whisper_convert import DECODING_GUARDS

    report: dict[str, Any] = {
        "provenance": provenance(argv),
        "settings": {"corpus": CORPUS, "session": args.session, "n": args.n, "seed": args.seed,
                     "folder": str(Path(folder).resolve()), "pipeline": "automatic-speech-recognition",
                     "generate_kwargs": {"language": LANGUAGE}, "guards": DECODING_GUARDS,
                     "cer": "character edit distance / reference characters, after multistill.asr.normalize_for_cer "
                            "(no spaces); ref_chars / hyp_chars are lengths of the cleaned transcript and the "
                            "stripped output"},
        "variants": {},
    }
    with tempfile.TemporaryDirectory(prefix="asr-loop-guards-") as tmp:
        variants = build_variants(folder, tmp)
        for name, path in variants.items():
            settings = json.loads((path / "generation_config.json").read_text(encoding="utf-8"))
            result = decode_variant(name, path, utterances)
            report["variants"][name] = {
                "generation_config": {k: settings.get(k) for k in (*DECODING_GUARDS, "max_new_tokens", "max_length")},
                **result}
    return report


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    try:
        check_args(args)
        report = run(args, argv)
    except UsageError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    output = Path(args.output_json)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(table(report))
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
