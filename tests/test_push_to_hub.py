"""push_to_hub.py: the Hub folder, the model card and its metadata, fresh offline loading, the (mocked) upload."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from _fixtures_inference import offline_env, one_torch_thread, tiny_model, tiny_pipeline  # noqa: F401
from _fixtures_model import waves
from huggingface_hub import ModelCard

from multistill.tools import hub

REPO_ROOT = Path(__file__).resolve().parents[1]
TEST_RESULTS = {
    "test_accuracy": 0.6312, "test_unweighted_accuracy": 0.4125, "test_macro_f1": 0.3871, "test_weighted_f1": 0.6044,
    "test_weighted_precision": 0.6188, "test_weighted_recall": 0.6312, "test_loss": 1.234,
    **{f"test_f1_{label}": value for label, value in zip(
        ("neutral", "happy", "surprise", "angry", "sad", "disgust", "fear"),
        (0.81, 0.52, 0.2, 0.44, 0.38, 0.1, 0.0), strict=True)},
}
RUN_INFO = {
    "preset": "multimodal_student", "corpus": "kemdy20", "split": "session", "backbones": "pretrained",
    "audio_encoder": "kresnik/wav2vec2-large-xlsr-korean", "text_encoder": "beomi/KcELECTRA-base",
    "teacher_model": "someone/multistill-teacher", "alpha": 0.5, "temperature": 2.0, "seed": 42,
}


@pytest.fixture(scope="module")
def push_to_hub():
    spec = importlib.util.spec_from_file_location("push_to_hub", REPO_ROOT / "push_to_hub.py")
    module = importlib.util.module_from_spec(spec)
    previous = sys.modules.get("push_to_hub")
    sys.modules["push_to_hub"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    if previous is None:
        sys.modules.pop("push_to_hub", None)
    else:
        sys.modules["push_to_hub"] = previous


def make_checkpoint(folder: Path, preset: str = "multimodal_student", results: bool = True) -> Path:
    """A training output folder: model + processor (as Trainer.save_model writes them) + JSON files."""
    model, processor = tiny_model(preset)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    (folder / "training_args.bin").write_bytes(b"not copied")
    if results:
        (folder / "test_results.json").write_text(json.dumps(TEST_RESULTS))
        (folder / "run_info.json").write_text(json.dumps({**RUN_INFO, "preset": preset}))
    return folder


def test_local_dir_holds_the_complete_folder(push_to_hub, tmp_path):
    checkpoint = make_checkpoint(tmp_path / "ckpt")
    out = push_to_hub.main(["--model_dir", str(checkpoint), "--repo_id", "me/multistill-student",
                            "--local_dir", str(tmp_path / "hub")])
    files = {p.name for p in Path(out).iterdir()}
    assert {"config.json", "model.safetensors", "processor_config.json", "tokenizer.json", "README.md",
            "configuration_multistill.py", "modeling_multistill.py", "processing_multistill.py",
            "pipeline_multistill.py", "annotations.py", "run_info.json", "test_results.json"} <= files
    assert "training_args.bin" not in files and not any(f.endswith((".bin", ".pt")) for f in files)
    config = json.loads((Path(out) / "config.json").read_text())
    assert config["auto_map"]["AutoModelForAudioClassification"] == "modeling_multistill.MultiStillForEmotionClassification"
    assert config["auto_map"]["AutoConfig"] == "configuration_multistill.MultiStillConfig"
    assert config["custom_pipelines"]["multimodal-emotion-recognition"]["impl"] == (
        "pipeline_multistill.MultiStillEmotionPipeline")


def test_model_card_metadata_and_content(push_to_hub, tmp_path):
    checkpoint = make_checkpoint(tmp_path / "ckpt")
    out = push_to_hub.main(["--model_dir", str(checkpoint), "--repo_id", "me/multistill-student",
                            "--local_dir", str(tmp_path / "hub"), "--license", "cc-by-nc-4.0"])
    card = ModelCard.load(Path(out) / "README.md")
    data = card.data
    assert data.language == "ko" and data.license == "cc-by-nc-4.0" and data.library_name == "transformers"
    assert data.pipeline_tag == "other"  # not audio-classification: its Hub widget/snippet fail ("needs text")
    assert data.base_model_relation == "finetune"
    assert data.datasets == ["KEMDy20"]
    assert set(data.base_model) == {"kresnik/wav2vec2-large-xlsr-korean", "beomi/KcELECTRA-base",
                                    "someone/multistill-teacher"}
    assert "multistill" in data.tags and "multimodal-emotion-recognition" in data.tags
    assert data.model_name == "multistill-student"
    results = {(r.metric_name): r for r in data.eval_results}
    assert results["Accuracy"].metric_value == pytest.approx(0.6312)
    assert results["Macro F1"].metric_value == pytest.approx(0.3871)
    assert results["Unweighted accuracy (UA)"].metric_type == "balanced_accuracy"
    assert results["Weighted F1"].metric_args == {"average": "weighted"}
    assert all(r.dataset_split == "test" and r.dataset_name == "KEMDy20 (session split)" for r in data.eval_results)
    text = card.text
    for paper_number in ("92.08", "88.99", "89.89", "15,755,783", "91.90"):  # the paper's table
        assert paper_number in text
    assert "this checkpoint (multimodal_student)" in text and "63.12" in text and "38.71" in text
    assert "not comparable" in text and "(c) multimodal student ← same architecture" in text
    assert 'model_id = "me/multistill-student"' in text
    assert 'pipeline("multimodal-emotion-recognition", model=model_id, trust_remote_code=True)' in text
    # the install line first, the custom pipeline snippet before the Auto-class one
    assert text.index('pip install "torch>=2.4" "transformers>=5.20,<6"') < text.index("## Usage")
    assert text.index('pipeline("multimodal-emotion-recognition"') < text.index("AutoModelForAudioClassification")
    assert "@misc{jo2023multistill" in text and "KEMDy19" in text and "10.3390/s21051579" in text
    assert "## Limitations and intended use" in text and "**Bias.**" in text and "**Intended use.**" in text
    assert "someone/multistill-teacher" in text  # distillation details


def test_card_without_results_invents_nothing(push_to_hub, tmp_path):
    checkpoint = make_checkpoint(tmp_path / "ckpt", preset="text_student", results=False)
    out = push_to_hub.main(["--model_dir", str(checkpoint), "--local_dir", str(tmp_path / "hub")])
    readme = (Path(out) / "README.md").read_text()
    card = ModelCard.load(Path(out) / "README.md")
    metadata = readme.split("---")[1]
    assert card.data.eval_results is None and "model-index" not in metadata
    assert "No evaluation results" in readme and "this run | no evaluation results" in readme
    assert card.data.pipeline_tag == "other"
    assert "base_model_relation" not in metadata
    assert card.data.base_model is None  # tiny local encoders are not Hub models
    assert "your-username/hub" in readme  # placeholder repo id for a local-only folder
    assert not (Path(out) / "test_results.json").exists()


def test_card_shows_the_recipes_held_out_session_table(push_to_hub, tmp_path):
    """Issue 18.6: --session_results puts the recipe's session-split table (every model and baseline, both folds)
    into the card; a file that is not an experiment's results.json is refused before anything loads."""
    results = Path(__file__).resolve().parents[1] / "results" / "recipe_l2"
    files = [str(results / fold / "results.json") for fold in ("fold1_test2", "fold2_test1")]
    checkpoint = make_checkpoint(tmp_path / "ckpt", results=False)
    out = push_to_hub.main(["--model_dir", str(checkpoint), "--local_dir", str(tmp_path / "hub"), "--verify", "false",
                            "--session_results", *files])
    readme = (Path(out) / "README.md").read_text()
    assert "## Evaluation on held-out sessions" in readme
    assert "| model or baseline (macro-F1, mean ± std over seeds) | test KEMDy19:02 | test KEMDy19:01 |" in readme
    teacher = json.loads(Path(files[0]).read_text())["rows"][0]["summary"]["macro_f1"]
    assert f"| Teacher (multimodal) | {100 * teacher['mean']:.1f} ± {100 * teacher['std']:.1f} |" in readme
    assert "Baseline: character 1-3-gram TF-IDF + logistic regression (text)" in readme
    (tmp_path / "bad.json").write_text('{"rows": []}')
    for bad, message in ((tmp_path / "none.json", "cannot read"), (tmp_path / "bad.json", "not an experiment")):
        with pytest.raises(ValueError, match=f"{bad.name}: {message}"):
            push_to_hub.main(["--model_dir", str(checkpoint), "--local_dir", str(tmp_path / "o"),
                              "--session_results", str(bad)])
    assert not (tmp_path / "o").exists()


