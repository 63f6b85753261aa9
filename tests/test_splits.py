"""Splits and balancing (multistill/training/splits.py)."""

import pytest
from datasets import ClassLabel, Dataset, Features, Value

from multistill.annotations import EMOTIONS
from multistill.training.splits import (
    balance,
    check_training_labels,
    class_distribution,
    dialogue_key,
    dialogue_split,
    make_splits,
    random_split,
    session_split,
    split_groups,
    split_ids,
    summarize,
)


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
    with pytest.raises(ValueError, match="split='dialogue' or 'random'"):
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


def test_unknown_split_name_and_arguments_of_another_split():
    with pytest.raises(ValueError, match="split must be one of"):
        make_splits(_toy(), "speaker")
    with pytest.raises(ValueError, match="only apply to split='session'"):
        make_splits(_toy(), "dialogue", test_sessions=[1])
    with pytest.raises(ValueError, match="exclude each other"):
        make_splits(_toy(), "session", validation_sessions=[3], validation_from="dialogues")


def _dialogues(split) -> set[str]:
    return {dialogue_key(c, d) for c, d in zip(split["corpus"], split["dialogue"], strict=True)}


def _assert_no_dialogue_on_two_sides(splits) -> None:
    train, validation, test = (_dialogues(splits[name]) for name in ("train", "validation", "test"))
    assert not train & validation and not train & test and not validation & test


def test_dialogue_split_holds_out_whole_dialogues_per_corpus_seeded():
    data = _toy(sessions_per_corpus=4)  # 12 dialogues per corpus
    splits = dialogue_split(data, test_fraction=0.2, validation_fraction=0.1, seed=7)
    _assert_no_dialogue_on_two_sides(splits)
    assert sum(len(s) for s in splits.values()) == len(data)
    for corpus in ("KEMDy19", "KEMDy20"):  # ceil(0.2 * 12) = 3 test, ceil(0.1 * 12) = 2 validation dialogues
        assert len({d for d in _dialogues(splits["test"]) if d.startswith(corpus)}) == 3
        assert len({d for d in _dialogues(splits["validation"]) if d.startswith(corpus)}) == 2
    assert split_ids(dialogue_split(data, seed=7)) == split_ids(splits)
    assert split_ids(make_splits(data, "dialogue", seed=7)) == split_ids(splits)
    assert _dialogues(dialogue_split(data, seed=8)["test"]) != _dialogues(splits["test"])
    # One corpus's draw does not depend on the other corpus being loaded.
    only_19 = data.filter(lambda row: row["corpus"] == "KEMDy19")
    assert _dialogues(dialogue_split(only_19, seed=7)["test"]) == {
        d for d in _dialogues(splits["test"]) if d.startswith("KEMDy19")}
    with pytest.raises(ValueError, match="needs at least 3 dialogues of KEMDy19"):
        dialogue_split(_toy(sessions_per_corpus=1).filter(lambda row: row["dialogue"].endswith(("00", "01"))))


def test_session_split_can_validate_on_dialogues_of_the_training_sessions():
    data = _toy(sessions_per_corpus=5)
    splits = make_splits(data, "session", validation_from="dialogues", validation_fraction=0.25, seed=3)
    _assert_no_dialogue_on_two_sides(splits)
    assert sorted(set(splits["test"]["session"])) == [5]
    # Every non-test session trains; validation dialogues come from those sessions.
    assert sorted(set(splits["train"]["session"])) == [1, 2, 3, 4]
    assert set(splits["validation"]["session"]) <= {1, 2, 3, 4}
    groups = split_groups(splits)
    assert len(groups["validation"]["dialogues"]) == 2 * 3  # ceil(0.25 * 12) per corpus
    assert split_ids(make_splits(data, "session", validation_from="dialogues", validation_fraction=0.25, seed=3)) == \
        split_ids(splits)


def test_session_split_can_hold_out_a_whole_corpus_and_train_on_every_session_of_the_other():
    """scripts/publish_recipe.sh: every KEMDy19 session trains (validation dialogues drawn from them), KEMDy20 tests."""
    data = _toy(sessions_per_corpus=2)
    splits = make_splits(data, "session", test_sessions=["KEMDy20:1", "KEMDy20:2"], validation_from="dialogues",
                         validation_fraction=0.2, seed=3)
    _assert_no_dialogue_on_two_sides(splits)
    assert set(splits["test"]["corpus"]) == {"KEMDy20"} and len(splits["test"]) == 20
    assert set(splits["train"]["corpus"]) == set(splits["validation"]["corpus"]) == {"KEMDy19"}
    assert len(splits["train"]) + len(splits["validation"]) == 20


def test_real_sample_dialogue_split_keeps_every_dialogue_on_one_side(kemdy_sample_dataset):
    """The shared sample has one session per corpus, so its honest split is by dialogue."""
    splits = make_splits(kemdy_sample_dataset, "dialogue", seed=123)
    _assert_no_dialogue_on_two_sides(splits)
    assert sum(len(s) for s in splits.values()) == len(kemdy_sample_dataset) == 792
    groups = split_groups(splits)
    # KEMDy19: 10 dialogues -> 2 test, 1 validation; KEMDy20: 6 -> 2 test, 1 validation.
    assert len(groups["test"]["dialogues"]) == 4 and len(groups["validation"]["dialogues"]) == 2
    assert split_ids(make_splits(kemdy_sample_dataset, "dialogue", seed=123)) == split_ids(splits)
    with pytest.raises(ValueError, match="sessions of KEMDy19"):
        make_splits(kemdy_sample_dataset, "session")


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


def test_balancing_warns_when_it_removes_most_of_the_split_or_leaves_few_examples(caplog):
    data = _toy()  # 80 neutral of 100; the cap keeps 30 neutral + 20 others = 50: not more than half removed
    with caplog.at_level("WARNING", logger="multistill.training.splits"):
        balance(data, max_fraction=0.6)
    assert not [r for r in caplog.records if "removed" in r.message]
    # Four of every five dominant: keeping 0.4 / 0.6 * 20 others removes 67 of 100.
    caplog.clear()
    with caplog.at_level("WARNING", logger="multistill.training.splits"):
        _, report = balance(data, max_fraction=0.4)
    warnings = [r.message for r in caplog.records if r.levelname == "WARNING"]
    assert any("removed 67 of 100 training utterances" in m for m in warnings), warnings
    # An emotion left with fewer than 5 training examples is reported with its count.
    happy = [i for i, e in enumerate(data["emotion"]) if e == 1]
    few_happy = data.select([i for i, e in enumerate(data["emotion"]) if e != 1] + happy[:3])
    caplog.clear()
    with caplog.at_level("WARNING", logger="multistill.training.splits"):
        balance(few_happy, max_fraction=0.6)
    warnings = [r.message for r in caplog.records if r.levelname == "WARNING"]
    assert any("fewer than 5 examples" in m and "'happy': 3" in m for m in warnings), warnings


def test_a_one_emotion_training_split_is_an_error():
    data = _toy()
    neutral = data.filter(lambda row: row["emotion"] == 0)
    with pytest.raises(ValueError, match="1 emotion"):
        check_training_labels(neutral)
    check_training_labels(data)


def test_summary_lists_sessions_and_emotions():
    text = summarize(_toy(sessions_per_corpus=2))
    assert "KEMDy19" in text and "neutral" in text and "total" in text
