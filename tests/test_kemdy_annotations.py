"""Tests of how the KEMDy builder reads ETRI's annotation files (``loading_scripts/kemdy_annotations.py``):
the majority label, damaged files and values, and KEMDy19's two panels matched by segment id and time span. Each
case is a small corpus in ETRI's layout, edited in place and built with the builder users call."""

from __future__ import annotations

import csv
import math
import shutil
from collections import Counter

import pytest
from _fixtures_kemdy import example_by_id

from loading_scripts.kemdy import Kemdy
from loading_scripts.kemdy_annotations import (
    NOTE_BAD_VALUE,
    NOTE_ONE_PANEL,
    NOTE_RELABELLED,
    SKIP_DUPLICATE,
    SKIP_MISSING_WAV,
    SKIP_PANEL_CONFLICT,
    majority_emotion,
)
from multistill.annotations import EMOTIONS
from multistill.training.synthetic import make_synthetic_kemdy


def test_majority_emotion_tie_break():
    assert majority_emotion({"happy": 6, "neutral": 4}, ["happy"]) == "happy"
    # Tie: both in the Total Evaluation -> EMOTIONS order.
    assert majority_emotion({"happy": 5, "neutral": 5}, ["happy", "neutral"]) == "neutral"
    # Tie: only one in the Total Evaluation -> that one.
    assert majority_emotion({"angry": 5, "sad": 5}, ["sad"]) == "sad"
    # Tie: none in the Total Evaluation -> EMOTIONS order.
    assert majority_emotion({"fear": 4, "disgust": 4, "sad": 2}, ["sad"]) == "disgust"


# --------------------------------------------------------------------------------------------------------
# Damaged annotation files and values (small corpora in ETRI's layout, edited in place)
# --------------------------------------------------------------------------------------------------------


def _tiny_corpus(tmp_path, corpus: str, utterances_per_speaker: int = 2):
    """One session, one dialogue of ``corpus`` only (the other corpus removed)."""
    root = make_synthetic_kemdy(tmp_path / "tiny", 1, 1, utterances_per_speaker, bio_signals=False)
    shutil.rmtree(root / ("KEMDy19" if corpus == "KEMDy20" else "KEMDy20"))
    return root


def _read_rows(path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.reader(f))


def _write_rows(path, rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)


def _build(root, config: str, tmp_path, **kwargs) -> Kemdy:
    builder = Kemdy(config_name=config, data_dir=str(root), cache_dir=str(tmp_path / "cache"), **kwargs)
    builder.download_and_prepare()
    return builder


@pytest.mark.parametrize(
    ("header_row", "column", "name"),
    [(1, 5, "Total Evaluation Valence"), (1, 6, "Total Evaluation Arousal"), (1, 2, "WAV end"), (0, 1, "WAV start, WAV end")],
)
def test_missing_annotation_column_is_an_error(tmp_path, header_row, column, name):
    root = _tiny_corpus(tmp_path, "KEMDy20")
    path = root / "KEMDy20" / "annotation" / "Sess01_eval.csv"
    rows = _read_rows(path)
    rows[header_row][column] = " "  # the header cell is gone: the column cannot be found
    _write_rows(path, rows)
    with pytest.raises(ValueError, match=f"no {name} column") as err:
        _build(root, "kemdy20", tmp_path)
    assert str(path) in str(err.value)


def test_empty_or_header_only_annotation_file_is_an_error(tmp_path):
    root = _tiny_corpus(tmp_path, "KEMDy20")
    path = root / "KEMDy20" / "annotation" / "Sess01_eval.csv"
    rows = _read_rows(path)
    _write_rows(path, rows[:2])
    with pytest.raises(ValueError, match="has its two header rows but no annotation row") as err:
        _build(root, "kemdy20", tmp_path)
    assert str(path) in str(err.value) and "sessions=" in str(err.value)
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="is empty") as err:
        _build(root, "kemdy20", tmp_path)
    assert str(path) in str(err.value)
    # KEMDy19: one panel file of a session empty.
    root19 = _tiny_corpus(tmp_path / "k19", "KEMDy19")
    m_file = root19 / "KEMDy19" / "annotation" / "Session01_M_res.csv"
    m_file.write_bytes(b"")
    with pytest.raises(ValueError, match="is empty") as err:
        _build(root19, "kemdy19", tmp_path / "k19")
    assert str(m_file) in str(err.value)


