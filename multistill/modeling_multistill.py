"""Multi-Still models: pretrained (or light) speech/text encoders + a MulT-style cross-modal fusion head.

This file is shipped next to the weights on the Hub: it imports its siblings only relatively.

* :class:`MultiStillModel` — encoders + fusion; returns the pooled fused representation.
* :class:`MultiStillForEmotionClassification` — the same plus the classifier; serves the teacher and all
  students (``config.modalities`` / ``num_fusion_layers`` and the encoder configs decide the branches).

Their parts live in sibling files: the cross-modal transformer in :mod:`.modeling_cross_attention`, the pooled
fusion and the conversation context in :mod:`.modeling_heads`, the light student's audio encoder
(``MultiStillFbankEncoder``) in :mod:`.modeling_fbank`, and encoder building, loading checks and the
``from_encoders`` / ``light_student_from_teacher`` constructors in :mod:`.modeling_encoders`.

Encoders: any ``AutoModel`` audio encoder taking ``input_values`` (wav2vec2, HuBERT, WavLM, data2vec-audio,
the fbank encoder) or ``input_features`` (the Whisper encoder; its decoder is never built), any ``AutoModel``
text encoder (ELECTRA, BERT, RoBERTa/XLM-R...).

Padding never changes a prediction: every attention gets a key-padding mask and every pooling is masked.
(This holds for wav2vec2 encoders with ``feat_extract_norm="layer"``, like the default
kresnik/wav2vec2-large-xlsr-korean, HuBERT and WavLM, and for Whisper, whose processor pads every clip to the
same 30 s window. Base wav2vec2 models use ``"group"`` normalisation over the whole, padded, sequence, and
data2vec-audio stacks five positional convolutions, so these two are *not* padding-invariant.)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.utils import ModelOutput

from .configuration_multistill import ALLOWED_MODALITIES, MultiStillConfig, _normalize_modalities
from .modeling_cross_attention import MultiStillFusionEncoder, cross_modal_fusion
from .modeling_encoders import (
    MultiStillEncoderInitMixin,
    build_encoder,
    check_saved_folder,
    is_whisper_encoder,
    whisper_encoder_states,
)
from .modeling_heads import MultiStillContext, MultiStillPooledFusion, layer_statistics
from .modeling_ngram import MultiStillNgramEncoder


# --------------------------------------------------------------------------------------------- outputs
@dataclass
class MultiStillModelOutput(ModelOutput):
    """Output of :class:`MultiStillModel`.

    Args:
        pooled_features: ``[B, 768 * n_modalities]`` fused representation (input of the classifier; with
            ``context_size`` the utterance's and its context's, concatenated).
        utterance_features: ``[B, 768 * n_modalities]`` the utterance's own fused representation, before context:
            what a conversation keeps as history (``history_features`` of the next utterances).
        fused_hidden_states: per fusion encoder, its final ``[B, T, 768]`` output (order of ``fusion_names``).
        audio_hidden_states / audio_hidden_mask: audio encoder output ``[B, T_a, H_a]`` and frame mask
            (only with ``output_hidden_states=True``; what training code caches).
        text_hidden_states / text_hidden_mask: text encoder output ``[B, T_t, H_t]`` and token mask (idem).
        attentions: fusion attention weights, one ``[B, heads, T_q, T_k]`` per layer (``output_attentions``).
    """

    pooled_features: torch.FloatTensor | None = None
    utterance_features: torch.FloatTensor | None = None
    fused_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    audio_hidden_states: torch.FloatTensor | None = None
    audio_hidden_mask: torch.LongTensor | None = None
    text_hidden_states: torch.FloatTensor | None = None
    text_hidden_mask: torch.LongTensor | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class MultiStillOutput(SequenceClassifierOutput):
    """Output of :class:`MultiStillForEmotionClassification`: transformers' classification output (``loss``,
    ``logits``, ``hidden_states`` unused, ``attentions``) plus the fused and encoder states.

    Args:
        loss: cross-entropy against class ids or (soft) vote distributions, when ``labels`` are given.
        logits: ``[B, num_labels]`` scores before softmax.
        pooled_features: ``[B, 768 * n_modalities]`` concatenated fused representation before the classifier.
        utterance_features: the utterance's own representation, before context (see :class:`MultiStillModelOutput`).
        fused_hidden_states, audio_hidden_states, audio_hidden_mask, text_hidden_states, text_hidden_mask,
            attentions: see :class:`MultiStillModelOutput`.
    """

    pooled_features: torch.FloatTensor | None = None
    utterance_features: torch.FloatTensor | None = None
    fused_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    audio_hidden_states: torch.FloatTensor | None = None
    audio_hidden_mask: torch.LongTensor | None = None
    text_hidden_states: torch.FloatTensor | None = None
    text_hidden_mask: torch.LongTensor | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


# --------------------------------------------------------------------------------------------- helpers
def classification_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy with hard (class id ``[B]``, ``-100`` ignored) or soft (``[B, num_labels]`` vote counts or
    distributions, rows normalised to sum to 1) targets, in float32."""
    labels = labels.to(logits.device)
    if labels.is_floating_point():
        if labels.shape != logits.shape:
            raise ValueError(f"Soft labels must have shape [batch, {logits.shape[-1]}], got {tuple(labels.shape)}.")
        targets = labels.float() / labels.float().sum(dim=-1, keepdim=True).clamp_min(1e-12)
        return F.cross_entropy(logits.float(), targets)
    if labels.dim() != 1 or labels.shape[0] != logits.shape[0]:
        raise ValueError(f"Class-id labels must have shape [batch], got {tuple(labels.shape)}.")
    return F.cross_entropy(logits.float(), labels.long())



