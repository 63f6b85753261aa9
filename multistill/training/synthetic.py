"""A small synthetic KEMDy corpus, in exactly ETRI's KEMDy19 and KEMDy20 layouts, for tests and demos.

:func:`make_synthetic_kemdy` writes ``<root>/KEMDy19`` and ``<root>/KEMDy20`` the way ETRI distributes
them (two header rows in the annotation CSVs, 10 evaluators per panel, KEMDy19's two panels
``SessionNN_F_res.csv``/``SessionNN_M_res.csv``, UTF-8 KEMDy19 and CP949 KEMDy20 transcripts, E4
bio-signal CSVs), so that the real dataset builder (``loading_scripts/kemdy.py``) reads it unchanged.

The data are learnable but not trivially so:

* **Audio**: 16 kHz mono PCM16 WAVs of 1-3 s: a voiced harmonic tone with syllable-like amplitude bursts
  plus noise. Pitch level and contour, loudness, syllable rate, vibrato, spectral tilt and noise depend
  on the emotion (e.g. angry: loud, fast, bright; sad: quiet, slow, low, falling), the base pitch on the
  speaker (female about 200-235 Hz, male about 105-135 Hz), plus per-utterance random variation.
* **Text**: Korean sentences with emotion-typical words 70 % of the time (otherwise a neutral or another
  emotion's sentence), non-speech tags (``n/ l/ b/ c/``), ``(A+B)`` overlap marks and ``(어)`` marks.
* **Labels**: 10 evaluators per panel vote the utterance's emotion 6-10 times (the rest are plausible
  confusions), so the evaluator majority is the generated emotion; Total Evaluation is that emotion with
  the evaluators' mean valence/arousal. Every emotion occurs a few times per session; neutral most often.

With the defaults (4 sessions per corpus, 2 dialogues per session, 4 utterances per speaker and dialogue)
each corpus has ``sessions * dialogues * 2 speakers * utterances_per_speaker`` = 64 utterances; the whole
corpus takes well under a second to write and about 6 MB. Output is deterministic for a given ``seed``.

``edge_cases=True`` adds the rows of :data:`EDGE_CASES` to KEMDy20 session 1 (dialogue ``Sess01_script01``,
utterance numbers 901-911).
"""

from __future__ import annotations

import csv
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from ..annotations import EMOTIONS

SAMPLING_RATE = 16_000
N_EVALUATORS = 10


@dataclass(frozen=True)
class EdgeCase:
    """One deliberately awkward row of the synthetic corpus (KEMDy20 session 1)."""

    segment_id: str
    description: str
    kept: bool  # whether the builder keeps it (with on_unknown_label="skip")
    emotion: str | None = None  # the expected label of a kept row


#: The edge cases written with ``edge_cases=True``, by name.
EDGE_CASES: dict[str, EdgeCase] = {
    "stereo_44k": EdgeCase(
        "Sess01_script01_User001F_901",
        "44.1 kHz stereo WAV of 1.5 s (decodes to 16 kHz mono)",
        True,
        "neutral",
    ),
    "empty_wav": EdgeCase("Sess01_script01_User002M_902", "WAV with a header and no samples", False),
    "corrupt_wav": EdgeCase("Sess01_script01_User001F_903", "WAV file of random bytes", False),
    "missing_transcript": EdgeCase("Sess01_script01_User002M_904", "WAV present, .txt missing", False),
    "missing_wav": EdgeCase("Sess01_script01_User001F_905", ".txt present, WAV missing", False),
    "misspelled_label": EdgeCase(
        "Sess01_script01_User002M_906",
        "evaluators Eval01-Eval03 wrote 'Neutrl ' (mapped to neutral): 8 neutral, 2 sad votes",
        True,
        "neutral",
    ),
    "unknown_label": EdgeCase(
        "Sess01_script01_User001F_907", "evaluator Eval04 wrote 'boredom' (not an emotion)", False
    ),
    "tie": EdgeCase(
        "Sess01_script01_User002M_908",
        "Total Evaluation 'neutral;happy', 5 neutral and 5 happy votes (tie-break: neutral, earlier)",
        True,
        "neutral",
    ),
    "tie_total": EdgeCase(
        "Sess01_script01_User001F_909",
        "5 angry and 5 sad votes, Total Evaluation 'sad' (tie-break prefers the Total Evaluation: sad)",
        True,
        "sad",
    ),
    "truncated_wav": EdgeCase(
        "Sess01_script01_User002M_910",
        "PCM16 WAV cut mid-sample: soundfile opens it, torchcodec (the decoder of datasets.Audio) fails",
        False,
    ),
    "empty_transcript": EdgeCase(
        "Sess01_script01_User001F_911",
        "transcript of non-speech tags only ('l/ n/'): kept with text '' (and a note)",
        True,
        "neutral",
    ),
}

