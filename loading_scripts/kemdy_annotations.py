"""How the KEMDy builder reads ETRI's annotation files: header columns, panel rows, KEMDy19's two panels
matched into segments, evaluator votes and the majority label, and the report of what a build skips or notes.

The rules are documented once, in the docstring of :mod:`loading_scripts.kemdy` (the builder users call);
this module applies them and logs on the builder's logger, so one logger name shows a whole build.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from multistill.annotations import EMOTIONS, UnknownEmotionLabelError, decode_transcript, split_tied_emotions

#: The builder's logger (``loading_scripts.kemdy``): every skip and note of a build is logged on it.
logger = logging.getLogger("loading_scripts.kemdy")

# Reasons for skipping an annotation row (keys of ``Kemdy.skipped``).
SKIP_UNKNOWN_LABEL = "unknown emotion label"
SKIP_NO_VOTES = "no valid evaluator vote"
SKIP_MISSING_WAV = "missing WAV"
SKIP_MISSING_TRANSCRIPT = "missing transcript"
SKIP_UNDECODABLE_WAV = "undecodable or empty WAV"
SKIP_UNDECODABLE_TRANSCRIPT = "undecodable transcript"
SKIP_BAD_SEGMENT_ID = "unrecognised segment id"
SKIP_DUPLICATE = "duplicate segment id"
SKIP_PANEL_CONFLICT = "KEMDy19 panels disagree on the time span"

# Reasons for a note on a kept example (keys of ``Kemdy.notes``).
NOTE_BAD_VALUE = "invalid valence, arousal or WAV start/end (stored as NaN)"
NOTE_EMPTY_TRANSCRIPT = "empty transcript (text is '')"
NOTE_RELABELLED = "KEMDy19 panel row read as another segment (matched by time span)"
NOTE_ONE_PANEL = "KEMDy19 segment in one panel only (10 votes)"

#: Valence and arousal are 1-5 scales (evaluator means); other values are not used.
RATING_RANGE: tuple[float, float] = (1.0, 5.0)

#: KEMDy19 F and M rows give the same time span when both ends agree within this (seconds; files give ms).
SPAN_TOLERANCE = 1e-3


@dataclass(eq=False)
class _PanelRow:
    """One data row of an annotation file (one evaluator panel's view of one segment)."""

    path: Path
    line: int  # 1-based line number in the CSV (the header rows are lines 1-2)
    segment_id: str
    start: float
    end: float
    cells: list[str]
    cols: dict[str, Any]
    notes: list[tuple[str, str]] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"{self.path.name} row {self.line}"

    @property
    def span(self) -> str:
        return f"{self.start:g}-{self.end:g} s"


@dataclass
class Segment:
    """One segment's annotation, accumulated over one (KEMDy20) or two (KEMDy19) panels."""

    segment_id: str
    start: float = math.nan
    end: float = math.nan
    totals: list[str] = field(default_factory=list)
    valences: list[float] = field(default_factory=list)
    arousals: list[float] = field(default_factory=list)
    votes: dict[str, Fraction] = field(default_factory=lambda: dict.fromkeys(EMOTIONS, Fraction(0)))
    unknown_label: str = ""  # the error message of an unknown label (on_unknown_label="skip")
    where: str = ""  # the annotation row(s) it comes from, for messages
    notes: list[tuple[str, str]] = field(default_factory=list)  # (reason, detail), reported if it is kept


class BuildReport:
    """What the build skipped (reason -> keys) and what it kept with a note (reason -> ids), with details.

    A key is the segment id when the whole segment is dropped, or ``"<file> row <n>"`` when one annotation
    row is dropped (its segment id is unusable, or lives on in another row). ``details`` maps each key to
    what was found, naming the file and row. Every entry is logged at INFO as it happens (when ``log``).
    """

    def __init__(self, log: bool = True) -> None:
        self.skipped: dict[str, list[str]] = {}
        self.notes: dict[str, list[str]] = {}
        self.details: dict[str, str] = {}
        self.log = log

    def skip(self, reason: str, key: str, detail: str) -> None:
        self._add(self.skipped, "skipped", reason, key, detail)

    def note(self, reason: str, key: str, detail: str) -> None:
        self._add(self.notes, "kept with a note", reason, key, detail)

    def _add(self, table: dict[str, list[str]], kind: str, reason: str, key: str, detail: str) -> None:
        table.setdefault(reason, []).append(key)
        self.details[key] = f"{self.details[key]}; {detail}" if key in self.details else detail
        if self.log:
            logger.info("KEMDy: %s (%s): %s: %s", kind, reason, key, detail)


def _read_csv_rows(path: Path) -> list[list[str]]:
    text = decode_transcript(path.read_bytes(), where=str(path))
    return list(csv.reader(io.StringIO(text, newline="")))


def _header_columns(header: list[list[str]], path: Path) -> dict[str, Any]:
    """Locate the columns of interest from the two header rows (group row, then sub-header row)."""
    top, sub = header[0], header[1] if len(header) > 1 else []
    width = max(len(top), len(sub))
    names: list[tuple[str, str]] = []
    group = ""
    for i in range(width):
        cell = top[i].strip() if i < len(top) else ""
        if cell:
            group = cell
        names.append((group.lower(), sub[i].strip().lower() if i < len(sub) else ""))

    def find(group_name: str, sub_name: str) -> int | None:
        for i, (g, s) in enumerate(names):
            if g == group_name and s == sub_name:
                return i
        return None

    segment = next((i for i, (g, _) in enumerate(names) if g == "segment id"), None)
    total = find("total evaluation", "emotion")
    evaluators = [
        (top[i].strip(), i)
        for i, (g, s) in enumerate(names)
        if re.fullmatch(r"eval\d+.*", g) and s == "emotion"
    ]
    if segment is None or total is None or not evaluators:
        raise ValueError(
            f"{path}: the two header rows do not have the expected 'Segment ID', 'Total Evaluation' "
            f"(Emotion, Valence, Arousal) and 'EvalNN' (Emotion, ...) columns; got {top!r} / {sub!r}."
        )
    cols = {
        "segment": segment,
        "start": find("wav", "start"),
        "end": find("wav", "end"),
        "total": total,
        "valence": find("total evaluation", "valence"),
        "arousal": find("total evaluation", "arousal"),
    }
    labels = {
        "start": "WAV start",
        "end": "WAV end",
        "valence": "Total Evaluation Valence",
        "arousal": "Total Evaluation Arousal",
    }
    missing = [label for key, label in labels.items() if cols[key] is None]
    if missing:
        raise ValueError(
            f"{path}: no {', '.join(missing)} column in the two header rows (expected a 'WAV'/'Wav' group "
            f"with 'start' and 'end', and a 'Total Evaluation' group with 'Emotion', 'Valence' and "
            f"'Arousal'); got {top!r} / {sub!r}."
        )
    # The evaluator group name is on the Emotion column's top cell, or on the group's first column.
    cols["evaluators"] = [(name or names[i][0], i) for name, i in evaluators]
    return cols


def _read_panel(path: Path, report: BuildReport) -> list[_PanelRow]:
    """The data rows of one annotation file; a file without header rows or data rows is an error."""
    rows = _read_csv_rows(path)
    hint = "Re-extract it from ETRI's archive, or leave its session out with sessions=[...]."
    if len([row for row in rows[:2] if any(cell.strip() for cell in row)]) < 2:
        raise ValueError(
            f"{path} is {'empty' if not rows else 'missing its two header rows'}: an annotation file starts "
            f"with two header rows ('Segment ID', 'Total Evaluation', 'EvalNN' ...). {hint}"
        )
    cols = _header_columns(rows[:2], path)
    out: list[_PanelRow] = []
    for line, row in enumerate(rows[2:], start=3):
        if not any(cell.strip() for cell in row):
            continue
        seg_id = _cell(row, cols["segment"])
        if not seg_id:
            report.skip(SKIP_BAD_SEGMENT_ID, f"{path.name} row {line}", f"{path.name} row {line}: empty Segment ID")
            continue
        panel_row = _PanelRow(path, line, seg_id, math.nan, math.nan, row, cols)
        start, end = _cell(row, cols["start"]), _cell(row, cols["end"])
        start_value, end_value = parse_float(start), parse_float(end)
        if math.isfinite(start_value) and math.isfinite(end_value) and 0 <= start_value < end_value:
            panel_row.start, panel_row.end = start_value, end_value
        else:
            panel_row.notes.append(
                (
                    NOTE_BAD_VALUE,
                    f"{panel_row.where}: WAV start/end {start!r}/{end!r} is not a time span "
                    f"(0 <= start < end): start and end stored as NaN",
                )
            )
        out.append(panel_row)
    if not out:
        raise ValueError(f"{path} has its two header rows but no annotation row. {hint}")
    return out


def read_segments(files: list[Path], on_unknown_label: str, report: BuildReport) -> list[Segment]:
    """Read one session's annotation file(s) into segments, in row order (KEMDy19: F panel, then M)."""
    panels = [_read_panel(path, report) for path in files]
    segments = []
    for seg_id, rows, notes in _match_panels(panels, report):
        spans = [r for r in rows if not math.isnan(r.start)] or rows
        seg = Segment(seg_id, start=spans[0].start, end=spans[0].end, where=", ".join(r.where for r in rows))
        seg.notes = [note for r in rows for note in r.notes] + notes
        for row in rows:
            try:
                _add_panel(seg, row)
            except UnknownEmotionLabelError as err:
                if on_unknown_label == "raise":
                    raise UnknownEmotionLabelError(
                        f"{err} Fix the cell, add the spelling to LABEL_ALIASES, or build with "
                        f"on_unknown_label='skip' to skip (and count) such rows."
                    ) from err
                seg.unknown_label = seg.unknown_label or str(err)
        segments.append(seg)
    return segments


_Group = tuple[str, list[_PanelRow], list[tuple[str, str]]]  # segment id, its rows, notes


def _span_known(row: _PanelRow) -> bool:
    return not (math.isnan(row.start) or math.isnan(row.end))


def _same_span(a: _PanelRow, b: _PanelRow) -> bool:
    return (
        _span_known(a)
        and _span_known(b)
        and abs(a.start - b.start) <= SPAN_TOLERANCE
        and abs(a.end - b.end) <= SPAN_TOLERANCE
    )


def _by_id(rows: list[_PanelRow]) -> dict[str, list[_PanelRow]]:
    out: dict[str, list[_PanelRow]] = {}
    for row in rows:
        out.setdefault(row.segment_id, []).append(row)
    return out


def _match_panels(panels: list[list[_PanelRow]], report: BuildReport) -> list[_Group]:
    """Group one session's annotation rows into segments (rules in the docstring of :mod:`loading_scripts.kemdy`)."""
    if len(panels) == 1:
        groups: list[_Group] = []
        first: dict[str, _PanelRow] = {}
        for row in panels[0]:
            if row.segment_id in first:
                report.skip(
                    SKIP_DUPLICATE,
                    row.where,
                    f"{row.where}: segment id {row.segment_id} ({row.span}) is already on row "
                    f"{first[row.segment_id].line}; the first row is kept",
                )
                continue
            first[row.segment_id] = row
            groups.append((row.segment_id, [row], []))
        return groups
    first_panel, second_panel = (_drop_repeated_rows(rows, report) for rows in panels)
    return _pair_panels(first_panel, second_panel, report)


def _drop_repeated_rows(rows: list[_PanelRow], report: BuildReport) -> list[_PanelRow]:
    """Drop (and count) a row that repeats an earlier row's segment id and time span in the same file."""
    kept: list[_PanelRow] = []
    by_id: dict[str, list[_PanelRow]] = {}
    for row in rows:
        earlier = next(
            (k for k in by_id.get(row.segment_id, []) if _same_span(k, row) or not _span_known(row)), None
        )
        if earlier is None:
            kept.append(row)
            by_id.setdefault(row.segment_id, []).append(row)
        else:
            report.skip(
                SKIP_DUPLICATE,
                row.where,
                f"{row.where}: repeats segment id {row.segment_id} ({row.span}) of row {earlier.line}",
            )
    return kept


def _pair_panels(first: list[_PanelRow], second: list[_PanelRow], report: BuildReport) -> list[_Group]:
    """Pair KEMDy19's F and M panel rows by segment id *and* time span (rules in the docstring of :mod:`loading_scripts.kemdy`)."""
    first_ids, second_ids = _by_id(first), _by_id(second)

    def compatible(a: _PanelRow, b: _PanelRow) -> bool:
        return a.segment_id == b.segment_id and (_same_span(a, b) or not (_span_known(a) and _span_known(b)))

    # 1. Rows with the same id and the same time span in both panels (each the other's only match).
    pairs: dict[_PanelRow, tuple[_PanelRow, str, list[tuple[str, str]]]] = {}
    for a in first:
        matches = [b for b in second_ids.get(a.segment_id, []) if compatible(a, b)]
        if len(matches) == 1 and [x for x in first_ids[a.segment_id] if compatible(x, matches[0])] == [a]:
            pairs[a] = (matches[0], a.segment_id, [])
    confirmed = {a.segment_id: a for a in pairs}
    # 2. The rest: a row of each panel with the same time span but different ids is one segment when one
    #    id is already confirmed on another span and the other id is absent from the row's panel.
    free_first = [a for a in first if a not in pairs]
    paired_second = {b for b, _, _ in pairs.values()}
    free_second = [b for b in second if b not in paired_second]
    for a in free_first:
        matches = [b for b in free_second if _same_span(a, b)]
        if len(matches) != 1 or [x for x in free_first if _same_span(x, matches[0])] != [a]:
            continue
        b = matches[0]
        if a.segment_id == b.segment_id:
            chosen, notes = a.segment_id, []
        elif a.segment_id in confirmed and b.segment_id not in first_ids:
            chosen, notes = b.segment_id, [_relabel_note(a, b, confirmed[a.segment_id])]
        elif b.segment_id in confirmed and a.segment_id not in second_ids:
            chosen, notes = a.segment_id, [_relabel_note(b, a, confirmed[b.segment_id])]
        else:
            continue
        if chosen in confirmed:
            continue
        pairs[a] = (b, chosen, notes)
        confirmed[chosen] = a
        free_second.remove(b)
    # 3. Unpaired rows: a segment of one panel only, or a conflict that is skipped (never mixed).
    paired_second = {b for b, _, _ in pairs.values()}
    conflicts: dict[str, list[_PanelRow]] = {}
    groups: list[_Group] = []

    def leftover(row: _PanelRow, own: dict[str, list[_PanelRow]], other: dict[str, list[_PanelRow]]) -> None:
        if row.segment_id not in confirmed and len(own[row.segment_id]) == 1 and row.segment_id not in other:
            other_file = (second if own is first_ids else first)[0].path.name
            note = (NOTE_ONE_PANEL, f"{row.where}: {other_file} has no row for {row.segment_id}: 10 votes")
            groups.append((row.segment_id, [row], [note]))
        else:
            conflicts.setdefault(row.segment_id, []).append(row)

    for a in first:
        if a in pairs:
            b, chosen, notes = pairs[a]
            groups.append((chosen, [a, b], notes))
        else:
            leftover(a, first_ids, second_ids)
    for b in second:
        if b not in paired_second:
            leftover(b, second_ids, first_ids)
    for seg_id, rows in conflicts.items():
        listed = ", ".join(f"{r.where} ({r.span})" for r in first_ids.get(seg_id, []) + second_ids.get(seg_id, []))
        detail = (
            f"segment id {seg_id} on {listed}: the panels' rows for it do not match by time span and no other "
            f"row resolves it, so their votes are not combined"
        )
        if seg_id in confirmed:  # the id lives on in its matched rows: skip only the stray rows
            kept = confirmed[seg_id]
            for row in rows:
                report.skip(
                    SKIP_PANEL_CONFLICT,
                    row.where,
                    f"{row.where}: {seg_id} at {row.span} matches no row of the other panel ({seg_id} is "
                    f"{kept.span} on {kept.where} and in the other panel): this row's votes are not used",
                )
        else:
            report.skip(SKIP_PANEL_CONFLICT, seg_id, detail)
    return groups


def _relabel_note(wrong: _PanelRow, right: _PanelRow, confirmed: _PanelRow) -> tuple[str, str]:
    return (
        NOTE_RELABELLED,
        f"{wrong.where} says {wrong.segment_id} for {wrong.span}, which {right.where} calls "
        f"{right.segment_id} ({wrong.segment_id} is {confirmed.span} on {confirmed.where} and in the other "
        f"panel): read as {right.segment_id}",
    )


def _add_panel(seg: Segment, row: _PanelRow) -> None:
    """Add one annotation row (one evaluator panel) to ``seg``; raises on an unknown label."""
    cols, path, line = row.cols, row.path, row.line
    total_cell = _cell(row.cells, cols["total"])
    for label in split_tied_emotions(total_cell, where=f"{path} row {line}, column Total Evaluation"):
        if label not in seg.totals:
            seg.totals.append(label)
    for name, values in (("valence", seg.valences), ("arousal", seg.arousals)):
        cell = _cell(row.cells, cols[name])
        value = parse_float(cell)
        if not RATING_RANGE[0] <= value <= RATING_RANGE[1]:  # also False for NaN
            seg.notes.append(
                (
                    NOTE_BAD_VALUE,
                    f"{row.where}: Total Evaluation {name.capitalize()} {cell!r} is not a number in "
                    f"{RATING_RANGE[0]}-{RATING_RANGE[1]}: not used (NaN if no panel has one)",
                )
            )
            value = math.nan
        values.append(value)
    for name, index in cols["evaluators"]:
        cell = _cell(row.cells, index)
        if not cell:
            continue
        labels = split_tied_emotions(cell, where=f"{path} row {line}, column {name}")
        for label in labels:
            seg.votes[label] += Fraction(1, len(labels))


def _cell(row: list[str], index: int | None) -> str:
    return row[index].strip() if index is not None and index < len(row) else ""


def parse_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def nanmean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return sum(finite) / len(finite) if finite else math.nan


def majority_emotion(votes: dict[str, Fraction | float], total_evaluation: list[str]) -> str:
    """The evaluator majority, ties broken by the Total Evaluation and then by ``EMOTIONS`` order."""
    best = max(votes.get(e, 0) for e in EMOTIONS)
    top = [e for e in EMOTIONS if votes.get(e, 0) == best]
    preferred = [e for e in top if e in total_evaluation]
    return (preferred or top)[0]
