"""scripts/render_readme.py: README's result blocks are what the committed result files render."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("render_readme", ROOT / "scripts" / "render_readme.py")
render_readme = importlib.util.module_from_spec(spec)
sys.modules.setdefault("render_readme", render_readme)  # dataclasses look their module up
spec.loader.exec_module(render_readme)
readme_lib = sys.modules["readme_lib"]  # imported by render_readme from scripts/


def test_readme_matches_the_result_files(capsys):
    code = render_readme.main(["--check"])
    assert code == 0, capsys.readouterr().err


def test_every_block_names_its_source_and_commit():
    for name, table in render_readme.TABLES.items():
        text = render_readme.render(name)
        assert any(f"[`{source}`]" in text for source in table.sources), name
        assert "commit `" in text, name


def test_ratios_say_how_they_are_computed():
    headline = render_readme.render("speed_headline")
    data = render_readme.json.loads((ROOT / render_readme.HEADLINE).read_text())["headline"]
    assert f"{data['speedup']:.1f}x" in headline and "per-round ratio" in headline
    assert f"give {data['teacher_ms'] / data['light_student_ms']:.1f}x" in headline


def test_a_changed_block_fails_the_check(tmp_path, capsys):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    changed = tmp_path / "README.md"
    changed.write_text(readme.replace("| 1.0x |", "| 1.1x |", 1), encoding="utf-8")
    assert render_readme.main(["--check", "--readme", str(changed)]) == 1
    assert "benchmark_headline" in capsys.readouterr().err
    assert render_readme.main(["--readme", str(changed)]) == 0
    assert changed.read_text(encoding="utf-8") == readme


def test_an_unknown_block_is_an_error(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("<!-- table:nope -->\nx\n<!-- /table:nope -->\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="error: README.md has a block `nope`"):
        render_readme.main(["--check", "--readme", str(readme)])


def test_a_typo_in_an_option_is_one_error_line(capsys):
    assert render_readme.main(["--chek"]) == 2  # was transformers' ValueError traceback
    assert capsys.readouterr().err == "error: unrecognized arguments: --chek\n"


def test_stale_when_the_code_changed_after_the_result_commit(tmp_path, monkeypatch):
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", *args], check=True,
                       capture_output=True)

    git("init", "-q")
    (tmp_path / "code.py").write_text("a = 1\n")
    (tmp_path / "other.py").write_text("b = 1\n")
    git("add", ".")
    git("commit", "-qm", "result made here")
    made = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    monkeypatch.setattr(readme_lib, "ROOT", tmp_path)
    assert readme_lib.stale_since(made, ("code.py",)) is False
    (tmp_path / "other.py").write_text("b = 2\n")
    git("commit", "-qam", "unrelated change")
    assert readme_lib.stale_since(made, ("code.py",)) is False
    # code that only one source depends on (a script joining runs) makes the block stale through that source only
    files = {"runs.json": {"provenance": {"git_commit": made}}}
    assert readme_lib.stale_note(files, ("code.py",)) is None
    assert readme_lib.stale_note(files, ("code.py",), {"joined.json": ("other.py",)}) is None
    note = readme_lib.stale_note(files, ("code.py",), {"runs.json": ("other.py",)})
    assert note.startswith(readme_lib.STALE_PREFIX) and "`other.py`" in note and "`runs.json`" in note
    (tmp_path / "code.py").write_text('"""What it does, reworded."""\n\na = 1  # a comment\n')
    git("commit", "-qam", "docstring and comment only")
    assert readme_lib.stale_since(made, ("code.py",)) is False  # the figures' code did not change
    (tmp_path / "code.py").write_text("a = 2\n")
    assert readme_lib.stale_since(made, ("code.py",)) is True  # uncommitted counts
    git("commit", "-qam", "code change")
    assert readme_lib.stale_since(made, ("code.py",)) is True
    assert readme_lib.stale_since("0" * 40, ("code.py",)) is None


def _block(name: str) -> tuple:
    """README block NAME's table spec and its committed result files, loaded."""
    table = render_readme.TABLES[name]
    return table, {source: json.loads((ROOT / source).read_text(encoding="utf-8")) for source in table.sources}


def test_the_validation_search_block_refuses_a_test_run_of_another_setting():
    readme_recipe = sys.modules["readme_recipe"]
    table, files = _block("validation_search")
    assert "validation chose context size 0, L2 penalty 2" in table.render(files)
    tested = readme_recipe.VALIDATION_SEARCH_TESTS["fold1_test2"]
    files[tested]["provenance"]["command"] += " --l2_penalty 0.5"  # the last value is the one the run used
    assert readme_recipe.last_option(files[tested]["provenance"]["command"], "l2_penalty") == "0.5"
    with pytest.raises(ValueError, match=r"not run with the chosen \['l2_penalty'\]"):
        table.render(files)


