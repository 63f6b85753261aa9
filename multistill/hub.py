"""Build and publish the complete Hub folder of a trained Multi-Still checkpoint.

``push_to_hub.py`` and ``train.py``/``distill.py --push_to_hub`` both call :func:`publish`, so they
upload the same thing: ``config.json`` (``auto_map`` + the ``multimodal-emotion-recognition`` custom
pipeline), ``model.safetensors``, the processor files, the code files, ``run_info.json`` /
``test_results.json`` and plots when training wrote them, a short example WAV with its transcript, and a
``README.md`` model card (metadata, results beside the paper's, install line, runnable usage,
limitations, license, BibTeX). The folder is built fresh from the checkpoint, so nothing else found next
to it (checkpoints, optimizer states, training arguments) is ever uploaded.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, HfApi, ModelCard, ModelCardData, get_token
from huggingface_hub.utils import HFValidationError, validate_repo_id

logger = logging.getLogger(__name__)

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
EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
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
#: files of a training output folder copied to the Hub folder when present
EXTRA_FILES = ("run_info.json", "test_results.json", "confusion_matrix.png", "training_curves.png")
#: written into a ``--local_dir`` folder: only a folder holding it may be replaced by ``--overwrite``
LOCAL_DIR_MARKER = ".multistill-hub-folder"
#: ``run_info.json`` keys that locate local data: left out of the Hub folder
LOCAL_DATA_KEYS = ("data_dir", "data_cache_dir")


# --------------------------------------------------------------------------------------------- helpers
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


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from ``path``, or ``None`` when the file is absent."""
    if not path.is_file():
        return None
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object.")
    return data


def public_reference(value: Any) -> Any:
    """``value`` fit for an upload: a Hub id as it is, a local path (absolute, ``~``, or an existing file or
    folder) reduced to its last component, so no path of this machine is published."""
    if not isinstance(value, str) or not value:
        return value
    local = os.path.isabs(value) or value.startswith("~") or "\\" in value or os.path.exists(value)
    if not local:
        return value
    return Path(value.replace("\\", "/")).name or None


def public_run_info(info: dict[str, Any] | None) -> dict[str, Any] | None:
    """``run_info.json`` as uploaded: data locations (:data:`LOCAL_DATA_KEYS`) set to ``None``, every other
    local path (encoders, teacher, recognizer...) reduced by :func:`public_reference`, at any depth."""
    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: None if k in LOCAL_DATA_KEYS else clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return public_reference(value)

    return None if info is None else clean(info)


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



# --------------------------------------------------------------------------------------------- model card
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

