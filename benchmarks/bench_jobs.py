"""Jobs run by ``benchmark.py``, one model (and one variant) per subprocess so peak memory is per model.

* ``base``: end-to-end latency (raw audio + token ids -> logits) for every batch size, audio length and
  precision, the split audio encoder / text encoder / fusion head, and peak memory.
* ``variant``: the same end-to-end measurement after a deployment transform (``int8`` dynamic
  quantisation, ``compile`` with ``torch.compile``, ``onnx`` export run with onnxruntime), plus a check of
  the transformed model's logits against the fp32 PyTorch model on the same inputs.
* ``train``: examples per second of a training step (forward + backward + AdamW) with cached encoder
  features vs running the encoders every step.
"""

from __future__ import annotations

import contextlib
import gc
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch
from bench_lib import (
    PeakMemory,
    cached_feature_inputs,
    encode_audio,
    encode_text,
    encoders_frozen,
    log,
    logits_of,
    make_inputs,
    max_audio_seconds,
    measure,
    modalities,
    param_counts,
    weights_mb,
)

Spec = dict[str, Any]


@contextlib.contextmanager
def precision(dtype: str, device: torch.device) -> Iterator[None]:
    """``bf16``: autocast to bfloat16; ``fp32``: nothing."""
    if dtype == "bf16":
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
            yield
    else:
        yield


def _configs(batch_sizes: list[int], seconds: list[float]) -> list[tuple[int, float]]:
    return [(b, s) for b in sorted(set(batch_sizes)) for s in sorted(set(seconds))]


class CostModel:
    """Predicts the time of a call from the last measured one (linear in batch x audio seconds)."""

    def __init__(self, max_call_s: float) -> None:
        self.max_call_s = max_call_s
        self.per_unit: float | None = None

    def update(self, seconds_per_call: float, batch: int, audio_s: float) -> None:
        self.per_unit = seconds_per_call / (batch * max(audio_s, 1.0))

    def skip_reason(self, batch: int, audio_s: float) -> str | None:
        if self.per_unit is None or self.max_call_s <= 0:
            return None
        est = self.per_unit * batch * max(audio_s, 1.0)
        if est > self.max_call_s:
            return f"estimated {est:.0f} s per call > --max_call_s {self.max_call_s:g}"
        return None


def _setup(spec: Spec) -> torch.device:
    torch.set_num_threads(int(spec["threads"]))
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(1)
    torch.manual_seed(0)
    return torch.device(spec["device"])


def _build(spec: Spec, device: torch.device) -> tuple[torch.nn.Module, dict[str, Any]]:
    from bench_lib import build_model

    t0 = time.perf_counter()
    model = build_model(spec["model"], spec["quick"]).to(device)
    use_audio, use_text = modalities(model)
    info = {
        "params": param_counts(model),
        "weights_mb": round(weights_mb(model), 1),
        "build_s": round(time.perf_counter() - t0, 2),
        "uses_audio": use_audio,
        "uses_text": use_text,
        "audio_frontend": getattr(model.config, "audio_frontend", None) if use_audio else None,
        "max_audio_seconds": max_audio_seconds(model),
        "encoders_frozen": encoders_frozen(model),
    }
    log(f"{spec['model']}: built in {info['build_s']} s, {info['params']['total'] / 1e6:.1f} M params")
    return model, info


def _timing_kwargs(spec: Spec, device: torch.device) -> dict[str, Any]:
    return {
        "device": device,
        "warmup": int(spec["warmup"]),
        "repeats": int(spec["repeats"]),
        "budget_s": float(spec["time_budget"]),
    }


def _row(spec: Spec, variant: str, batch: int, seconds: float) -> dict[str, Any]:
    return {
        "model": spec["model"],
        "variant": variant,
        "batch_size": batch,
        "audio_seconds": seconds,
        "text_tokens": int(spec["text_tokens"]),
    }


def _finish_row(row: dict[str, Any], e2e_ms: float, batch: int, seconds: float) -> None:
    """Per-utterance time and real-time factor (processing time / duration of the audio in the batch)."""
    row["per_utterance_ms"] = round(e2e_ms / batch, 3)
    row["rtf"] = round(e2e_ms / 1000 / (batch * seconds), 5)


# --------------------------------------------------------------------------- base


