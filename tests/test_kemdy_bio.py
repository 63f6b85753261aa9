"""Tests of the KEMDy builder's bio-signals (``loading_scripts/kemdy_bio.py``, ``bio_signals=True``): the real
sample's E4 files and the synthetic corpus's, cut to each segment's time span."""

from __future__ import annotations

import math

import pytest
from _fixtures_kemdy import example_by_id

from loading_scripts.kemdy import Kemdy


def test_sample_bio_signals(sample_dir, tmp_path):
    builder = Kemdy(
        config_name="all", data_dir=str(sample_dir), cache_dir=str(tmp_path), sessions=[1], bio_signals=True
    )
    builder.download_and_prepare()
    ds = builder.as_dataset("train")
    assert len(ds) == 792
    # KEMDy19: the rows of the speaker's own file (Sess01M.csv) labelled with the segment id.
    m001 = example_by_id(ds, "Sess01_script01_M001")
    assert len(m001["eda"]) == 33 and m001["eda"][0] == pytest.approx(4.408951, abs=1e-5)
    assert len(m001["temp"]) == 33 and m001["ibi"] == []
    # KEMDy20: 4 Hz samples whose time lies in [3.578, 11.637] s: rows 15..46.
    u001 = example_by_id(ds, "Sess01_script01_User002M_001")
    assert len(u001["eda"]) == len(u001["temp"]) == 46 - 15 + 1
    eda_file = sample_dir / "KEMDy20" / "EDA" / "Session01" / "Sess01_script01_User002M.csv"
    values = [float(line.split(",")[0]) for line in eda_file.read_text().splitlines()[2:]]
    assert u001["eda"] == pytest.approx(values[15:47], abs=1e-5)
    assert all(30 < t < 40 for t in u001["temp"])
    ibis = [
        v for corpus, ibi in zip(ds["corpus"], ds["ibi"], strict=True) if corpus == "KEMDy20" for v in ibi
    ]
    assert ibis and all(0.2 < v < 2.0 for v in ibis)
    assert sum(bool(e) for e in ds["eda"]) > 0.8 * len(ds)


def test_synthetic_bio_signals_follow_the_cut_rule(synthetic_root, tmp_path):
    builder = Kemdy(
        config_name="all",
        data_dir=str(synthetic_root),
        cache_dir=str(tmp_path),
        sessions=[1],
        bio_signals=True,
    )
    builder.download_and_prepare()
    ds = builder.as_dataset("train")
    assert len(ds) == 32
    for example in ds.remove_columns("audio"):
        if example["corpus"] == "KEMDy20":
            n = math.floor(example["end"] * 4 + 1e-6) - math.ceil(example["start"] * 4 - 1e-6) + 1
            assert abs(len(example["eda"]) - n) <= 1 and len(example["temp"]) == len(example["eda"])
            assert all(0.6 <= v <= 0.9 for v in example["ibi"])
        else:
            assert example["eda"] and example["temp"] and example["ibi"] == []
    assert any(ibi for corpus, ibi in zip(ds["corpus"], ds["ibi"], strict=True) if corpus == "KEMDy20")