# --- emotion-dependent prosody --------------------------------------------------------------------------
# pitch factor, RMS level, syllables/s, contour (octaves from start to end), vibrato depth, spectral tilt
# (harmonic k has amplitude k**-tilt), noise-to-signal ratio.
_PROSODY: dict[str, tuple[float, float, float, float, float, float, float]] = {
    "neutral": (1.00, 0.10, 4.0, -0.05, 0.000, 1.6, 0.05),
    "happy": (1.30, 0.16, 5.5, 0.30, 0.015, 1.1, 0.05),
    "surprise": (1.55, 0.17, 4.5, 0.70, 0.010, 1.2, 0.08),
    "angry": (1.15, 0.30, 6.5, -0.25, 0.005, 0.7, 0.12),
    "sad": (0.82, 0.05, 2.5, -0.35, 0.000, 2.3, 0.03),
    "disgust": (0.92, 0.12, 3.0, -0.15, 0.000, 1.9, 0.25),
    "fear": (1.40, 0.08, 5.0, 0.10, 0.050, 1.5, 0.15),
}
# valence / arousal means (1-5 scales) per emotion.
_AFFECT: dict[str, tuple[float, float]] = {
    "neutral": (3.0, 2.8),
    "happy": (4.1, 3.6),
    "surprise": (3.3, 4.1),
    "angry": (1.7, 4.3),
    "sad": (1.7, 2.2),
    "disgust": (1.9, 3.1),
    "fear": (1.8, 3.9),
}
# plausible confusions for the minority votes.
_CONFUSIONS: dict[str, tuple[str, ...]] = {
    "neutral": ("happy", "sad", "surprise"),
    "happy": ("neutral", "surprise"),
    "surprise": ("neutral", "fear", "happy"),
    "angry": ("neutral", "disgust"),
    "sad": ("neutral", "fear"),
    "disgust": ("angry", "neutral"),
    "fear": ("surprise", "sad", "neutral"),
}

# --- emotion-typical Korean sentences ------------------------------------------------------------------
_SENTENCES: dict[str, tuple[str, ...]] = {
    "neutral": (
        "오늘 회의는 세 시에 시작해요.",
        "그 서류는 책상 위에 있어요.",
        "내일 날씨를 한번 확인해 볼게요.",
        "점심은 뭐 먹을까요?",
        "지하철로 가면 삼십 분 정도 걸려요.",
        "주말에는 보통 집에서 쉬어요.",
    ),
    "happy": (
        "정말 기뻐요! 너무 좋아요.",
        "와 최고야, 진짜 행복해.",
        "선물 고마워요, 너무 마음에 들어요.",
        "합격했어! 너무 신나.",
        "오늘 정말 즐거웠어요, 웃겨 죽겠어.",
    ),
    "surprise": (
        "어머, 진짜요? 깜짝 놀랐어요.",
        "세상에, 이게 어떻게 된 거야?",
        "정말? 믿을 수가 없어!",
        "헐, 벌써 왔어? 놀랐잖아.",
    ),
    "angry": (
        "왜 약속을 안 지켜? 정말 화가 나.",
        "그만 좀 해! 짜증 나 죽겠어.",
        "이건 말도 안 돼, 당장 사과해.",
        "도대체 몇 번을 말해야 알아들어?",
    ),
    "sad": (
        "너무 슬퍼서 눈물이 나요.",
        "그 친구가 떠나서 마음이 아파.",
        "요즘 너무 외롭고 힘들어요.",
        "다 내 잘못인 것 같아서 속상해.",
    ),
    "disgust": (
        "으, 냄새가 너무 역겨워.",
        "저런 행동은 정말 혐오스러워.",
        "더러워서 못 보겠어.",
        "그 얘기는 듣기만 해도 싫어.",
    ),
    "fear": (
        "무서워요, 누가 따라오는 것 같아.",
        "어두워서 너무 겁이 나.",
        "떨려서 아무 말도 못 하겠어요.",
        "혹시 무슨 일 생기면 어떡해?",
    ),
}
_TAGS = ("n/", "l/", "b/", "c/")
_OVERLAPS = ("(네+아니)", "(그래+잠깐만)", "(응+근데)", "(아+어)")
_BASE_UNIX_TIME = 1_597_976_614  # 2020-08-21, like the real KEMDy20 Session01 files


