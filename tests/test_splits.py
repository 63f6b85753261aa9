"""Splits and balancing (multistill/splits.py)."""

import pytest
from datasets import ClassLabel, Dataset, Features, Value

from multistill.annotations import EMOTIONS
from multistill.splits import balance, class_distribution, make_splits, random_split, session_split, summarize


def _toy(sessions_per_corpus: int = 5, per_session: int = 10) -> Dataset:
    rows = {"id": [], "corpus": [], "session": [], "speaker": [], "dialogue": [], "emotion": []}
    for corpus in ("KEMDy19", "KEMDy20"):
        for session in range(1, sessions_per_corpus + 1):
            for i in range(per_session):
                rows["id"].append(f"{corpus}_Sess{session:02d}_{i:03d}")
                rows["corpus"].append(corpus)
                rows["session"].append(session)
                rows["speaker"].append(f"{corpus}_Sess{session:02d}_{'FM'[i % 2]}")
                rows["dialogue"].append(f"{corpus}_Sess{session:02d}_script{i % 3:02d}")
                rows["emotion"].append(0 if i < 7 else i % 7)
    features = Features(
        {
            "id": Value("string"), "corpus": Value("string"), "session": Value("int32"),
            "speaker": Value("string"), "dialogue": Value("string"), "emotion": ClassLabel(names=list(EMOTIONS)),
        }
    )
    return Dataset.from_dict(rows, features=features)


def test_session_split_holds_out_whole_sessions_without_speaker_or_dialogue_overlap():
    splits = session_split(_toy(sessions_per_corpus=10))
    for column in ("speaker", "dialogue"):
        train, val, test = (set(splits[s][column]) for s in ("train", "validation", "test"))
        assert not train & test and not train & val and not val & test
    assert sorted(set(splits["test"]["session"])) == [9, 10]
    assert sorted(set(splits["validation"]["session"])) == [8]
    assert sum(len(s) for s in splits.values()) == 200


def test_session_split_explicit_sessions_per_corpus():
    splits = session_split(_toy(), test_sessions=["KEMDy19:1", 2], validation_sessions=[3])
    test_keys = set(zip(splits["test"]["corpus"], splits["test"]["session"], strict=True))
    assert test_keys == {("KEMDy19", 1), ("KEMDy19", 2), ("KEMDy20", 2)}
    assert set(splits["validation"]["session"]) == {3}


def test_session_split_too_few_sessions_says_what_to_do():
    with pytest.raises(ValueError, match="split='random'"):
        session_split(_toy(sessions_per_corpus=1))
    with pytest.raises(ValueError, match="both test_sessions and validation_sessions"):
        session_split(_toy(), test_sessions=[1], validation_sessions=[1])
    with pytest.raises(ValueError, match="unknown corpus"):
        session_split(_toy(), test_sessions=["KEMDy21:1"], validation_sessions=[2])


def test_random_split_is_the_papers_80_20_and_deterministic():
    data = _toy()
    first, second = random_split(data), make_splits(data, "random")
    assert len(first["test"]) == 20  # 20 % of 100
    assert len(first["train"]) + len(first["validation"]) == 80
    assert first["test"]["id"] == second["test"]["id"]
    assert not set(first["train"]["id"]) & set(first["test"]["id"])
    other_seed = random_split(data, seed=7)
    assert other_seed["test"]["id"] != first["test"]["id"]


def test_unknown_split_name():
    with pytest.raises(ValueError, match="split must be one of"):
        make_splits(_toy(), "speaker")


def test_balance_caps_the_dominant_emotion_and_reports():
    data = _toy()  # 80 % neutral
    assert class_distribution(data)["neutral"] == 80
    balanced, report = balance(data, max_fraction=0.6)
    assert report["before"]["neutral"] == 80
    after = report["after"]
    assert after["neutral"] == 30  # 0.6 / 0.4 * 20 others
    assert after["neutral"] / sum(after.values()) == pytest.approx(0.6)
    assert {k: v for k, v in after.items() if k != "neutral"} == {
        k: v for k, v in report["before"].items() if k != "neutral"
    }
    again, _ = balance(data, max_fraction=0.6)
    assert again["id"] == balanced["id"]
    capped, report = balance(data, max_fraction=None, max_per_class=5)
    assert max(report["after"].values()) == 5
    with pytest.raises(ValueError, match="max_fraction"):
        balance(data, max_fraction=1.5)


def test_summary_lists_sessions_and_emotions():
    text = summarize(_toy(sessions_per_corpus=2))
    assert "KEMDy19" in text and "neutral" in text and "total" in text