def _is_tracing() -> bool:
    """True under torch.jit tracing / torch.compile / torch.export, where data-dependent checks are skipped."""
    compiler = getattr(torch, "compiler", None)
    return bool(
        torch.jit.is_tracing()
        or (compiler is not None and compiler.is_compiling())
        or (compiler is not None and hasattr(compiler, "is_exporting") and compiler.is_exporting())
    )


def _check_mask(mask: torch.Tensor, what: str) -> None:
    if mask.dim() != 2:
        raise ValueError(f"`{what}` must have shape [batch, time], got {tuple(mask.shape)}.")
    if not _is_tracing() and mask.numel() and bool((mask.sum(dim=-1) == 0).any()):
        raise ValueError(f"`{what}` has a row without any valid position (an empty utterance).")



# --------------------------------------------------------------------------------------------- head
class MultiStillClassificationHead(nn.Module):
    """Dropout -> Linear(pooled, 512) -> GELU -> Dropout -> Linear(512, num_labels); with
    ``classifier_hidden_size=0`` a linear classifier, Dropout -> Linear(pooled, num_labels) (the recipe's: on
    about a thousand utterances it trains to the regularised optimum that logistic regression reaches)."""

    def __init__(self, config: MultiStillConfig):
        super().__init__()
        self.dropout = nn.Dropout(config.classifier_dropout)
        width = config.classifier_hidden_size
        self.dense = nn.Linear(config.pooled_size, width) if width else None
        self.out_proj = nn.Linear(width or config.pooled_size, config.num_labels)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        hidden = self.dropout(pooled)
        if self.dense is not None:
            hidden = self.dropout(F.gelu(self.dense(hidden)))
        return self.out_proj(hidden)