def make_synthetic_kemdy(
    root: str | Path,
    sessions_per_corpus: int = 4,
    dialogues_per_session: int = 2,
    utterances_per_speaker: int = 4,
    seed: int = 0,
    edge_cases: bool = False,
    bio_signals: bool = True,
) -> Path:
    """Write a synthetic KEMDy19 + KEMDy20 corpus under ``root`` and return ``root``.

    Args:
        root: output folder (created); it gets ``KEMDy19/`` and ``KEMDy20/`` sub-folders.
        sessions_per_corpus: sessions per corpus (numbered from 1).
        dialogues_per_session: dialogues per session (KEMDy19: script01, impro01, script02, ...;
            KEMDy20: script01, script02, ...), each between the session's two speakers.
        utterances_per_speaker: utterances of each speaker in each dialogue.
        seed: random seed; the same arguments give byte-identical files.
        edge_cases: add the rows of :data:`EDGE_CASES` to KEMDy20 session 1.
        bio_signals: write the (small) EDA/TEMP/IBI files.
    """
    if min(sessions_per_corpus, dialogues_per_session, utterances_per_speaker) < 1:
        raise ValueError(
            "sessions_per_corpus, dialogues_per_session and utterances_per_speaker must be >= 1."
        )
    root = Path(root)
    for corpus_index, corpus in enumerate(("KEMDy19", "KEMDy20")):
        for session in range(1, sessions_per_corpus + 1):
            rng = np.random.default_rng([seed, corpus_index, session])
            writer = _SessionWriter(root / corpus, corpus, session, rng, bio_signals)
            writer.write(
                dialogues_per_session,
                utterances_per_speaker,
                edge_cases and corpus == "KEMDy20" and session == 1,
            )
    return root


# ----------------------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------------------


@dataclass
class _Utterance:
    segment_id: str
    dialogue: str
    speaker: str  # "F"/"M" (KEMDy19) or "User001F" (KEMDy20)
    gender: str
    emotion: str
    start: float
    end: float
    panels: list[list[tuple[str, int, int]]]  # per panel, 10 (emotion cell, valence, arousal)
    totals: list[str]  # Total Evaluation emotion cell, per panel
    edge: str | None = None