The code files (`*_multistill.py`, `*_ngram.py`, `modeling_heads.py`, `annotations.py`, `audio_utils.py`, `asr.py`) are Apache-2.0, from the multistill project. The
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
                     dataset_names: list[str] | None = None) -> ModelCard:
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
    total = model.num_parameters()
    teacher = info.get("teacher_model")
    training = [f"- preset: `{preset}` ({'+'.join(modalities)}; {config.num_fusion_layers} fusion layer(s); "
                f"audio front end `{config.audio_frontend}`), {total:,} parameters ({trainable:,} trainable)"]
    if info:
        training.append(f"- corpus: `{corpus}`, split: `{info.get('split')}`, seed: {info.get('seed')}, "
                        f"encoders: `{public_name(info.get('audio_encoder'))}` / "
                        f"`{public_name(info.get('text_encoder'))}` (backbones: {info.get('backbones')})")
        if teacher:
            training.append(f"- distilled from `{public_name(teacher)}` (alpha {info.get('alpha')}, temperature "
                            f"{info.get('temperature')})")
    else:
        training.append("- no run_info.json was found next to the checkpoint: training details unknown")
    limit = processor.max_audio_samples
    window_s = limit / processor.sampling_rate if limit else float("inf")
    figures = [f"![{f}]({f})" for f in ("confusion_matrix.png", "training_curves.png") if (model_dir / f).is_file()]
    if metrics:
        evaluation = results_table(metrics, preset, trainable, info) + "\n\n" + per_class_table(metrics, labels)
        evaluation += "\n" + "\n".join(figures)
    else:
        evaluation = ("**No evaluation results**: the checkpoint folder has no `test_results.json`, so none are "
                      "reported (and the metadata has no `model-index`).\n\n" + results_table(None, preset, trainable, info))
    body = f"""
# {name}: Multi-Still emotion recognition for Korean conversation

```bash
{INSTALL_LINE}
```

A Multi-Still model ({'speech + text' if len(modalities) == 2 else modalities[0] + ' only'}) that scores seven
emotions ({', '.join(labels)}) for one utterance, through the custom `multimodal-emotion-recognition`
pipeline (see [Usage](#usage)). This model has {encoders_text(config)}{' fused by' if len(modalities) == 2 else ', with'}
{config.num_fusion_layers} MulT-style cross-modal attention layer(s). Multi-Still distils a large teacher into small
students for real-time use ({PAPER_CITATION}).

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


# --------------------------------------------------------------------------------------------- folder
def load_checkpoint(model_dir: Path):
    """Model and processor of a training output folder (with the package's classes)."""
    from .modeling_multistill import MultiStillForEmotionClassification
    from .processing_multistill import MultiStillProcessor

    if not (model_dir / "config.json").is_file():
        raise ValueError(f"{model_dir} is not a model folder (no config.json).")
    try:
        model = MultiStillForEmotionClassification.from_pretrained(model_dir).eval()
    except OSError as err:  # damaged weights, pickle-only weights (ValueError: config.json does not match them)
        raise ValueError(str(err)) from err
    try:
        processor = MultiStillProcessor.from_pretrained(model_dir)
    except (OSError, ValueError, TypeError) as err:
        raise ValueError(f"{model_dir} has no usable processor files (processor.save_pretrained): {err}") from err
    return model, processor


def write_folder(model: Any, processor: Any, model_dir: Path, folder: Path, card: ModelCard) -> list[str]:
    """Model + processor + code + custom pipeline + training files + example + README.md; returns the names."""
    from .pipeline_multistill import save_pretrained_with_pipeline

    for name in ("audio_encoder_name", "text_encoder_name"):  # config.json: no local path of this machine
        setattr(model.config, name, public_reference(getattr(model.config, name)))
    save_pretrained_with_pipeline(model, processor, folder)
    for name in EXTRA_FILES:
        if name == "run_info.json" and (model_dir / name).is_file():
            with open(folder / name, "w", encoding="utf-8") as f:
                json.dump(public_run_info(read_json(model_dir / name)), f, indent=2, ensure_ascii=False)
        elif (model_dir / name).is_file():
            shutil.copyfile(model_dir / name, folder / name)
    for name in EXAMPLE_FILES:
        shutil.copyfile(EXAMPLES_DIR / name, folder / name)
    card.save(folder / "README.md")
    return sorted(os.listdir(folder))


def verify_folder(model: Any, processor: Any, folder: Path) -> float:
    """Reload the folder and compare its logits with ``model``'s on the example; returns the max difference."""
    import torch

    from .modeling_multistill import MultiStillForEmotionClassification

    reloaded = MultiStillForEmotionClassification.from_pretrained(folder).eval()
    inputs = processor(audio=[str(folder / "example.wav")], text=[example_transcript()],
                       modalities=list(model.config.modalities))
    with torch.no_grad():
        diff = (reloaded(**inputs).logits - model(**inputs).logits).abs().max().item()
    if diff > 1e-4:
        raise RuntimeError(f"The written folder does not reproduce the model (max logit difference {diff:.2e}).")
    return diff


def build_folder(model_dir: str | os.PathLike, folder: str | os.PathLike, repo_id: str, license: str | None = None,
                 dataset_names: list[str] | None = None, verify: bool = True) -> list[str]:
    """Write the complete Hub folder of the checkpoint in ``model_dir`` into the empty ``folder``."""
    model_dir, folder = Path(model_dir), Path(folder)
    model, processor = load_checkpoint(model_dir)
    run_info = public_run_info(read_json(model_dir / "run_info.json"))  # the card names no local path either
    metrics = read_json(model_dir / "test_results.json")
    logger.info("Loaded %s (%s); run_info: %s; test results: %s", model_dir, "+".join(model.config.modalities),
                "yes" if run_info else "no", "yes" if metrics else "no")
    card = build_model_card(model, processor, model_dir, run_info, metrics, repo_id, license, dataset_names)
    files = write_folder(model, processor, model_dir, folder, card)
    logger.info("Wrote %s: %s", folder, ", ".join(files))
    if verify:
        logger.info("Reloaded folder: max logit difference %.2e", verify_folder(model, processor, folder))
    return files


def check_local_dir(local_dir: str | os.PathLike, model_dir: str | os.PathLike, overwrite: bool) -> Path:
    """Validate ``--local_dir`` before anything is loaded: not a symbolic link (never followed), not a file,
    not the checkpoint folder (or one that holds it), and empty unless ``overwrite``, which only replaces a
    folder an earlier ``--local_dir`` wrote (its :data:`LOCAL_DIR_MARKER`). Raises ``ValueError`` naming the
    argument."""
    if Path(local_dir).is_symlink():
        raise ValueError(f"--local_dir {local_dir} is a symbolic link: give the folder itself (links are never "
                         "followed, so nothing outside it can be replaced).")
    target, source = Path(local_dir).absolute(), Path(model_dir).resolve()
    if target.exists() and not target.is_dir():
        raise ValueError(f"--local_dir {local_dir} is a file, not a folder.")
    if target.resolve() == source or target.resolve() in source.parents:
        raise ValueError(f"--local_dir {local_dir} is (or contains) --model_dir {model_dir}: write the Hub folder "
                         "somewhere else; the checkpoint must stay as training wrote it.")
    if target.is_dir() and any(target.iterdir()):
        if not overwrite:
            raise ValueError(f"--local_dir {local_dir} is not empty: choose a new folder, or pass --overwrite to "
                             "replace a folder that an earlier --local_dir wrote.")
        if not (target / LOCAL_DIR_MARKER).is_file():
            raise ValueError(f"--local_dir {local_dir} --overwrite: the folder holds files that push_to_hub.py did "
                             f"not write (no {LOCAL_DIR_MARKER}), so it is not replaced; choose a new folder.")
    return target


def normal_permissions(folder: Path) -> None:
    """Folders 755, files 644 (``mkdtemp`` and some writers create owner-only modes, which a copied or served
    folder should not keep)."""
    for root, dirs, files in os.walk(folder):
        os.chmod(root, 0o755)
        for name in files:
            os.chmod(os.path.join(root, name), 0o644)
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)


