"""distill.py: offline (cached column) and online teacher, the alpha = 0 ablation, the light student, DDP."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FAST_TRAINING, REPO_ROOT


def _distill(teacher: Path, output_dir: Path, cache: Path, *extra: str) -> dict:
    import distill

    distill.main(["--teacher_model", str(teacher), "--output_dir", str(output_dir), "--data_cache_dir", str(cache),
                  "--num_train_epochs", "2", *FAST_TRAINING, *extra])
    return json.loads((output_dir / "trainer_state.json").read_text())


def _logged(state: dict, key: str) -> list[float]:
    return [e[key] for e in state["log_history"] if key in e]


def test_offline_distillation_of_the_multimodal_student(trained_teacher: Path, training_cache: Path, tmp_path: Path):
    state = _distill(trained_teacher, tmp_path, training_cache, "--preset", "multimodal_student", "--alpha", "0.7",
                     "--temperature", "3", "--logging_steps", "2")
    kd, ce, loss = _logged(state, "loss_kd"), _logged(state, "loss_ce"), _logged(state, "loss")
    assert kd and ce and len(kd) == len(ce) == len(loss)
    # The logged loss is the mixture of the logged terms (same steps).
    assert loss[0] == pytest.approx(0.7 * kd[0] + 0.3 * ce[0], rel=0.02)
    info = json.loads((tmp_path / "run_info.json").read_text())
    assert info["alpha"] == 0.7 and info["online_teacher"] is False and info["cached_encoder_features"] is True
    # Issue 14.2: the teacher's run encoded every split with the same encoders: nothing is encoded again.
    assert info["utterances_encoded"] == 0
    assert json.loads((tmp_path / "data_splits.json").read_text()) == json.loads(
        (trained_teacher / "data_splits.json").read_text())
    teacher_params = json.loads((trained_teacher / "run_info.json").read_text())["parameters"]
    assert info["parameters"]["trainable"] < teacher_params["trainable"]  # one fusion layer instead of three

    from multistill import MultiStillForEmotionClassification

    student = MultiStillForEmotionClassification.from_pretrained(tmp_path)
    assert student.config.num_fusion_layers == 1 and student.config.modalities == ["audio", "text"]


def test_alpha_zero_is_the_no_distillation_ablation(trained_teacher: Path, training_cache: Path, tmp_path: Path):
    state = _distill(trained_teacher, tmp_path, training_cache, "--preset", "text_student", "--alpha", "0",
                     "--logging_steps", "2")
    assert _logged(state, "loss_ce") and not _logged(state, "loss_kd")
    assert _logged(state, "loss") == pytest.approx(_logged(state, "loss_ce"), rel=1e-4)


def test_online_teacher_with_the_light_student(trained_teacher: Path, training_cache: Path, tmp_path: Path):
    state = _distill(trained_teacher, tmp_path, training_cache, "--preset", "light_student", "--online_teacher",
                     "--logging_steps", "2")
    assert _logged(state, "loss_kd")
    info = json.loads((tmp_path / "run_info.json").read_text())
    assert info["online_teacher"] is True and info["cached_encoder_features"] is False
    assert info["parameters"]["trainable"] == info["parameters"]["total"]  # its encoders train too
    from multistill import MultiStillForEmotionClassification

    student = MultiStillForEmotionClassification.from_pretrained(tmp_path)
    assert student.config.audio_frontend == "fbank"
    assert student.config.audio_config.num_hidden_layers == 2 and student.config.text_config.num_hidden_layers == 2


def test_teacher_is_required_and_checked_before_anything_loads(tmp_path: Path):
    import distill
    from multistill.training.arguments import UsageError

    def refused(message: str, *arguments: str) -> None:
        with pytest.raises(UsageError, match=message):
            distill.main(["--output_dir", str(tmp_path / "out"), "--data_cache_dir", str(tmp_path / "cache"),
                          "--use_cpu", *arguments])
        assert not (tmp_path / "cache").exists()

    refused("--teacher_model is required")
    refused("--teacher_model /no/such/teacher: no such folder", "--teacher_model", "/no/such/teacher")
    (tmp_path / "empty").mkdir()
    refused("has no config.json", "--teacher_model", str(tmp_path / "empty"))
    (tmp_path / "configured").mkdir()
    (tmp_path / "configured" / "config.json").write_text("{}")
    refused("distill.py trains students", "--teacher_model", str(tmp_path / "configured"), "--preset", "teacher")
    refused("takes the student's encoders from the teacher", "--teacher_model", str(tmp_path / "configured"),
            "--audio_encoder", "tiny")
    refused("unrecognized arguments: --alhpa 0.5", "--teacher_model", str(tmp_path / "configured"),
            "--alhpa", "0.5")  # a typo was transformers' ValueError traceback


def test_a_student_whose_modality_the_teacher_lacks_is_refused(tmp_path: Path):
    # issue 22.14: an audio-only teacher gave the light student a random, KcELECTRA-sized text encoder silently
    from _fixtures_inference import saved_folder

    import distill
    from multistill.training.arguments import UsageError

    for preset in ("light_student", "multimodal_student", "text_student"):
        with pytest.raises(UsageError, match=f"--preset {preset} uses .*text.* the teacher .* has only audio: the "
                                             "student's text encoder cannot come from the teacher"):
            distill.main(["--teacher_model", saved_folder("audio_student"), "--preset", preset, "--output_dir",
                          str(tmp_path / "out"), "--data_cache_dir", str(tmp_path / "cache"), "--use_cpu"])
    assert not (tmp_path / "cache").exists()


def test_light_audio_layers_are_checked_against_the_teacher(tmp_path: Path):
    """0 layers (Whisper's convolutions only) needs a Whisper teacher; more layers than the teacher's is refused;
    both before any data or weight loads."""
    from _fixtures_inference import saved_folder

    import distill
    from multistill.training.arguments import UsageError

    teacher = saved_folder("teacher")  # a wav2vec2-shaped tiny teacher
    for layers, message in (("0", "--light_audio_layers 0 needs a Whisper teacher"),
                            ("99", "--light_audio_layers 99: the teacher .* has \\d+ audio layers"),
                            ("-1", "--light_audio_layers must be >= 0 \\(got -1\\)")):
        with pytest.raises(UsageError, match=message):
            distill.main(["--teacher_model", teacher, "--preset", "light_student", "--light_audio_layers", layers,
                          "--output_dir", str(tmp_path / "out"), "--data_cache_dir", str(tmp_path / "cache"),
                          "--use_cpu"])
    assert not (tmp_path / "cache").exists() and not (tmp_path / "out").exists()


def test_an_audio_weight_or_layer_choice_the_students_fusion_cannot_use_is_refused(tmp_path: Path):
    """Given, or the teacher's (a student keeps it), before any data or weight loads."""
    from _fixtures_inference import saved_folder

    import distill
    from multistill.configuration_multistill import MultiStillConfig
    from multistill.training.arguments import UsageError

    weighted = tmp_path / "weighted_teacher"
    MultiStillConfig(fusion_type="concat", audio_weight=2.0).save_pretrained(weighted)
    last_layer = tmp_path / "last_layer_teacher"
    MultiStillConfig(fusion_type="concat", audio_layer_mix="last").save_pretrained(last_layer)
    for teacher, extra, message in (
            (saved_folder("teacher"), ["--audio_weight", "2"], "^--audio_weight 2 scales .* this multimodal_student "
                                                               "fuses by cross_attention"),
            (str(weighted), ["--fusion_type", "cross_attention"], "^the teacher's \\(.*weighted_teacher\\) "
                                                                  "--audio_weight 2 scales"),
            (saved_folder("teacher"), ["--audio_layer_mix", "last"], "^--audio_layer_mix last chooses .* this "
                                                                  "multimodal_student fuses by cross_attention"),
            (str(last_layer), ["--fusion_type", "cross_attention"], "^the teacher's \\(.*last_layer_teacher\\) "
                                                                    "--audio_layer_mix last chooses")):
        with pytest.raises(UsageError, match=message):
            distill.main(["--teacher_model", teacher, *extra, "--output_dir", str(tmp_path / "out"),
                          "--data_cache_dir", str(tmp_path / "cache"), "--use_cpu"])
    assert not (tmp_path / "cache").exists() and not (tmp_path / "out").exists()


def test_a_teacher_run_info_that_is_not_json_is_named(trained_teacher: Path, training_cache: Path, tmp_path: Path):
    # issue 22.13: a damaged run_info.json of the teacher was a JSONDecodeError traceback
    import shutil

    from multistill.training.arguments import UsageError

    teacher = tmp_path / "teacher"
    shutil.copytree(trained_teacher, teacher, ignore=shutil.ignore_patterns("checkpoint-*"))
    (teacher / "run_info.json").write_text('{"corpus": "synthetic", ')
    with pytest.raises(UsageError, match=r"--teacher_model: .*teacher/run_info.json is not a readable JSON file"):
        _distill(teacher, tmp_path / "out", training_cache, "--preset", "text_student")


def test_a_teacher_trained_on_another_split_is_refused(trained_teacher: Path, training_cache: Path, tmp_path: Path):
    """Issue 14.3: the split parameters and the utterance ids of the teacher's run are compared with this run's."""
    from multistill.training.arguments import UsageError

    for arguments, message in [(["--split", "random"], "--split: the teacher's run used 'session', this run 'random'"),
                               (["--split_seed", "7"], "--split_seed: the teacher's run used 123, this run 7"),
                               (["--test_sessions", "3", "--validation_sessions", "2"], "test sessions: the teacher"),
                               (["--split", "dialogue"], "test dialogues")]:
        with pytest.raises(UsageError, match=message):
            _distill(trained_teacher, tmp_path, training_cache, "--preset", "text_student", *arguments)
    # A teacher folder without its run's records cannot be checked.
    import shutil

    bare = tmp_path / "bare_teacher"
    shutil.copytree(trained_teacher, bare, ignore=shutil.ignore_patterns("run_info.json", "data_splits.json",
                                                                         "checkpoint-*"))
    with pytest.raises(UsageError, match="its split cannot be checked"):
        _distill(bare, tmp_path, training_cache, "--preset", "text_student")
    # --allow_split_mismatch distils anyway, and says so in run_info.json.
    _distill(trained_teacher, tmp_path, training_cache, "--preset", "text_student", "--split", "dialogue",
             "--allow_split_mismatch", "--max_steps", "2")
    assert json.loads((tmp_path / "run_info.json").read_text())["allow_split_mismatch"] is True


def test_two_process_ddp_on_cpu(trained_teacher: Path, training_cache: Path, tmp_path: Path):
    """``torchrun --nproc_per_node 2`` (what ``accelerate launch --multi_gpu`` does): both ranks train."""
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
               str(REPO_ROOT / "distill.py"), "--teacher_model", str(trained_teacher), "--preset",
               "multimodal_student", "--output_dir", str(tmp_path), "--data_cache_dir", str(training_cache),
               "--max_steps", "4", "--per_device_train_batch_size", "4", "--use_cpu", "--disable_tqdm", "true",
               "--save_total_limit", "1", "--ddp_backend", "gloo", "--log_level_replica", "info"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert re.search(r"Process rank: 1, world size: 2, device: cpu\S*, distributed: distributed", output)
    for rank in (0, 1):  # INFO lines (rank 1 shows them with --log_level_replica info)
        assert re.search(rf"INFO - \S+ - Process rank {rank} finished training at global step 4", output)
    state = json.loads((tmp_path / "trainer_state.json").read_text())
    assert state["global_step"] == 4
    from multistill import MultiStillForEmotionClassification

    MultiStillForEmotionClassification.from_pretrained(tmp_path)


@pytest.mark.parametrize("mode", ["cached", "online"])
def test_light_student_learns_the_teachers_hidden_states(trained_teacher: Path, training_cache: Path, tmp_path: Path,
                                                         mode: str):
    extra = ["--online_teacher"] if mode == "online" else []
    state = _distill(trained_teacher, tmp_path, training_cache, "--preset", "light_student", "--hidden_weight", "0.5",
                     "--logging_steps", "2", *extra)
    hidden, kd, ce, loss = (_logged(state, k) for k in ("loss_hidden", "loss_kd", "loss_ce", "loss"))
    assert hidden and len(hidden) == len(loss)
    assert loss[0] == pytest.approx(0.5 * kd[0] + 0.5 * ce[0] + 0.5 * hidden[0], rel=0.02)
    info = json.loads((tmp_path / "run_info.json").read_text())
    assert info["hidden_weight"] == 0.5 and info["utterances_encoded"] == 0  # the teacher's features, cached


def test_hidden_weight_needs_a_student_with_its_own_encoders(trained_teacher: Path, training_cache: Path,
                                                             tmp_path: Path):
    with pytest.raises(ValueError, match="nothing to match"):
        _distill(trained_teacher, tmp_path, training_cache, "--preset", "multimodal_student", "--hidden_weight", "1")