def test_tiny_backbones_are_flagged(push_to_hub, tmp_path):
    checkpoint = make_checkpoint(tmp_path / "ckpt", preset="light_student")
    (checkpoint / "run_info.json").write_text(json.dumps({**RUN_INFO, "preset": "light_student", "backbones": "tiny",
                                                          "corpus": "synthetic", "teacher_model": "/tmp/teacher"}))
    out = push_to_hub.main(["--model_dir", str(checkpoint), "--repo_id", "me/x", "--local_dir", str(tmp_path / "hub")])
    card = ModelCard.load(Path(out) / "README.md")
    assert "test-checkpoint" in card.data.tags and card.data.base_model is None and card.data.datasets is None
    assert "tiny random encoders" in card.text and "synthetic corpus" in card.text


FRESH = textwrap.dedent(
    """
    import json, sys, torch, numpy as np, soundfile
    from transformers import AutoModelForAudioClassification, AutoProcessor, pipeline
    folder, wav, out = sys.argv[1:4]
    model = AutoModelForAudioClassification.from_pretrained(folder, trust_remote_code=True).eval()
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
    audio, rate = soundfile.read(wav, dtype="float32")
    with torch.no_grad():
        logits = model(**processor(audio=[audio], text=["안녕하세요"], sampling_rate=rate)).logits
    pipe = pipeline("multimodal-emotion-recognition", model=folder, trust_remote_code=True, device="cpu")
    scores = pipe({"audio": wav, "text": "안녕하세요"})
    json.dump({"logits": logits[0].tolist(), "scores": scores}, open(out, "w"))
    """
)


