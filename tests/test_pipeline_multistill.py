"""The multimodal-emotion-recognition pipeline: inputs, batching, long audio, errors, saving, fresh-process loading,
speech recognition for models that use text (audio alone)."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile
import torch
from _fixtures_inference import offline_env, one_torch_thread, saved_folder, tiny_model, tiny_pipeline  # noqa: F401
from _fixtures_model import TEXTS, make_model, waves
from _fixtures_speech import SPEECH, ScriptedASR, faster_whisper_asr, speech_file, tiny_whisper_folder
from transformers import pipeline
from transformers.pipelines import PIPELINE_REGISTRY

from multistill.pipeline_multistill import TASK, MultiStillEmotionPipeline, window_bounds


def direct_probs(preset: str, audio=None, text=None, sampling_rate=16000) -> torch.Tensor:
    """Softmax of the model on one processor-built input (the reference the pipeline must match)."""
    model, processor = tiny_model(preset)
    batch = processor(audio=None if audio is None else [audio], text=None if text is None else [text],
                      sampling_rate=sampling_rate, modalities=list(model.config.modalities))
    with torch.no_grad():
        return model(**batch).logits.softmax(-1)[0]


def as_vector(result, labels) -> torch.Tensor:
    scores = {r["label"]: r["score"] for r in result}
    return torch.tensor([scores[label] for label in labels])


LABELS = ["neutral", "happy", "surprise", "angry", "sad", "disgust", "fear"]


def test_task_is_registered_and_saved_in_config():
    assert TASK == "multimodal-emotion-recognition"
    assert TASK in PIPELINE_REGISTRY.get_supported_tasks()
    config = json.loads(open(f"{saved_folder('teacher')}/config.json").read())
    assert config["custom_pipelines"][TASK]["impl"] == "pipeline_multistill.MultiStillEmotionPipeline"
    assert config["custom_pipelines"][TASK]["pt"] == ["AutoModelForAudioClassification"]
    assert config["auto_map"]["AutoModelForAudioClassification"].endswith("MultiStillForEmotionClassification")


def test_single_input_matches_the_model_and_is_sorted():
    pipe = tiny_pipeline("teacher")
    wave = waves(1.3)[0]
    result = pipe({"audio": wave, "sampling_rate": 16000, "text": TEXTS[0]})
    assert [r["label"] for r in result] != [] and len(result) == 7
    assert all(a["score"] >= b["score"] for a, b in zip(result, result[1:], strict=False))
    torch.testing.assert_close(as_vector(result, LABELS), direct_probs("teacher", wave, TEXTS[0]), atol=1e-6, rtol=0)
    top = pipe({"audio": wave, "sampling_rate": 16000, "text": TEXTS[0]}, top_k=2)
    assert top == result[:2]


def test_batched_list_equals_one_by_one():
    pipe = tiny_pipeline("teacher")
    items = [{"audio": w, "sampling_rate": 16000, "text": t} for w, t in zip(waves(0.5, 1.7, 3.1), TEXTS, strict=True)]
    one_by_one = [pipe(item) for item in items]
    batched = pipe(items, batch_size=3)
    assert len(batched) == 3
    for a, b in zip(one_by_one, batched, strict=True):
        torch.testing.assert_close(as_vector(a, LABELS), as_vector(b, LABELS), atol=1e-5, rtol=0)


def test_audio_sources_any_rate_and_stereo(tmp_path):
    pipe = tiny_pipeline("teacher")
    wave = waves(1.2)[0]
    stereo_44k = np.stack([wave, 0.5 * wave], axis=1)  # (samples, channels), 44.1 kHz after writing
    path = tmp_path / "stereo.flac"
    soundfile.write(path, stereo_44k, 44100, subtype="PCM_24")
    decoded, rate = soundfile.read(path, dtype="float32")
    reference = direct_probs("teacher", decoded.T, TEXTS[1], sampling_rate=44100)  # the processor's own path
    for audio in (str(path), path, path.read_bytes(), {"path": str(path)}, {"bytes": path.read_bytes()},
                  {"array": decoded, "sampling_rate": 44100}):
        item = {"audio": audio, "text": TEXTS[1]}
        if isinstance(audio, dict) and "array" in audio:
            item["sampling_rate"] = 44100
        torch.testing.assert_close(as_vector(pipe(item), LABELS), reference, atol=1e-5, rtol=0)
    # int16 stereo array given channels-first, and a torch tensor
    int16 = (np.clip(decoded, -1, 1) * 32767).astype(np.int16).T
    assert len(pipe({"audio": int16, "sampling_rate": 44100, "text": TEXTS[1]})) == 7
    tensor_result = pipe({"audio": torch.from_numpy(wave), "sampling_rate": 16000, "text": TEXTS[1]})
    torch.testing.assert_close(as_vector(tensor_result, LABELS), direct_probs("teacher", wave, TEXTS[1]),
                               atol=1e-6, rtol=0)


def test_torchcodec_decoder_input(tmp_path):
    from torchcodec.decoders import AudioDecoder

    pipe = tiny_pipeline("audio_student")
    path = tmp_path / "a.wav"
    soundfile.write(path, waves(0.8)[0], 16000, subtype="FLOAT")
    by_path = pipe({"audio": str(path)})
    by_decoder = pipe({"audio": AudioDecoder(str(path))})
    torch.testing.assert_close(as_vector(by_decoder, LABELS), as_vector(by_path, LABELS), atol=1e-5, rtol=0)


def test_unimodal_models_take_only_their_modality():
    text_pipe = tiny_pipeline("text_student")
    by_dict = text_pipe({"text": TEXTS[0]})
    assert text_pipe(TEXTS[0]) == by_dict  # a bare string is the transcript for a text-only model
    assert text_pipe({"text": TEXTS[0], "audio": "/does/not/matter.wav"}) == by_dict  # audio ignored
    torch.testing.assert_close(as_vector(by_dict, LABELS), direct_probs("text_student", text=TEXTS[0]),
                               atol=1e-6, rtol=0)
    audio_pipe = tiny_pipeline("audio_student")
    wave = waves(0.9)[0]
    result = audio_pipe({"audio": wave, "sampling_rate": 16000})
    torch.testing.assert_close(as_vector(result, LABELS), direct_probs("audio_student", wave), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="input: the model needs audio"):
        audio_pipe({"text": "only text"})


def test_window_bounds():
    assert window_bounds(100, 100) == [(0, 100)]
    assert window_bounds(50, 100) == [(0, 50)]
    assert window_bounds(200, 100) == [(0, 100), (100, 200)]
    assert window_bounds(250, 100) == [(0, 100), (100, 200), (150, 250)]
    assert window_bounds(101, 100) == [(0, 100), (1, 101)]
    with pytest.raises(ValueError):
        window_bounds(10, 0)


@pytest.mark.parametrize("preset", ["teacher", "light_student"])
def test_long_audio_averages_windows(preset):
    pipe = tiny_pipeline(preset)
    model, processor = tiny_model(preset)
    window = processor.max_audio_samples
    assert window == 512 * {"teacher": 320, "light_student": 640}[preset]  # 512 frames: 10.24 s / 20.48 s (fbank)
    wave = np.concatenate(waves(*[5.0] * math.ceil(2.5 * window / 80000), seed=3))  # 2.5 windows or more
    result = pipe({"audio": wave, "sampling_rate": 16000, "text": TEXTS[2]})
    bounds = window_bounds(wave.shape[0], window)
    assert len(bounds) == 3 and bounds[-1][1] == wave.shape[0]
    expected = torch.stack([direct_probs(preset, wave[s:e], TEXTS[2]) for s, e in bounds]).mean(0)
    torch.testing.assert_close(as_vector(result, LABELS), expected, atol=1e-5, rtol=0)
    # the whole clip counts: the result differs from the first 10.24 s alone
    assert not torch.allclose(expected, direct_probs(preset, wave[:window], TEXTS[2]), atol=1e-4)
    # shorter windows on request, batched
    short = pipe([{"audio": wave[:48000], "sampling_rate": 16000, "text": TEXTS[2]}], chunk_length_s=1.0,
                 batch_size=4)[0]
    expected = torch.stack([direct_probs(preset, wave[s:e], TEXTS[2])
                            for s, e in window_bounds(48000, 16000)]).mean(0)
    torch.testing.assert_close(as_vector(short, LABELS), expected, atol=1e-5, rtol=0)


def test_bad_inputs_raise_value_errors_naming_the_input(tmp_path):
    pipe = tiny_pipeline("teacher")
    garbage = tmp_path / "not_audio.wav"
    garbage.write_text("this is not audio")
    empty_file = tmp_path / "empty.wav"
    soundfile.write(empty_file, np.zeros(0, dtype=np.float32), 16000)
    cases = [
        ({"audio": str(tmp_path / "missing.wav"), "text": "a"}, r"input \(.*missing\.wav\): audio file not found"),
        ({"audio": str(garbage), "text": "a"}, r"not_audio\.wav.*cannot decode"),
        ({"audio": str(empty_file), "text": "a"}, r"empty\.wav.*empty"),
        ({"audio": np.zeros(0, dtype=np.float32), "sampling_rate": 16000, "text": "a"}, "input: the audio is empty"),
        ({"audio": b"", "text": "a"}, "audio bytes are empty"),
        ({"audio": waves(0.5)[0], "text": "a"}, "'sampling_rate' is required"),
        ({"audio": waves(0.5)[0], "sampling_rate": 16000}, "needs the transcript"),
        ({"audio": waves(0.5)[0], "sampling_rate": 16000, "text": 3}, "'text' must be a string"),
        ({"text": "a"}, "needs audio"),
        (3.5, "expected a dict"),
        # issue 22.6: complex samples are refused like bool ones (they were cast to real, the imaginary part lost)
        ({"audio": waves(0.5)[0].astype(np.complex64), "sampling_rate": 16000, "text": "a"}, "real numbers.*complex"),
        ({"audio": torch.ones(8000, dtype=torch.complex64), "sampling_rate": 16000, "text": "a"}, "real numbers"),
        ({"audio": torch.ones(8000, dtype=torch.bool), "sampling_rate": 16000, "text": "a"}, "real numbers.*bool"),
        # issue 22.5: a lone surrogate (or invalid UTF-8 from a command line) is named, not a tokenizer TypeError
        ({"audio": waves(0.5)[0], "sampling_rate": 16000, "text": "a\ud800b"}, "cannot be encoded as UTF-8"),
    ]
    for item, message in cases:
        with pytest.raises(ValueError, match=message):
            pipe(item)
    with pytest.raises(ValueError, match="on_error"):
        pipe({"text": "a"}, on_error="ignore")
    with pytest.raises(ValueError, match="top_k"):
        pipe({"audio": waves(0.5)[0], "sampling_rate": 16000, "text": "a"}, top_k=0)


def test_list_with_bad_items_skips_or_raises(tmp_path):
    pipe = tiny_pipeline("teacher")
    good = [{"audio": w, "sampling_rate": 16000, "text": t} for w, t in zip(waves(0.6, 1.1), TEXTS, strict=False)]
    items = [good[0], {"audio": str(tmp_path / "gone.wav"), "text": "x"}, good[1], {"audio": good[1]["audio"]}]
    with pytest.raises(ValueError, match=r"input 1 \(.*gone\.wav\)"):
        pipe(items)
    results = pipe(items, on_error="skip", batch_size=2)
    assert len(results) == 4
    assert "gone.wav" in results[1]["error"] and "input 1" in results[1]["error"]
    assert "input 3" in results[3]["error"] and "sampling_rate" in results[3]["error"]
    for index, item in ((0, good[0]), (2, good[1])):
        torch.testing.assert_close(as_vector(results[index], LABELS), as_vector(pipe(item), LABELS), atol=1e-5, rtol=0)
    # issue 22.5: with on_error="skip" a text that cannot be encoded skips only its item
    mixed = pipe([good[0], {**good[1], "text": "a\udcffb"}], on_error="skip")
    assert "input 1" in mixed[1]["error"] and "UTF-8" in mixed[1]["error"] and "error" not in mixed[0]
    all_bad = pipe([{"text": "x"}], on_error="skip")
    assert list(all_bad[0]) == ["error"]
    skipping = MultiStillEmotionPipeline(model=pipe.model, processor=pipe.processor, device="cpu", on_error="skip")
    assert "error" in skipping([{"text": "x"}, good[0]])[0]


def test_pipeline_factory_with_objects_and_folder():
    model, processor = tiny_model("teacher")
    from_objects = pipeline(TASK, model=model, processor=processor, device="cpu")
    assert isinstance(from_objects, MultiStillEmotionPipeline)
    from_folder = pipeline(TASK, model=saved_folder("teacher"), trust_remote_code=True, device="cpu")
    item = {"audio": waves(1.0)[0], "sampling_rate": 16000, "text": TEXTS[0]}
    torch.testing.assert_close(as_vector(from_folder(item), LABELS), as_vector(from_objects(item), LABELS),
                               atol=1e-6, rtol=0)


FRESH_PIPELINE = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from transformers import pipeline
    folder, wav, out = sys.argv[1:4]
    pipe = pipeline("multimodal-emotion-recognition", model=folder, trust_remote_code=True, device="cpu")
    assert type(pipe).__module__.startswith("transformers_modules"), type(pipe).__module__
    assert type(pipe.model).__module__.startswith("transformers_modules"), type(pipe.model).__module__
    items = [{"audio": wav, "text": "안녕하세요 오늘 기분이 정말 좋아요."}, {"audio": "missing.wav", "text": "x"}]
    results = pipe(items, on_error="skip", batch_size=2)
    json.dump(results, open(out, "w"))
    """
)


