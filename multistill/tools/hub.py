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

from huggingface_hub import HfApi, ModelCard, get_token

from .model_card import (
    EXAMPLE_FILES,
    EXAMPLES_DIR,
    build_model_card,
    check_session_results,
    example_transcript,
    hub_id_error,
)

logger = logging.getLogger(__name__)

#: files of a training output folder copied to the Hub folder when present
EXTRA_FILES = ("run_info.json", "test_results.json", "confusion_matrix.png", "training_curves.png")
#: written into a ``--local_dir`` folder: only a folder holding it may be replaced by ``--overwrite``
LOCAL_DIR_MARKER = ".multistill-hub-folder"
#: ``run_info.json`` keys that locate local data: left out of the Hub folder
LOCAL_DATA_KEYS = ("data_dir", "data_cache_dir")


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


# --------------------------------------------------------------------------------------------- folder
def check_model_dir(model_dir: str | os.PathLike, argument: str = "--model_dir") -> Path:
    """``model_dir`` as a Multi-Still checkpoint folder, checked before anything loads: a folder whose
    ``config.json`` is a JSON object of ``model_type`` ``multistill``; else a ``ValueError`` naming ``argument``."""
    from ..configuration_multistill import MultiStillConfig

    folder = Path(model_dir)
    if not folder.is_dir():
        raise ValueError(f"{argument} {model_dir} is not a folder.")
    try:
        config = read_json(folder / "config.json")
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{argument} {model_dir}: config.json is not a JSON object ({str(err).rstrip('.')}).") from None
    if config is None:
        raise ValueError(f"{argument} {model_dir} is not a model folder (no config.json).")
    if config.get("model_type") != MultiStillConfig.model_type:
        raise ValueError(f"{argument} {model_dir} is not a Multi-Still model (config.json model_type "
                         f"{config.get('model_type')!r}, not {MultiStillConfig.model_type!r}).")
    return folder


def load_checkpoint(model_dir: Path):
    """Model and processor of a training output folder (with the package's classes)."""
    from ..modeling_multistill import MultiStillForEmotionClassification
    from ..processing_multistill import MultiStillProcessor

    check_model_dir(model_dir, "checkpoint")
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
    from ..pipeline_multistill import save_pretrained_with_pipeline

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

    from ..modeling_multistill import MultiStillForEmotionClassification

    reloaded = MultiStillForEmotionClassification.from_pretrained(folder).eval()
    inputs = processor(audio=[str(folder / "example.wav")], text=[example_transcript()],
                       modalities=list(model.config.modalities))
    with torch.no_grad():
        diff = (reloaded(**inputs).logits - model(**inputs).logits).abs().max().item()
    if diff > 1e-4:
        raise RuntimeError(f"The written folder does not reproduce the model (max logit difference {diff:.2e}).")
    return diff


def build_folder(model_dir: str | os.PathLike, folder: str | os.PathLike, repo_id: str, license: str | None = None,
                 dataset_names: list[str] | None = None, verify: bool = True,
                 session_results: list[dict[str, Any]] | None = None) -> list[str]:
    """Write the complete Hub folder of the checkpoint in ``model_dir`` into the empty ``folder``
    (``session_results``: experiment results whose table the card shows, see ``push_to_hub.py``)."""
    model_dir, folder = Path(model_dir), Path(folder)
    model, processor = load_checkpoint(model_dir)
    run_info = public_run_info(read_json(model_dir / "run_info.json"))  # the card names no local path either
    metrics = read_json(model_dir / "test_results.json")
    logger.info("Loaded %s (%s); run_info: %s; test results: %s", model_dir, "+".join(model.config.modalities),
                "yes" if run_info else "no", "yes" if metrics else "no")
    card = build_model_card(model, processor, model_dir, run_info, metrics, repo_id, license, dataset_names,
                            session_results)
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
                       verify: bool = True, session_results: list[dict[str, Any]] | None = None) -> Path:
    """Build the Hub folder beside ``local_dir`` and then put it in place (replacing what was there), so a
    failure leaves ``local_dir`` untouched. Call :func:`check_local_dir` first."""
    target = Path(local_dir).absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        build_folder(model_dir, staging, repo_id, license, dataset_names, verify, session_results)
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
            dataset_names: list[str] | None = None, verify: bool = True,
            session_results: list[dict[str, Any]] | None = None) -> str:
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
        build_folder(model_dir, folder, repo_id, license, dataset_names, verify, session_results)
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
    "build_folder",
    "build_model_card",
    "check_local_dir",
    "check_model_dir",
    "check_session_results",
    "hub_id_error",
    "publish",
    "public_reference",
    "public_run_info",
    "publish_run",
    "write_local_folder",
]