@pytest.mark.parametrize("preset", ["light_student"])
def test_hub_folder_loads_in_a_fresh_offline_process_and_predicts_the_same(push_to_hub, tmp_path, preset):
    checkpoint = make_checkpoint(tmp_path / "ckpt", preset=preset)
    out = push_to_hub.main(["--model_dir", str(checkpoint), "--repo_id", "me/x", "--local_dir", str(tmp_path / "hub")])
    wav = tmp_path / "utterance.wav"
    soundfile.write(wav, waves(2.2, seed=7)[0], 16000, subtype="FLOAT")
    script = tmp_path / "fresh.py"
    script.write_text(FRESH)
    result = subprocess.run([sys.executable, "-I", str(script), str(out), str(wav), str(tmp_path / "out.json")],
                            cwd=tmp_path, env=offline_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    fresh = json.loads((tmp_path / "out.json").read_text())
    model, processor = tiny_model(preset)
    with torch.no_grad():
        logits = model(**processor(audio=[waves(2.2, seed=7)[0]], text=["안녕하세요"], sampling_rate=16000)).logits[0]
    torch.testing.assert_close(torch.tensor(fresh["logits"]), logits, atol=1e-5, rtol=0)
    local = tiny_pipeline(preset)({"audio": str(wav), "text": "안녕하세요"})
    assert [s["label"] for s in fresh["scores"]] == [s["label"] for s in local]
    np.testing.assert_allclose([s["score"] for s in fresh["scores"]], [s["score"] for s in local], atol=1e-5)


class FakeApi:
    """Records the HfApi calls (nothing leaves the machine)."""

    instances: list[FakeApi] = []

    def __init__(self, token=None, **kwargs):
        self.token, self.calls = token, []
        FakeApi.instances.append(self)

    def create_repo(self, **kwargs):
        self.calls.append(("create_repo", kwargs))
        return f"https://huggingface.co/{kwargs['repo_id']}"

    def upload_folder(self, **kwargs):
        folder = Path(kwargs["folder_path"])
        contents = {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
        self.calls.append(("upload_folder", {**kwargs, "files": sorted(p.name for p in folder.iterdir()),
                                             "contents": contents}))
        return type("Commit", (), {"commit_url": f"https://huggingface.co/{kwargs['repo_id']}/commit/abc"})()


def test_upload_calls_create_repo_and_upload_folder(push_to_hub, tmp_path, monkeypatch):
    checkpoint = make_checkpoint(tmp_path / "ckpt")
    FakeApi.instances.clear()
    monkeypatch.setattr(hub, "HfApi", FakeApi)
    url = push_to_hub.main(["--model_dir", str(checkpoint), "--repo_id", "me/multistill-student", "--private",
                            "--token", "hf_explicit", "--commit_message", "First upload", "--verify", "false"])
    assert url == "https://huggingface.co/me/multistill-student/commit/abc"
    (api,) = FakeApi.instances
    assert api.token == "hf_explicit"
    (create_name, create), (upload_name, upload) = api.calls
    assert create_name == "create_repo" and upload_name == "upload_folder"
    assert create == {"repo_id": "me/multistill-student", "repo_type": "model", "private": True, "exist_ok": True}
    assert upload["repo_id"] == "me/multistill-student" and upload["repo_type"] == "model"
    assert upload["commit_message"] == "First upload"
    assert {"README.md", "config.json", "model.safetensors", "pipeline_multistill.py"} <= set(upload["files"])
    assert not Path(upload["folder_path"]).exists()  # the temporary folder is removed after the upload


def test_upload_token_from_the_environment_or_error(push_to_hub, tmp_path, monkeypatch):
    checkpoint = make_checkpoint(tmp_path / "ckpt", results=False)
    FakeApi.instances.clear()
    monkeypatch.setattr(hub, "HfApi", FakeApi)
    monkeypatch.setattr(hub, "get_token", lambda: "hf_from_env")
    push_to_hub.main(["--model_dir", str(checkpoint), "--repo_id", "me/x", "--verify", "false"])
    assert FakeApi.instances[-1].token == "hf_from_env"
    assert FakeApi.instances[-1].calls[0][1]["private"] is False
    monkeypatch.setattr(hub, "get_token", lambda: None)
    with pytest.raises(ValueError, match="No Hub token"):
        push_to_hub.main(["--model_dir", str(checkpoint), "--repo_id", "me/x", "--verify", "false"])


def test_argument_errors(push_to_hub, tmp_path):
    checkpoint = make_checkpoint(tmp_path / "ckpt", results=False)
    with pytest.raises(ValueError, match="--repo_id"):
        push_to_hub.main(["--model_dir", str(checkpoint)])
    with pytest.raises(ValueError, match="user/name"):
        push_to_hub.main(["--model_dir", str(checkpoint), "--repo_id", "no-slash"])
    # issue 22.15: huggingface_hub's own validation ("a/.." passed the project's pattern)
    for bad in ("a/..", "a--b/c", "me/x.", "me/" + "x" * 100):
        with pytest.raises(ValueError, match=r"--repo_id .* is not a Hub repo id 'user/name': Repo id must|Cannot"):
            push_to_hub.main(["--model_dir", str(checkpoint), "--repo_id", bad, "--local_dir", str(tmp_path / "o")])
    assert not (tmp_path / "o").exists()
    with pytest.raises(ValueError, match="not a folder"):
        push_to_hub.main(["--model_dir", str(tmp_path / "none"), "--local_dir", str(tmp_path / "o")])
    with pytest.raises(ValueError, match="no config.json"):
        push_to_hub.main(["--model_dir", str(tmp_path), "--local_dir", str(tmp_path / "o")])


@pytest.mark.slow
def test_on_a_train_py_output(push_to_hub, trained_teacher, tmp_path):
    """The real training output (train.py's test_results.json / run_info.json) gives a card and a working folder.

    Slow on its own: it trains the session's tiny teacher (``trained_teacher``, shared with the training tests).
    """
    from transformers import pipeline

    metrics = json.loads((trained_teacher / "test_results.json").read_text())
    out = push_to_hub.main(["--model_dir", str(trained_teacher), "--repo_id", "me/teacher",
                            "--local_dir", str(tmp_path / "hub")])
    card = ModelCard.load(Path(out) / "README.md")
    values = {r.metric_name: r.metric_value for r in card.data.eval_results}
    assert values["Accuracy"] == pytest.approx(metrics["test_accuracy"], abs=1e-4)
    assert values["Macro F1"] == pytest.approx(metrics["test_macro_f1"], abs=1e-4)
    assert "test-checkpoint" in card.data.tags  # tiny backbones, synthetic corpus
    pipe = pipeline("multimodal-emotion-recognition", model=str(out), trust_remote_code=True, device="cpu")
    assert len(pipe({"audio": waves(1.0)[0], "sampling_rate": 16000, "text": "안녕하세요"})) == 7


# --------------------------------------------------------------------------- --local_dir safety (issue 12.6)
def test_local_dir_refuses_to_overwrite_or_clobber(push_to_hub, tmp_path):
    checkpoint = make_checkpoint(tmp_path / "ckpt", results=False)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "README.md").write_text("my notes")
    (mine / "config.json").write_text("{}")
    with pytest.raises(ValueError, match=r"--local_dir .*mine is not empty.*--overwrite"):
        push_to_hub.main(["--model_dir", str(checkpoint), "--local_dir", str(mine)])
    assert (mine / "README.md").read_text() == "my notes" and (mine / "config.json").read_text() == "{}"
    with pytest.raises(ValueError, match="is \\(or contains\\) --model_dir"):
        push_to_hub.main(["--model_dir", str(checkpoint), "--local_dir", str(checkpoint), "--overwrite"])
    with pytest.raises(ValueError, match="is \\(or contains\\) --model_dir"):
        push_to_hub.main(["--model_dir", str(checkpoint), "--local_dir", str(tmp_path), "--overwrite"])
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(ValueError, match="file.txt is a file"):
        push_to_hub.main(["--model_dir", str(checkpoint), "--local_dir", str(a_file)])
    with pytest.raises(ValueError, match="--overwrite only applies to --local_dir"):
        push_to_hub.main(["--model_dir", str(checkpoint), "--repo_id", "me/x", "--overwrite"])
    # issue 22.16: --overwrite replaces only a folder an earlier --local_dir wrote (a folder holding .env and data/
    # was emptied), and never follows a symbolic link
    (mine / ".env").write_text("TOKEN=secret")
    with pytest.raises(ValueError, match=r"--local_dir .*mine --overwrite: the folder holds files that push_to_hub"):
        push_to_hub.main(["--model_dir", str(checkpoint), "--local_dir", str(mine), "--overwrite"])
    assert (mine / ".env").read_text() == "TOKEN=secret" and (mine / "README.md").read_text() == "my notes"
    link = tmp_path / "link"
    link.symlink_to(mine, target_is_directory=True)
    for extra in ([], ["--overwrite"]):
        with pytest.raises(ValueError, match="link is a symbolic link"):
            push_to_hub.main(["--model_dir", str(checkpoint), "--local_dir", str(link), *extra])
    assert sorted(p.name for p in mine.iterdir()) == [".env", "README.md", "config.json"]
    # --overwrite replaces an earlier push's folder as a whole: no stale file survives
    hub_dir = tmp_path / "hub"
    push_to_hub.main(["--model_dir", str(checkpoint), "--local_dir", str(hub_dir), "--verify", "false"])
    (hub_dir / "stale.txt").write_text("old")
    out = push_to_hub.main(["--model_dir", str(checkpoint), "--local_dir", str(hub_dir), "--overwrite", "--verify",
                            "false"])
    assert Path(out) == hub_dir.resolve() and not (hub_dir / "stale.txt").exists()
    assert (hub_dir / "config.json").stat().st_size > 2 and (hub_dir / "example.wav").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".hub-")]  # no staging folder left