def test_the_audio_weight_block_refuses_a_test_run_of_another_weight_or_session():
    readme_audio_weight = sys.modules["readme_audio_weight"]
    table, files = _block("audio_weight")
    assert "validation chose audio weight" in table.render(files)
    tested = readme_audio_weight.AUDIO_WEIGHT_CHOSEN["kemdy20"]
    command = files[tested]["provenance"]["command"]
    files[tested]["provenance"]["command"] = command + " --audio_weight 0.5"
    with pytest.raises(ValueError, match=r"not run with the chosen \['audio_weight'\]"):
        table.render(files)
    files[tested]["provenance"]["command"] = command + " --test_sessions 2"
    with pytest.raises(ValueError, match=r"not run with the chosen \['test_sessions'\]"):
        table.render(files)


def test_the_audio_layer_mix_block_refuses_a_run_of_another_setting_or_session():
    readme_audio_layer_mix = sys.modules["readme_audio_layer_mix"]
    table, files = _block("audio_layer_mix")
    assert "Validation on whole sessions chose" in table.render(files)
    last = readme_audio_layer_mix.LAYER_MIX_RUNS["fold1_test2", "last"]
    command = files[last]["provenance"]["command"]
    for changed in (command + " --audio_layer_mix weighted", command + " --test_sessions 1"):
        files[last]["provenance"]["command"] = changed
        with pytest.raises(ValueError, match="not a run of --audio_layer_mix last tested on session 2"):
            table.render(files)


def test_a_listed_neutral_change_does_not_stale_but_any_other_change_of_the_file_does(tmp_path, monkeypatch):
    def git(*args):
        return subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                              check=True, capture_output=True, text=True).stdout.strip()

    def ledger(*commits):
        (tmp_path / "results").mkdir(exist_ok=True)
        (tmp_path / readme_lib.NEUTRAL_CHANGES).write_text(json.dumps({"changes": [
            {"commit": commit, "paths": ["code.py"], "why": "an argument check", "verified": "by hand"}
            for commit in commits]}))

    git("init", "-q")
    (tmp_path / "code.py").write_text("def run(x):\n    return 2 * x\n")
    git("add", "code.py")
    git("commit", "-qm", "result made here")
    made = git("rev-parse", "HEAD")
    monkeypatch.setattr(readme_lib, "ROOT", tmp_path)
    (tmp_path / "code.py").write_text("def run(x):\n    if x < 0:\n        raise ValueError('x')\n    return 2 * x\n")
    git("commit", "-qam", "a check")
    check = git("rev-parse", "HEAD")
    assert readme_lib.stale_since(made, ("code.py",)) is True
    ledger(check)
    assert readme_lib.stale_since(made, ("code.py",)) is False
    (tmp_path / "code.py").write_text("def run(x):\n    if x < 0:\n        raise ValueError('x')\n    return 3 * x\n")
    assert readme_lib.stale_since(made, ("code.py",)) is True  # an uncommitted change is no listed one
    git("commit", "-qam", "what it computes")
    assert readme_lib.stale_since(made, ("code.py",)) is True
    ledger(check)  # the commit that changed what it computes is not listed
    assert readme_lib.stale_since(made, ("code.py",)) is True
    git("revert", "--no-edit", "HEAD")  # a change undone leaves the neutral version: fresh again
    assert readme_lib.stale_since(made, ("code.py",)) is False


def test_every_listed_neutral_change_is_a_commit_of_those_paths_with_evidence_of_unchanged_figures():
    def git(*args):
        return subprocess.run(["git", "-C", str(ROOT), *args], check=True, capture_output=True, text=True).stdout

    ledger = json.loads((ROOT / readme_lib.NEUTRAL_CHANGES).read_text(encoding="utf-8"))
    assert ledger["changes"]
    for entry in ledger["changes"]:
        commit = entry["commit"]
        assert set(entry["paths"]) <= set(git("show", "--name-only", "--format=", commit).split()), commit
        assert entry["why"] and entry["verified"]
        evidence = json.loads((ROOT / entry["evidence"]).read_text(encoding="utf-8"))
        assert evidence["identical"] and evidence["compared"] > 0 and not evidence["differences"]
        assert evidence["after"]["git_commit"] == commit
        assert evidence["before"]["git_commit"] == git("rev-parse", f"{commit}^").strip()
        assert evidence["before"]["git_dirty"] is False and evidence["after"]["git_dirty"] is False
