"""The markdown report of ``stream_rtf.py``: machine and load, the conversation, one row per model, thread count,
setting and run, the models, and the one-encoder-pass check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench_lib import WHISPER_MODELS, machine_line, provenance_line


def _ms(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds * 1000:,.0f}"


def _stage(stage: dict[str, Any], digits: int = 0) -> str:
    if not stage.get("count"):
        return "–"
    return f"{stage['median_ms']:,.{digits}f} / {stage['p90_ms']:,.{digits}f}"


def _header(res: dict[str, Any]) -> list[str]:
    """Title, provenance and load, machine, run settings, the recognizer."""
    s, asr = res["settings"], res["settings"].get("asr")
    title = "with speech recognition in the loop" if asr else "with given transcripts"
    lines = [f"# Real-time stream mode {title}: real-time factor, stage times and latency", "",
             f"**Machine:** {machine_line(res['machine'])}", ""]
    if res.get("provenance"):
        load = res.get("loadavg_1min_start_end") or ["?", "?"]
        lines += [f"**Made by** {provenance_line(res['provenance'])}; load average (1 min) {load[0]} at the start, "
                  f"{load[1]} at the end (2 cores: above 2 means other jobs competed for the CPU).", ""]
    pace = "paced like live input (`--realtime`)" if s["realtime"] else "delivered as fast as consumed"
    lines.append(
        f"**Run:** {res['created']}; `multistill stream` path (`load_pipeline` + `stream_emotions` on "
        f"`file_chunks`, {s['chunk_ms']:g} ms chunks, {pace}, {s['warmup']} `warm_up` calls per setting, "
        f"{s['repeat']} run(s) each); "
        f"{'tiny --quick configs' if s['quick'] else 'full-size architectures, random weights'}; VAD {s['vad']}; "
        f"total {res['total_s']:.0f} s."
    )
    if asr:
        threads = f"{s['asr_threads']} threads" if s["asr_threads"] is not None else "as many threads as torch"
        decoding = "greedy" if asr.get("beam_size", asr.get("num_beams")) == 1 else "beam search"
        if asr.get("temperature_fallback"):
            decoding += ", sampled again only when the output loops"
        lines += ["", f"**ASR:** {asr['engine']} `{Path(asr['model']).name}` (language {asr['language']}, "
                      f"{asr.get('compute_type', '')} {decoding}, {threads}): every utterance transcribed in the "
                      "loop, no transcript given."]
    return lines


def _other_load(res: dict[str, Any]) -> list[str]:
    """What other processes took of the CPU, and the run that suffered most."""
    others = res["machine"].get("others_cpu_pct")
    if others is None:
        return []
    worst = max(res["runs"], key=lambda r: r.get("other_load_pct") or 0.0, default=None)
    note = f"**Other load:** other processes used {others:.1f} % of the machine's CPU time during the run"
    if worst is not None:
        note += (
            f" (most during {worst['model']}, {worst['threads']} thread(s), run {worst['run']}: "
            f"{worst.get('other_load_pct') or 0:.1f} %)"
        )
    note += "."
    if worst is not None and (worst.get("other_load_pct") or 0) > 5:
        note += " Numbers from runs with other load are pessimistic; rerun on an idle machine."
    return ["", note]


def _runs_table(res: dict[str, Any]) -> list[str]:
    """The conversation and one row per streamed run."""
    conv, asr = res["conversation"], res["settings"].get("asr")
    if conv.get("source", "synthetic") == "synthetic":
        what = (f"{conv['utterances']} utterances of two alternating synthetic speakers ({conv['speech_s']:g} s of "
                f"speech, 1.5-5 s each, {conv['gap_s']:g} s silences), transcript one line per utterance")
    else:
        what = (f"{conv['utterances']} real utterances ({conv['source']}, {conv['speech_s']:g} s of annotated "
                "speech) with 0.3-1.5 s pauses of background noise")
    lines = [
        "",
        f"**Conversation:** {conv['audio_s']:g} s, {what}.",
        "",
        "| model | threads | early start ms | ASR window s | encoder passes | run | utterances found / true | audio s | compute s | "
        "RTF | VAD ms per chunk (median / p90) | ASR ms per utterance | emotion ms per utterance | latency ms | "
        "end of utterance to result ms | queue wait ms (median / max) | no ASR / dropped | results from an early "
        "job | RTF / teacher RTF | peak RSS MB | load avg 1 min (start → end) | other load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in res["runs"]:
        lat, st = r["latency"], r.get("stages", {})
        found = f"{r['utterances']} / {conv['utterances']}" + (f" ({r['errors']} errors)" if r["errors"] else "")
        ratio = "–" if r["rtf_vs_teacher"] is None else f"{r['rtf_vs_teacher']:.3f}"
        load = "–" if r["other_load_pct"] is None else f"{r['other_load_pct']:.1f} %"
        early = (f"{r['early_used']} of {r['utterances']} ({r['early_started'] - r['early_used']} dropped)"
                 if r.get("early_ms") else "–")
        passes = "1 (shared)" if r.get("shared_encoder") else "2" if r.get("model") in WHISPER_MODELS and asr else "–"
        loadavg = " → ".join(f"{x:.2f}" for x in r["loadavg_1min"]) if r.get("loadavg_1min") else "–"
        backlog = (f"{_ms(lat.get('queued_median_s'))} / {_ms(lat.get('queued_max_s'))} | "
                   f"{r.get('asr_skipped', 0)} / {r.get('dropped', 0)}")
        rss = f"{r['peak_rss_mb']:,.0f}" if r.get("peak_rss_mb") else "–"
        lines.append(
            f"| {r['model']} | {r['threads']} | {r.get('early_ms', 0):g} | {r.get('asr_window_s') or '–'} | {passes} | {r['run']} | {found} | {r['audio_s']:.1f} | {r['compute_s']:.2f} | "
            f"{r['rtf']:.4f} | {_stage(st.get('vad_per_chunk', {}), 2)} | {_stage(st.get('asr_per_utterance', {}))} | "
            f"{_stage(st.get('emotion_per_utterance', {}))} | {_ms(lat.get('median_s'))} / {_ms(lat.get('p90_s'))} | "
            f"{_ms(lat.get('end_of_speech_median_s'))} / {_ms(lat.get('end_of_speech_p90_s'))} | {backlog} | {early} | "
            f"{ratio} | {rss} | {loadavg} | {load} |"
        )
    return lines


def _models_tables(res: dict[str, Any]) -> list[str]:
    """The models streamed, and the one-encoder-pass check of the models that share the recognizer's encoder."""
    lines = [
        "",
        "| model | parameters | modalities | tokens per transcript line | load s |",
        "|---|---|---|---|---|",
    ]
    for name, m in res["models"].items():
        lines.append(
            f"| {name} | {m['params'] / 1e6:,.1f} M | {'+'.join(m['modalities'])} | "
            f"{m['tokens_per_utterance']:g} | {m['load_s']:.1f} |"
        )
    shared = {name: m["shared_pass"] for name, m in res["models"].items() if m.get("shared_pass")}
    if shared:
        lines += ["", "One encoder pass vs the model's own, on real utterances of the conversation (up to 10 s; the "
                  "model's Whisper base encoder is the recognizer's, its fusion and head re-drawn so that logits are "
                  "O(1)):", "",
                  "| model | utterances | max abs logit difference (max / median) | largest logit (median) | same top "
                  "emotion | encoder states relative difference (median / max) |", "|---|---|---|---|---|---|"]
        for name, d in shared.items():
            if not d.get("shared"):
                lines.append(f"| {name} | not shared: {d.get('reason')} | | | | |")
                continue
            lines.append(f"| {name} | {d['utterances']} | {d['max_abs_logit_diff']:.4f} / {d['median_abs_logit_diff']:.4f} | "
                         f"{d['median_max_abs_logit']:.3f} | {d['same_top_emotion']} of {d['utterances']} | "
                         f"{d['encoder_states_rel_diff_median']:.4f} / {d['encoder_states_rel_diff_max']:.4f} |")
    return lines