def run_base(spec: Spec) -> dict[str, Any]:
    """End-to-end latency, encoder/fusion split and peak memory of the untransformed model."""
    device = _setup(spec)
    model, info = _build(spec, device)
    use_audio, use_text = info["uses_audio"], info["uses_text"]
    tk = _timing_kwargs(spec, device)
    rows: list[dict[str, Any]] = []
    for dtype in spec["dtypes"]:
        cost = CostModel(float(spec["max_call_s"]))
        for batch, seconds in _configs(spec["batch_sizes"], spec["audio_seconds"]):
            row = _row(spec, dtype, batch, seconds)
            reason = cost.skip_reason(batch, seconds)
            if reason:
                row["skipped"] = reason
                rows.append(row)
                log(f"{spec['model']} {dtype} b{batch} {seconds:g}s: skipped ({reason})")
                continue
            inputs = make_inputs(model, batch, seconds, int(spec["text_tokens"]), device)
            with torch.inference_mode(), precision(dtype, device):
                mem = PeakMemory(device)
                with mem.track():
                    e2e = measure(lambda inputs=inputs: logits_of(model, inputs), **tk)
                cost.update(e2e.median_ms / 1000, batch, seconds)
                row["e2e"] = e2e.to_dict()
                row["memory"] = mem.to_dict()
                split: dict[str, Any] = {}
                if use_text:
                    split["text_encoder_ms"] = measure(lambda inputs=inputs: encode_text(model, inputs), **tk).median_ms
                feats = cached_feature_inputs(model, inputs)
                split["fusion_ms"] = measure(lambda feats=feats: logits_of(model, feats), **tk).median_ms
                if use_audio:
                    if e2e.median_ms <= 1000 * float(spec["split_direct_max_s"]):
                        split["audio_encoder_ms"] = measure(
                            lambda inputs=inputs: encode_audio(model, inputs), **tk
                        ).median_ms
                        split["audio_encoder_derived"] = False
                    else:  # too slow to time twice: e2e minus the cheap parts
                        rest = split.get("text_encoder_ms", 0.0) + split["fusion_ms"]
                        split["audio_encoder_ms"] = max(0.0, e2e.median_ms - rest)
                        split["audio_encoder_derived"] = True
                row["split"] = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in split.items()}
                del feats
            _finish_row(row, e2e.median_ms, batch, seconds)
            rows.append(row)
            log(
                f"{spec['model']} {dtype} b{batch} {seconds:g}s: {e2e.median_ms:.1f} ms "
                f"(p90 {e2e.p90_ms:.1f}, n={e2e.n}), peak {mem.peak_mb:.0f} MiB"
            )
    return {"model": spec["model"], "info": info, "rows": rows}


# --------------------------------------------------------------------------- variants


@contextlib.contextmanager
def input_checks_disabled() -> Iterator[None]:
    """Turn the model's data-dependent input validation (``_check_mask``) into a no-op while exporting.

    ``torch.export`` cannot trace ``bool(tensor.any())`` checks; the benchmark's inputs are valid, and the
    exported model is compared with the PyTorch one afterwards.
    """
    import multistill.modeling_multistill as modeling

    original = getattr(modeling, "_check_mask", None)
    if original is not None:
        modeling._check_mask = lambda *args, **kwargs: None
    try:
        yield
    finally:
        if original is not None:
            modeling._check_mask = original


def _onnx_export(
    model: torch.nn.Module, example: dict[str, torch.Tensor], path: str, exporters: list[str]
) -> dict[str, Any]:
    """Export ``model`` (inputs -> logits) with dynamic batch and length axes, trying ``exporters`` in order."""
    from torch.export import Dim

    names = list(example)

    class LogitsOnly(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *args: torch.Tensor) -> torch.Tensor:
            return logits_of(self.model, dict(zip(names, args, strict=True)))

    axes = {n: {0: "batch", 1: ("samples" if n in ("input_values", "attention_mask") else "tokens")} for n in names}
    axes["logits"] = {0: "batch"}
    wrapper = LogitsOnly().eval()
    args = tuple(example[n] for n in names)
    errors: list[str] = []
    for exporter in exporters:
        t0 = time.perf_counter()
        kwargs: dict[str, Any]
        if exporter == "dynamo":
            kwargs = {"dynamo": True, "dynamic_shapes": (tuple({0: Dim.DYNAMIC, 1: Dim.DYNAMIC} for _ in names),)}
        else:
            kwargs = {"dynamo": False, "dynamic_axes": axes}
        try:
            with torch.no_grad(), warnings_quiet(), input_checks_disabled():
                torch.onnx.export(
                    wrapper, args, path, input_names=names, output_names=["logits"], opset_version=18, **kwargs
                )
            folder = os.path.dirname(path)
            size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
            return {
                "exporter": exporter,
                "export_s": round(time.perf_counter() - t0, 2),
                "file_mb": round(size / 2**20, 1),
                "export_errors": errors,
            }
        except Exception as err:  # noqa: BLE001 - report and try the next exporter
            first = str(err).strip().splitlines()
            errors.append(f"{exporter}: {type(err).__name__}: {' '.join(first[:3])[:300]}")
            log(f"ONNX export with {exporter} failed after {time.perf_counter() - t0:.0f} s: {errors[-1]}")
    raise RuntimeError("ONNX export failed: " + " | ".join(errors))


