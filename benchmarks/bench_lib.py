"""Measurement helpers for ``benchmark.py``: timing, peak memory, machine description, model adapter."""

from __future__ import annotations

import contextlib
import gc
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

SAMPLING_RATE = 16_000
LOG_T0 = time.perf_counter()


def log(msg: str) -> None:
    """Progress line on stderr with the seconds elapsed since the process started."""
    print(f"[{time.perf_counter() - LOG_T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- timing


@dataclass
class Timing:
    """Summary of repeated calls (milliseconds)."""

    median_ms: float
    p90_ms: float
    min_ms: float
    n: int
    warmup: int
    first_ms: float
    first_call_reused: bool = False
    samples_ms: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["samples_ms"] = [round(x, 3) for x in self.samples_ms]
        for k in ("median_ms", "p90_ms", "min_ms", "first_ms"):
            d[k] = round(d[k], 3)
        return d


def _percentile(xs: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in [0, 100])."""
    s = sorted(xs)
    if len(s) == 1:
        return s[0]
    pos = (len(s) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def cuda_sync(device: torch.device) -> None:
    """Wait for queued GPU work (no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(
    fn: Callable[[], Any],
    *,
    device: torch.device,
    warmup: int,
    repeats: int,
    budget_s: float,
    min_warmup: int = 1,
    allow_reuse_first: bool = True,
) -> Timing:
    """Time ``fn`` with ``time.perf_counter``: warm-up calls, then the median/p90 of repeated calls.

    The first call is always a warm-up and gives the cost estimate. Further warm-ups (up to ``warmup``)
    run only while they fit in a quarter of ``budget_s``; repeats are ``min(repeats, budget_s / estimate)``
    but at least one. When a single call already exceeds ``budget_s`` and ``allow_reuse_first`` is set,
    the first call is reported as the single measurement (``first_call_reused``) instead of paying for a
    second one; callers run a smaller shape first, so kernels and weights are already warm.
    """

    def once() -> float:
        cuda_sync(device)
        t0 = time.perf_counter()
        fn()
        cuda_sync(device)
        return time.perf_counter() - t0

    first = once()
    est = first
    n_warm = 1
    while n_warm < max(warmup, min_warmup) and (n_warm < min_warmup or est * (n_warm + 1) <= budget_s / 4):
        est = once()
        n_warm += 1
    if allow_reuse_first and n_warm == 1 and first > budget_s and min_warmup <= 1:
        samples = [first]
        reused = True
    else:
        n = max(1, min(repeats, int(budget_s // max(est, 1e-6))))
        samples = [once() for _ in range(n)]
        reused = False
    ms = [s * 1000 for s in samples]
    return Timing(
        median_ms=statistics.median(ms),
        p90_ms=_percentile(ms, 90),
        min_ms=min(ms),
        n=len(ms),
        warmup=0 if reused else n_warm,
        first_ms=first * 1000,
        first_call_reused=reused,
        samples_ms=ms,
    )


# --------------------------------------------------------------------------- memory


def _proc_status_kb(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's per-process peak RSS (VmHWM) via /proc/self/clear_refs (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def rss_mb() -> float:
    """Current resident set size of this process in MiB."""
    kb = _proc_status_kb("VmRSS")
    if kb is not None:
        return kb / 1024
    import psutil

    return psutil.Process().memory_info().rss / 2**20


@dataclass
class PeakMemory:
    """Peak memory of the block (MiB): process RSS on CPU, ``max_memory_allocated`` on CUDA.

    ``peak_mb`` is the absolute peak (CPU: whole process, incl. weights and the torch runtime);
    ``delta_mb`` is the peak minus the level just before the block (activations and workspaces).
    ``method`` says how it was measured; ``ru_maxrss`` (fallback when the peak cannot be reset)
    is monotone over the process lifetime.
    """

    device: torch.device
    peak_mb: float = 0.0
    delta_mb: float = 0.0
    method: str = ""

    @contextlib.contextmanager
    def track(self) -> Iterator[PeakMemory]:
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            before = torch.cuda.memory_allocated(self.device) / 2**20
            yield self
            torch.cuda.synchronize(self.device)
            self.peak_mb = torch.cuda.max_memory_allocated(self.device) / 2**20
            self.method = "torch.cuda.max_memory_allocated"
        else:
            before = rss_mb()
            ok = _reset_peak_rss() and _proc_status_kb("VmHWM") is not None
            yield self
            if ok:
                self.peak_mb = (_proc_status_kb("VmHWM") or 0) / 1024
                self.method = "VmHWM (reset via /proc/self/clear_refs)"
            else:
                self.peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                self.method = "ru_maxrss (monotone)"
        self.delta_mb = max(0.0, self.peak_mb - before)

    def to_dict(self) -> dict[str, Any]:
        return {"peak_mb": round(self.peak_mb, 1), "delta_mb": round(self.delta_mb, 1), "method": self.method}


# --------------------------------------------------------------------------- contention


def _system_busy_s() -> float | None:
    """CPU seconds all processes spent busy since boot (/proc/stat), or None off Linux."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    busy = sum(fields[:8]) - idle  # user nice system idle iowait irq softirq steal
    return busy / os.sysconf("SC_CLK_TCK")


def _own_cpu_s() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class Contention:
    """Share of the machine's CPU time used by *other* processes between ``start`` and ``stop``.

    Benchmarks on a shared 2-core machine are only meaningful when this stays near 0 %.
    """

    def __init__(self) -> None:
        self.busy0 = _system_busy_s()
        self.own0 = _own_cpu_s()
        self.t0 = time.perf_counter()

    def others_pct(self) -> float | None:
        busy = _system_busy_s()
        if busy is None or self.busy0 is None:
            return None
        wall = time.perf_counter() - self.t0
        cpus = os.cpu_count() or 1
        others = (busy - self.busy0) - (_own_cpu_s() - self.own0)
        return round(max(0.0, 100 * others / max(wall * cpus, 1e-9)), 1)


# --------------------------------------------------------------------------- machine


def cpu_model_name() -> str:
    """CPU model string from /proc/cpuinfo, falling back to ``platform``."""
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_info(threads: int, device: torch.device) -> dict[str, Any]:
    """Describe the machine and software stack the numbers were measured on."""
    import transformers

    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:
        available = os.cpu_count() or 1
    info: dict[str, Any] = {
        "cpu": cpu_model_name(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "logical_cpus": os.cpu_count(),
        "cpus_available": available,
        "threads": threads,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "device": device.type,
    }
    with contextlib.suppress(Exception):
        import psutil

        info["physical_cores"] = psutil.cpu_count(logical=False)
        info["ram_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    with contextlib.suppress(Exception):
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["gpu_memory_gb"] = round(torch.cuda.get_device_properties(device).total_memory / 2**30, 1)
        info["cuda"] = torch.version.cuda
    return info


def machine_line(info: dict[str, Any]) -> str:
    """One-line machine description for the markdown report."""
    cores = f"{info.get('cpus_available')} CPUs available"
    if info.get("physical_cores"):
        cores += f" ({info['physical_cores']} physical cores)"
    parts = [
        f"CPU: {info['cpu']} [{info.get('cpu_capability')}], {cores}, {info['threads']} torch threads used",
    ]
    if info.get("ram_gb"):
        parts.append(f"{info['ram_gb']} GiB RAM")
    if info.get("gpu"):
        parts.append(f"GPU: {info['gpu']} ({info.get('gpu_memory_gb')} GiB, CUDA {info.get('cuda')})")
    sw = f"torch {info['torch']}, transformers {info['transformers']}"
    if info.get("onnxruntime"):
        sw += f", onnxruntime {info['onnxruntime']}"
    parts.append(sw)
    parts.append(f"Python {info['python']}, {info['platform']}")
    return "; ".join(parts)


# --------------------------------------------------------------------------- model adapter

# Tiny shapes for ``--quick`` (test run in seconds): same architecture family, small sizes; 64 frames
# (1.28 s of wav2vec2 frames, 2.56 s of 25 Hz fbank frames) so that the long quick utterance is truncated.
QUICK_OVERRIDES: dict[str, Any] = {
    "audio_config": {
        "hidden_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "conv_dim": [16] * 7,
        "num_conv_pos_embeddings": 16,
        "num_conv_pos_embedding_groups": 2,
    },
    "text_config": {
        "vocab_size": 1000,
        "embedding_size": 32,
        "hidden_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 64,
    },
    "hidden_size": 32,
    "num_attention_heads": 2,
    "fusion_intermediate_size": 64,
    "classifier_hidden_size": 32,
    "num_mel_bins": 40,
    "fbank_conv_channels": 16,
    "max_audio_frames": 64,
    "max_text_tokens": 32,
}


def build_model(name: str, quick: bool) -> torch.nn.Module:
    """Build the full-size (or ``quick``: tiny) architecture of a preset with random weights."""
    from multistill.configuration_multistill import MultiStillConfig
    from multistill.modeling_multistill import MultiStillForEmotionClassification

    config = MultiStillConfig.from_preset(name, **(quick_overrides(name) if quick else {}))
    torch.manual_seed(0)
    model = MultiStillForEmotionClassification(config)
    return model.eval()


def quick_overrides(name: str) -> dict[str, Any]:
    """Config overrides that shrink a preset to a tiny model for smoke tests."""
    import copy

    return {**copy.deepcopy(QUICK_OVERRIDES), "audio_layers": 1, "text_layers": 1}


def modalities(model: torch.nn.Module) -> tuple[bool, bool]:
    """(uses audio, uses text) for a MultiStill model."""
    cfg = model.config
    mode = getattr(cfg, "modality", None) or getattr(cfg, "modalities", None)
    if isinstance(mode, str):
        mode = mode.lower()
        if mode in ("text", "text_only"):
            return False, True
        if mode in ("audio", "audio_only"):
            return True, False
        return True, True
    return getattr(cfg, "use_audio", True), getattr(cfg, "use_text", True)


def max_audio_frames(model: torch.nn.Module) -> int | None:
    """Frames the model keeps from the audio encoder (the paper: 512, about 10.24 s)."""
    for key in ("max_audio_frames", "max_audio_length", "audio_max_frames"):
        v = getattr(model.config, key, None)
        if v:
            return int(v)
    return None


def audio_frame_hop(model: torch.nn.Module) -> int:
    """Raw samples per audio-encoder frame (wav2vec2: 320 = 50 Hz; fbank: hop x conv strides)."""
    cfg = model.config
    if getattr(cfg, "audio_frontend", "wav2vec2") == "fbank":
        return int(cfg.audio_config.samples_per_frame)
    hop = 1
    for s in getattr(cfg.audio_config, "conv_stride", [5, 2, 2, 2, 2, 2, 2]):
        hop *= int(s)
    return hop


def max_audio_seconds(model: torch.nn.Module) -> float | None:
    """Audio the model keeps before truncating its encoder output (paper: 512 x 20 ms = 10.24 s)."""
    frames = max_audio_frames(model)
    if frames is None or not modalities(model)[0]:
        return None
    return frames * audio_frame_hop(model) / getattr(model.config, "sampling_rate", SAMPLING_RATE)


def text_vocab_size(model: torch.nn.Module) -> int:
    """Vocabulary size of the text encoder (for random token ids)."""
    tc = getattr(model.config, "text_config", None)
    v = getattr(tc, "vocab_size", None) if tc is not None else None
    return int(v or getattr(model.config, "vocab_size", 1000))


def make_inputs(
    model: torch.nn.Module, batch: int, seconds: float, text_tokens: int, device: torch.device, seed: int = 0
) -> dict[str, torch.Tensor]:
    """Random raw 16 kHz waveform and token ids (all positions valid), as the processor would produce."""
    use_audio, use_text = modalities(model)
    g = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    if use_audio:
        n = int(round(seconds * SAMPLING_RATE))
        out["input_values"] = (0.1 * torch.randn(batch, n, generator=g)).to(device)
        out["attention_mask"] = torch.ones(batch, n, dtype=torch.long, device=device)
    if use_text:
        vocab = text_vocab_size(model)
        ids = torch.randint(5, max(vocab, 6), (batch, text_tokens), generator=g)
        ids[:, 0] = 2  # [CLS]-like id; value does not matter for timing
        out["input_ids"] = ids.to(device)
        out["text_attention_mask"] = torch.ones(batch, text_tokens, dtype=torch.long, device=device)
    return out


def logits_of(model: Callable[..., Any], inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """Forward pass returning the logits tensor."""
    out = model(**inputs)
    return out.logits if hasattr(out, "logits") else out["logits"] if isinstance(out, dict) else out


def encode_audio(model: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Audio encoder alone: raw waveform -> (hidden states, mask)."""
    return model.encode_audio(inputs["input_values"], inputs.get("attention_mask"))


def encode_text(model: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Text encoder alone: token ids -> (hidden states, mask)."""
    return model.encode_text(inputs["input_ids"], inputs.get("text_attention_mask"))


def cached_feature_inputs(model: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Keyword arguments of the cached-feature forward path, for timing the fusion head.

    The encoders run on the first utterance only and its outputs are repeated over the batch: same
    shapes as encoding the whole batch (all utterances have the same length), and timing does not
    depend on the values, so a slow batch-32 wav2vec2 pass is not paid a second time.
    """
    use_audio, use_text = modalities(model)
    first = {k: v[:1] for k, v in inputs.items()}
    batch = next(iter(inputs.values())).shape[0]
    feats: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        if use_audio:
            h, m = encode_audio(model, first)
            feats["audio_hidden_states"], feats["audio_hidden_mask"] = h, m
        if use_text:
            h, m = encode_text(model, first)
            feats["text_hidden_states"], feats["text_hidden_mask"] = h, m
    return {k: v.expand(batch, *v.shape[1:]).clone() for k, v in feats.items()}


def _module_params(mod: torch.nn.Module | None) -> int:
    return sum(p.numel() for p in mod.parameters()) if mod is not None else 0


def encoder_modules(model: torch.nn.Module) -> tuple[torch.nn.Module | None, torch.nn.Module | None]:
    """(audio encoder, text encoder) submodules, found by name."""
    base = getattr(model, "multistill", model)
    return getattr(base, "audio_encoder", None), getattr(base, "text_encoder", None)


def param_counts(model: torch.nn.Module) -> dict[str, int]:
    """Total, trainable, per-encoder and fusion-head parameter counts."""
    audio, text = encoder_modules(model)
    total = _module_params(model)
    a, t = _module_params(audio), _module_params(text)
    return {
        "total": total,
        "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "audio_encoder": a,
        "text_encoder": t,
        "fusion_head": total - a - t,
    }


def encoders_frozen(model: torch.nn.Module) -> bool:
    """True when no encoder parameter is trainable (so cached features give the same training step)."""
    audio, text = encoder_modules(model)
    return all(not p.requires_grad for m in (audio, text) if m is not None for p in m.parameters())


def weights_mb(model: torch.nn.Module) -> float:
    """Bytes of parameters and buffers in MiB (state_dict, so int8 packed weights count at their size)."""
    total = 0
    for v in model.state_dict().values():
        if isinstance(v, torch.Tensor):
            total += v.numel() * v.element_size()
        elif isinstance(v, tuple):  # packed params of dynamically quantised Linear layers
            total += sum(x.numel() * x.element_size() for x in v if isinstance(x, torch.Tensor))
    return total / 2**20
