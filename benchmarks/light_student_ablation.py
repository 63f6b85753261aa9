#!/usr/bin/env python
"""What each part of the light student costs: end-to-end latency of light-student config variants.

Times ``light_student`` (and variants of its preset: fewer layers, fewer mel bins, a lower frame
rate, int8) end to end from raw audio and token ids, with the audio encoder / text encoder / fusion
split, at batch 1. Optionally the teacher too, for the ratio.

    python benchmarks/light_student_ablation.py --teacher          # ~3 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
for p in (str(HERE), str(HERE.parent)):
    if p not in sys.path:
        sys.path.insert(0, p)

import torch  # noqa: E402
from bench_lib import (  # noqa: E402
    Contention,
    cached_feature_inputs,
    encode_audio,
    encode_text,
    log,
    logits_of,
    machine_info,
    machine_line,
    make_inputs,
    measure,
)

#: name -> (``from_preset`` overrides, int8)
VARIANTS: dict[str, tuple[dict[str, Any], bool]] = {
    "light_student (preset)": ({}, False),
    "text_layers=1": ({"text_layers": 1}, False),
    "audio_layers=1": ({"audio_layers": 1}, False),
    "num_mel_bins=40": ({"num_mel_bins": 40}, False),
    "12.5 Hz frames (strides 2,2,2)": ({"fbank_conv_kernel_sizes": [3, 3, 3], "fbank_conv_strides": [2, 2, 2]}, False),
    "audio width 512 (8 heads, ffn 2048)": (
        {"audio_config": {"hidden_size": 512, "num_attention_heads": 8, "intermediate_size": 2048}},
        False,
    ),
    "int8 (dynamic, Linear)": ({}, True),
    "int8 + text_layers=1": ({"text_layers": 1}, True),
}


def build(overrides: dict[str, Any], int8: bool, name: str = "light_student") -> tuple[torch.nn.Module, float]:
    """Build a preset with overrides, optionally dynamically quantised; also its parameter count (M)."""
    from multistill.configuration_multistill import MultiStillConfig
    from multistill.modeling_multistill import MultiStillForEmotionClassification

    torch.manual_seed(0)
    model = MultiStillForEmotionClassification(MultiStillConfig.from_preset(name, **overrides)).eval()
    params = sum(p.numel() for p in model.parameters()) / 1e6
    if int8:
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
    return model, params


def time_model(model: torch.nn.Module, seconds: float, tokens: int, budget: float) -> dict[str, float]:
    """Median ms of end to end, audio encoder (and its fbank front end), text encoder, fusion head at batch 1."""
    x = make_inputs(model, 1, seconds, tokens, torch.device("cpu"))
    kw = {"device": torch.device("cpu"), "warmup": 2, "repeats": 20, "budget_s": budget}
    audio = model.multistill.audio_encoder
    out: dict[str, float] = {}
    with torch.inference_mode():
        feats = cached_feature_inputs(model, x)
        out["e2e_ms"] = measure(lambda: logits_of(model, x), **kw).median_ms
        out["audio_encoder_ms"] = measure(lambda: encode_audio(model, x), **kw).median_ms
        if type(audio).__name__ == "MultiStillFbankEncoder":  # log-mel + strided convs + projection
            out["front_end_ms"] = measure(
                lambda: audio.feature_projection(audio.feature_extractor(x["input_values"], x["attention_mask"])[0]),
                **kw,
            ).median_ms
        elif hasattr(audio, "feature_extractor"):  # wav2vec2's 7-layer convolutional feature encoder
            out["front_end_ms"] = measure(lambda: audio.feature_extractor(x["input_values"]), **kw).median_ms
        out["text_encoder_ms"] = measure(lambda: encode_text(model, x), **kw).median_ms
        out["fusion_ms"] = measure(lambda: logits_of(model, feats), **kw).median_ms
    return out


def main() -> None:
    """Run the ablation and print a markdown table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--teacher", action="store_true", help="also time the teacher (for the ratio column)")
    ap.add_argument("--audio_seconds", type=float, default=5.0)
    ap.add_argument("--text_tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--time_budget", type=float, default=4.0, help="seconds of timed calls per measurement")
    ap.add_argument("--output_dir", default=str(HERE / "results"), help="where light_student_ablation.{json,md} go")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # torch.ao.quantization
    warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
    contention = Contention()
    results: dict[str, dict[str, float]] = {}
    if args.teacher:
        log("teacher")
        model, params = build({}, False, "teacher")
        results["teacher"] = {**time_model(model, args.audio_seconds, args.text_tokens, 8.0), "params_m": params}
        del model
    for name, (overrides, int8) in VARIANTS.items():
        log(name)
        model, params = build(overrides, int8)
        results[name] = {
            **time_model(model, args.audio_seconds, args.text_tokens, args.time_budget),
            "params_m": params,
        }
    teacher = results.get("teacher", {}).get("e2e_ms")
    lines = [
        "# Light student: what each part costs",
        "",
        f"Machine: {machine_line(machine_info(args.threads, torch.device('cpu')))}",
        "",
        f"batch 1, {args.audio_seconds:g} s audio, {args.text_tokens} tokens, median ms; other processes used "
        f"{contention.others_pct()} % of the CPU time during the run.",
        "",
        "| variant | params | end to end | audio encoder | (of which front end) | text encoder | fusion head "
        "| vs teacher |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        ratio = f"{teacher / r['e2e_ms']:.1f}x" if teacher else "–"
        front = f"{r['front_end_ms']:.1f}" if "front_end_ms" in r else "–"
        lines.append(
            f"| {name} | {r['params_m']:.1f} M | {r['e2e_ms']:.1f} | {r['audio_encoder_ms']:.1f} | {front} | "
            f"{r['text_encoder_ms']:.1f} | {r['fusion_ms']:.1f} | {ratio} |"
        )
    lines += [
        "",
        "Parts are timed separately (medians), so they need not add up to end to end exactly. params = "
        "parameters of the fp32 architecture (int8 rows quantise its Linear weights).",
    ]
    md = "\n".join(lines) + "\n"
    print(md)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "light_student_ablation.json").write_text(json.dumps(results, indent=1) + "\n")
    (out / "light_student_ablation.md").write_text(md)


if __name__ == "__main__":
    main()