def test_no_local_path_reaches_the_upload(push_to_hub, tmp_path):
    # issue 22.17: run_info.json, the model card and config.json carried this machine's absolute paths
    checkpoint = make_checkpoint(tmp_path / "ckpt")
    home = "/home/someone/private"
    info = {**RUN_INFO, "data_dir": f"{home}/KEMDy", "data_cache_dir": f"{home}/.cache/multistill",
            "audio_encoder": f"{home}/encoders/whisper-base-hf", "teacher_model": "~/runs/teacher",
            "asr_model": "whisper-base", "held_out": {"test": {"sessions": [19]}}}
    (checkpoint / "run_info.json").write_text(json.dumps(info))
    config = json.loads((checkpoint / "config.json").read_text())
    (checkpoint / "config.json").write_text(json.dumps({**config, "text_encoder_name": f"{home}/encoders/tiny-text"}))
    out = Path(push_to_hub.main(["--model_dir", str(checkpoint), "--repo_id", "me/x", "--local_dir",
                                 str(tmp_path / "hub"), "--verify", "false"]))
    for name in ("run_info.json", "README.md", "config.json"):
        text = (out / name).read_text()
        assert "/home/someone" not in text and "~/runs" not in text and str(tmp_path) not in text, name
    uploaded = json.loads((out / "run_info.json").read_text())
    assert uploaded["data_dir"] is None and uploaded["data_cache_dir"] is None
    assert (uploaded["audio_encoder"], uploaded["teacher_model"]) == ("whisper-base-hf", "teacher")
    assert (uploaded["text_encoder"], uploaded["asr_model"]) == ("beomi/KcELECTRA-base", "whisper-base")  # Hub ids
    assert uploaded["held_out"] == {"test": {"sessions": [19]}}
    assert json.loads((out / "config.json").read_text())["text_encoder_name"] == "tiny-text"