def _definitions(res: dict[str, Any]) -> list[str]:
    """What each column means."""
    s, asr = res["settings"], res["settings"].get("asr")
    return [
        "",
        "RTF = compute seconds (VAD" + (" + ASR" if asr else "") + " + emotion model, excluding waiting for audio) "
        "/ audio seconds; below 1 the models keep up with live audio. Stage times and latencies are median / p90. "
        "Latency = from the arrival of the audio chunk that closed an utterance to its emotion: "
        + (
            "processing plus any backlog (waiting for earlier utterances)"
            if s["realtime"]
            else "processing plus waiting in the queue behind earlier utterances (the file is read without pacing, "
            "up to --max-queue utterances ahead of recognition)"
        )
        + "; end of utterance to result adds the VAD's hangover wait (500 ms of silence) and the rest of that chunk. "
        "With an early start, ASR and the emotion model begin after that much silence, before the hangover ends "
        "(the work is dropped when speech resumes; dropped work counts in the compute time). "
        "RTF / teacher RTF compares models at the same thread count and early start. Encoder passes: 1 when the "
        "emotion model's Whisper encoder took the recognizer's states (`multistill/live/stream_encoder.py`), 2 when it "
        "encoded the audio itself. Queue wait: from the close of an utterance to the start of its recognition; no ASR "
        "/ dropped: utterances the live stream's backlog policy degraded (`multistill/live/stream_session.py`). Peak RSS: "
        "the benchmark process's peak resident memory so far (all models of the run loaded in turn).",
    ]


def render_markdown(res: dict[str, Any]) -> str:
    """The report of one ``stream_rtf.py`` run (its results JSON)."""
    return "\n".join(_header(res) + _other_load(res) + _runs_table(res) + _models_tables(res)
                     + _definitions(res)) + "\n"