class _SessionWriter:
    """Writes one session of one corpus: WAVs, transcripts, annotation CSV(s), bio-signals."""

    def __init__(self, corpus_dir: Path, corpus: str, session: int, rng: np.random.Generator, bio: bool):
        self.dir = corpus_dir
        self.corpus = corpus
        self.session = session
        self.ss = f"{session:02d}"
        self.rng = rng
        self.bio = bio
        if corpus == "KEMDy19":
            self.speakers = [("F", "F"), ("M", "M")]
        else:
            genders = ("F", "M") if session % 2 else ("M", "F")
            self.speakers = [(f"User{2 * session - 1 + i:03d}{g}", g) for i, g in enumerate(genders)]
        self.base_pitch = {
            name: float(rng.uniform(200, 235) if g == "F" else rng.uniform(105, 135))
            for name, g in self.speakers
        }
        self.evaluator_names = [
            [f"Eval{i + 1:02d}{'FM'[int(rng.integers(2))]}" for i in range(N_EVALUATORS)] for _ in range(2)
        ]

    # -- structure ------------------------------------------------------------------------------------
    def write(self, n_dialogues: int, per_speaker: int, edge_cases: bool) -> None:
        emotions = _emotion_schedule(n_dialogues * len(self.speakers) * per_speaker, self.rng)
        utterances: list[_Utterance] = []
        dialogue_ends: dict[str, float] = {}
        for d in range(n_dialogues):
            dialogue = self._dialogue_name(d)
            t = float(self.rng.uniform(1.0, 4.0))
            for k in range(per_speaker):
                for name, gender in self.speakers:
                    emotion = emotions.pop()
                    duration = 1.0 + 2.0 * float(self.rng.random()) ** 3
                    utt = self._utterance(dialogue, name, gender, k + 1, emotion, t, t + duration)
                    self._write_wav(utt, duration, overlap=(k == 0 and name == self.speakers[1][0]))
                    utterances.append(utt)
                    t += duration + float(self.rng.uniform(0.2, 1.5))
            if edge_cases and d == 0:
                for utt in self._edge_utterances(dialogue, t):
                    utterances.append(utt)
                    t = utt.end + 0.5
            dialogue_ends[dialogue] = t + 2.0
        self._write_annotation(utterances)
        if self.bio:
            self._write_bio(utterances, dialogue_ends)

    def _dialogue_name(self, d: int) -> str:
        if self.corpus == "KEMDy19":
            kind = "script" if d % 2 == 0 else "impro"
            return f"Sess{self.ss}_{kind}{d // 2 + 1:02d}"
        return f"Sess{self.ss}_script{d + 1:02d}"

    def _segment_id(self, dialogue: str, speaker: str, number: int) -> str:
        if self.corpus == "KEMDy19":
            return f"{dialogue}_{speaker}{number:03d}"
        return f"{dialogue}_{speaker}_{number:03d}"

    def _wav_path(self, utt: _Utterance) -> Path:
        folder = self.dir / "wav" / f"Session{self.ss}"
        if self.corpus == "KEMDy19":
            folder = folder / utt.dialogue
        return folder / f"{utt.segment_id}.wav"

    def _utterance(
        self, dialogue: str, speaker: str, gender: str, number: int, emotion: str, start: float, end: float
    ) -> _Utterance:
        n_panels = 2 if self.corpus == "KEMDy19" else 1
        panels, totals = [], []
        for _ in range(n_panels):
            votes = _panel_votes(emotion, self.rng)
            panels.append(self._with_affect(votes))
            totals.append(emotion)
        return _Utterance(
            self._segment_id(dialogue, speaker, number),
            dialogue,
            speaker,
            gender,
            emotion,
            start,
            end,
            panels,
            totals,
        )

    def _with_affect(self, votes: list[str]) -> list[tuple[str, int, int]]:
        cells = []
        for vote in votes:
            key = vote.strip().lower()
            valence, arousal = _AFFECT.get(key if key in _AFFECT else "neutral", _AFFECT["neutral"])
            cells.append(
                (
                    vote,
                    int(np.clip(round(valence + self.rng.normal(0, 0.6)), 1, 5)),
                    int(np.clip(round(arousal + self.rng.normal(0, 0.6)), 1, 5)),
                )
            )
        return cells

    # -- edge cases (KEMDy20 session 1) ---------------------------------------------------------------
    def _edge_utterances(self, dialogue: str, t: float) -> list[_Utterance]:
        out = []
        speakers = dict(self.speakers)
        for name, case in EDGE_CASES.items():
            seg = case.segment_id
            speaker = seg.split("_")[2]
            number = int(seg.split("_")[3])
            assert seg == self._segment_id(dialogue, speaker, number)
            emotion = case.emotion or "neutral"
            duration = 1.5
            utt = self._utterance(dialogue, speaker, speakers[speaker], number, emotion, t, t + duration)
            utt.edge = name
            if name == "misspelled_label":
                votes = ["Neutrl "] * 3 + ["neutral"] * 5 + ["sad"] * 2
                utt.panels = [self._with_affect(votes)]
            elif name == "unknown_label":
                votes = ["neutral"] * 3 + ["boredom"] + ["neutral"] * 6
                utt.panels = [self._with_affect(votes)]
            elif name == "tie":
                utt.panels = [self._with_affect(["neutral", "happy"] * 5)]
                utt.totals = ["neutral;happy"]
            elif name == "tie_total":
                utt.panels = [self._with_affect(["angry", "sad"] * 5)]
                utt.totals = ["sad"]
            wav = self._wav_path(utt)
            if name == "stereo_44k":
                mono = _synthesize(emotion, self.base_pitch[speaker], duration, self.rng, sr=44_100)
                stereo = np.stack([mono, 0.8 * mono], axis=1)
                _write_text(wav.with_suffix(".txt"), self._transcript(emotion, False), self.corpus)
                sf.write(wav, stereo, 44_100, subtype="PCM_16")
            elif name == "empty_wav":
                _write_text(wav.with_suffix(".txt"), self._transcript(emotion, False), self.corpus)
                sf.write(wav, np.zeros(0, dtype=np.int16), SAMPLING_RATE, subtype="PCM_16")
            elif name == "corrupt_wav":
                _write_text(wav.with_suffix(".txt"), self._transcript(emotion, False), self.corpus)
                wav.write_bytes(b"RIFF" + self.rng.bytes(4) + b"WAVE" + self.rng.bytes(2000))
            elif name == "missing_transcript":
                self._write_wav(utt, duration, overlap=False)
                wav.with_suffix(".txt").unlink()
            elif name == "missing_wav":
                self._write_wav(utt, duration, overlap=False)
                wav.unlink()
            elif name == "truncated_wav":
                self._write_wav(utt, duration, overlap=False)
                data = wav.read_bytes()
                wav.write_bytes(data[: len(data) // 2 | 1])  # an odd length: the last sample is cut in two
            elif name == "empty_transcript":
                self._write_wav(utt, duration, overlap=False)
                _write_text(wav.with_suffix(".txt"), "l/ n/\n", self.corpus)
            else:
                self._write_wav(utt, duration, overlap=False)
            out.append(utt)
            t += duration + 0.5
        return out

    # -- files ----------------------------------------------------------------------------------------
    def _write_wav(self, utt: _Utterance, duration: float, overlap: bool) -> None:
        path = self._wav_path(utt)
        path.parent.mkdir(parents=True, exist_ok=True)
        audio = _synthesize(utt.emotion, self.base_pitch[utt.speaker], duration, self.rng)
        sf.write(path, audio, SAMPLING_RATE, subtype="PCM_16")
        _write_text(path.with_suffix(".txt"), self._transcript(utt.emotion, overlap), self.corpus)

    def _transcript(self, emotion: str, overlap: bool) -> str:
        rng = self.rng
        u = rng.random()
        source = (
            emotion if u < 0.7 else ("neutral" if u < 0.85 else EMOTIONS[int(rng.integers(len(EMOTIONS)))])
        )
        pool = _SENTENCES[source]
        words = pool[int(rng.integers(len(pool)))]
        if overlap:
            words = f"{_OVERLAPS[int(rng.integers(len(_OVERLAPS)))]} {words}"
        elif rng.random() < 0.1:
            words = f"(어) {words}"
        if rng.random() < 0.3:
            words = f"{_TAGS[int(rng.integers(len(_TAGS)))]} {words}"
        if rng.random() < 0.2:
            words = f"{words} {_TAGS[int(rng.integers(len(_TAGS)))]}"
        return words + "\n"

    def _write_annotation(self, utterances: list[_Utterance]) -> None:
        folder = self.dir / "annotation"
        folder.mkdir(parents=True, exist_ok=True)
        if self.corpus == "KEMDy20":
            blank = " "
            top = ["Numb", "WAV", blank, "Segment ID", "Total Evaluation", blank, blank]
            sub = [blank, "start", "end", blank, "Emotion", "Valence", "Arousal"]
            names = self.evaluator_names[0]
            for name in names:
                top += [name, blank, blank]
                sub += ["Emotion", "Valence", "Arousal"]
            rows = [top, sub]
            for i, utt in enumerate(utterances, start=1):
                rows.append(
                    [str(i), _num(utt.start), _num(utt.end), utt.segment_id]
                    + _total_cells(utt.totals[0], utt.panels[0])
                    + _evaluator_cells(utt.panels[0])
                )
            _write_csv(folder / f"Sess{self.ss}_eval.csv", rows)
            return
        for panel_index, panel in enumerate(("F", "M")):
            top = [
                "Numb",
                "Wav",
                "",
                "ECG",
                "",
                "E4-EDA",
                "",
                "E4-TEMP",
                "",
                "Segment ID",
                "Total Evaluation",
                "",
                "",
            ]
            sub = [
                "",
                "start",
                "end",
                "start",
                "end",
                "start",
                "end",
                "start",
                "end",
                "",
                "Emotion",
                "Valence",
                "Arousal",
            ]
            for name in self.evaluator_names[panel_index]:
                top += [name, "", ""]
                sub += ["Emotion", "Valence", "Arousal"]
            rows = [top, sub]
            for i, utt in enumerate(utterances, start=1):
                bio_cells = [
                    _num(float(self.rng.normal(0, 0.1))),
                    _num(float(self.rng.normal(0, 0.1))),
                    _num(float(self.rng.uniform(0.1, 5))),
                    _num(float(self.rng.uniform(0.1, 5))),
                    _num(round(float(self.rng.uniform(30, 35)), 2)),
                    _num(round(float(self.rng.uniform(30, 35)), 2)),
                ]
                rows.append(
                    [str(i), _num(utt.start), _num(utt.end), *bio_cells, utt.segment_id]
                    + _total_cells(utt.totals[panel_index], utt.panels[panel_index])
                    + _evaluator_cells(utt.panels[panel_index])
                )
            _write_csv(folder / f"Session{self.ss}_{panel}_res.csv", rows)

    def _write_bio(self, utterances: list[_Utterance], dialogue_ends: dict[str, float]) -> None:
        rate = 4.0
        if self.corpus == "KEMDy20":
            for d_index, (dialogue, end) in enumerate(dialogue_ends.items()):
                unix0 = _BASE_UNIX_TIME + 86_400 * self.session + 1_800 * d_index
                n = int(end * rate) + 1
                times = np.arange(n) / rate
                arousal = np.zeros(n)
                for utt in utterances:
                    if utt.dialogue == dialogue:
                        arousal[(times >= utt.start) & (times <= utt.end)] = _AFFECT[utt.emotion][1] - 3
                for user, _ in self.speakers:
                    eda = 1.0 + np.cumsum(self.rng.normal(0, 0.01, n)) + 0.1 * arousal
                    temp = 34.0 + 0.3 * np.sin(times / 60) + self.rng.normal(0, 0.01, n)
                    stem = f"Session{self.ss}/{dialogue}_{user}.csv"
                    for signal, values in (("EDA", eda), ("TEMP", temp)):
                        rows = [[f"{unix0:.6f}", _stamp(unix0)], [f"{rate:.6f}", "hz"]]
                        rows += [[f"{v:.6f}", _stamp(unix0 + t)] for v, t in zip(values, times, strict=True)]
                        _write_csv(self.dir / signal / stem, rows)
                    rows = [[f"{unix0:.6f}", "IBI", _stamp(unix0)]]
                    t = float(self.rng.uniform(0.0, 2.0))
                    while t < end:
                        interval = float(self.rng.uniform(0.6, 0.9))
                        t += interval
                        rows.append([f"{t:.6f}", f"{interval:.6f}", _stamp(unix0 + t)])
                    _write_csv(self.dir / "IBI" / stem, rows)
            return
        # KEMDy19: one file per speaker and session; rows value, elapsed, clock[, segment id].
        offsets, offset = {}, 0.0
        for dialogue, end in dialogue_ends.items():
            offsets[dialogue] = offset
            offset += end + 5.0
        n = int(offset * rate)
        elapsed = (np.arange(n) + 1) / rate
        labels = [""] * n
        for utt in utterances:
            first = math.ceil((offsets[utt.dialogue] + utt.start) * rate)
            last = math.floor((offsets[utt.dialogue] + utt.end) * rate)
            for i in range(max(first, 0), min(last, n - 1) + 1):
                labels[i] = utt.segment_id
        clock0 = 10 * 3600 + 56 * 60 + 50
        for speaker, _ in self.speakers:
            eda = 0.7 + np.cumsum(self.rng.normal(0, 0.005, n))
            temp = 34.5 + self.rng.normal(0, 0.02, n)
            for signal, values in (("EDA", eda), ("TEMP", temp)):
                rows = []
                for v, t, label in zip(values, elapsed, labels, strict=True):
                    row = [f"{v:.6f}", f"{t:g}", _clock(clock0 + t)]
                    rows.append(row + [label] if label else row)
                _write_csv(
                    self.dir / signal / f"Session{self.ss}" / "Original" / f"Sess{self.ss}{speaker}.csv", rows
                )


def _emotion_schedule(n: int, rng: np.random.Generator) -> list[str]:
    """``n`` labels: each non-neutral emotion a few times, neutral the rest (the most), shuffled."""
    per_emotion = max(1, round(n * 0.6 / (len(EMOTIONS) - 1)))
    while per_emotion > 1 and n - per_emotion * (len(EMOTIONS) - 1) <= per_emotion:
        per_emotion -= 1
    labels = [e for e in EMOTIONS[1:] for _ in range(per_emotion)]
    labels = labels[:n] + ["neutral"] * max(0, n - len(labels))
    return [labels[i] for i in rng.permutation(len(labels))]


def _panel_votes(emotion: str, rng: np.random.Generator) -> list[str]:
    """10 evaluator votes: ``emotion`` 6-10 times, the rest plausible confusions (shuffled)."""
    n_main = int(rng.integers(6, N_EVALUATORS + 1))
    others = _CONFUSIONS[emotion]
    votes = [emotion] * n_main + [
        others[int(rng.integers(len(others)))] for _ in range(N_EVALUATORS - n_main)
    ]
    return [votes[i] for i in rng.permutation(N_EVALUATORS)]


def _synthesize(
    emotion: str, base_pitch: float, duration: float, rng: np.random.Generator, sr: int = SAMPLING_RATE
) -> np.ndarray:
    """A voiced harmonic tone with syllable bursts and noise whose prosody depends on ``emotion``."""
    pitch, level, rate, contour, vibrato, tilt, noise = _PROSODY[emotion]
    n = int(round(duration * sr))
    t = np.arange(n) / sr
    jitter = rng.normal(1.0, 0.08, size=4)
    f0 = base_pitch * pitch * jitter[0] * 2.0 ** (contour * (t / duration - 0.5))
    f0 = f0 * (1.0 + vibrato * np.sin(2 * np.pi * 6.0 * t)) * (1.0 + 0.01 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    n_harmonics = int(min(12, (0.45 * sr) // (f0.max() + 1)))
    harmonics = np.arange(1, n_harmonics + 1)
    voiced = (np.sin(np.outer(phase, harmonics)) * harmonics ** (-tilt * jitter[1])).sum(axis=1)
    syllable_phase = 2 * np.pi * rate * jitter[2] * t + rng.uniform(0, 2 * np.pi)
    envelope = np.maximum(np.sin(syllable_phase), 0.0) ** 0.7
    envelope *= np.minimum(1.0, np.minimum(t, duration - t) / 0.05)  # 50 ms fade in/out
    signal = voiced * envelope
    signal = signal / (np.sqrt(np.mean(signal**2)) + 1e-9)
    signal = signal + noise * jitter[3] * rng.standard_normal(n)
    signal *= level * float(rng.uniform(0.7, 1.4)) / (np.sqrt(np.mean(signal**2)) + 1e-9)
    return np.clip(signal, -0.99, 0.99).astype(np.float32)


def _total_cells(total: str, panel: list[tuple[str, int, int]]) -> list[str]:
    valence = np.mean([v for _, v, _ in panel])
    arousal = np.mean([a for _, _, a in panel])
    return [total, _num(round(float(valence), 1)), _num(round(float(arousal), 1))]


def _evaluator_cells(panel: list[tuple[str, int, int]]) -> list[str]:
    return [str(cell) for vote in panel for cell in vote]


def _num(x: float) -> str:
    return f"{x:.7g}"


def _stamp(unix_time: float) -> str:
    """KEMDy20 timestamp format, e.g. ``2020-0821-1123-34-250``."""
    whole = int(unix_time)
    millis = int(round((unix_time - whole) * 1000)) % 1000
    return time.strftime("%Y-%m%d-%H%M-%S", time.gmtime(whole)) + f"-{millis:03d}"


def _clock(seconds: float) -> str:
    """KEMDy19 clock format, e.g. ``10:56:50.250``."""
    whole = int(seconds)
    millis = int(round((seconds - whole) * 1000)) % 1000
    return f"{whole // 3600 % 24:02d}:{whole // 60 % 60:02d}:{whole % 60:02d}.{millis:03d}"


def _write_csv(path: Path, rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)


def _write_text(path: Path, text: str, corpus: str) -> None:
    """Transcripts: UTF-8 for KEMDy19, CP949 for KEMDy20 (as ETRI ships them)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8" if corpus == "KEMDy19" else "cp949"))


__all__ = ["EDGE_CASES", "EdgeCase", "make_synthetic_kemdy"]
