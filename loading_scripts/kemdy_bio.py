"""Bio-signals of a KEMDy segment (``bio_signals=True``): the E4 wristband's EDA, temperature and IBI files read
once and cut to each segment's time span (rules in the docstring of :mod:`loading_scripts.kemdy`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from loading_scripts.kemdy_annotations import parse_float


class BioSignals:
    """Reads and caches the E4 bio-signal files and cuts them per segment (rules in the docstring of :mod:`loading_scripts.kemdy`)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._cache: dict[Path, Any] = {}

    def cut(self, corpus: str, example: dict[str, Any]) -> dict[str, list[float]]:
        """The ``eda``, ``temp`` and ``ibi`` values of one example (empty lists where absent)."""
        seg_id = example["id"]
        digits = seg_id[len("Sess") :].split("_", 1)[0]  # "Sess01_script01_..." -> "01"
        session = f"Session{digits}"
        if corpus == "KEMDy19":
            own_file = f"Sess{digits}{example['gender']}.csv"  # the speaker's own wristband
            out = {
                name: self._load(
                    self.root / corpus / name.upper() / session / "Original" / own_file, _read_kemdy19_bio
                ).get(seg_id, [])
                for name in ("eda", "temp")
            }
            out["ibi"] = []
            return out
        stem = f"{example['dialogue']}_{example['speaker'].removeprefix('KEMDy20_')}.csv"
        start, end = example["start"], example["end"]
        out = {}
        for name in ("eda", "temp"):
            rate, values = self._load(self.root / corpus / name.upper() / session / stem, _read_rate_file)
            out[name] = _cut_rate_samples(values, rate, start, end)
        times, intervals = self._load(self.root / corpus / "IBI" / session / stem, _read_ibi_file)
        out["ibi"] = [v for t, v in zip(times, intervals, strict=True) if start <= t <= end]
        return out

    def _load(self, path: Path, reader: Any) -> Any:
        if path not in self._cache:
            self._cache[path] = reader(path)
        return self._cache[path]


def _bio_lines(path: Path) -> list[list[str]]:
    if not path.is_file():
        return []
    text = path.read_bytes().decode("utf-8", errors="replace")
    return [line.split(",") for line in text.splitlines() if line.strip()]


def _read_kemdy19_bio(path: Path) -> dict[str, list[float]]:
    """KEMDy19 ``value, elapsed, clock[, segment id]`` rows grouped by segment id."""
    by_segment: dict[str, list[float]] = {}
    for cells in _bio_lines(path):
        if len(cells) >= 4 and cells[3].strip():
            value = parse_float(cells[0])
            if not math.isnan(value):
                by_segment.setdefault(cells[3].strip(), []).append(value)
    return by_segment


def _read_rate_file(path: Path) -> tuple[float, list[float]]:
    """KEMDy20 EDA/TEMP file: line 1 start time, line 2 ``rate,hz``, then ``value,timestamp`` rows."""
    lines = _bio_lines(path)
    if len(lines) < 2:
        return math.nan, []
    rate = parse_float(lines[1][0])
    return rate, [parse_float(cells[0]) for cells in lines[2:]]


def _read_ibi_file(path: Path) -> tuple[list[float], list[float]]:
    """KEMDy20 IBI file: line 1 start time, then ``seconds since start, interval, timestamp`` rows."""
    times, intervals = [], []
    for cells in _bio_lines(path)[1:]:
        if len(cells) >= 2:
            t, v = parse_float(cells[0]), parse_float(cells[1])
            if not (math.isnan(t) or math.isnan(v)):
                times.append(t)
                intervals.append(v)
    return times, intervals


def _cut_rate_samples(values: list[float], rate: float, start: float, end: float) -> list[float]:
    """Samples whose time ``index / rate`` lies in ``[start, end]`` (NaN samples dropped)."""
    if not values or not rate > 0 or math.isnan(start) or math.isnan(end):
        return []
    first = max(0, math.ceil(start * rate - 1e-6))
    last = min(len(values) - 1, math.floor(end * rate + 1e-6))
    return [v for v in values[first : last + 1] if not math.isnan(v)]
