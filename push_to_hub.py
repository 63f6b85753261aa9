#!/usr/bin/env python
"""Build the complete Hub folder of a trained Multi-Still checkpoint and upload it.

Examples::

    # write the folder only (no network)
    python push_to_hub.py --model_dir outputs/teacher --repo_id me/multistill-teacher --local_dir hub/teacher

    # upload (token from --token, HF_TOKEN or `hf auth login`)
    python push_to_hub.py --model_dir outputs/light --repo_id me/multistill-light --private

The folder holds ``config.json`` (``auto_map`` + the ``multimodal-emotion-recognition`` custom pipeline),
``model.safetensors``, the processor files, the custom code (configuration, modeling, processing, pipeline,
annotations), ``run_info.json`` / ``test_results.json`` when training wrote them, and a ``README.md``
model card: YAML metadata (language, license, datasets, pipeline tag, tags, library, base models and a
``model-index`` with this checkpoint's test results), the paper's table beside this run's results, usage
code and limitations. Without ``test_results.json`` the card says so and has no ``model-index``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, HfApi, ModelCard, ModelCardData, get_token
from transformers import HfArgumentParser

logger = logging.getLogger("push_to_hub")

#: The Multi-Still paper's own results (random utterance-level 80/20 split, weighted metrics, %), as
#: reported in its table (see ../shared/PAPER.md). These are the paper's numbers, NOT this run's.
PAPER_RESULTS: tuple[dict[str, Any], ...] = (
    {"model": "KoELECTRA (text)", "preset": None, "accuracy": 91.39, "precision": 87.87, "f1": 89.02,
     "trainable_params": 22_448_903, "inference_s": 15.95},
    {"model": "wav2vec 2.0 (audio)", "preset": None, "accuracy": 90.97, "precision": 88.17, "f1": 86.94,
     "trainable_params": 22_448_903, "inference_s": 95.95},
    {"model": "Teacher (multimodal cross-attention)", "preset": "teacher", "accuracy": 91.90, "precision": 89.04,
     "f1": 90.28, "trainable_params": 44_107_271, "inference_s": 92.60},
    {"model": "(a) text-only student", "preset": "text_student", "accuracy": 90.97, "precision": 87.02,
     "f1": 88.41, "trainable_params": 8_273_159, "inference_s": 8.19},
    {"model": "(b) audio-only student", "preset": "audio_student", "accuracy": 91.70, "precision": 88.46,
     "f1": 89.67, "trainable_params": 8_273_159, "inference_s": 71.34},
    {"model": "(c) multimodal student", "preset": "multimodal_student", "accuracy": 92.08, "precision": 88.99,
     "f1": 89.89, "trainable_params": 15_755_783, "inference_s": 76.46},
)
PAPER_CITATION = (
    "Jo, Seo, Roh et al., Multi-Still, 2nd ETRI Human Understanding AI Paper Competition, 2023 "
    "(original code: https://github.com/SeolRoh/Multi-Still_ETRI)"
)
CORPUS_DATASETS: dict[str, list[str]] = {
    "kemdy19": ["KEMDy19"], "kemdy20": ["KEMDy20"], "all": ["KEMDy19", "KEMDy20"], "synthetic": [],
}
#: ``test_results.json`` key -> (model-index metric type, display name, metric args)
MODEL_INDEX_METRICS: tuple[tuple[str, str, str, dict[str, str] | None], ...] = (
    ("test_accuracy", "accuracy", "Accuracy", None),
    ("test_unweighted_accuracy", "balanced_accuracy", "Unweighted accuracy (UA)", None),
    ("test_macro_f1", "f1", "Macro F1", {"average": "macro"}),
    ("test_weighted_f1", "f1", "Weighted F1", {"average": "weighted"}),
    ("test_weighted_precision", "precision", "Weighted precision", {"average": "weighted"}),
    ("test_weighted_recall", "recall", "Weighted recall", {"average": "weighted"}),
)
#: files of a training output folder copied to the Hub folder when present
EXTRA_FILES = ("run_info.json", "test_results.json", "confusion_matrix.png", "training_curves.png")
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass
class PushToHubArguments:
    """Arguments of ``push_to_hub.py``."""

    model_dir: str = field(metadata={"help": "Trained checkpoint folder (model + processor, as train.py/distill.py "
                                             "write it; run_info.json and test_results.json are used if present)."})
    repo_id: str | None = field(default=None, metadata={"help": "Hub repository, 'user/name' (required to upload)."})
    local_dir: str | None = field(default=None, metadata={"help": "Write the Hub folder here and do not upload."})
    private: bool = field(default=False, metadata={"help": "Create the Hub repository as private."})
    token: str | None = field(default=None, metadata={"help": "Hub token (default: HF_TOKEN or the cached login)."})
    commit_message: str = field(default="Upload Multi-Still emotion recognition model",
                                metadata={"help": "Commit message of the upload."})
    license: str = field(default="apache-2.0", metadata={"help": "License of the weights (card metadata)."})
    dataset_names: list[str] | None = field(
        default=None, metadata={"help": "Datasets for the card metadata (default: from run_info.json's corpus)."}
    )
    verify: bool = field(default=True, metadata={"help": "Reload the written folder and check it predicts the same."})


# --------------------------------------------------------------------------------------------- helpers
def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from ``path``, or ``None`` when the file is absent."""
    if not path.is_file():
        return None
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object.")
    return data


