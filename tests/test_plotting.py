"""multistill.plotting: Korean text in the timeline, confusion matrix and curves (NanumGothic of the plots extra)."""

import logging
import warnings

import matplotlib
import pytest

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402

from multistill import plotting  # noqa: E402
from multistill.live.streaming import StreamResult, plot_timeline  # noqa: E402
from multistill.training.trainer import save_confusion_matrix, save_training_curves  # noqa: E402

needs_font = pytest.mark.skipif(not plotting.bundled_font_files(),
                                reason='needs the plots extra: pip install -e ".[plots]"')


def _result(index, start, end, label, score, text):
    return StreamResult(index=index, start_s=start, end_s=end, scores=[{"label": label, "score": score}],
                        latency_s=0.1, end_of_speech_latency_s=0.6, text=text, text_source="asr")


RESULTS = [_result(0, 0.5, 3.0, "happy", 0.8, "오늘 정말 기분 좋아요"), _result(1, 3.5, 6.0, "sad", 0.6, "short text")]


@pytest.fixture
def drawn(monkeypatch):
    """The figures saved during a test, with the font of each text artist as matplotlib resolves it."""
    figures = []
    save = Figure.savefig

    def record(self, *args, **kwargs):
        figures.append([(t.get_text(), matplotlib.font_manager.findfont(t.get_fontproperties()))
                        for t in self.findobj(matplotlib.text.Text) if t.get_text()])
        return save(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", record)
    return figures


@needs_font
def test_timeline_writes_the_korean_transcripts_with_nanum_gothic(tmp_path, drawn):
    assert plotting.hangul_font() == "NanumGothic"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plot_timeline(RESULTS, tmp_path / "timeline.png", audio_s=7.0, title="대화 타임라인")
    assert not [w for w in caught if "missing from font" in str(w.message)]
    texts = dict(drawn[0])
    assert "#1 오늘 정말 기분 좋아요" in texts and "#2 short text" in texts
    # inside the context the default font comes first (Latin text unchanged), NanumGothic draws the Hangul
    with plotting.korean_text() as font:
        families = list(matplotlib.rcParams["font.family"])
    assert font == "NanumGothic" and families[-1] == "NanumGothic" and len(families) == 2
    assert "NanumGothic" not in matplotlib.rcParams["font.family"]  # restored afterwards


@needs_font
def test_confusion_matrix_and_curves_draw_hangul_titles(tmp_path, drawn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        save_confusion_matrix([[3, 1, 0, 0, 0, 0, 0]] * 7, tmp_path / "cm.png", title="혼동 행렬")
        save_training_curves([{"epoch": 1.0, "loss": 1.2}, {"epoch": 1.0, "eval_macro_f1": 0.3}],
                             tmp_path / "curves.png", title="학습 곡선")
    assert not [w for w in caught if "missing from font" in str(w.message)]
    assert "혼동 행렬" in dict(drawn[0]) and "학습 곡선" in dict(drawn[1])


def test_without_a_hangul_font_the_timeline_numbers_its_utterances(tmp_path, drawn, monkeypatch, caplog):
    monkeypatch.setattr(plotting, "hangul_font", lambda: None)
    with caplog.at_level(logging.WARNING):
        plot_timeline(RESULTS, tmp_path / "timeline.png", audio_s=7.0)
    texts = dict(drawn[0])
    assert "#1" in texts and "#2 short text" in texts
    assert not any(plotting.has_hangul(text) for text in texts)
    assert "No installed font has Hangul" in caplog.text and "multistill[plots]" in caplog.text