def test_command_line_errors_are_one_line(tmp_path):
    result = subprocess.run([sys.executable, str(REPO_ROOT / "push_to_hub.py"), "--model_dir", str(tmp_path),
                             "--local_dir", str(tmp_path / "out")], capture_output=True, text=True, timeout=120,
                            cwd=REPO_ROOT)
    assert result.returncode == 2 and result.stderr.strip().startswith("error: --model_dir")
    assert "Traceback" not in result.stderr


def test_upload_holds_only_the_hub_folder(push_to_hub, tmp_path, monkeypatch):
    """Checkpoints, optimizer states and stray files next to the model are never uploaded."""
    checkpoint = make_checkpoint(tmp_path / "ckpt")
    (checkpoint / "checkpoint-12").mkdir()
    (checkpoint / "checkpoint-12" / "optimizer.pt").write_bytes(b"state")
    (checkpoint / "notes.txt").write_text("private")
    (checkpoint / "README.md").write_text("---\nlicense: mit\n---\nthe Trainer's stub card")
    FakeApi.instances.clear()
    monkeypatch.setattr(hub, "HfApi", FakeApi)
    push_to_hub.main(["--model_dir", str(checkpoint), "--repo_id", "me/x", "--token", "t", "--verify", "false"])
    upload = FakeApi.instances[-1].calls[1][1]
    assert set(upload["contents"]) == {
        "README.md", "config.json", "model.safetensors", "processor_config.json", "tokenizer.json",
        "tokenizer_config.json", "configuration_multistill.py", "modeling_multistill.py", "processing_multistill.py",
        "pipeline_multistill.py", "annotations.py", "audio_utils.py", "asr.py", "configuration_ngram.py",
        "modeling_ngram.py", "modeling_heads.py", "modeling_cross_attention.py", "modeling_fbank.py",
        "modeling_encoders.py", "run_info.json", "test_results.json",
        "example.wav", "example.txt",
    }
    assert b"stub card" not in upload["contents"]["README.md"]