def as_percent(value: float) -> float:
    """Metrics in [0, 1] as percentages (values already above 1 are kept)."""
    return 100.0 * value if abs(value) <= 1.0 else value


def is_hub_id(name: Any) -> bool:
    """Whether ``name`` looks like a Hub repo id (not a local path)."""
    return isinstance(name, str) and bool(_REPO_ID.match(name)) and not os.path.exists(name)


def infer_preset(config: Any) -> str:
    """The preset a config corresponds to (``custom`` when none matches)."""
    modalities = list(config.modalities)
    if config.audio_frontend == "fbank":
        return "light_student"
    if modalities == ["audio", "text"]:
        return "teacher" if config.num_fusion_layers >= 3 else "multimodal_student"
    return "text_student" if modalities == ["text"] else "audio_student"


def base_models(config: Any, run_info: dict[str, Any]) -> list[str]:
    """Hub ids of the encoders (and teacher) this checkpoint was built from; local paths are left out."""
    names = []
    if "audio" in config.modalities:
        names.append(run_info.get("audio_encoder") or config.audio_encoder_name)
    if "text" in config.modalities:
        names.append(run_info.get("text_encoder") or config.text_encoder_name)
    names.append(run_info.get("teacher_model"))
    if run_info.get("backbones") == "tiny":
        return []
    return [n for n in dict.fromkeys(names) if is_hub_id(n)]


def eval_results(metrics: dict[str, Any] | None, task_type: str, datasets: list[str],
                 run_info: dict[str, Any]) -> list[EvalResult]:
    """``model-index`` entries from ``test_results.json`` (empty when there are none)."""
    if not metrics:
        return []
    split = run_info.get("split") or "unknown"
    dataset_name = "+".join(datasets) if datasets else str(run_info.get("corpus") or "unknown corpus")
    results = []
    for key, metric_type, name, args in MODEL_INDEX_METRICS:
        value = metrics.get(key)
        if not isinstance(value, (int, float)):
            continue
        results.append(EvalResult(
            task_type=task_type, task_name="Emotion recognition", dataset_type=dataset_name.lower(),
            dataset_name=f"{dataset_name} ({split} split)", dataset_config=f"{split}-split", dataset_split="test",
            metric_type=metric_type, metric_name=name, metric_value=round(float(value), 4), metric_args=args,
        ))
    return results