def write_local_folder(model_dir: str | os.PathLike, local_dir: str | os.PathLike, repo_id: str,
                       license: str | None = None, dataset_names: list[str] | None = None,
                       verify: bool = True) -> Path:
    """Build the Hub folder beside ``local_dir`` and then put it in place (replacing what was there), so a
    failure leaves ``local_dir`` untouched. Call :func:`check_local_dir` first."""
    target = Path(local_dir).absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        build_folder(model_dir, staging, repo_id, license, dataset_names, verify)
        (staging / LOCAL_DIR_MARKER).write_text("written by push_to_hub.py; --overwrite may replace this folder\n",
                                                encoding="utf-8")
        normal_permissions(staging)
        if target.exists():
            logger.warning("--overwrite: replacing the %d entries of %s (written by an earlier --local_dir)",
                           len(list(target.iterdir())), target)
            shutil.rmtree(target)  # (rmtree refuses a symbolic link)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def publish(model_dir: str | os.PathLike, repo_id: str, private: bool = False, token: str | None = None,
            commit_message: str = "Upload Multi-Still emotion recognition model", license: str | None = None,
            dataset_names: list[str] | None = None, verify: bool = True) -> str:
    """Create the Hub repository (if needed) and upload the complete Hub folder of ``model_dir``; returns
    the commit URL. ``repo_id`` without a namespace goes to the token owner's (as the Trainer does)."""
    token = token or get_token()
    if not token:
        raise ValueError("No Hub token: pass --token (--hub_token for training), set HF_TOKEN, or log in with "
                         "`hf auth login`.")
    api = HfApi(token=token)
    repo_url = api.create_repo(repo_id=repo_id, repo_type="model", private=private, exist_ok=True)
    repo_id = getattr(repo_url, "repo_id", None) or repo_id
    logger.info("Repository: %s", repo_url)
    with tempfile.TemporaryDirectory(prefix="multistill-hub-") as folder:
        build_folder(model_dir, folder, repo_id, license, dataset_names, verify)
        commit = api.upload_folder(repo_id=repo_id, repo_type="model", folder_path=folder,
                                   commit_message=commit_message)
    url = str(getattr(commit, "commit_url", commit))
    logger.info("Uploaded to %s", url)
    return url


def publish_run(output_dir: str | os.PathLike, training_args: Any) -> str:
    """``train.py``/``distill.py --push_to_hub``: publish the finished run's folder exactly as
    ``push_to_hub.py --model_dir output_dir`` would, to ``--hub_model_id`` (default: the output folder's name)."""
    repo_id = training_args.hub_model_id or Path(output_dir).resolve().name
    return publish(output_dir, repo_id, private=bool(training_args.hub_private_repo), token=training_args.hub_token,
                   commit_message=f"Upload Multi-Still model trained in {Path(output_dir).name}")


__all__ = [
    "BIBTEX",
    "INSTALL_LINE",
    "PAPER_RESULTS",
    "build_folder",
    "build_model_card",
    "check_local_dir",
    "eval_results",
    "hub_id_error",
    "publish",
    "public_reference",
    "public_run_info",
    "publish_run",
    "write_local_folder",
]