def test_invalid_values_are_not_stored_and_are_noted(tmp_path):
    root = _tiny_corpus(tmp_path, "KEMDy20")
    path = root / "KEMDy20" / "annotation" / "Sess01_eval.csv"
    rows = _read_rows(path)
    ids = [row[3] for row in rows[2:]]
    rows[2][5] = "inf"  # valence, line 3
    rows[3][6] = "abc"  # arousal, line 4
    rows[4][5] = "7"  # valence outside 1-5, line 5
    rows[5][1], rows[5][2] = "5.0", "4.0"  # end before start, line 6
    _write_rows(path, rows)
    builder = _build(root, "kemdy20", tmp_path)
    ds = builder.as_dataset("train")
    assert ds["id"] == ids  # every row kept: the label is valid
    assert math.isnan(example_by_id(ds, ids[0])["valence"]) and not math.isnan(example_by_id(ds, ids[0])["arousal"])
    assert math.isnan(example_by_id(ds, ids[1])["arousal"]) and not math.isnan(example_by_id(ds, ids[1])["valence"])
    assert math.isnan(example_by_id(ds, ids[2])["valence"])
    assert math.isnan(example_by_id(ds, ids[3])["start"]) and math.isnan(example_by_id(ds, ids[3])["end"])
    assert builder.skipped == {}
    assert builder.notes == {NOTE_BAD_VALUE: ids[:4]}
    for segment_id, line, cell in zip(ids, (3, 4, 5, 6), ("'inf'", "'abc'", "'7'", "'5.0'/'4.0'"), strict=False):
        detail = builder.details[segment_id]
        assert detail.startswith(f"Sess01_eval.csv row {line}: ") and cell in detail, detail


def test_kemdy19_invalid_value_in_one_panel_uses_the_other(tmp_path):
    root = _tiny_corpus(tmp_path, "KEMDy19")
    f_file = root / "KEMDy19" / "annotation" / "Session01_F_res.csv"
    m_rows = _read_rows(root / "KEMDy19" / "annotation" / "Session01_M_res.csv")
    rows = _read_rows(f_file)
    rows[2][11] = "-inf"
    _write_rows(f_file, rows)
    builder = _build(root, "kemdy19", tmp_path)
    example = example_by_id(builder.as_dataset("train"), rows[2][9])
    assert example["valence"] == pytest.approx(float(m_rows[2][11]), abs=1e-6)
    assert builder.notes == {NOTE_BAD_VALUE: [rows[2][9]]}
    assert "Session01_F_res.csv row 3" in builder.details[rows[2][9]]


def test_no_example_left_is_a_clear_error(tmp_path):
    root = _tiny_corpus(tmp_path, "KEMDy20")
    for wav in (root / "KEMDy20" / "wav").rglob("*.wav"):
        wav.unlink()
    with pytest.raises(ValueError, match="no example was kept") as err:
        _build(root, "kemdy20", tmp_path)
    assert f"{SKIP_MISSING_WAV}: 4" in str(err.value)
    assert not list((tmp_path / "cache").rglob("*.arrow"))  # no empty dataset left in the cache


# --------------------------------------------------------------------------------------------------------
# KEMDy19: the F and M panels are matched by segment id and time span
# --------------------------------------------------------------------------------------------------------


def _panel_votes(row: list[str]) -> Counter:
    """The evaluator emotion cells of one KEMDy19 annotation row (Eval01..Eval10 Emotion columns)."""
    return Counter(row[13 + 3 * i] for i in range(10))


def _vote_vector(counts: Counter) -> list[float]:
    total = sum(counts.values())
    return [counts[e] / total for e in EMOTIONS]


def _kemdy19_panels(tmp_path, utterances_per_speaker: int = 3):
    root = _tiny_corpus(tmp_path, "KEMDy19", utterances_per_speaker)
    folder = root / "KEMDy19" / "annotation"
    f_file, m_file = folder / "Session01_F_res.csv", folder / "Session01_M_res.csv"
    return root, f_file, m_file, _read_rows(f_file), _read_rows(m_file)