# --------------------------------------------------------------------------------------------- models
class MultiStillPreTrainedModel(PreTrainedModel):
    """Weight initialisation, loading, encoder freezing and the ``auto_map`` shared by the Multi-Still models."""

    config_class = MultiStillConfig
    config: MultiStillConfig
    base_model_prefix = "multistill"
    main_input_name = "input_values"
    supports_gradient_checkpointing = False
    #: the loss is a per-batch mean: the Trainer must scale it for gradient accumulation itself
    accepts_loss_kwargs = False
    _supports_sdpa = True
    _no_split_modules = ["MultiStillFusionLayer", "Wav2Vec2EncoderLayerStableLayerNorm", "WhisperEncoderLayer"]

    @classmethod
    def from_pretrained(cls, *args: Any, **kwargs: Any):
        """``PreTrainedModel.from_pretrained`` of safetensors weights only (a pickle ``.bin`` can run code; pass
        ``use_safetensors=False`` to load one you trust), then
        re-apply the config's frozen encoders (loading re-creates the parameters, which resets ``requires_grad``).

        A local folder is checked first (:func:`check_saved_folder`): a missing ``config.json``, pickle-only or
        damaged weights, or a config that does not match them is one ``OSError``/``ValueError`` naming the file.
        """
        source = args[0] if args else kwargs.get("pretrained_model_name_or_path")
        if kwargs.setdefault("use_safetensors", True) and isinstance(source, (str, os.PathLike)):
            folder = os.path.normpath(os.path.join(os.fspath(source), kwargs.get("subfolder") or "."))
            if os.path.isdir(folder):
                config = kwargs.get("config")
                if not isinstance(config, PreTrainedConfig):
                    try:
                        config = cls.config_class.from_pretrained(folder)
                    except ValueError as err:  # a value the config refuses: name the file
                        raise ValueError(f"{os.path.join(folder, 'config.json')}: {err}") from err
                check_saved_folder(folder, cls, config, check_shapes=not kwargs.get("ignore_mismatched_sizes"))
        model = super().from_pretrained(*args, **kwargs)
        (model[0] if isinstance(model, tuple) else model)._apply_frozen_encoders()  # tuple: output_loading_info
        return model

    def _base(self) -> MultiStillModel:
        return getattr(self, self.base_model_prefix, self)

    def set_encoders_frozen(self, frozen: bool = True, modalities: str | list[str] | None = None) -> None:
        """Freeze (no gradients, always eval mode) or unfreeze the encoders of ``modalities`` (default: both)
        and record it in ``config.freeze_audio_encoder`` / ``freeze_text_encoder`` (saved with the model)."""
        chosen = _normalize_modalities(modalities) if modalities is not None else list(ALLOWED_MODALITIES)
        for modality in chosen:
            setattr(self.config, f"freeze_{modality}_encoder", bool(frozen))
        self._apply_frozen_encoders()

    def _apply_frozen_encoders(self) -> None:
        """Set ``requires_grad`` / eval mode of the encoders from ``config.frozen_modalities``. Parameters an
        encoder keeps fixed itself (Whisper's sinusoidal positions) stay fixed when it is trained."""
        base = self._base()
        frozen = self.config.frozen_modalities
        for modality, encoder in base.encoders().items():
            fixed = base.fixed_encoder_parameters[modality]
            for name, parameter in encoder.named_parameters():
                parameter.requires_grad_(modality not in frozen and name not in fixed)
            if modality in frozen:
                encoder.eval()