# --------------------------------------------------------------------------- card: license, example, runnable code
def test_license_follows_the_training_data(push_to_hub, tmp_path):
    checkpoint = make_checkpoint(tmp_path / "ckpt")  # run_info says KEMDy20
    card = ModelCard.load(Path(push_to_hub.main(["--model_dir", str(checkpoint), "--local_dir",
                                                 str(tmp_path / "a"), "--verify", "false"])) / "README.md")
    assert card.data.license == "other" and card.data.license_name == "etri-kemdy-research-only"
    assert card.data.license_link == "https://nanum.etri.re.kr/share/kjnoh/KEMDy20"
    assert "for research only" in card.text and "no commercial use" in card.text
    (checkpoint / "run_info.json").write_text(json.dumps({**RUN_INFO, "corpus": "kemdy19"}))
    card = ModelCard.load(Path(push_to_hub.main(["--model_dir", str(checkpoint), "--local_dir",
                                                 str(tmp_path / "k19"), "--verify", "false"])) / "README.md")
    assert card.data.license_link == "https://nanum.etri.re.kr/share/kjnoh/KEMDy19"
    assert "KEMDy20" not in card.text.split("## License", 1)[1].split("## Citation", 1)[0]
    (checkpoint / "run_info.json").write_text(json.dumps({**RUN_INFO, "corpus": "synthetic", "backbones": "tiny"}))
    card = ModelCard.load(Path(push_to_hub.main(["--model_dir", str(checkpoint), "--local_dir",
                                                 str(tmp_path / "b"), "--verify", "false"])) / "README.md")
    assert card.data.license == "apache-2.0" and card.data.license_name is None
    assert "was not trained on ETRI's corpora" in card.text


def test_card_tells_the_truth_about_the_model(push_to_hub, tmp_path):
    """Encoders from the config, ASR and VAD as they are, no local paths, normal permissions."""
    checkpoint = make_checkpoint(tmp_path / "ckpt", preset="teacher")
    local = str(tmp_path / "private" / "whisper-base-hf")
    (checkpoint / "run_info.json").write_text(json.dumps({**RUN_INFO, "preset": "teacher", "audio_encoder": local,
                                                          "teacher_model": str(tmp_path / "teacher")}))
    out = Path(push_to_hub.main(["--model_dir", str(checkpoint), "--local_dir", str(tmp_path / "hub"),
                                 "--verify", "false"]))
    text = (out / "README.md").read_text(encoding="utf-8")
    config = json.loads((out / "config.json").read_text())
    assert f"`model_type` `{config['audio_config']['model_type']}`" in text
    assert f"`model_type` `{config['text_config']['model_type']}`" in text
    assert "no speech recognition" not in text and "asr_model=" in text
    assert "energy voice-activity detector" not in text and "Silero" in text
    assert str(tmp_path) not in text and "whisper-base-hf (a local folder)" in text
    assert oct(out.stat().st_mode & 0o777) == "0o755"
    assert {oct(f.stat().st_mode & 0o777) for f in out.iterdir()} == {"0o644"}


