"""Markdown rendering of ``benchmark.py`` results."""

from __future__ import annotations

from typing import Any

from bench_lib import machine_line, provenance_line


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


def _ratio_range(span: list[float] | None, rounds: int) -> str:
    return f" [{span[0]:.1f}–{span[1]:.1f}x over {rounds} rounds]" if span and rounds > 1 else ""


def _x(ratio: float | None, span: list[float] | None, rounds: int) -> str:
    if not ratio:
        return "–"
    return f"{ratio:.1f}x" + (f" [{span[0]:.1f}–{span[1]:.1f}]" if span and rounds > 1 else "")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def _sec(x: float) -> str:
    return f"{x:g}"


def _spread_note(rounds: int) -> str:
    return (
        f"min–max of the {rounds} rounds' medians (rounds interleaved: every job ran once per round)"
        if rounds > 1
        else "min–max of the timed calls (one round)"
    )


def _header(res: dict[str, Any]) -> list[str]:
    """Title, provenance, machine, run settings."""
    s = res["settings"]
    lines = ["# Multi-Still inference benchmark", ""]
    if res.get("provenance"):
        lines += [f"**Made by** {provenance_line(res['provenance'])}.", ""]
    lines.append(f"**Machine:** {machine_line(res['machine'])}")
    lines.append("")
    lines.append(
        f"**Run:** {res['created']}, device {s['device']}, precision {'/'.join(s['dtypes'])}, "
        f"{s['text_tokens']} tokens, up to {s['repeats']} timed repeats after up to {s['warmup']} warm-ups "
        f"within {s['time_budget']:g} s per measurement"
        + (f", configs estimated over {s['max_call_s']:g} s per call skipped" if s["max_call_s"] else "")
        + f"; {'tiny --quick configs' if s['quick'] else 'full-size architectures, random weights'}; "
        f"{s.get('rounds', 1)} round{'s' if s.get('rounds', 1) > 1 else ''} of every job; total {res['total_s']:.0f} s."
    )
    if res.get("rerendered"):
        lines += ["", f"**Re-rendered** {res['rerendered']} from this run's JSON by `benchmark.py --rerender` (ratios "
                  "like with like, spreads); every measurement is the original run's."]
    return lines


def _other_load(res: dict[str, Any]) -> list[str]:
    """What other processes took of the CPU, and the job that suffered most."""
    lines: list[str] = []
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
    return lines


def _headline(res: dict[str, Any]) -> list[str]:
    """The light student against the teacher, its variants, the Whisper-base models; failed jobs."""
    lines: list[str] = []
    h = res.get("headline")
    if h:
        verdict = "meets" if h["meets_target"] else "MISSES"
        rounds = h.get("rounds", 1)
        lines += [
            "",
            f"**Light student vs teacher** (batch 1, {_sec(h['audio_seconds'])} s audio, both {h['precision']}, "
            f"same run): {_ms(h['light_student_ms'])} ms vs {_ms(h['teacher_ms'])} ms = "
            f"**{h['speedup']:.1f}x faster**{_ratio_range(h.get('speedup_range'), rounds)} ({verdict} the 10x target).",
        ]
        for v in h.get("variants", []):
            same = (
                f"vs the {v['variant']} teacher ({_ms(v['teacher_ms'])} ms): **{v['speedup']:.1f}x**"
                f"{_ratio_range(v['speedup_range'], rounds)}"
                if v["speedup"]
                else f"no {v['variant']} teacher in this run"
            )
            fp32 = (
                f"; vs the {h['precision']} teacher: {v['speedup_vs_fp32_teacher']:.1f}x"
                f"{_ratio_range(v['speedup_vs_fp32_teacher_range'], rounds)}"
                if v["speedup_vs_fp32_teacher"]
                else ""
            )
            lines.append(f"- light student {v['variant']} ({_ms(v['light_student_ms'])} ms): {same}{fp32}.")
        if h.get("whisper"):
            lines += ["", f"**Whisper-base encoder models** (same run, batch 1, {_sec(h['audio_seconds'])} s padded to "
                      f"Whisper's 30 s window, log-mel front end included, {h['precision']}):"]
            for w in h["whisper"]:
                own = (f"; {w['speedup_vs_own_teacher']:.1f}x faster than the Whisper teacher"
                       f"{_ratio_range(w['speedup_vs_own_teacher_range'], rounds)}"
                       if w.get("speedup_vs_own_teacher") and w["model"] != "whisper_teacher" else "")
                lines.append(f"- {w['model']}: {_ms(w['ms'])} ms = {w['speedup_vs_teacher']:.1f}x the paper's teacher"
                             f"{_ratio_range(w['speedup_vs_teacher_range'], rounds)}{own}.")
    if res["errors"]:
        lines += ["", "**Failed jobs:** " + "; ".join(f"{e['job']}: {e['error']}" for e in res["errors"])]

    return lines