class MultiStillModel(MultiStillPreTrainedModel):
    """Encoders + fusion. ``forward`` returns :class:`MultiStillModelOutput` (``pooled_features``)."""

    _keys_to_ignore_on_load_unexpected = [r"^classifier\."]

    def __init__(self, config: MultiStillConfig, audio_encoder: PreTrainedModel | None = None,
                 text_encoder: PreTrainedModel | None = None):
        """``audio_encoder``/``text_encoder``: loaded encoders to use as they are (they must match
        ``config.audio_config``/``text_config``); the others are built from the config, randomly initialised."""
        super().__init__(config)
        encoders = {"audio": audio_encoder, "text": text_encoder}
        #: per modality, the encoder parameters that the encoder itself keeps fixed (never trained)
        self.fixed_encoder_parameters: dict[str, frozenset[str]] = {}
        for modality in config.modalities:
            encoder_config = getattr(config, f"{modality}_config")
            given = encoders[modality] is not None
            if not given:
                encoders[modality] = build_encoder(encoder_config)
            with torch.device("meta"):  # loading resets requires_grad: ask an empty encoder what it keeps fixed
                probe = build_encoder(encoder_config) if given else encoders[modality]
            self.fixed_encoder_parameters[modality] = frozenset(
                name for name, p in probe.named_parameters() if not p.requires_grad)
        self.audio_encoder: PreTrainedModel | None = encoders["audio"] if config.use_audio else None
        self.text_encoder: PreTrainedModel | None = encoders["text"] if config.use_text else None
        if config.pooled_fusion:
            self.branch_pooling = MultiStillPooledFusion(config)
            self.fusion_names = []
        else:
            # Present in every variant, as in the original (it is part of the paper's parameter counts).
            self.audio_projection = nn.Conv1d(config.audio_hidden_size, config.hidden_size, kernel_size=1, bias=False)
            if config.use_text and config.text_hidden_size != config.hidden_size:
                self.text_projection = nn.Conv1d(config.text_hidden_size, config.hidden_size, kernel_size=1,
                                                 bias=False)
            else:
                self.text_projection = None
            self.fusion_names = self._fusion_names(config)
            for name in self.fusion_names:
                setattr(self, name, MultiStillFusionEncoder(config))
        self.context = MultiStillContext(config) if config.context_size else None
        self.post_init()
        self._apply_frozen_encoders()

    @staticmethod
    def _fusion_names(config: MultiStillConfig) -> list[str]:
        if config.use_audio and config.use_text:
            return ["audio_to_text", "text_to_audio"]
        return ["audio_self_attention"] if config.use_audio else ["text_self_attention"]

    def encoders(self) -> dict[str, PreTrainedModel]:
        """The encoders present, by modality (``{"audio": ..., "text": ...}``)."""
        pairs = (("audio", self.audio_encoder), ("text", self.text_encoder))
        return {modality: encoder for modality, encoder in pairs if encoder is not None}

    # ------------------------------------------------------------------ freezing
    def train(self, mode: bool = True) -> MultiStillModel:
        super().train(mode)
        for modality, encoder in self.encoders().items():
            if modality in self.config.frozen_modalities:
                encoder.eval()
        return self

    def _encoder_grad(self, modality: str) -> bool:
        return torch.is_grad_enabled() and modality not in self.config.frozen_modalities

    # ------------------------------------------------------------------ encoders
    @property
    def audio_input_name(self) -> str:
        """``"input_values"`` (raw waveform) or ``"input_features"`` (log-mel, Whisper): what the audio encoder takes."""
        if self.audio_encoder is None:
            raise ValueError(f"This model has no audio branch (modalities={self.config.modalities}).")
        return self.audio_encoder.main_input_name

    def encode_audio(
        self,
        input_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.LongTensor]:
        """Audio -> audio hidden states ``[B, T, H]`` and frame mask ``[B, T]``; these are the tensors to cache.

        Waveform encoders (wav2vec2 family, the fbank front end) take ``input_values`` ``[B, S]`` (16 kHz) with a
        sample mask; log-mel encoders (Whisper) take ``input_features`` ``[B, n_mels, N]`` (padded to the 30 s
        window, or to the longest clip of the batch) with a mel-frame mask; Whisper runs at the input's length
        (:func:`whisper_encoder_states`). The valid frames come from the encoder's
        ``_get_feat_extract_output_lengths``; the output is cut to the longest valid length and to
        ``config.max_audio_frames``. With the pooled fusion the result is every layer's frame mean and standard
        deviation, ``[B, layers, 2H]`` (:func:`.modeling_heads.layer_statistics`), with an all-ones mask.
        """
        name = self.audio_input_name
        given = {"input_values": input_values, "input_features": input_features}
        inputs = given.get(name)
        if inputs is None:
            other = [key for key, value in given.items() if value is not None and key != name]
            raise ValueError(
                f"The audio encoder ({type(self.audio_encoder).__name__}) takes `{name}`"
                + (f", not `{other[0]}`" if other else "")
                + "; prepare the audio with the model's MultiStillProcessor."
            )
        ndim = 2 if name == "input_values" else 3
        if inputs.dim() == ndim - 1:
            inputs = inputs.unsqueeze(0)
        if inputs.dim() != ndim:
            raise ValueError(f"`{name}` must have {ndim} dimensions (batch first), got shape {tuple(inputs.shape)}.")
        if attention_mask is None:
            attention_mask = torch.ones(inputs.shape[0], inputs.shape[-1], dtype=torch.long, device=inputs.device)
        attention_mask = attention_mask.to(inputs.device).long()
        if attention_mask.dim() == 1:
            attention_mask = attention_mask.unsqueeze(0)
        _check_mask(attention_mask, "attention_mask")
        frames = self.audio_encoder._get_feat_extract_output_lengths(attention_mask.sum(-1))
        if not _is_tracing() and bool((frames < 1).any()):
            raise ValueError(
                "An utterance is shorter than the audio encoder's receptive field (400 samples = 25 ms at 16 kHz "
                "for wav2vec2), so it gives no frame; pad it (the MultiStillProcessor does)."
            )
        dtype = next(self.audio_encoder.parameters()).dtype
        all_layers = self.config.pooled_fusion
        with torch.set_grad_enabled(self._encoder_grad("audio")):
            if is_whisper_encoder(self.audio_encoder):
                states = whisper_encoder_states(self.audio_encoder, inputs.to(dtype), attention_mask)
            else:
                outputs = self.audio_encoder(**{name: inputs.to(dtype)}, attention_mask=attention_mask,
                                             output_hidden_states=all_layers)
                states = list(outputs.hidden_states) if all_layers else [outputs.last_hidden_state]
        keep = min(states[-1].shape[1], self.config.max_audio_frames)
        if not _is_tracing():
            keep = min(keep, int(frames.max()))
        states = [state[:, :keep] for state in states]
        length = states[-1].shape[1]  # a traced size (ONNX export), unlike the Python int `keep`
        mask = torch.arange(length, device=states[-1].device)[None, :] < frames.to(states[-1].device)[:, None]
        if all_layers:  # what the pooled fusion reads: [B, layers, 2H] statistics, every "frame" valid
            statistics = layer_statistics(states, mask)
            return statistics.to(dtype), torch.ones(statistics.shape[:2], dtype=torch.long, device=mask.device)
        return states[-1], mask.long()

    def encode_text(
        self,
        input_ids: torch.Tensor,
        text_attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.LongTensor]:
        """Token ids ``[B, L]`` (+ mask) -> text hidden states ``[B, L', H]`` and token mask, ``L' <= max_text_tokens``."""
        if self.text_encoder is None:
            raise ValueError(f"This model has no text branch (modalities={self.config.modalities}).")
        if input_ids.dim() == 1:
            input_ids = input_ids.unsqueeze(0)
        limit = self.config.max_text_tokens
        if text_attention_mask is None:
            text_attention_mask = torch.ones_like(input_ids)
        text_attention_mask = text_attention_mask.to(input_ids.device).long()[:, :limit]
        _check_mask(text_attention_mask, "text_attention_mask")
        input_ids = input_ids[:, :limit]
        kwargs = {}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids[:, :limit]
        with torch.set_grad_enabled(self._encoder_grad("text")):
            hidden = self.text_encoder(input_ids=input_ids, attention_mask=text_attention_mask, **kwargs)
            hidden = hidden.last_hidden_state
        return hidden, text_attention_mask

    def _resolve_audio(self, input_values, attention_mask, input_features, audio_hidden_states, audio_hidden_mask):
        if audio_hidden_states is not None:
            hidden = audio_hidden_states[:, : self.config.max_audio_frames]
            if audio_hidden_mask is None:
                mask = torch.ones(hidden.shape[:2], dtype=torch.long, device=hidden.device)
            else:
                mask = audio_hidden_mask.to(hidden.device).long()[:, : self.config.max_audio_frames]
            _check_mask(mask, "audio_hidden_mask")
        elif input_values is not None or input_features is not None:
            hidden, mask = self.encode_audio(input_values, attention_mask, input_features)
        else:
            raise ValueError(
                f"This model (modalities={self.config.modalities}) needs audio: pass `{self.audio_input_name}` "
                "(from the MultiStillProcessor, with `attention_mask`) or precomputed `audio_hidden_states` "
                "(with `audio_hidden_mask`)."
            )
        if hidden.shape[-1] != self.config.audio_hidden_size:
            raise ValueError(
                f"audio hidden states have width {hidden.shape[-1]}, expected {self.config.audio_hidden_size}."
            )
        return hidden, mask

    def _resolve_text(self, input_ids, text_attention_mask, token_type_ids, text_hidden_states, text_hidden_mask):
        if text_hidden_states is not None:
            hidden = text_hidden_states[:, : self.config.max_text_tokens]
            if text_hidden_mask is None:
                mask = torch.ones(hidden.shape[:2], dtype=torch.long, device=hidden.device)
            else:
                mask = text_hidden_mask.to(hidden.device).long()[:, : self.config.max_text_tokens]
            _check_mask(mask, "text_hidden_mask")
        elif input_ids is not None:
            hidden, mask = self.encode_text(input_ids, text_attention_mask, token_type_ids)
        else:
            raise ValueError(
                f"This model (modalities={self.config.modalities}) needs text: pass `input_ids` "
                "(with `text_attention_mask`) or precomputed `text_hidden_states` (with `text_hidden_mask`)."
            )
        if hidden.shape[-1] != self.config.text_hidden_size:
            raise ValueError(
                f"text hidden states have width {hidden.shape[-1]}, expected {self.config.text_hidden_size}."
            )
        return hidden, mask

    def forward(
        self,
        input_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
        text_attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        audio_hidden_states: torch.Tensor | None = None,
        audio_hidden_mask: torch.Tensor | None = None,
        text_hidden_states: torch.Tensor | None = None,
        text_hidden_mask: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
        history_index: torch.Tensor | None = None,
        history_features: torch.Tensor | None = None,
        history_mask: torch.Tensor | None = None,
        history_speaker: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> MultiStillModelOutput | tuple:
        """Raw inputs (``input_values`` or ``input_features`` with ``attention_mask``, as the audio encoder takes
        them; ``input_ids``/``text_attention_mask``) or cached encoder outputs (``*_hidden_states``/
        ``*_hidden_mask``); inputs of modalities the model does not use are ignored. An unknown argument
        raises ``TypeError``.

        Conversation context (``config.context_size > 0``), newest previous utterance first, ``[B, K]``:
        ``history_index`` points into the rows of this call (rows ``B..`` may be history only: the output
        has ``B = len(history_index)`` rows), or ``history_features`` ``[B, K, P]`` gives the previous
        utterances' ``utterance_features`` with ``history_mask`` (1 = present); ``history_speaker``: 0 unknown,
        1 same speaker, 2 other speaker. No history: the utterance opens the conversation. Longer histories
        are cut to the newest ``context_size``."""
        output_attentions = bool(output_attentions)
        output_hidden_states = bool(output_hidden_states if output_hidden_states is not None
                                    else self.config.output_hidden_states)
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        audio = text = None
        if self.config.use_audio:
            audio = self._resolve_audio(input_values, attention_mask, input_features, audio_hidden_states,
                                        audio_hidden_mask)
        if self.config.use_text:
            text = self._resolve_text(input_ids, text_attention_mask, token_type_ids, text_hidden_states,
                                      text_hidden_mask)
        if audio is not None and text is not None and audio[0].shape[0] != text[0].shape[0]:
            raise ValueError(f"audio batch ({audio[0].shape[0]}) and text batch ({text[0].shape[0]}) differ.")
        if self.config.pooled_fusion:
            branches = self.branch_pooling(audio, text)
            utterance = torch.cat([branches[m] for m in self.config.modalities], dim=-1)
            fused, attentions = (), ()
        else:
            utterance, fused, attentions = self._cross_attention(audio, text, output_attentions)
        pooled, utterance = self._with_context(utterance, history_index, history_features, history_mask,
                                               history_speaker)
        rows = slice(0, utterance.shape[0])
        output = MultiStillModelOutput(
            pooled_features=pooled,
            utterance_features=utterance,
            fused_hidden_states=fused if output_hidden_states else None,
            audio_hidden_states=audio[0][rows] if output_hidden_states and audio is not None else None,
            audio_hidden_mask=audio[1][rows] if output_hidden_states and audio is not None else None,
            text_hidden_states=text[0][rows] if output_hidden_states and text is not None else None,
            text_hidden_mask=text[1][rows] if output_hidden_states and text is not None else None,
            attentions=attentions if output_attentions else None,
        )
        return output if return_dict else output.to_tuple()

    def _with_context(self, utterance: torch.Tensor, history_index: torch.Tensor | None,
                      history_features: torch.Tensor | None, history_mask: torch.Tensor | None,
                      history_speaker: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(classifier input, utterance features)`` of the ``B`` current rows (see :meth:`forward`)."""
        if self.context is None:
            if history_index is not None:
                utterance = utterance[: history_index.shape[0]]
            return utterance, utterance
        size = self.config.context_size
        if history_index is not None:
            history_index = history_index.to(utterance.device).long()[:, :size]
            current = utterance[: history_index.shape[0]]
            history_mask = history_index >= 0
            if bool((history_index >= utterance.shape[0]).any()):
                raise ValueError(f"history_index points past the {utterance.shape[0]} rows of this call.")
            history = utterance[history_index.clamp_min(0)] * history_mask.unsqueeze(-1).to(utterance.dtype)
        elif history_features is not None:
            current = utterance
            history = history_features.to(utterance.device, utterance.dtype)[:, :size]
            if history.dim() != 3 or history.shape[0] != current.shape[0] or history.shape[2] != current.shape[1]:
                raise ValueError(f"history_features must have shape [{current.shape[0]}, K, {current.shape[1]}], "
                                 f"got {tuple(history_features.shape)}.")
            history_mask = (torch.ones(history.shape[:2], device=history.device) if history_mask is None
                            else history_mask.to(history.device)[:, :size])
        else:  # the first utterance of a conversation
            current = utterance
            history = utterance.new_zeros(utterance.shape[0], 1, utterance.shape[1])
            history_mask = torch.zeros(utterance.shape[0], 1, device=utterance.device)
        if history_speaker is None:
            history_speaker = torch.zeros(history.shape[:2], dtype=torch.long, device=history.device)
        history_speaker = history_speaker.to(history.device)[:, : history.shape[1]]
        context = self.context(history, history_mask, history_speaker)
        return torch.cat([current, context], dim=-1), current

    def _cross_attention(self, audio, text, output_attentions: bool):
        """The paper's fusion: ``(pooled [B, P], fused states, attention weights)``."""
        fusion_dtype = self.audio_projection.weight.dtype
        projected: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        if audio is not None:
            states = self.audio_projection(audio[0].to(fusion_dtype).transpose(1, 2)).transpose(1, 2)
            projected["audio"] = (states, audio[1])
        if text is not None:
            states = text[0].to(fusion_dtype)
            if self.text_projection is not None:
                states = self.text_projection(states.transpose(1, 2)).transpose(1, 2)
            projected["text"] = (states, text[1])
        encoders = {name: getattr(self, name) for name in self.fusion_names}
        return cross_modal_fusion(encoders, projected, output_attentions)


class MultiStillForEmotionClassification(MultiStillEncoderInitMixin, MultiStillPreTrainedModel):
    """Multi-Still teacher or student: :class:`MultiStillModel` + classification head (7 emotions).

    ``labels`` may be class ids (``LongTensor [B]``) or vote distributions (``FloatTensor [B, num_labels]``,
    rows are normalised to sum to 1); both give a cross-entropy loss.
    """

    def __init__(self, config: MultiStillConfig, audio_encoder: PreTrainedModel | None = None,
                 text_encoder: PreTrainedModel | None = None):
        """See :class:`MultiStillModel` (loaded encoders are used as they are, not copied)."""
        super().__init__(config)
        self.multistill = MultiStillModel(config, audio_encoder, text_encoder)
        self.classifier = MultiStillClassificationHead(config)
        self.post_init()

    # convenience pass-throughs
    def encode_audio(
        self,
        input_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.LongTensor]:
        """See :meth:`MultiStillModel.encode_audio`."""
        return self.multistill.encode_audio(input_values, attention_mask, input_features)

    @property
    def audio_input_name(self) -> str:
        """See :attr:`MultiStillModel.audio_input_name`."""
        return self.multistill.audio_input_name

    def encode_text(self, input_ids: torch.Tensor, text_attention_mask: torch.Tensor | None = None,
                    token_type_ids: torch.Tensor | None = None):
        """See :meth:`MultiStillModel.encode_text`."""
        return self.multistill.encode_text(input_ids, text_attention_mask, token_type_ids)

    def forward(
        self,
        input_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
        text_attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        audio_hidden_states: torch.Tensor | None = None,
        audio_hidden_mask: torch.Tensor | None = None,
        text_hidden_states: torch.Tensor | None = None,
        text_hidden_mask: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
        history_index: torch.Tensor | None = None,
        history_features: torch.Tensor | None = None,
        history_mask: torch.Tensor | None = None,
        history_speaker: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> MultiStillOutput | tuple:
        """Logits for raw inputs or cached encoder outputs (see :meth:`MultiStillModel.forward`), and the loss
        when ``labels`` are given. An unknown argument (a typo such as ``labelz=``) raises ``TypeError``."""
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        base = self.multistill(
            input_values=input_values,
            attention_mask=attention_mask,
            input_ids=input_ids,
            text_attention_mask=text_attention_mask,
            token_type_ids=token_type_ids,
            audio_hidden_states=audio_hidden_states,
            audio_hidden_mask=audio_hidden_mask,
            text_hidden_states=text_hidden_states,
            text_hidden_mask=text_hidden_mask,
            input_features=input_features,
            history_index=history_index,
            history_features=history_features,
            history_mask=history_mask,
            history_speaker=history_speaker,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        logits = self.classifier(base.pooled_features)
        loss = self.compute_loss(logits, labels) if labels is not None else None
        output = MultiStillOutput(
            loss=loss,
            logits=logits,
            pooled_features=base.pooled_features,
            utterance_features=base.utterance_features,
            fused_hidden_states=base.fused_hidden_states,
            audio_hidden_states=base.audio_hidden_states,
            audio_hidden_mask=base.audio_hidden_mask,
            text_hidden_states=base.text_hidden_states,
            text_hidden_mask=base.text_hidden_mask,
            attentions=base.attentions,
        )
        return output if return_dict else output.to_tuple()

    def compute_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """See :func:`classification_loss`."""
        return classification_loss(logits, labels)


#: The name transformers' task models use (``...ForSequenceClassification``); the same class.
MultiStillForSequenceClassification = MultiStillForEmotionClassification

MultiStillNgramEncoder.register_for_auto_class("AutoModel")
MultiStillModel.register_for_auto_class("AutoModel")
MultiStillForEmotionClassification.register_for_auto_class("AutoModelForAudioClassification")

__all__ = [
    "MultiStillForEmotionClassification",
    "MultiStillForSequenceClassification",
    "MultiStillModel",
    "MultiStillModelOutput",
    "MultiStillNgramEncoder",
    "MultiStillOutput",
    "MultiStillPreTrainedModel",
    "classification_loss",
]
