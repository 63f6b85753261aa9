"""multistill.training.data: the conversation history helper (causal, per dialogue, both speakers)."""

from __future__ import annotations

from datasets import Dataset

from multistill.training.data import previous_utterances


def test_previous_utterances_are_causal_and_stay_in_their_dialogue() -> None:
    rows = Dataset.from_dict({
        "id": ["a3", "a1", "b1", "a2", "b2", "a4"],
        "dialogue": ["A", "A", "B", "A", "B", "A"],
        "speaker": ["F", "M", "F", "F", "M", "M"],
        "start": [30.0, 10.0, 5.0, 20.0, 6.0, 40.0],
    })
    history, relation = previous_utterances(rows, 2)
    assert history[1] == [-1, -1]  # a1 opens dialogue A
    assert history[0] == [3, 1]  # a3: a2 (newest first), then a1
    assert relation[0] == [1, 2]  # a2 is the same speaker (F), a1 the other (M)
    assert history[5] == [0, 3]  # a4: a3, a2 -- never a later utterance, never dialogue B
    assert history[4] == [2, -1] and relation[4] == [2, 0]
    for row, previous in enumerate(history):
        for p in previous:
            assert p < 0 or (rows[p]["dialogue"] == rows[row]["dialogue"] and rows[p]["start"] < rows[row]["start"])
