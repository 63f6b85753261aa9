"""Encoder-feature caching: the hidden states of frozen encoders, computed once and kept on disk.

A frozen encoder gives the same outputs in every epoch and every run, so :class:`EncoderFeatureCache` runs it
once per utterance and stores its hidden states in Arrow shards, in a folder named by a fingerprint of the
encoder's weights, what the processor does to that modality, the model's length limit and the storage dtype;
rows are keyed by :func:`content_keys` (the content the encoder sees). A student of a teacher therefore
encodes nothing the teacher's run encoded, and a change of weights, processor or data encodes anew.
:class:`FeatureTable` is a read-only snapshot the collator batches from. The feature plan that decides what
is cached lives in :mod:`.features`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import Array2D, Audio, Dataset, Features, Value, concatenate_datasets

from ..configuration_multistill import ALLOWED_MODALITIES as MODALITIES

logger = logging.getLogger(__name__)

#: Bumped when the way features are computed changes (invalidates every cache). v4: Whisper at the utterance's length,
#: batch-independent; layer statistics for the pooled fusion.
FEATURE_FORMAT = "encoder-features-v4"


def _encoder(model: torch.nn.Module, modality: str) -> torch.nn.Module:
    base = getattr(model, "multistill", model)
    encoder = getattr(base, f"{modality}_encoder", None)
    if encoder is None:
        raise ValueError(f"The model has no {modality} encoder (modalities {model.config.modalities}).")
    return encoder


# --------------------------------------------------------------------------------------------
# Fingerprints: what an encoder is, and what it sees
# --------------------------------------------------------------------------------------------


def module_fingerprint(module: torch.nn.Module) -> str:
    """A hash of every parameter and buffer of ``module`` (names, shapes and values)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def fingerprint_of(*parts: Any) -> str:
    """A short, stable hash of JSON-serialisable ``parts`` (cache folder, shard and logits fingerprints)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


_PROCESSOR_BOOKKEEPING = ("auto_map", "processor_class", "feature_extractor", "tokenizer", "modalities")
_PROCESSOR_TEXT_SETTINGS = ("max_text_tokens",)


def processor_fingerprint(processor: Any, modality: str) -> str:
    """A hash of what ``processor`` does to one modality: the feature extractor and the processor's audio
    settings for ``"audio"``, the tokenizer and the token limit for ``"text"`` (not object identity, file
    locations or the other modality's settings)."""
    settings = {k: v for k, v in processor.to_dict().items() if k not in _PROCESSOR_BOOKKEEPING}
    if modality == "audio":
        extractor = {k: v for k, v in processor.feature_extractor.to_dict().items() if k not in _PROCESSOR_BOOKKEEPING}
        return fingerprint_of(extractor, {k: v for k, v in settings.items() if k not in _PROCESSOR_TEXT_SETTINGS})
    tokenizer = processor.tokenizer
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:  # without its call state (padding/truncation are set by the last call)
        described = {k: v for k, v in json.loads(backend.to_str()).items() if k not in ("truncation", "padding")}
    else:
        described = sorted(tokenizer.get_vocab().items())
    return fingerprint_of(described, getattr(tokenizer, "do_lower_case", None),
                          {k: settings.get(k) for k in _PROCESSOR_TEXT_SETTINGS})


def content_keys(dataset: Dataset, modality: str) -> list[str]:
    """One key per row for what an encoder of ``modality`` sees: the transcript (``text`` column), or the
    stored audio (its bytes, or its file's path, size and modification time, and the decoding rate)."""
    if modality == "text":
        return [hashlib.sha1(f"text:{t}".encode()).hexdigest()[:24] for t in dataset["text"]]
    feature = dataset.features["audio"]
    stored = dataset.cast_column("audio", Audio(sampling_rate=feature.sampling_rate, decode=False))["audio"]
    keys = []
    for item in stored:
        digest = hashlib.sha1(f"audio:{feature.sampling_rate}:".encode())
        if item.get("bytes"):
            digest.update(item["bytes"])
        else:
            path = item.get("path") or ""
            stat = os.stat(path) if os.path.exists(path) else None
            digest.update(f"{os.path.abspath(path)}:{stat and stat.st_size}:{stat and stat.st_mtime_ns}".encode())
        keys.append(digest.hexdigest()[:24])
    return keys


# --------------------------------------------------------------------------------------------
# Cached encoder features
# --------------------------------------------------------------------------------------------


def _pad_sequences(arrays: Sequence[Any]) -> tuple[torch.Tensor, torch.Tensor]:
    tensors = [torch.as_tensor(np.asarray(a, dtype=np.float32)) for a in arrays]
    longest = max(t.shape[0] for t in tensors)
    padded = torch.zeros(len(tensors), longest, tensors[0].shape[-1])
    mask = torch.zeros(len(tensors), longest, dtype=torch.long)
    for i, tensor in enumerate(tensors):
        padded[i, : tensor.shape[0]] = tensor
        mask[i, : tensor.shape[0]] = 1
    return padded, mask


@dataclass(frozen=True)
class FeatureTable:
    """A read-only snapshot of one encoder's cached hidden states: content key -> ``[frames, hidden]``."""

    dataset: Dataset | None
    index: Mapping[str, int]

    def __contains__(self, key: str) -> bool:
        return key in self.index

    def __len__(self) -> int:
        return len(self.index)

    def batch(self, keys: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """The hidden states of ``keys``, zero-padded, and their frame mask."""
        missing = [k for k in keys if k not in self.index]
        if missing or self.dataset is None:
            raise KeyError(f"{len(missing)} of {len(keys)} rows are not in the feature cache (prepare it first).")
        return _pad_sequences(self.dataset[[self.index[k] for k in keys]]["hidden_states"])


class EncoderFeatureCache:
    """The hidden states of one frozen encoder (``modality`` of ``model``, fed by ``processor``), on disk.

    Its folder is named by a fingerprint of the encoder's weights, what the processor does to that
    modality, the model's length limit and the storage dtype; inside, rows are keyed by
    :func:`content_keys`. So any model holding the same encoder (a student of this teacher) finds what
    an earlier run encoded, whatever the split, the other modality or the other columns, and a change of
    weights, processor or data encodes anew. New rows are appended as Arrow shards (written atomically by
    ``datasets.map``).
    """

    def __init__(self, root: str | os.PathLike, model: torch.nn.Module, processor: Any, modality: str,
                 feature_dtype: str = "float32", batch_size: int = 8):
        if modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}.")
        self.model, self.processor, self.modality = model, processor, modality
        self.feature_dtype, self.batch_size = feature_dtype, batch_size
        self.hidden_size = int(getattr(model.config, f"{modality}_hidden_size"))
        limit = model.config.max_audio_frames if modality == "audio" else model.config.max_text_tokens
        self.fingerprint = fingerprint_of(FEATURE_FORMAT, modality, module_fingerprint(_encoder(model, modality)),
                                          processor_fingerprint(processor, modality), limit, feature_dtype)
        self.folder = Path(root) / f"{modality}-{self.fingerprint}"

    def table(self) -> FeatureTable:
        """What the cache holds now."""
        shards = sorted(self.folder.glob("shard-*.arrow"))
        if not shards:
            return FeatureTable(None, {})
        dataset = concatenate_datasets([Dataset.from_file(str(p)) for p in shards]).with_format("numpy")
        return FeatureTable(dataset, {key: i for i, key in enumerate(dataset["key"])})

    def encode(self, dataset: Dataset, keys: Sequence[str], desc: str) -> tuple[FeatureTable, int]:
        """Encode the rows of ``dataset`` (``keys[i]`` is row ``i``'s content key) that the cache lacks.

        Returns the updated table and the number of utterances encoded.
        """
        table = self.table()
        first: dict[str, int] = {}
        for i, key in enumerate(keys):
            if key not in table and key not in first:
                first[key] = i
        if not first:
            logger.debug("%s: all %d utterances already cached in %s", desc, len(keys), self.folder)
            return table, 0
        new_keys = list(first)
        shard = fingerprint_of(self.fingerprint, new_keys)
        self.folder.mkdir(parents=True, exist_ok=True)
        features = Features({"key": Value("string"),
                             "hidden_states": Array2D(shape=(None, self.hidden_size), dtype=self.feature_dtype)})
        source = dataset.select(list(first.values())).select_columns([self.modality])
        device = next(self.model.parameters()).device
        was_training = self.model.training
        self.model.eval()

        def encode(batch: dict[str, list], indices: list[int]) -> dict[str, list]:
            values = batch[self.modality]
            inputs = processor_inputs(self.processor, self.modality, values)
            inputs = {k: v.to(device) for k, v in inputs.items()}
            with torch.inference_mode():
                if self.modality == "audio":
                    hidden, mask = self.model.encode_audio(**inputs)
                else:
                    hidden, mask = self.model.encode_text(**inputs)
            return {"key": [new_keys[i] for i in indices], "hidden_states": _unpad(hidden, mask, self.feature_dtype)}

        try:
            source.map(encode, batched=True, batch_size=self.batch_size, with_indices=True,
                       remove_columns=[self.modality], features=features, new_fingerprint=shard,
                       cache_file_name=str(self.folder / f"shard-{shard}.arrow"),
                       desc=f"{desc}: {len(new_keys)} of {len(keys)} utterances")
        finally:
            self.model.train(was_training)
        return self.table(), len(new_keys)


def _audio_arrays(batch_audio: Sequence[Any]) -> list[np.ndarray]:
    return [np.asarray(item["array"], dtype=np.float32) for item in batch_audio]


def processor_inputs(processor: Any, modality: str, values: Sequence[Any]) -> dict[str, torch.Tensor]:
    """Model inputs of one modality for a batch of raw values (decoded 16 kHz audio rows or transcripts)."""
    if modality == "audio":
        inputs = processor(audio=_audio_arrays(values), sampling_rate=16000, modalities=["audio"],
                           return_tensors="pt")
    else:
        inputs = processor(text=list(values), modalities=["text"], return_tensors="pt")
    # token_type_ids are all zeros for one segment; the cached and the raw path both leave them out.
    return {k: v for k, v in inputs.items() if k != "token_type_ids"}


def _unpad(hidden: torch.Tensor, mask: torch.Tensor, dtype: str) -> list[np.ndarray]:
    lengths = mask.sum(-1).tolist()
    hidden = hidden.float().cpu().numpy().astype(dtype)
    return [hidden[i, : int(n)] for i, n in enumerate(lengths)]


__all__ = [
    "FEATURE_FORMAT",
    "EncoderFeatureCache",
    "FeatureTable",
    "content_keys",
    "fingerprint_of",
    "module_fingerprint",
    "processor_fingerprint",
    "processor_inputs",
]
