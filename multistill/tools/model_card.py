"""The model card of a Multi-Still checkpoint (``README.md`` of its Hub folder): YAML metadata with the
``model-index``, results beside the paper's, install line, runnable usage, limitations, license and BibTeX.

``hub.py`` builds and publishes the folder around it.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from huggingface_hub.utils import HFValidationError, validate_repo_id

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
    "Jo, Seo and Roh, Multi-Still, 2nd ETRI Human Understanding AI Paper Competition, 2023 "
    "(original code: https://github.com/SeolRoh/Multi-Still_ETRI)"
)
#: BibTeX of the method and of the corpora (the references the original README gives for KEMDy).
BIBTEX = r"""@misc{jo2023multistill,
  title        = {Multi-Still: A lightweight Multi-modal Cross Attention Knowledge Distillation method for
                  real-time Emotion Recognition},
  author       = {Jo, Hyun-Ki and Seo, Yu-Ri and Roh, Seol},
  year         = {2023},
  note         = {2nd ETRI Human Understanding AI Paper Competition},
  howpublished = {\url{https://github.com/SeolRoh/Multi-Still_ETRI}}
}
@misc{noh_kemdy19,
  title        = {{KEMDy19}: Korean Emotion Multimodal Database in 2019},
  author       = {Noh, K. J. and Jeong, H.},
  publisher    = {Electronics and Telecommunications Research Institute (ETRI)},
  howpublished = {\url{https://nanum.etri.re.kr/share/kjnoh/KEMDy19}}
}
@misc{noh_kemdy20,
  title        = {{KEMDy20}: Korean Emotion Multimodal Database in 2020},
  author       = {Noh, K. J. and Jeong, H.},
  publisher    = {Electronics and Telecommunications Research Institute (ETRI)},
  howpublished = {\url{https://nanum.etri.re.kr/share/kjnoh/KEMDy20}}
}
@article{noh2021multipath,
  title   = {Multi-Path and Group-Loss-Based Network for Speech Emotion Recognition in Multi-Domain Datasets},
  author  = {Noh, K. J. and Jeong, C. Y. and Lim, J. and Chung, S. and Kim, G. and Lim, J. M. and Jeong, H.},
  journal = {Sensors},
  volume  = {21},
  number  = {5},
  pages   = {1579},
  year    = {2021},
  doi     = {10.3390/s21051579}
}"""
#: What a Hub user installs (the remote code needs nothing else; WAV is decoded and resampled with NumPy).
INSTALL_LINE = 'pip install "torch>=2.4" "transformers>=5.20,<6"'
TESTED_VERSIONS = "torch 2.13.0 and transformers 5.25.0"  # = scripts/hub_user_venv.sh
#: License metadata of weights trained on KEMDy: ETRI grants research use only, under its license agreement.
KEMDY_LICENSE = {"license": "other", "license_name": "etri-kemdy-research-only"}
#: ETRI's page (and license agreement) of each corpus.
KEMDY_LINKS = {"KEMDy19": "https://nanum.etri.re.kr/share/kjnoh/KEMDy19",
               "KEMDy20": "https://nanum.etri.re.kr/share/kjnoh/KEMDy20"}
#: Readable names of encoder ``model_type``s (others are shown as their ``model_type``).
ENCODER_NAMES = {"wav2vec2": "wav2vec 2.0", "hubert": "HuBERT", "wavlm": "WavLM", "data2vec-audio": "data2vec-audio",
                 "whisper": "Whisper encoder", "multistill_fbank": "log-mel filterbank + wav2vec2 layers",
                 "electra": "ELECTRA", "bert": "BERT", "roberta": "RoBERTa", "xlm-roberta": "XLM-RoBERTa"}
#: The example utterance shipped with every published model (made by scripts/make_example_audio.py).
EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"
EXAMPLE_FILES = ("example.wav", "example.txt")
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


def hub_id_error(value: str, need_owner: bool = False) -> str | None:
    """Why ``value`` is not a Hub repo id (``name`` or ``owner/name``; ``owner/name`` only with ``need_owner``),
    by ``huggingface_hub``'s own validator; ``None`` when it is one. The one check of every Hub id given to
    this project (``--model``, encoders, ``--teacher_model``, ``--asr``, ``--repo_id``)."""
    try:
        validate_repo_id(value)
    except HFValidationError as err:
        return str(err)
    if need_owner and "/" not in value:
        return f"{value!r} has no owner: the form is 'owner/name'."
    return None


def as_percent(value: float) -> float:
    """Metrics in [0, 1] as percentages (values already above 1 are kept)."""
    return 100.0 * value if abs(value) <= 1.0 else value


def is_hub_id(name: Any) -> bool:
    """Whether ``name`` looks like a Hub repo id (not a local path)."""
    return isinstance(name, str) and hub_id_error(name, need_owner=True) is None and not os.path.exists(name)


def public_name(name: Any) -> str | None:
    """A Hub id as it is; a local path reduced to its folder name (a card never shows local paths)."""
    if not name:
        return None
    return str(name) if is_hub_id(name) else f"{Path(str(name)).name} (a local folder)"


def encoders_text(config: Any) -> str:
    """The model's encoders as its config records them: type and, for Hub encoders, where they came from."""
    parts = []
    for modality, kind in (("audio", "speech"), ("text", "text")):
        if modality not in config.modalities:
            continue
        sub = getattr(config, f"{modality}_config", None)
        model_type = getattr(sub, "model_type", None) or "unknown"
        name = getattr(config, f"{modality}_encoder_name", None)
        text = f"a {kind} encoder ({ENCODER_NAMES.get(model_type, model_type)}, `model_type` `{model_type}`"
        parts.append(text + (f", from [`{name}`](https://huggingface.co/{name}))" if is_hub_id(name) else ")"))
    return " and ".join(parts)


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


def check_session_results(path: str | os.PathLike) -> dict[str, Any]:
    """An experiment's ``results.json`` (``python -m multistill.tools.experiment``), checked: ``ValueError`` naming the
    file when it is missing, not JSON, or holds no rows of models and baselines with macro-F1."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: cannot read an experiment's results.json ({err}).") from None
    rows = data.get("rows") if isinstance(data, dict) else None
    if not isinstance(rows, list) or not rows or not all(
            isinstance(r, dict) and "label" in r and "macro_f1" in (r.get("summary") or {}) for r in rows):
        raise ValueError(f"{path}: not an experiment's results.json (no rows with a label and macro-F1; it is "
                         "written by python -m multistill.tools.experiment / scripts/recipe.sh).")
    return data


def session_results_section(results: list[dict[str, Any]]) -> str:
    """Markdown: macro-F1 (mean ± std over seeds) of every model and baseline of experiment result files, one
    column per file (named by its test sessions), with the commit and seeds that made each."""
    columns, notes = [], []
    for data in results:
        split = next(iter((data.get("splits") or {}).values()), {})
        columns.append(f"test {', '.join(split.get('test_sessions') or ['?'])}")
        made = data.get("provenance") or {}
        seeds = (data.get("settings") or {}).get("seeds")
        notes.append(f"{columns[-1]}: {split.get('train_examples', '?')} training + {split.get('validation_examples', '?')} "
                     f"validation rows, seeds {seeds}, commit `{str(made.get('git_commit', '?'))[:7]}`")
    labels = list(dict.fromkeys(row["label"] for data in results for row in data["rows"]))
    lines = [f"| model or baseline (macro-F1, mean ± std over seeds) | {' | '.join(columns)} |",
             "|---" * (len(columns) + 1) + "|"]
    for label in labels:
        cells = []
        for data in results:
            row = next((r for r in data["rows"] if r["label"] == label), None)
            score = (row or {}).get("summary", {}).get("macro_f1")
            cells.append(f"{100 * score['mean']:.1f} ± {100 * (score.get('std') or 0.0):.1f}" if score else "—")
        lines.append(f"| {label} | {' | '.join(cells)} |")
    return ("## Evaluation on held-out sessions\n\nThe recipe that made this checkpoint, trained and tested on whole "
            "held-out sessions (no speaker or dialogue on both sides), with the baselines on the same rows:\n\n"
            + "\n".join(lines) + "\n\n" + "; ".join(notes) + ".\n")


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


def example_transcript() -> str:
    """The transcript of the shipped example utterance."""
    return (EXAMPLES_DIR / "example.txt").read_text(encoding="utf-8").strip()


def usage_section(repo_id: str, modalities: list[str], window_s: float = 10.24) -> str:
    """Install line and usage code for this checkpoint's modalities, runnable as written on the shipped example."""
    text = example_transcript()
    has_audio, has_text = "audio" in modalities, "text" in modalities
    item = ", ".join((['"audio": wav'] if has_audio else []) + ([f'"text": "{text}"'] if has_text else []))
    model_line = f'model_id = "{repo_id}"  # this repository, or the path of a local copy of it\n'
    # the example file of a Hub repository, or of a local folder (runs unchanged on both)
    find_wav = ('wav = os.path.join(model_id, "example.wav") if os.path.isdir(model_id) '
                'else hf_hub_download(model_id, "example.wav")\n') if has_audio else ""
    download = find_wav
    read_wav = f'''{find_wav}with wave.open(wav) as f:  # Korean speech made by the project (espeak-ng): 16 kHz mono PCM
    sampling_rate = f.getframerate()
    waveform = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2").astype(np.float32) / 32768
''' if has_audio else ""
    processor_args = ", ".join((["audio=[waveform]", "sampling_rate=sampling_rate"] if has_audio else [])
                               + ([f'text=["{text}"]'] if has_text else []))
    asr_note = ("No transcript at hand? Load the pipeline with a speech recognizer, e.g. `pipeline(..., "
                'asr_model="openai/whisper-large-v3-turbo")` (any transformers speech-recognition checkpoint, run by '
                "this repository's `asr.py`; Korean by default): an input without `\"text\"` is then transcribed, and "
                "each result says which text it used (`text_source`).\n\n") if has_audio and has_text else ""
    cli_args = (" example.wav" if has_audio else "") + (f' --text "{text}"' if has_text else "")
    imports_raw = "import os\nimport wave\n\nimport numpy as np\n" if has_audio else ""
    hub_import = "from huggingface_hub import hf_hub_download\n" if has_audio else ""
    os_import = "import os\n\n" if has_audio else ""
    return f"""## Usage

Everything below needs only PyTorch and Transformers (tested with {TESTED_VERSIONS}):

```bash
{INSTALL_LINE}
```

WAV files are decoded and resampled by the model's own code; other formats (FLAC, MP3, M4A...) also need
`pip install soundfile` or `pip install torchcodec`. The repository holds `example.wav`, Korean speech that
this project synthesised (the training corpora cannot be redistributed), with its transcript: "{text}".

```python
{os_import}{hub_import}from transformers import pipeline

{model_line}pipe = pipeline("multimodal-emotion-recognition", model=model_id, trust_remote_code=True)
{download}print(pipe({{{item}}}))
# all 7 emotions, best first: [{{'label': ..., 'score': ...}}, ...]
print(pipe([{{{item}}}] * 2, batch_size=2, top_k=3))  # a list; on_error="skip" turns bad items into {{"error": ...}}
```

{asr_note}Audio can be a file path, encoded bytes or an array with `"sampling_rate"` (4-192 kHz, mono or stereo; it is
mixed down and resampled to 16 kHz; at least 0.1 s). Audio longer than the model's limit ({window_s:.2f} s) is cut
into {window_s:.2f} s windows (the last one aligned to the end), each classified with the whole transcript, and the
windows' probabilities are averaged.

Without the pipeline:

```python
{imports_raw}import torch
{hub_import}from transformers import AutoModelForAudioClassification, AutoProcessor

{model_line}model = AutoModelForAudioClassification.from_pretrained(model_id, trust_remote_code=True).eval()
processor = AutoProcessor.from_pretrained(model_id, trust_remote_code=True)
{read_wav}inputs = processor({processor_args})
with torch.no_grad():
    probs = model(**inputs).logits.softmax(-1)[0]
print({{model.config.id2label[i]: round(float(p), 3) for i, p in enumerate(probs)}})
```

With the project's package installed (`pip install -e .` in its repository), from the command line (the
package's own code is used; `--trust_remote_code` runs this repository's code files instead):

```bash
multistill predict --model {repo_id}{cli_args}
multistill stream --model {repo_id} conversation.wav{' --transcript conversation.txt' if has_text else ''}
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
    text_note = ""
    if "text" in modalities:
        text_note = ("It reads the transcript of each utterance: give it, or load the pipeline with `asr_model=` to "
                     "transcribe the audio (see [Usage](#usage)); transcription errors change its predictions. "
                     if "audio" in modalities else "It reads text only: give the transcript of each utterance. ")
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
windows). {text_note}For conversations, `multistill stream` (the project's package, not part of this repository)
cuts utterances with the Silero voice-activity detector (`--vad energy`: a dependency-free energy detector);
either merges speakers who overlap and may split a turn at a long pause.
"""


def license_section(license_name: str, trained_on_kemdy: bool, datasets: list[str] | None = None) -> str:
    """What the license covers: the code, and the weights within what the training data allows."""
    if not trained_on_kemdy:
        return (f"## License\n\nWeights and code: `{license_name}`. This checkpoint was not trained on ETRI's "
                "corpora.\n")
    corpora = [name for name in (datasets or []) if name in KEMDY_LINKS] or list(KEMDY_LINKS)
    agreements = ", ".join(f"{name}: {KEMDY_LINKS[name]}" for name in corpora)
    return f"""## License

The code files (`*_multistill.py`, `*_ngram.py`, `modeling_*.py`, `annotations.py`, `audio_utils.py`, `asr.py`) are Apache-2.0, from the multistill project. The
weights were trained on ETRI's {'/'.join(corpora)}, which ETRI grants **for research only**, under its license
agreement ({agreements}); these weights are shared under the same restriction (metadata:
`{license_name}`) and grant no right beyond ETRI's terms: research use only, no commercial use, and check
ETRI's agreement before redistributing anything derived from the data.
"""


def card_license(license_override: str | None, trained_on_kemdy: bool,
                 datasets: list[str] | None = None) -> dict[str, str]:
    """Card license metadata: the user's choice, else research-only for KEMDy-trained weights (linking the
    agreement of the corpus trained on; KEMDy19 first when both), else Apache-2.0."""
    if license_override:
        return {"license": license_override}
    if not trained_on_kemdy:
        return {"license": "apache-2.0"}
    corpora = [name for name in (datasets or []) if name in KEMDY_LINKS] or list(KEMDY_LINKS)
    return {**KEMDY_LICENSE, "license_link": KEMDY_LINKS[corpora[0]]}


def build_model_card(model: Any, processor: Any, model_dir: Path, run_info: dict[str, Any] | None,
                     metrics: dict[str, Any] | None, repo_id: str, license: str | None = None,
                     dataset_names: list[str] | None = None,
                     session_results: list[dict[str, Any]] | None = None) -> ModelCard:
    """The ``README.md`` model card: YAML metadata + results, install line, usage, limitations, license, BibTeX.

    ``pipeline_tag`` is ``other`` (the task is the custom ``multimodal-emotion-recognition`` pipeline): the
    Hub's widgets and its audio/text-classification snippets cannot run this model correctly (a multimodal
    model needs both inputs, and the stock text pipeline ignores the padding mask of a batch), while the
    Hub's "Use this model" snippet for ``other`` loads it with the Auto classes, which works.
    """
    config = model.config
    info = dict(run_info or {})
    modalities = list(config.modalities)
    preset = info.get("preset") or infer_preset(config)
    corpus = info.get("corpus")
    datasets = list(dataset_names) if dataset_names else CORPUS_DATASETS.get(
        str(corpus).lower() if corpus else "", ["KEMDy19", "KEMDy20"]
    )
    trained_on_kemdy = corpus != "synthetic"
    task_type = "audio-classification" if "audio" in modalities else "text-classification"
    results = eval_results(metrics, task_type, datasets, info)
    name = repo_id.split("/")[-1]
    tags = ["multistill", "emotion-recognition", "speech-emotion-recognition", "multimodal",
            "knowledge-distillation", "korean", "custom_code", "multimodal-emotion-recognition", task_type, preset]
    if info.get("backbones") == "tiny" or corpus == "synthetic":
        tags.append("test-checkpoint")
    bases = base_models(config, info)
    data = ModelCardData(
        language="ko", library_name="transformers", pipeline_tag="other", tags=tags, datasets=datasets or None,
        base_model=bases or None, model_name=name if results else None, eval_results=results or None,
        **card_license(license, trained_on_kemdy, datasets),
        **({"base_model_relation": "finetune"} if bases else {}),
    )
    labels = [config.id2label[i] for i in range(config.num_labels)]
    trainable = model.num_parameters(only_trainable=True)
    training = training_lines(config, info, preset, model.num_parameters(), trainable)
    limit = processor.max_audio_samples
    window_s = limit / processor.sampling_rate if limit else float("inf")
    evaluation = evaluation_section(metrics, preset, trainable, info, labels, model_dir)
    if session_results:
        evaluation += "\n\n" + session_results_section(session_results)
    body = f"""
# {name}: Multi-Still emotion recognition for Korean conversation

```bash
{INSTALL_LINE}
```

A Multi-Still model ({'speech + text' if len(modalities) == 2 else modalities[0] + ' only'}) that scores seven
emotions ({', '.join(labels)}) for one utterance, through the custom `multimodal-emotion-recognition`
pipeline (see [Usage](#usage)). This model has {encoders_text(config)}{' fused by' if len(modalities) == 2 else ', with'}
{fusion_text(config)}. Multi-Still distils a large teacher into small students for real-time use ({PAPER_CITATION}).

{usage_section(repo_id, modalities, window_s)}
## Training

{chr(10).join(training)}

## Evaluation

{evaluation}

{limitations_section(info, modalities, window_s)}
{license_section(data.license_name or data.license, trained_on_kemdy, datasets)}
## Citation

```bibtex
{BIBTEX}
```
"""
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{body}")


def fusion_text(config: Any) -> str:
    """How the branches are combined: the paper's attention layers, or the recipe's pooled head."""
    if getattr(config, "pooled_fusion", False):
        head = "a linear classifier" if not config.classifier_hidden_size else "a one-hidden-layer classifier"
        layers = ("the last encoder layer's frame mean and standard deviation"
                  if getattr(config, "audio_layer_mix", "weighted") == "last"
                  else "every encoder layer's frame mean and standard deviation mixed by learnt weights")
        return (f"pooled branches (audio: {layers}; text: the mean of its states), projected, concatenated and read "
                f"by {head}")
    return f"{config.num_fusion_layers} MulT-style cross-modal attention layer(s)"


def training_lines(config: Any, info: dict[str, Any], preset: str, total: int, trainable: int) -> list[str]:
    """The card's "Training" bullets: preset and sizes, corpus, split, encoders, teacher."""
    modalities = list(config.modalities)
    fusion = (f"{config.fusion_type} fusion" if getattr(config, "pooled_fusion", False)
              else f"{config.num_fusion_layers} fusion layer(s)")
    weight = getattr(config, "audio_weight", 1.0)
    fusion += f", audio weight {weight:g}" if weight != 1 and "audio" in modalities else ""
    context = (f"; {config.context_size} previous utterances as context "
               f"({getattr(config, 'context_type', 'decayed_sum').replace('_', ' ')})"
               if getattr(config, "context_size", 0) else "")
    lines = [f"- preset: `{preset}` ({'+'.join(modalities)}; {fusion}{context}; audio front end "
             f"`{config.audio_frontend}`), {total:,} parameters ({trainable:,} trainable)"]
    if not info:
        return lines + ["- no run_info.json was found next to the checkpoint: training details unknown"]
    lines.append(f"- corpus: `{info.get('corpus')}`, split: `{info.get('split')}`, seed: {info.get('seed')}, "
                 f"encoders: `{public_name(info.get('audio_encoder'))}` / "
                 f"`{public_name(info.get('text_encoder'))}` (backbones: {info.get('backbones')})")
    if info.get("teacher_model"):
        lines.append(f"- distilled from `{public_name(info['teacher_model'])}` (alpha {info.get('alpha')}, "
                     f"temperature {info.get('temperature')})")
    return lines


def evaluation_section(metrics: dict[str, Any] | None, preset: str, trainable: int, info: dict[str, Any],
                       labels: list[str], model_dir: Path) -> str:
    """The card's "Evaluation": the results table, per-class F1 and the run's figures, or why there are none."""
    if not metrics:
        return ("**No evaluation results**: the checkpoint folder has no `test_results.json`, so none are "
                "reported (and the metadata has no `model-index`).\n\n" + results_table(None, preset, trainable, info))
    figures = [f"![{f}]({f})" for f in ("confusion_matrix.png", "training_curves.png") if (model_dir / f).is_file()]
    test_set = describe_test_set(info, model_dir, labels)
    return (results_table(metrics, preset, trainable, info) + "\n\n" + (test_set + "\n\n" if test_set else "")
            + per_class_table(metrics, labels) + "\n" + "\n".join(figures))


def describe_test_set(info: dict[str, Any], model_dir: Path, labels: list[str]) -> str:
    """Which rows the test figures come from: the held-out sessions and, from ``test_predictions.json``, each
    emotion's count, with a warning when emotions are missing (macro-F1 then rewards predicting fewer of them)."""
    sessions = ((info.get("held_out") or {}).get("test") or {}).get("sessions")
    where = f"held-out sessions {', '.join(map(str, sessions))}" if sessions else ""
    predictions = model_dir / "test_predictions.json"
    try:
        counts = Counter(str(row["emotion"]) for row in json.loads(predictions.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError, KeyError):
        counts = Counter()
    if not counts:
        return f"Test set: {where}." if where else ""
    spelled = ", ".join(f"{label} {counts[label]}" for label in labels if counts[label])
    text = f"Test set: {where + ', ' if where else ''}{sum(counts.values())} utterances ({spelled})."
    missing = [label for label in labels if not counts[label]]
    if missing:
        text += (f" No {', '.join(missing)} in it: macro-F1 averages the emotions that occur in the references or "
                 "the predictions, so here a model that predicts only the most frequent emotion can score above "
                 "one that also predicts the missing ones; read accuracy, UA and the per-emotion F1 too.")
    return text


__all__ = [
    "BIBTEX",
    "CORPUS_DATASETS",
    "ENCODER_NAMES",
    "EXAMPLES_DIR",
    "EXAMPLE_FILES",
    "INSTALL_LINE",
    "KEMDY_LICENSE",
    "KEMDY_LINKS",
    "MODEL_INDEX_METRICS",
    "PAPER_CITATION",
    "PAPER_RESULTS",
    "TESTED_VERSIONS",
    "as_percent",
    "base_models",
    "build_model_card",
    "card_license",
    "check_session_results",
    "describe_test_set",
    "encoders_text",
    "eval_results",
    "evaluation_section",
    "example_transcript",
    "fusion_text",
    "hub_id_error",
    "infer_preset",
    "is_hub_id",
    "license_section",
    "limitations_section",
    "per_class_table",
    "public_name",
    "results_table",
    "session_results_section",
    "training_lines",
    "usage_section",
]