def _latency_section(res: dict[str, Any]) -> list[str]:
    """End-to-end latency, one row per model, variant, batch and length."""
    s, lines = res["settings"], []
    lat = res["latency"]
    rounds = s.get("rounds", 1)
    lines += ["", "## End-to-end latency (raw 16 kHz audio + token ids -> logits)", ""]
    rows = []
    for r in lat:
        head = [r["model"], r["variant"], str(r["batch_size"]), _sec(r["audio_seconds"])]
        if "e2e" not in r:
            rows.append(head + [f"skipped: {r.get('skipped', '?')}"] + [""] * 8)
            continue
        e = r["e2e"]
        n = f"{e['n']}" + ("†" if e["first_call_reused"] else "") + (f" / {e['rounds']}" if rounds > 1 else "")
        spread = e.get("spread_ms")
        mem = r["memory"]
        rows.append(
            head
            + [
                _ms(e["median_ms"]),
                f"{_ms(spread[0])}–{_ms(spread[1])}" if spread else "–",
                n,
                _ms(r["per_utterance_ms"]),
                f"{r['rtf']:.4f}",
                _x(r.get("speedup_vs_teacher"), r.get("speedup_vs_teacher_range"), rounds),
                _x(r.get("speedup_vs_fp32_teacher"), r.get("speedup_vs_fp32_teacher_range"), rounds)
                if r["variant"] != s["dtypes"][0] else "same",
                f"{mem['peak_mb']:,.0f} (+{mem['delta_mb']:,.0f})",
            ]
        )
    spread_note = _spread_note(rounds)
    lines += _table(
        ["model", "variant", "batch", "audio s", "ms/batch median", "spread", "n" + (" / rounds" if rounds > 1 else ""),
         "ms/utt", "RTF", "vs teacher, same precision", f"vs {s['dtypes'][0]} teacher", "peak MiB (+act.)"],
        rows,
    )
    lines += [
        "",
        f"Median over {'rounds of the per-round medians' if rounds > 1 else 'the timed calls'}; spread = "
        f"{spread_note}; n = timed calls († = a single call so slow that the first, warm-up call is the "
        "measurement). RTF = processing time / audio duration of the batch. vs teacher, same precision = teacher "
        "median / model median at the same batch, length and precision or variant (int8 vs int8 teacher; – when "
        f"that teacher was not measured); vs {s['dtypes'][0]} teacher = the same against the {s['dtypes'][0]} "
        "PyTorch teacher" + (" (ratios: median of the per-round ratios [min–max])" if rounds > 1 else "")
        + ". Peak = process peak RSS during the measurement on CPU (weights + runtime), "
        "torch.cuda.max_memory_allocated on GPU; (+act.) = rise over the level before it.",
    ]

    return lines


def _split_section(res: dict[str, Any]) -> list[str]:
    """Where the time goes: encoders against the fusion head."""
    lines, lat = [], res["latency"]
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

    return lines


def _models_section(res: dict[str, Any]) -> list[str]:
    """Parameters, weights and the audio each model keeps."""
    lines: list[str] = []
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

    return lines


def _variants_section(res: dict[str, Any]) -> list[str]:
    """Quantised, exported and compiled variants: agreement with the fp32 model."""
    lines, lat = [], res["latency"]
    vrows = []
    for r in lat:
        c = r.get("check")
        if not c:
            continue
        vi = res["variants"].get(f"{r['model']}:{r['variant']}", {})
        size = vi.get("file_mb", vi.get("weights_mb"))
        prep = vi.get("export_s", vi.get("transform_s", r.get("compile_s")))
        what = vi.get("exporter", "–")
        if "int8_linear_layers" in vi:
            what = f"{vi['int8_linear_layers']} int8 Linear, {vi['fp32_linear_layers']} fp32 Linear left"
        vrows.append(
            [r["model"], r["variant"], str(r["batch_size"]), _sec(r["audio_seconds"]),
             f"{c['argmax_match']}/{c['n']}", f"{c['max_abs_logit_diff']:.2e}",
             f"{size:,.0f}" if size is not None else "–", f"{prep:.1f}" if prep is not None else "–", what]
        )
    if vrows:
        lines += ["", "## Variants: agreement with the fp32 PyTorch model (same inputs)", ""]
        lines += _table(
            ["model", "variant", "batch", "audio s", "same argmax", "max abs logit diff", "MiB (weights/file)",
             "prep s", "exporter / quantised layers"],
            vrows,
        )
        lines += ["", "prep s = quantisation, ONNX export, or torch.compile time of the first call of that shape. "
                  "Agreement is checked in the worst round."]

    return lines


def _training_section(res: dict[str, Any]) -> list[str]:
    """Training steps per second, with cached features or encoders run."""
    lines, rounds = [], res["settings"].get("rounds", 1)
    spread_note = _spread_note(rounds)
    if res["training"]:
        lines += ["", "## Training throughput (forward + backward + AdamW step)", ""]
        trows = []
        for r in res["training"]:
            mode = "cached encoder features" if r["mode"] == "cached" else (
                "encoders run (trainable)" if r["encoders_trainable"] else "encoders run every step (frozen)"
            )
            spread = r["step"].get("spread_ms")
            trows.append(
                [r["model"], r["variant"], mode, str(r["batch_size"]), _sec(r["audio_seconds"]),
                 _ms(r["step"]["median_ms"]), f"{_ms(spread[0])}–{_ms(spread[1])}" if spread else "–",
                 f"{r['step']['n']}" + (f" / {r['step']['rounds']}" if rounds > 1 else ""),
                 f"{r['examples_per_s']:.2f}", _m(r["trainable_params"]), f"{r['memory']['peak_mb']:,.0f}"]
            )
        lines += _table(
            ["model", "precision", "features", "batch", "audio s", "step ms", "spread", "n" + (" / rounds" if rounds > 1 else ""),
             "examples/s", "trainable", "peak MiB"],
            trows,
        )
        lines += ["", f"Spread = {spread_note.replace('calls', 'steps')}; n = timed steps."]
    return lines


def render_markdown(res: dict[str, Any]) -> str:
    """All tables of one run as a markdown document."""
    lines = (_header(res) + _other_load(res) + _headline(res) + _latency_section(res) + _split_section(res)
             + _models_section(res) + _variants_section(res) + _training_section(res))
    return "\n".join(lines) + "\n"