def python_blocks(card_text: str) -> list[str]:
    return [block.split("```", 1)[0] for block in card_text.split("```python\n")[1:]]


RUN_CARD = textwrap.dedent(
    """
    # Run the card's Python blocks unchanged: the folder sits at the repo id's relative path (offline).
    import sys
    card = open(sys.argv[1], encoding="utf-8").read()
    blocks = [b.split("```", 1)[0] for b in card.split("```python\\n")[1:]]
    assert len(blocks) == 2, len(blocks)
    for block in blocks:
        exec(compile(block, "card", "exec"), {})
    print("CARD-OK")
    """
)


@pytest.mark.parametrize("preset", ["teacher", "text_student", "audio_student"])
def test_card_usage_code_runs_as_written(push_to_hub, tmp_path, preset):
    checkpoint = make_checkpoint(tmp_path / "ckpt", preset=preset)
    out = Path(push_to_hub.main(["--model_dir", str(checkpoint), "--repo_id", "me/card-test", "--local_dir",
                                 str(tmp_path / "me" / "card-test"), "--verify", "false"]))
    card = (out / "README.md").read_text(encoding="utf-8")
    assert (out / "example.wav").stat().st_size < 200_000
    transcript = (out / "example.txt").read_text(encoding="utf-8").strip()
    assert (f'"text": "{transcript}"' in card) == (preset != "audio_student")
    assert ("waveform = " in card) == (preset != "text_student")  # `waveform` is defined before it is used
    script = tmp_path / "run_card.py"
    script.write_text(RUN_CARD)
    result = subprocess.run([sys.executable, "-I", str(script), str(out / "README.md")],
                            cwd=tmp_path, env=offline_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "CARD-OK" in result.stdout, result.stderr[-3000:]
    assert "'label'" in result.stdout and "score" in result.stdout


# --------------------------------------------------------------------------- train.py / distill.py --push_to_hub
def test_training_arguments_keep_the_push_from_the_trainer(tmp_path):
    from multistill.training.arguments import MultiStillTrainingArguments

    args = MultiStillTrainingArguments(output_dir=str(tmp_path), push_to_hub=True, hub_model_id="me/run")
    assert args.publish_to_hub is True and args.push_to_hub is False  # the Trainer never pushes half a folder
    assert MultiStillTrainingArguments(output_dir=str(tmp_path)).publish_to_hub is False


def test_publish_run_uploads_what_push_to_hub_uploads(push_to_hub, tmp_path, monkeypatch):
    from multistill.training.arguments import MultiStillTrainingArguments

    checkpoint = make_checkpoint(tmp_path / "ckpt")
    FakeApi.instances.clear()
    monkeypatch.setattr(hub, "HfApi", FakeApi)
    args = MultiStillTrainingArguments(output_dir=str(checkpoint), push_to_hub=True, hub_model_id="me/run",
                                       hub_token="t")
    hub.publish_run(checkpoint, args)
    push_to_hub.main(["--model_dir", str(checkpoint), "--repo_id", "me/run", "--token", "t"])
    from_training, from_script = (api.calls[1][1] for api in FakeApi.instances)
    assert from_training["repo_id"] == from_script["repo_id"] == "me/run"
    assert from_training["contents"] == from_script["contents"]  # byte for byte


@pytest.mark.slow
def test_train_py_push_to_hub_publishes_the_complete_folder(tmp_path, training_cache, monkeypatch):
    """`train.py --push_to_hub`: one upload, after the run, of the folder push_to_hub.py would build."""
    from conftest import FAST_TRAINING

    import train

    FakeApi.instances.clear()
    monkeypatch.setattr(hub, "HfApi", FakeApi)
    output_dir = tmp_path / "run"
    train.main(["--output_dir", str(output_dir), "--data_cache_dir", str(training_cache), "--num_train_epochs", "1",
                *FAST_TRAINING, "--push_to_hub", "--hub_model_id", "me/trained", "--hub_token", "t"])
    (api,) = FakeApi.instances
    assert [name for name, _ in api.calls] == ["create_repo", "upload_folder"]
    upload = api.calls[1][1]
    assert upload["repo_id"] == "me/trained"
    assert {"pipeline_multistill.py", "test_results.json", "run_info.json", "example.wav"} <= set(upload["contents"])
    assert b"pipeline_multistill.MultiStillEmotionPipeline" in upload["contents"]["config.json"]
    card = upload["contents"]["README.md"].decode()
    assert "model-index" in card and "this checkpoint (teacher)" in card
    assert not any(name.startswith("checkpoint-") for name in upload["contents"])


def test_publish_recipe_checks_its_arguments_before_training(tmp_path):
    """scripts/publish_recipe.sh: one error line for a folder that is not the development set or a non-empty Hub
    folder, before the recipe starts (nothing is trained or installed)."""
    script = str(REPO_ROOT / "scripts" / "publish_recipe.sh")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", script, *args], capture_output=True, text=True, cwd=tmp_path, timeout=60)

    usage = run()
    assert usage.returncode == 2 and usage.stderr.startswith("usage:")
    (tmp_path / "data" / "KEMDy19").mkdir(parents=True)
    no_kemdy20 = run(str(tmp_path / "data"), str(tmp_path / "out"), str(tmp_path / "hub"))
    assert no_kemdy20.returncode == 2 and no_kemdy20.stderr.splitlines() == [
        f"error: DATA_DIR {tmp_path / 'data'} must hold KEMDy19/ and KEMDy20/ (bash ../shared/make_kemdy_dev.sh DIR "
        "makes it)"]
    (tmp_path / "data" / "KEMDy20").mkdir()
    (tmp_path / "hub" / "multistill-kemdy-text-student").mkdir(parents=True)
    (tmp_path / "hub" / "multistill-kemdy-text-student" / "README.md").write_text("mine")
    taken = run(str(tmp_path / "data"), str(tmp_path / "out"), str(tmp_path / "hub"))
    assert taken.returncode == 2 and taken.stderr.splitlines() == [
        f"error: HUB_DIR {tmp_path / 'hub'}/multistill-kemdy-text-student is not empty (push_to_hub.py writes only "
        "into a new or empty folder)"]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("config", "message"), [('{"model_type": "whisper"}', "is not a Multi-Still model"),
                                                 ("[1]", "config.json is not a JSON object")])