def test_fresh_offline_process_loads_the_pipeline_from_the_folder(tmp_path):
    folder = saved_folder("light_student")
    wav = tmp_path / "utterance.wav"
    wave = np.concatenate(waves(6.0, 6.0, seed=5))  # 12 s: two windows
    soundfile.write(wav, wave, 16000, subtype="FLOAT")
    script = tmp_path / "run.py"
    script.write_text(FRESH_PIPELINE)
    result = subprocess.run(
        [sys.executable, "-I", str(script), folder, str(wav), str(tmp_path / "out.json")],
        cwd=tmp_path, env=offline_env(tmp_path), capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    fresh = json.loads((tmp_path / "out.json").read_text())
    assert "missing.wav" in fresh[1]["error"]
    local = tiny_pipeline("light_student")({"audio": str(wav), "text": "안녕하세요 오늘 기분이 정말 좋아요."})
    torch.testing.assert_close(as_vector(fresh[0], LABELS), as_vector(local, LABELS), atol=1e-5, rtol=0)


def test_bytes_input_from_memory_buffer():
    pipe = tiny_pipeline("audio_student")
    wave = waves(0.7)[0]
    buffer = io.BytesIO()
    soundfile.write(buffer, wave, 16000, format="WAV", subtype="FLOAT")
    result = pipe({"audio": buffer.getvalue()})
    torch.testing.assert_close(as_vector(result, LABELS), direct_probs("audio_student", wave), atol=1e-6, rtol=0)


def test_implausible_sampling_rates_and_too_short_audio_are_named(tmp_path):
    """Issue 12.10 / 12.12: `16` meant as kHz, NaN, and clips of a few samples get errors naming the input."""
    pipe = tiny_pipeline("teacher")
    one_second = waves(1.0)[0]
    cases = [
        ({"audio": one_second, "sampling_rate": 16, "text": "a"}, r"input: sampling_rate 16 Hz is implausible.*kHz"),
        ({"audio": one_second, "sampling_rate": float("nan"), "text": "a"}, r"input: sampling_rate is nan"),
        ({"audio": one_second, "sampling_rate": 500_000, "text": "a"}, r"expected 4,000-192,000 Hz"),
        ({"audio": one_second[:10], "sampling_rate": 16000, "text": "a"}, r"input: the audio is 0\.001 s long"),
        ({"audio": one_second[:1], "sampling_rate": 16000, "text": "a"}, r"at least 0\.1 s is needed"),
    ]
    for item, message in cases:
        with pytest.raises(ValueError, match=message):
            pipe(item)
    short = tmp_path / "click.wav"
    soundfile.write(short, one_second[:40], 16000)
    results = pipe([{"audio": str(short), "text": "a"}, {"audio": one_second, "sampling_rate": 16000, "text": "a"}],
                   on_error="skip")
    assert "click.wav" in results[0]["error"] and "0.1 s" in results[0]["error"] and len(results[1]) == 7
    with pytest.raises(ValueError, match="sampling_rate 16 Hz is implausible"):
        pipe({"audio": one_second, "text": "a"}, sampling_rate=16)
    with pytest.raises(ValueError, match="chunk_length_s"):
        pipe({"audio": one_second, "sampling_rate": 16000, "text": "a"}, chunk_length_s=0.001)


# ------------------------------------------------------------------------------------------ speech recognition
def asr_pipeline(preset: str, asr) -> MultiStillEmotionPipeline:
    model, processor = tiny_model(preset)
    return MultiStillEmotionPipeline(model=model, processor=processor, device="cpu", asr_model=asr)


def test_audio_alone_is_transcribed_by_faster_whisper():
    from multistill.asr import character_error_rate

    pipe = asr_pipeline("teacher", faster_whisper_asr())
    name, gold = SPEECH[2]
    result = pipe({"audio": str(speech_file(name))})
    assert set(result) == {"scores", "text", "text_source"} and result["text_source"] == "asr"
    assert character_error_rate([gold], [result["text"]])["cer"] < 0.3
    # the scores are the model's on that transcript
    wave, rate = soundfile.read(speech_file(name), dtype="float32")
    torch.testing.assert_close(as_vector(result["scores"], LABELS), direct_probs("teacher", wave, result["text"], rate),
                               atol=1e-5, rtol=0)
    plain = pipe({"audio": str(speech_file(name))}, return_text=False, top_k=2)
    assert plain == result["scores"][:2]


def test_given_text_wins_and_lists_are_transcribed_in_one_batch(tmp_path):
    asr = ScriptedASR(["첫째", "둘째"])
    pipe = asr_pipeline("teacher", asr)
    w = waves(0.8, 1.2, 0.6)
    given = pipe({"audio": w[0], "sampling_rate": 16000, "text": TEXTS[0]})
    assert given["text"] == TEXTS[0] and given["text_source"] == "given" and asr.calls == []
    items = [{"audio": w[0], "sampling_rate": 16000}, {"audio": str(tmp_path / "gone.wav")},
             {"audio": w[1], "sampling_rate": 16000, "text": TEXTS[1]}, {"audio": w[2], "sampling_rate": 16000}]
    results = pipe(items, on_error="skip", batch_size=2)
    assert [r.get("text_source") for r in results] == ["asr", None, "given", "asr"]
    assert [r.get("text") for r in results] == ["첫째", None, TEXTS[1], "둘째"] and "gone.wav" in results[1]["error"]
    assert asr.calls == pytest.approx([0.8, 0.6])  # the two items without text, at 16 kHz
    torch.testing.assert_close(as_vector(results[3]["scores"], LABELS), direct_probs("teacher", w[2], "둘째"),
                               atol=1e-5, rtol=0)
    without_asr = tiny_pipeline("teacher")
    assert isinstance(without_asr({"audio": w[0], "sampling_rate": 16000, "text": "a"}), list)
    wrapped = without_asr({"audio": w[0], "sampling_rate": 16000, "text": "a"}, return_text=True)
    assert wrapped["text_source"] == "given"
    with pytest.raises(ValueError, match="or load the pipeline with a speech recognizer"):
        without_asr({"audio": w[0], "sampling_rate": 16000})
    with pytest.raises(ValueError, match="return_text"):
        without_asr({"audio": w[0], "sampling_rate": 16000, "text": "a"}, return_text="yes")


def test_text_only_model_with_asr_takes_audio():
    pipe = asr_pipeline("text_student", ScriptedASR(["정말 기뻐요"]))
    result = pipe({"audio": waves(0.9)[0], "sampling_rate": 16000})
    assert result["text"] == "정말 기뻐요" and result["text_source"] == "asr"
    torch.testing.assert_close(as_vector(result["scores"], LABELS), direct_probs("text_student", text="정말 기뻐요"),
                               atol=1e-6, rtol=0)
    assert pipe("좋아요")["text_source"] == "given"  # a bare string is still the transcript
    with pytest.raises(ValueError, match="needs 'text', or audio to transcribe"):
        pipe({"sampling_rate": 16000})


def test_an_empty_asr_transcript_is_warned_and_flagged(caplog):
    # issue 22.9: noise or silence gave "" from ASR without a word, and the scores looked like any others
    pipe = asr_pipeline("teacher", ScriptedASR(["", "  ", "네"]))
    with caplog.at_level("WARNING", logger="multistill.pipeline_multistill"):
        results = pipe([{"audio": w, "sampling_rate": 16000} for w in waves(0.5, 0.6, 0.7)])
    assert [r["text_source"] for r in results] == ["asr"] * 3
    assert ["warning" in r for r in results] == [True, True, False] and "no words" in results[0]["warning"]
    assert sum("input 0: the speech recognizer found no words" in m or "input 1: the speech recognizer found no"
               in m for m in caplog.messages) == 2


def test_pipeline_factory_builds_a_transformers_recognizer():
    from multistill.asr import TransformersSpeechRecognizer

    folder = saved_folder("light_student")
    pipe = pipeline(TASK, model=folder, trust_remote_code=True, device="cpu", asr_model=tiny_whisper_folder())
    assert type(pipe.asr).__name__ == TransformersSpeechRecognizer.__name__ and pipe.asr.language == "ko"
    result = pipe({"audio": waves(1.0)[0], "sampling_rate": 16000})
    assert result["text_source"] == "asr" and isinstance(result["text"], str)


FRESH_ASR_PIPELINE = textwrap.dedent(
    """
    import json, sys
    from transformers import pipeline
    folder, asr, wav, out = sys.argv[1:5]
    pipe = pipeline("multimodal-emotion-recognition", model=folder, trust_remote_code=True, device="cpu",
                    asr_model=asr)
    assert type(pipe.asr).__module__.startswith("transformers_modules"), type(pipe.asr).__module__
    assert "multistill" not in sys.modules
    json.dump(pipe({"audio": wav}, top_k=1), open(out, "w"), ensure_ascii=False)
    """
)


def test_fresh_offline_process_transcribes_with_the_shipped_asr_code(tmp_path):
    import os

    from multistill.asr import character_error_rate

    folder = saved_folder("text_student")
    assert os.path.isfile(os.path.join(folder, "asr.py"))  # copied beside the weights with the pipeline code
    name, gold = SPEECH[0]
    script = tmp_path / "run.py"
    script.write_text(FRESH_ASR_PIPELINE)
    result = subprocess.run(
        [sys.executable, "-I", str(script), folder, faster_whisper_asr().name, str(speech_file(name)),
         str(tmp_path / "out.json")],
        cwd=tmp_path, env=offline_env(tmp_path), capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    fresh = json.loads((tmp_path / "out.json").read_text())
    assert fresh["text_source"] == "asr" and character_error_rate([gold], [fresh["text"]])["cer"] < 0.3


def _sample_conversation(sample_dir, count: int = 4) -> list[dict]:
    """The first ``count`` utterances of a real KEMDy19 dialogue, in order: audio file, transcript, speaker."""
    from multistill.training.data import load_kemdy, previous_utterances

    dataset = load_kemdy("kemdy19", str(sample_dir)).remove_columns("audio")
    rows = [i for i, d in enumerate(dataset["dialogue"]) if d == dataset[0]["dialogue"]]
    dialogue = dataset.select(rows)
    history, _ = previous_utterances(dialogue, 1)
    order = [history[i][0] for i in range(len(dialogue))]
    first = order.index(-1)
    chain = [first]
    while len(chain) < count:
        chain.append(order.index(chain[-1]))
    wav = sample_dir / "KEMDy19" / "wav" / "Session01"
    return [{"audio": str(next(wav.rglob(f"{dialogue[i]['id']}.wav"))), "text": dialogue[i]["text"],
             "speaker": dialogue[i]["speaker"]} for i in chain]


def test_conversation_with_a_context_model_on_a_real_dialogue(sample_dir, tmp_path):
    """A context model reads the previous utterances; no later utterance reaches a result."""
    from multistill.pipeline_multistill import save_pretrained_with_pipeline

    model, processor = make_model("teacher", audio="whisper", fusion_type="concat", context_size=2)
    save_pretrained_with_pipeline(model, processor, tmp_path / "context_model")
    pipe = pipeline(TASK, model=str(tmp_path / "context_model"), trust_remote_code=True, device="cpu")
    conversation = _sample_conversation(sample_dir)
    results = pipe(conversation, conversation=True)
    assert len(results) == 4 and all(isinstance(r, list) and len(r) == 7 for r in results)
    labels = [r["label"] for r in results[0]]
    single = pipe(conversation[2], context=conversation[:2])
    torch.testing.assert_close(as_vector(single, labels), as_vector(results[2], labels), atol=1e-5, rtol=1e-4)
    alone = pipe(conversation[2])
    assert not torch.allclose(as_vector(alone, labels), as_vector(results[2], labels))
    replaced = pipe([*conversation[:3], {**conversation[0], "text": "완전히 다른 말"}], conversation=True)
    for before, after in zip(results[:3], replaced[:3], strict=True):
        torch.testing.assert_close(as_vector(before, labels), as_vector(after, labels))