def test_kemdy19_mislabelled_panel_row_is_matched_by_time_span(tmp_path):
    """Session03_F_res.csv's case: the F panel's row for F001's span says M001 (the M panel calls that span
    F001, and M001 is the next span in both). F001 gets both panels' votes and times, M001 keeps its own."""
    root, f_file, _, f_rows, m_rows = _kemdy19_panels(tmp_path)
    f001, m001 = f_rows[2][9], f_rows[3][9]
    assert f001.endswith("_F001") and m001.endswith("_M001") and m_rows[2][9] == f001
    f_rows[2][9] = m001  # line 3 of the F file: F001's span, labelled M001
    _write_rows(f_file, f_rows)
    builder = _build(root, "kemdy19", tmp_path)
    ds = builder.as_dataset("train")
    assert sorted(ds["id"]) == sorted(row[9] for row in m_rows[2:])
    for segment_id, line in ((f001, 2), (m001, 3)):
        example = example_by_id(ds, segment_id)
        expected = _panel_votes(f_rows[line]) + _panel_votes(m_rows[line])
        assert sum(expected.values()) == 20
        assert example["emotion_votes"] == pytest.approx(_vote_vector(expected), abs=1e-6), segment_id
        assert (example["start"], example["end"]) == pytest.approx(
            (float(m_rows[line][1]), float(m_rows[line][2])), abs=1e-4
        ), segment_id
    assert builder.skipped == {}
    assert builder.notes == {NOTE_RELABELLED: [f001]}
    detail = builder.details[f001]
    assert "Session01_F_res.csv row 3" in detail and "Session01_M_res.csv row 3" in detail
    assert f"read as {f001}" in detail


def test_kemdy19_unresolvable_panel_rows_are_skipped_never_mixed(tmp_path):
    root, f_file, _, f_rows, m_rows = _kemdy19_panels(tmp_path)
    ids = [row[9] for row in m_rows[2:]]  # F001 M001 F002 M002 F003 M003
    # Line 3: F001's row says M001 at a span no M row has: that stray row is dropped, F001 is M-panel only.
    f_rows[2][9] = ids[1]
    f_rows[2][1] = f"{float(f_rows[2][1]) + 0.5:.3f}"
    # Line 5: F002 at another span than in the M panel: the two cannot be combined.
    f_rows[4][2] = f"{float(f_rows[4][2]) + 0.2:.3f}"
    # Lines 7-8: F003 and M003 swapped in the F panel: nothing tells which panel is right.
    f_rows[6][9], f_rows[7][9] = f_rows[7][9], f_rows[6][9]
    _write_rows(f_file, f_rows)
    builder = _build(root, "kemdy19", tmp_path)
    ds = builder.as_dataset("train")
    assert ds["id"] == [ids[1], ids[3], ids[0]]  # F-file order, then the M-only segment
    assert builder.skipped == {
        SKIP_PANEL_CONFLICT: ["Session01_F_res.csv row 3", ids[2], ids[5], ids[4]],
    }
    assert builder.notes == {NOTE_ONE_PANEL: [ids[0]]}
    f001 = example_by_id(ds, ids[0])
    assert f001["emotion_votes"] == pytest.approx(_vote_vector(_panel_votes(m_rows[2])), abs=1e-6)
    m001 = example_by_id(ds, ids[1])
    expected = _panel_votes(f_rows[3]) + _panel_votes(m_rows[3])
    assert m001["emotion_votes"] == pytest.approx(_vote_vector(expected), abs=1e-6)
    assert "Session01_F_res.csv row 5" in builder.details[ids[2]]
    assert "Session01_M_res.csv row 5" in builder.details[ids[2]]


def test_kemdy19_repeated_row_is_a_counted_duplicate(tmp_path):
    root, f_file, _, f_rows, m_rows = _kemdy19_panels(tmp_path, utterances_per_speaker=1)
    _write_rows(f_file, [*f_rows, f_rows[2]])
    builder = _build(root, "kemdy19", tmp_path)
    ds = builder.as_dataset("train")
    assert ds["id"] == [row[9] for row in m_rows[2:]]
    assert builder.skipped == {SKIP_DUPLICATE: ["Session01_F_res.csv row 5"]}
    assert sum(_panel_votes(f_rows[2]).values()) == 10
    assert example_by_id(ds, f_rows[2][9])["emotion_votes"] == pytest.approx(
        _vote_vector(_panel_votes(f_rows[2]) + _panel_votes(m_rows[2])), abs=1e-6
    )
