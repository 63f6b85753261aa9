"""Markdown rendering of ``benchmark.py`` results."""

from __future__ import annotations

from typing import Any

from bench_lib import machine_line


def _ms(x: float | None) -> str:
    if x is None:
        return "–"
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def _m(n: int) -> str:
    return f"{n / 1e6:.1f} M" if n >= 1e5 else f"{n:,}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def _sec(x: float) -> str:
    return f"{x:g}"


def render_markdown(res: dict[str, Any]) -> str:
    """All tables of one run as a markdown document."""
    s = res["settings"]
    lines = ["# Multi-Still inference benchmark", ""]
    lines.append(f"**Machine:** {machine_line(res['machine'])}")
    lines.append("")
    lines.append(
        f"**Run:** {res['created']}, device {s['device']}, precision {'/'.join(s['dtypes'])}, "
        f"{s['text_tokens']} tokens, up to {s['repeats']} timed repeats after up to {s['warmup']} warm-ups "
        f"within {s['time_budget']:g} s per measurement"
        + (f", configs estimated over {s['max_call_s']:g} s per call skipped" if s["max_call_s"] else "")
        + f"; {'tiny --quick configs' if s['quick'] else 'full-size architectures, random weights'}; "
        f"total {res['total_s']:.0f} s."
    )
    others = res["machine"].get("others_cpu_pct")
    if others is not None:
        worst = max(res["jobs"].items(), key=lambda kv: kv[1].get("others_cpu_pct") or 0.0)
        note = (
            f"**Other load:** other processes used {others:.1f} % of the machine's CPU time during the run "
            f"(most during {worst[0]}: {worst[1].get('others_cpu_pct') or 0:.1f} %)."
        )
        if (worst[1].get("others_cpu_pct") or 0) > 5:
            note += " Numbers from jobs with other load are pessimistic; rerun on an idle machine."
        lines += ["", note]
    h = res.get("headline")
    if h:
        verdict = "meets" if h["meets_target"] else "MISSES"
        lines += [
            "",
            f"**Light student vs teacher** (batch 1, {_sec(h['audio_seconds'])} s audio, {h['precision']}): "
            f"{_ms(h['light_student_ms'])} ms vs {_ms(h['teacher_ms'])} ms = **{h['speedup']:.1f}x faster** "
            f"({verdict} the 10x target)"
            + (
                f"; best variant {h['best_variant']}: {_ms(h['best_variant_ms'])} ms = "
                f"{h['best_variant_speedup']:.1f}x."
                if h["best_variant"] != h["precision"]
                else "."
            ),
        ]
    if res["errors"]:
        lines += ["", "**Failed jobs:** " + "; ".join(f"{e['job']}: {e['error']}" for e in res["errors"])]

    lat = res["latency"]
    lines += ["", "## End-to-end latency (raw 16 kHz audio + token ids -> logits)", ""]
    rows = []
    for r in lat:
        head = [r["model"], r["variant"], str(r["batch_size"]), _sec(r["audio_seconds"])]
        if "e2e" not in r:
            rows.append(head + [f"skipped: {r.get('skipped', '?')}"] + [""] * 7)
            continue
        e = r["e2e"]
        n = f"{e['n']}" + ("†" if e["first_call_reused"] else "")
        sp = r.get("speedup_vs_teacher")
        mem = r["memory"]
        rows.append(
            head
            + [
                _ms(e["median_ms"]),
                _ms(e["p90_ms"]),
                n,
                _ms(r["per_utterance_ms"]),
                f"{r['rtf']:.4f}",
                f"{sp:.1f}x" if sp else "–",
                f"{mem['peak_mb']:,.0f} (+{mem['delta_mb']:,.0f})",
            ]
        )
    lines += _table(
        ["model", "variant", "batch", "audio s", "ms/batch median", "p90", "n", "ms/utt", "RTF", "vs teacher",
         "peak MiB (+act.)"],
        rows,
    )
    lines += [
        "",
        "n = timed repeats († = a single call so slow that the first, warm-up call is the measurement). "
        "RTF = processing time / audio duration of the batch. vs teacher = teacher median / model median "
        "(same batch and length; variants against the fp32 teacher). Peak = process peak RSS during the "
        "measurement on CPU (weights + runtime), torch.cuda.max_memory_allocated on GPU; (+act.) = rise over "
        "the level before it.",
    ]

    split_rows = []
    for r in lat:
        sp = r.get("split")
        if not sp:
            continue
        a = sp.get("audio_encoder_ms")
        t = sp.get("text_encoder_ms")
        f = sp.get("fusion_ms")
        enc = (a or 0) + (t or 0)
        total = enc + (f or 0)
        split_rows.append(
            [r["model"], r["variant"], str(r["batch_size"]), _sec(r["audio_seconds"]),
             (_ms(a) + ("*" if sp.get("audio_encoder_derived") else "")) if a is not None else "–",
             _ms(t), _ms(f), _ms(r["e2e"]["median_ms"]), f"{100 * enc / total:.0f} %" if total else "–"]
        )
    if split_rows:
        lines += ["", "## Where the time goes (ms per batch, median)", ""]
        lines += _table(
            ["model", "precision", "batch", "audio s", "audio encoder", "text encoder", "fusion head",
             "end to end", "encoders' share"],
            split_rows,
        )
        lines += [
            "",
            "Audio encoder = raw waveform -> hidden states (incl. the fbank front end of the light student); "
            "fusion head = forward from cached encoder outputs (projection, cross-modal layers, classifier). "
            "* = derived as end to end minus text encoder and fusion (end to end above --split_direct_max_s, not timed twice).",
        ]

    lines += ["", "## Models", ""]
    mrows = []
    for name, info in res["models"].items():
        p = info["params"]
        kept = info.get("max_audio_seconds")
        mrows.append(
            [name, info.get("audio_frontend") or "–", _m(p["total"]), _m(p["trainable"]), _m(p["audio_encoder"]),
             _m(p["text_encoder"]), _m(p["fusion_head"]), f"{info['weights_mb']:,.0f}",
             f"{kept:.2f}" if kept else "–"]
        )
    lines += _table(
        ["model", "audio front end", "params", "trainable", "audio enc.", "text enc.", "fusion head",
         "fp32 MiB", "audio kept (s)"],
        mrows,
    )
    lines += ["", "Audio kept = max_audio_frames x frame hop: longer utterances are truncated."]

    vrows = []
    for r in lat:
        c = r.get("check")
        if not c:
            continue
        vi = res["variants"].get(f"{r['model']}:{r['variant']}", {})
        size = vi.get("file_mb", vi.get("weights_mb"))
        prep = vi.get("export_s", vi.get("transform_s", r.get("compile_s")))
        vrows.append(
            [r["model"], r["variant"], str(r["batch_size"]), _sec(r["audio_seconds"]),
             f"{c['argmax_match']}/{c['n']}", f"{c['max_abs_logit_diff']:.2e}",
             f"{size:,.0f}" if size is not None else "–", f"{prep:.1f}" if prep is not None else "–",
             vi.get("exporter", "–")]
        )
    if vrows:
        lines += ["", "## Variants: agreement with the fp32 PyTorch model (same inputs)", ""]
        lines += _table(
            ["model", "variant", "batch", "audio s", "same argmax", "max abs logit diff", "MiB (weights/file)",
             "prep s", "exporter"],
            vrows,
        )
        lines += ["", "prep s = quantisation, ONNX export, or torch.compile time of the first call of that shape."]

    if res["training"]:
        lines += ["", "## Training throughput (forward + backward + AdamW step)", ""]
        trows = []
        for r in res["training"]:
            mode = "cached encoder features" if r["mode"] == "cached" else (
                "encoders run (trainable)" if r["encoders_trainable"] else "encoders run every step (frozen)"
            )
            trows.append(
                [r["model"], r["variant"], mode, str(r["batch_size"]), _sec(r["audio_seconds"]),
                 _ms(r["step"]["median_ms"]), f"{r['examples_per_s']:.2f}", _m(r["trainable_params"]),
                 f"{r['memory']['peak_mb']:,.0f}"]
            )
        lines += _table(
            ["model", "precision", "features", "batch", "audio s", "step ms", "examples/s", "trainable",
             "peak MiB"],
            trows,
        )
    return "\n".join(lines) + "\n"