# --------------------------------------------------------------------------------------------- model card
def _fmt(value: Any, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def results_table(metrics: dict[str, Any] | None, preset: str, trainable: int, run_info: dict[str, Any]) -> str:
    """Markdown: the paper's table with this run's row beside it."""
    header = ("| model | source | accuracy | weighted precision | weighted F1 | UA | macro-F1 | trainable params | "
              "inference time (s, whole test set) |\n|---|---|---|---|---|---|---|---|---|")
    rows = []
    for row in PAPER_RESULTS:
        mark = " ← same architecture" if row["preset"] == preset else ""
        rows.append(f"| {row['model']}{mark} | paper | {row['accuracy']:.2f} | {row['precision']:.2f} | "
                    f"{row['f1']:.2f} | — | — | {row['trainable_params']:,} | {row['inference_s']:.2f} |")
    if metrics:
        def pct(key: str) -> str:
            value = metrics.get(key)
            return _fmt(as_percent(value)) if isinstance(value, (int, float)) else "—"

        rows.append(f"| **this checkpoint ({preset})** | this run | {pct('test_accuracy')} | "
                    f"{pct('test_weighted_precision')} | {pct('test_weighted_f1')} | {pct('test_unweighted_accuracy')} | "
                    f"{pct('test_macro_f1')} | {trainable:,} | — |")
    else:
        rows.append(f"| **this checkpoint ({preset})** | this run | no evaluation results | | | | | {trainable:,} | — |")
    split = run_info.get("split")
    if split == "random":
        note = ("This run used a random utterance-level split like the paper (which leaks speakers and dialogues "
                "between train and test); the paper also trained on two AI Hub corpora, so the data still differ.")
    elif split:
        note = (f"This run used a **{split}** split; the paper's figures come from a random utterance-level split "
                "that leaks speakers and dialogues between train and test, so they are **not comparable** (published "
                "session-split F1 on KEMDy19 is about 0.60-0.74).")
    else:
        note = "The split of this run is unknown (no run_info.json), so the rows may not be comparable."
    return (f"{header}\n" + "\n".join(rows) + "\n\n"
            "Paper rows: the numbers reported by the Multi-Still paper (weighted metrics, %), not reproduced here. "
            f"{note} UA (unweighted accuracy) and macro-F1 are what tell models apart on this neutral-dominated data.")


def per_class_table(metrics: dict[str, Any] | None, labels: list[str]) -> str:
    """Markdown table of the per-emotion test F1 (empty string without results)."""
    if not metrics:
        return ""
    cells = [(label, metrics.get(f"test_f1_{label}")) for label in labels]
    if not any(isinstance(v, (int, float)) for _, v in cells):
        return ""
    head = "| " + " | ".join(label for label, _ in cells) + " |\n|" + "---|" * len(cells)
    body = "| " + " | ".join(_fmt(as_percent(v)) if isinstance(v, (int, float)) else "—" for _, v in cells) + " |"
    return f"Per-emotion test F1 (%):\n\n{head}\n{body}\n"


def usage_section(repo_id: str, modalities: list[str], window_s: float = 10.24) -> str:
    """Usage code for this checkpoint's modalities."""
    item = []
    if "audio" in modalities:
        item.append('"audio": "utterance.wav"')
    if "text" in modalities:
        item.append('"text": "오늘 정말 기분 좋아요"')
    call = "{" + ", ".join(item) + "}"
    proc_args = ", ".join(
        a for a, m in (("audio=[waveform], sampling_rate=16000", "audio"), ('text=["오늘 정말 기분 좋아요"]', "text"))
        if m in modalities
    )
    cli_args = " utterance.wav" if "audio" in modalities else ""
    cli_args += ' --text "오늘 정말 기분 좋아요"' if "text" in modalities else ""
    return f"""## Usage

```python
from transformers import pipeline

pipe = pipeline("multimodal-emotion-recognition", model="{repo_id}", trust_remote_code=True)
pipe({call})
# [{{'label': 'happy', 'score': 0.71}}, {{'label': 'neutral', 'score': 0.12}}, ...]
items = [{call}] * 4
pipe(items, batch_size=4, top_k=3, on_error="skip")  # a list; a bad item gives {{"error": ...}}
```

Audio can be a file path, encoded bytes or an array with `"sampling_rate"`; any rate, mono or stereo (it is
mixed down and resampled to 16 kHz). Audio longer than the model's limit ({window_s:.2f} s) is cut into {window_s:.2f} s
windows (the last one aligned to the end), each classified with the whole transcript, and the windows'
probabilities are averaged.

Without the pipeline:

```python
import torch
from transformers import AutoModelForAudioClassification, AutoProcessor

model = AutoModelForAudioClassification.from_pretrained("{repo_id}", trust_remote_code=True).eval()
processor = AutoProcessor.from_pretrained("{repo_id}", trust_remote_code=True)
inputs = processor({proc_args})  # waveform: 1-D float array
with torch.no_grad():
    probs = model(**inputs).logits.softmax(-1)
print({{model.config.id2label[i]: float(p) for i, p in enumerate(probs[0])}})
```

With the project's package installed (`pip install -e .` in the repository), from the command line:

```bash
multistill predict --model {repo_id}{cli_args}
multistill stream --model {repo_id} conversation.wav{' --transcript conversation.txt' if 'text' in modalities else ''}
```
"""


def limitations_section(run_info: dict[str, Any], modalities: list[str], window_s: float = 10.24) -> str:
    """Data, bias, intended use and technical limits."""
    warnings = []
    if run_info.get("backbones") == "tiny":
        warnings.append("**This checkpoint was built on tiny random encoders (a smoke test of the pipeline); its "
                        "predictions are meaningless.**")
    if run_info.get("corpus") == "synthetic":
        warnings.append("**This checkpoint was trained on the project's synthetic corpus, not on speech; its "
                        "predictions are meaningless on real audio.**")
    text_note = ("It needs the transcript of each utterance (no speech recognition is included); transcription "
                 "errors will change its predictions. " if "text" in modalities else "")
    return "## Limitations and intended use\n\n" + ("\n\n".join(warnings) + "\n\n" if warnings else "") + f"""\
**Data.** ETRI's KEMDy19 (acted dialogues by voice actors) and KEMDy20 (free conversation by members of the
public) are Korean, recorded in quiet rooms, with few speakers per session. Labels are the votes of ten
evaluators per utterance (perceived emotion, not felt emotion), and most utterances (70-90 %) are
*neutral*, so accuracy mostly measures neutral detection: read UA and macro-F1. The corpora are licensed
by ETRI for research; they are not redistributed here, and the license of these weights does not override
ETRI's terms for models derived from the data.

**Bias.** The speakers are few adults; performance on other ages, dialects, non-native speakers, noisy or
telephone audio, overlapping speech and other languages is unknown and likely worse. Emotion categories and
their expression are culture-specific; minority emotions (fear, disgust, surprise) have few training examples.

**Intended use.** Research on Korean emotion recognition in conversation and prototypes of real-time
conversation analytics with the informed consent of the people recorded. Not for decisions about people
(hiring, education, credit, insurance, policing, health), surveillance, or lie detection; emotion recognition in
workplaces and schools is restricted by law in some jurisdictions (for example the EU AI Act).

**Technical.** Input is 16 kHz speech; the model sees at most {window_s:.2f} s at once (longer audio: averaged
windows). {text_note}In streaming use, utterances are cut by an energy voice-activity detector, which merges
speakers who overlap and may split long pauses.
"""


def build_model_card(model: Any, processor: Any, args: PushToHubArguments, run_info: dict[str, Any] | None,
                     metrics: dict[str, Any] | None, repo_id: str) -> ModelCard:
    """The ``README.md`` model card: YAML metadata + results, usage and limitations."""
    config = model.config
    info = dict(run_info or {})
    modalities = list(config.modalities)
    preset = info.get("preset") or infer_preset(config)
    corpus = info.get("corpus")
    datasets = list(args.dataset_names) if args.dataset_names else CORPUS_DATASETS.get(
        str(corpus).lower() if corpus else "", ["KEMDy19", "KEMDy20"]
    )
    task_type = "audio-classification" if "audio" in modalities else "text-classification"
    results = eval_results(metrics, task_type, datasets, info)
    name = repo_id.split("/")[-1]
    tags = ["multistill", "emotion-recognition", "speech-emotion-recognition", "multimodal",
            "knowledge-distillation", "korean", "custom_code", "multimodal-emotion-recognition", preset]
    if info.get("backbones") == "tiny" or corpus == "synthetic":
        tags.append("test-checkpoint")
    data = ModelCardData(
        language="ko", license=args.license, library_name="transformers", pipeline_tag=task_type,
        tags=tags, datasets=datasets or None, base_model=base_models(config, info) or None,
        model_name=name if results else None, eval_results=results or None,
    )
    labels = [config.id2label[i] for i in range(config.num_labels)]
    trainable = model.num_parameters(only_trainable=True)
    total = model.num_parameters()
    teacher = info.get("teacher_model")
    training = [f"- preset: `{preset}` ({'+'.join(modalities)}; {config.num_fusion_layers} fusion layer(s); "
                f"audio front end `{config.audio_frontend}`), {total:,} parameters ({trainable:,} trainable)"]
    if info:
        training.append(f"- corpus: `{corpus}`, split: `{info.get('split')}`, seed: {info.get('seed')}, "
                        f"encoders: `{info.get('audio_encoder')}` / `{info.get('text_encoder')}` "
                        f"(backbones: {info.get('backbones')})")
        if teacher:
            training.append(f"- distilled from `{teacher}` (alpha {info.get('alpha')}, temperature "
                            f"{info.get('temperature')})")
    else:
        training.append("- no run_info.json was found next to the checkpoint: training details unknown")
    limit = processor.max_audio_samples
    window_s = limit / processor.sampling_rate if limit else float("inf")
    figures = [f"![{f}]({f})" for f in ("confusion_matrix.png", "training_curves.png")
               if (Path(args.model_dir) / f).is_file()]
    if metrics:
        evaluation = results_table(metrics, preset, trainable, info) + "\n\n" + per_class_table(metrics, labels)
        evaluation += "\n" + "\n".join(figures)
    else:
        evaluation = ("**No evaluation results**: the checkpoint folder has no `test_results.json`, so none are "
                      "reported (and the metadata has no `model-index`).\n\n" + results_table(None, preset, trainable, info))
    body = f"""
# {name}: Multi-Still emotion recognition for Korean conversation

A Multi-Still model ({'speech + text' if len(modalities) == 2 else modalities[0] + ' only'}) that scores seven
emotions ({', '.join(labels)}) for one utterance. Multi-Still fuses a speech encoder (wav2vec 2.0) and a text
encoder (ELECTRA) with MulT-style cross-modal attention and distils a large teacher into small students for
real-time use ({PAPER_CITATION}).

## Training

{chr(10).join(training)}

## Evaluation

{evaluation}

{usage_section(repo_id, modalities, window_s)}
{limitations_section(info, modalities, window_s)}
## Citation

{PAPER_CITATION}
"""
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{body}")


# --------------------------------------------------------------------------------------------- steps
def load_checkpoint(model_dir: Path):
    """Model and processor of a training output folder (with the package's classes)."""
    from multistill.modeling_multistill import MultiStillForEmotionClassification
    from multistill.processing_multistill import MultiStillProcessor

    if not (model_dir / "config.json").is_file():
        raise ValueError(f"{model_dir} is not a model folder (no config.json).")
    model = MultiStillForEmotionClassification.from_pretrained(model_dir).eval()
    try:
        processor = MultiStillProcessor.from_pretrained(model_dir)
    except (OSError, ValueError, TypeError) as err:
        raise ValueError(f"{model_dir} has no usable processor files (processor.save_pretrained): {err}") from err
    return model, processor


def write_folder(model: Any, processor: Any, model_dir: Path, folder: Path, card: ModelCard) -> list[str]:
    """Model + processor + code + custom pipeline + extra training files + README.md; returns the file names."""
    from multistill.pipeline_multistill import save_pretrained_with_pipeline

    save_pretrained_with_pipeline(model, processor, folder)
    for name in EXTRA_FILES:
        if (model_dir / name).is_file():
            shutil.copyfile(model_dir / name, folder / name)
    card.save(folder / "README.md")
    return sorted(os.listdir(folder))


def verify_folder(model: Any, processor: Any, folder: Path) -> float:
    """Reload the folder and compare its logits with ``model``'s on a test input; returns the max difference."""
    import numpy as np
    import torch

    from multistill.modeling_multistill import MultiStillForEmotionClassification

    reloaded = MultiStillForEmotionClassification.from_pretrained(folder).eval()
    wave = (0.1 * np.random.default_rng(0).standard_normal(16000)).astype(np.float32)
    inputs = processor(audio=[wave], text=["안녕하세요 반갑습니다"], sampling_rate=16000,
                       modalities=list(model.config.modalities))
    with torch.no_grad():
        diff = (reloaded(**inputs).logits - model(**inputs).logits).abs().max().item()
    if diff > 1e-4:
        raise RuntimeError(f"The written folder does not reproduce the model (max logit difference {diff:.2e}).")
    return diff


def upload(folder: Path, repo_id: str, private: bool, token: str | None, commit_message: str) -> str:
    """Create the repository (if needed) and upload ``folder``; returns the commit URL."""
    token = token or get_token()
    if not token:
        raise ValueError("No Hub token: pass --token, set HF_TOKEN, or log in with `hf auth login`.")
    api = HfApi(token=token)
    repo_url = api.create_repo(repo_id=repo_id, repo_type="model", private=private, exist_ok=True)
    logger.info("Repository: %s", repo_url)
    commit = api.upload_folder(repo_id=repo_id, repo_type="model", folder_path=str(folder),
                               commit_message=commit_message)
    return str(getattr(commit, "commit_url", commit))


def main(argv: list[str] | None = None) -> Path | str:
    """Build the Hub folder (``--local_dir``) or build and upload it; returns the folder or the commit URL."""
    # 1. Arguments and logging
    parser = HfArgumentParser(PushToHubArguments, description=__doc__)
    (args,) = parser.parse_args_into_dataclasses(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    model_dir = Path(args.model_dir)
    if not model_dir.is_dir():
        raise ValueError(f"--model_dir {model_dir} is not a folder.")
    if args.local_dir is None and not args.repo_id:
        raise ValueError("Pass --repo_id to upload (or --local_dir to only write the folder).")
    if args.repo_id and not _REPO_ID.match(args.repo_id):
        raise ValueError(f"--repo_id must look like 'user/name', got {args.repo_id!r}.")
    repo_id = args.repo_id or f"your-username/{Path(args.local_dir).name}"

    # 2. Checkpoint, run information and test results
    model, processor = load_checkpoint(model_dir)
    run_info = read_json(model_dir / "run_info.json")
    metrics = read_json(model_dir / "test_results.json")
    logger.info("Loaded %s (%s); run_info: %s; test results: %s", model_dir, "+".join(model.config.modalities),
                "yes" if run_info else "no", "yes" if metrics else "no")

    # 3. Model card
    card = build_model_card(model, processor, args, run_info, metrics, repo_id)

    # 4. Write the folder (the local one, or a temporary one to upload)
    folder = Path(args.local_dir) if args.local_dir else Path(tempfile.mkdtemp(prefix="multistill-hub-"))
    try:
        files = write_folder(model, processor, model_dir, folder, card)
        logger.info("Wrote %s: %s", folder, ", ".join(files))

        # 5. Check the folder reproduces the model
        if args.verify:
            logger.info("Reloaded folder: max logit difference %.2e", verify_folder(model, processor, folder))

        # 6. Upload (unless --local_dir)
        if args.local_dir:
            return folder
        url = upload(folder, args.repo_id, args.private, args.token, args.commit_message)
        logger.info("Uploaded to %s", url)
        return url
    finally:
        if not args.local_dir:
            shutil.rmtree(folder, ignore_errors=True)


__all__ = [
    "PAPER_RESULTS",
    "PushToHubArguments",
    "build_model_card",
    "eval_results",
    "main",
    "upload",
    "write_folder",
]


if __name__ == "__main__":
    try:
        main()
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