@contextlib.contextmanager
def warnings_quiet() -> Iterator[None]:
    """Silence exporter warnings (they go to the log otherwise)."""
    import logging
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        level = logging.getLogger("torch.onnx").level
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        try:
            yield
        finally:
            logging.getLogger("torch.onnx").setLevel(level)


Runner = Callable[[dict[str, torch.Tensor]], torch.Tensor]


def _int8_runner(model: torch.nn.Module, info: dict[str, Any], device: torch.device) -> tuple[Runner, dict[str, Any]]:
    """Dynamic int8 quantisation of every Linear layer (CPU only), and what was quantised."""
    if device.type != "cpu":
        raise RuntimeError("dynamic int8 quantisation runs on CPU only")
    t0 = time.perf_counter()
    with warnings_quiet():  # torch.ao.quantization deprecation notices
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
    extra = {
        "weights_mb": round(weights_mb(model), 1),
        "fp32_weights_mb": info["weights_mb"],
        "transform_s": round(time.perf_counter() - t0, 2),
        # What was quantised: dynamic int8 Linear modules vs Linear layers left in fp32 (none expected).
        "int8_linear_layers": sum(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in model.modules()),
        "fp32_linear_layers": sum(type(m) is torch.nn.Linear for m in model.modules()),
    }
    return (lambda x: logits_of(model, x)), extra


def _export_onnx_model(model: torch.nn.Module, spec: Spec, info: dict[str, Any], path: str) -> dict[str, Any]:
    """Export ``model`` to ``path``: at batch 2 (dynamo specialises size-1 dims) and the longest audio (so that
    truncation is traced)."""
    example = make_inputs(model, 2, max(spec["audio_seconds"]), int(spec["text_tokens"]), torch.device("cpu"), seed=2)
    # wav2vec2's receptive-field check is data dependent (torch.export fails on it): TorchScript first;
    # the fbank front end uses a complex STFT that only the dynamo exporter handles.
    exporters = ["torchscript", "dynamo"] if info["audio_frontend"] == "wav2vec2" else ["dynamo", "torchscript"]
    return _onnx_export(model.cpu(), example, path, exporters)