def test_model_dir_of_another_kind_is_refused_before_loading(config, message, push_to_hub, tmp_path, monkeypatch):
    # a Whisper folder was loaded, written out with a model card and only then failed verification with an
    # unrelated message; a config.json holding a list was a TypeError traceback
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text(config, encoding="utf-8")
    monkeypatch.setattr(hub, "load_checkpoint", lambda *a: (_ for _ in ()).throw(AssertionError("loaded")))
    with pytest.raises(ValueError, match=message):
        push_to_hub.main(["--model_dir", str(tmp_path / "m"), "--local_dir", str(tmp_path / "o")])
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(("option", "message"), [
    (["--license", "not a license!!"], "--license 'not a license!!' is not a Hub license identifier"),
    (["--license", "Apache-2.0"], "is not a Hub license identifier"),
    (["--dataset_names", "ok/name", "bad name!"], "--dataset_names 'bad name!' is not a Hub dataset id"),
    (["--licence", "mit"], "unrecognized arguments: --licence mit"),
])
def test_card_metadata_is_checked_before_loading(option, message, push_to_hub, tmp_path, monkeypatch):
    # a free-text --license went into the card's metadata, where the Hub expects one of its license identifiers
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text('{"model_type": "multistill"}', encoding="utf-8")
    monkeypatch.setattr(hub, "load_checkpoint", lambda *a: (_ for _ in ()).throw(AssertionError("loaded")))
    with pytest.raises(ValueError, match=re.escape(message)):
        push_to_hub.main(["--model_dir", str(tmp_path / "m"), "--local_dir", str(tmp_path / "o"), *option])
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("license_id", ["apache-2.0", "cc-by-nc-sa-4.0", "openrail++", "other", "llama3.1"])
def test_hub_license_identifiers_pass(license_id, push_to_hub):
    assert push_to_hub.LICENSE_ID.fullmatch(license_id)
