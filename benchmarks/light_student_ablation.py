#!/usr/bin/env python
"""What each part of the light student costs: end-to-end latency of light-student config variants.

Times ``light_student`` (and variants of its preset: fewer layers, fewer mel bins, a lower frame
rate, int8) end to end from raw audio and token ids, with the audio encoder / text encoder / fusion
split, at batch 1. Optionally the teacher too, fp32 and int8, for ratios of the same precision.

    python benchmarks/light_student_ablation.py --teacher          # ~4 min on 2 cores
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
for p in (str(HERE), str(HERE.parent)):
    if p not in sys.path:
        sys.path.insert(0, p)

import torch  # noqa: E402
from bench_args import check_numbers  # noqa: E402
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
    provenance,
    provenance_line,
)
from transformers import HfArgumentParser  # noqa: E402

from multistill.training.arguments import check_output_dir, parse_command_line  # noqa: E402

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
        e2e = measure(lambda: logits_of(model, x), **kw)
        out["e2e_ms"], out["e2e_n"] = e2e.median_ms, e2e.n
        out["e2e_spread_ms"] = [min(e2e.samples_ms), max(e2e.samples_ms)]
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


@dataclass
class AblationArguments:
    """Options of ``benchmarks/light_student_ablation.py`` (``HfArgumentParser``)."""

    teacher: bool = field(default=False, metadata={
        "help": "also time the teacher, fp32 and int8 (for the ratio columns, like with like)"})
    audio_seconds: float = field(default=5.0, metadata={"help": "utterance length (s)"})
    text_tokens: int = field(default=64, metadata={"help": "token ids per utterance"})
    threads: int = field(default_factory=torch.get_num_threads, metadata={"help": "torch intra-op threads"})
    time_budget: float = field(default=4.0, metadata={"help": "seconds of timed calls per measurement"})
    output_dir: str = field(default=str(HERE / "results"), metadata={
        "help": "where light_student_ablation.{json,md} go"})


def main(argv: list[str] | None = None) -> None:
    """Run the ablation and print a markdown table."""
    parser = HfArgumentParser(AblationArguments, description=__doc__.split("\n\n")[0])
    (args,) = parse_command_line(parser, sys.argv[1:] if argv is None else list(argv))
    check_numbers(args, positive=("audio_seconds", "text_tokens", "threads", "time_budget"))
    check_output_dir(args.output_dir)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # torch.ao.quantization
    warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
    origin = {**provenance(sys.argv[1:] if argv is None else list(argv), "benchmarks/light_student_ablation.py"),
              "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    contention = Contention()
    results: dict[str, dict[str, Any]] = {}
    if args.teacher:  # fp32 and int8, so that every row has a teacher of its own precision
        for name, int8 in (("teacher", False), ("teacher, int8 (dynamic, Linear)", True)):
            log(name)
            model, params = build({}, int8, "teacher")
            results[name] = {**time_model(model, args.audio_seconds, args.text_tokens, 8.0), "params_m": params,
                             "int8": int8}
            del model
    for name, (overrides, int8) in VARIANTS.items():
        log(name)
        model, params = build(overrides, int8)
        results[name] = {
            **time_model(model, args.audio_seconds, args.text_tokens, args.time_budget),
            "params_m": params,
            "int8": int8,
        }
    teacher = {int8: results[name]["e2e_ms"] for name, int8 in
               (("teacher", False), ("teacher, int8 (dynamic, Linear)", True)) if name in results}
    lines = [
        "# Light student: what each part costs",
        "",
        f"Made by {provenance_line(origin)}, {origin['date']}.",
        "",
        f"Machine: {machine_line(machine_info(args.threads, torch.device('cpu')))}",
        "",
        f"batch 1, {args.audio_seconds:g} s audio, {args.text_tokens} tokens, median ms; other processes used "
        f"{contention.others_pct()} % of the CPU time during the run.",
        "",
        "| variant | params | end to end | min–max (n) | audio encoder | (of which front end) | text encoder "
        "| fusion head | vs teacher, same precision | vs fp32 teacher |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        same = teacher.get(r["int8"])
        ratio = f"{same / r['e2e_ms']:.1f}x" if same else "–"
        fp32 = f"{teacher[False] / r['e2e_ms']:.1f}x" if False in teacher and r["int8"] else ("same" if teacher else "–")
        front = f"{r['front_end_ms']:.1f}" if "front_end_ms" in r else "–"
        low, high = r["e2e_spread_ms"]
        lines.append(
            f"| {name} | {r['params_m']:.1f} M | {r['e2e_ms']:.1f} | {low:.1f}–{high:.1f} ({r['e2e_n']}) "
            f"| {r['audio_encoder_ms']:.1f} | {front} | {r['text_encoder_ms']:.1f} | {r['fusion_ms']:.1f} | {ratio} "
            f"| {fp32} |"
        )
    lines += [
        "",
        "Parts are timed separately (medians), so they need not add up to end to end exactly. min–max (n) = the "
        "spread of the n timed end-to-end calls. params = parameters of the fp32 architecture (int8 rows quantise "
        "its Linear weights). vs teacher, same precision: int8 rows against the int8 teacher, fp32 rows against "
        "the fp32 teacher, both measured in this run; vs fp32 teacher: int8 rows against the fp32 teacher.",
    ]
    md = "\n".join(lines) + "\n"
    print(md)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "light_student_ablation.json").write_text(json.dumps({"provenance": origin, "results": results}, indent=1) + "\n")
    (out / "light_student_ablation.md").write_text(md)


if __name__ == "__main__":
    from multistill.training.arguments import run_script

    run_script(main)