def _onnx_runner(path: str, spec: Spec, device: torch.device) -> tuple[Runner, list[str]]:
    """An ONNX Runtime session on the exported file (CUDA first where available), and its providers."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = int(spec["threads"])
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    providers = ["CPUExecutionProvider"]
    if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    session = ort.InferenceSession(path, so, providers=providers)
    input_names = [i.name for i in session.get_inputs()]

    def runner(x: dict[str, torch.Tensor]) -> torch.Tensor:
        feed = {k: v.cpu().numpy() for k, v in x.items() if k in input_names}
        return torch.from_numpy(session.run(["logits"], feed)[0])

    return runner, session.get_providers()


def _time_variant(spec: Spec, runner: Runner, inputs: dict, refs: dict, device: torch.device) -> list[dict[str, Any]]:
    """One row per batch size and length: latency, memory and agreement with the fp32 logits ``refs``."""
    variant = spec["variant"]
    tk = _timing_kwargs(spec, device)
    rows: list[dict[str, Any]] = []
    cost = CostModel(float(spec["max_call_s"]))
    for batch, seconds in inputs:
        row = _row(spec, variant, batch, seconds)
        reason = cost.skip_reason(batch, seconds)
        if reason:
            row["skipped"] = reason
            rows.append(row)
            continue
        x = inputs[(batch, seconds)]
        with torch.inference_mode():
            if variant == "compile":
                c0 = time.perf_counter()
                runner(x)  # compilation for this shape, not counted in the latency
                row["compile_s"] = round(time.perf_counter() - c0, 2)
            mem = PeakMemory(device)
            with mem.track():
                e2e = measure(lambda x=x: runner(x), **tk, allow_reuse_first=variant != "compile")
            out = runner(x).float().cpu()
        cost.update(e2e.median_ms / 1000, batch, seconds)
        ref = refs[(batch, seconds)]
        row["e2e"] = e2e.to_dict()
        row["memory"] = mem.to_dict()
        row["check"] = {
            "reference": "fp32 PyTorch, same inputs",
            "argmax_match": int((out.argmax(-1) == ref.argmax(-1)).sum()),
            "n": int(ref.shape[0]),
            "max_abs_logit_diff": float((out - ref).abs().max()),
        }
        _finish_row(row, e2e.median_ms, batch, seconds)
        rows.append(row)
        log(
            f"{spec['model']} {variant} b{batch} {seconds:g}s: {e2e.median_ms:.1f} ms (n={e2e.n}), "
            f"argmax {row['check']['argmax_match']}/{row['check']['n']}, "
            f"max|diff| {row['check']['max_abs_logit_diff']:.2e}"
        )
    return rows


def run_variant(spec: Spec) -> dict[str, Any]:
    """Latency of a deployment transform and its agreement with the fp32 PyTorch model."""
    device = _setup(spec)
    variant = spec["variant"]
    if variant not in ("int8", "compile", "onnx"):
        raise ValueError(f"unknown variant {variant!r}")
    model, info = _build(spec, device)
    configs = _configs(spec["variant_batch_sizes"], spec["audio_seconds"])
    inputs = {c: make_inputs(model, c[0], c[1], int(spec["text_tokens"]), device, seed=1) for c in configs}
    with torch.inference_mode():
        refs = {c: logits_of(model, inputs[c]).float().cpu() for c in configs}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="multistill_onnx_") as tmp:
        if variant == "int8":
            runner, extra = _int8_runner(model, info, device)
        elif variant == "compile":
            compiled = torch.compile(model)
            runner, extra = (lambda x: logits_of(compiled, x)), {}
        else:
            path = os.path.join(tmp, f"{spec['model']}.onnx")
            extra = _export_onnx_model(model, spec, info, path)
            del model  # the session runs without the PyTorch model in memory
            gc.collect()
            runner, extra["providers"] = _onnx_runner(path, spec, device)
        log(f"{spec['model']} {variant}: ready in {time.perf_counter() - t0:.1f} s")
        rows = _time_variant(spec, runner, inputs, refs, device)
    return {"model": spec["model"], "variant": variant, "info": info, "variant_info": extra, "rows": rows}


# --------------------------------------------------------------------------- training


def run_train(spec: Spec) -> dict[str, Any]:
    """Examples/s of a training step with cached encoder features vs running the encoders every step."""
    device = _setup(spec)
    model, info = _build(spec, device)
    batch, seconds = int(spec["train_batch_size"]), float(spec["train_audio_seconds"])
    inputs = make_inputs(model, batch, seconds, int(spec["text_tokens"]), device)
    g = torch.Generator().manual_seed(0)
    target = torch.softmax(torch.randn(batch, model.config.num_labels, generator=g), -1).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    frozen = encoders_frozen(model)
    modes = ["cached", "encoders"] if frozen else ["encoders"]
    rows: list[dict[str, Any]] = []
    for dtype in spec["dtypes"]:
        for mode in modes:
            model.train()
            opt = torch.optim.AdamW(params, lr=1e-5)
            kw = cached_feature_inputs(model, inputs) if mode == "cached" else inputs

            def step(kw: dict[str, torch.Tensor] = kw, opt: torch.optim.Optimizer = opt, dtype: str = dtype) -> None:
                opt.zero_grad(set_to_none=True)
                with precision(dtype, device):
                    logits = logits_of(model, kw)
                loss = torch.nn.functional.cross_entropy(logits.float(), target)
                loss.backward()
                opt.step()

            mem = PeakMemory(device)
            with mem.track():
                # first step allocates optimizer state: always a separate warm-up
                t = measure(step, **_timing_kwargs(spec, device), min_warmup=1, allow_reuse_first=False)
            row = {
                "model": spec["model"],
                "variant": dtype,
                "mode": mode,
                "batch_size": batch,
                "audio_seconds": seconds,
                "text_tokens": int(spec["text_tokens"]),
                "encoders_trainable": not frozen,
                "trainable_params": sum(p.numel() for p in params),
                "step": t.to_dict(),
                "examples_per_s": round(batch / (t.median_ms / 1000), 3),
                "memory": mem.to_dict(),
            }
            rows.append(row)
            log(f"{spec['model']} train {dtype} {mode}: {row['examples_per_s']:.2f} ex/s (step {t.median_ms:.0f} ms)")
            del opt, kw
            gc.collect()
    return {"model": spec["model"], "info": info, "rows": rows}


JOBS: dict[str, Callable[[Spec], dict[str, Any]]] = {"base": run_base, "variant": run_variant, "train": run_train}
