"""Shared pytest fixtures: the real KEMDy sample (Session 01 of both corpora) and synthetic corpora.

The real sample lives outside the repository, at ``../shared/kemdy_sample`` relative to the repository
root (it is ETRI-licensed data and is never committed); tests that need it are skipped when it is absent.
"""

from __future__ import annotations

import sys
from pathlib import Path

import datasets
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# The shared test helpers (``_fixtures_model``, ``_fixtures_inference``, ``_fixtures_speech``, ``_fixtures_kemdy``)
# are imported by name from every test module, whatever pytest's import mode.
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))
SAMPLE_DIR = REPO_ROOT / ".." / "shared" / "kemdy_sample"


def assert_usage_error(main, argv: list[str], message: str, output: Path, capsys: pytest.CaptureFixture) -> None:
    """A script's ``main(argv)`` refuses a bad argument: exit status 2, one ``error:`` line holding ``message``,
    and no ``output`` written."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert not output.exists()


def assert_unwritable_output_refused(main, argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A script's ``main(argv + --output_json X)`` refuses, before loading anything, an ``X`` that is a folder or
    lies under a file: exit status 2 and one ``error:`` line each (they failed when the result was written)."""
    (tmp_path / "file").write_text("")
    for output, message in (
            (tmp_path, f"--output_json {tmp_path} is a folder; give a file name."),
            (tmp_path / "file" / "x.json", f"--output_json {tmp_path}/file/x.json: {tmp_path}/file is a file, "
                                           f"so the folder {tmp_path}/file cannot be created.")):
        assert main([*argv, "--output_json", str(output)]) == 2
        assert capsys.readouterr().err.strip() == f"error: {message}"


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    """The real KEMDy sample (``KEMDy19/`` and ``KEMDy20/``, Session 01); skips if it is not there."""
    path = SAMPLE_DIR.resolve()
    if not ((path / "KEMDy19" / "annotation").is_dir() and (path / "KEMDy20" / "annotation").is_dir()):
        pytest.skip(
            f"Real KEMDy sample not found at {path} (expected ../shared/kemdy_sample next to the repository, "
            "holding KEMDy19/ and KEMDy20/ in ETRI's layout). The corpora are licensed by ETRI and are not "
            "part of the repository."
        )
    return path


@pytest.fixture(scope="session")
def kemdy_sample_builder(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """The ``all`` config of the KEMDy builder over the real sample, prepared once per test run."""
    from loading_scripts.kemdy import Kemdy

    builder = Kemdy(
        config_name="all", data_dir=str(sample_dir), cache_dir=str(tmp_path_factory.mktemp("kemdy_cache"))
    )
    builder.download_and_prepare()
    return builder


@pytest.fixture(scope="session")
def kemdy_sample_dataset(kemdy_sample_builder) -> datasets.Dataset:
    """The real sample as a ``datasets.Dataset`` (792 utterances: 481 KEMDy19 + 311 KEMDy20)."""
    return kemdy_sample_builder.as_dataset("train")


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A default synthetic corpus (64 utterances per corpus, no edge cases)."""
    from multistill.training.synthetic import make_synthetic_kemdy

    return make_synthetic_kemdy(tmp_path_factory.mktemp("synthetic_kemdy"))


@pytest.fixture(scope="session")
def synthetic_edge_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A default synthetic corpus plus the edge cases of ``multistill.training.synthetic.EDGE_CASES``."""
    from multistill.training.synthetic import make_synthetic_kemdy

    return make_synthetic_kemdy(tmp_path_factory.mktemp("synthetic_kemdy_edge"), edge_cases=True)


# --- Training fixtures: one tiny teacher trained once per test run on the embedded synthetic corpus ---

#: Fast settings shared by the training tests (tiny backbones, CPU, a few epochs, no progress bars).
FAST_TRAINING = ["--use_cpu", "--disable_tqdm", "true", "--learning_rate", "3e-3", "--per_device_train_batch_size", "8",
                 "--save_total_limit", "1"]


@pytest.fixture(scope="session")
def training_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``--data_cache_dir`` of the training tests: synthetic corpus, Arrow caches, tiny backbones."""
    return tmp_path_factory.mktemp("multistill_cache")


@pytest.fixture(scope="session")
def trained_teacher(training_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny teacher trained by ``train.main`` (4 epochs, synthetic corpus, session split)."""
    import train

    output_dir = tmp_path_factory.mktemp("teacher")
    train.main(["--output_dir", str(output_dir), "--data_cache_dir", str(training_cache), "--num_train_epochs", "4",
                *FAST_TRAINING])
    return output_dir


# --- Training-path fixtures (test_feature_cache, test_features, test_trainer): a tiny teacher, 16 rows ---


@pytest.fixture(scope="module")
def built_teacher(tmp_path_factory):
    """A tiny teacher and its processor as train.py builds them (from encoder folders)."""
    from multistill.offline import tiny_backbones

    return tiny_backbones(tmp_path_factory.mktemp("tiny"), preset="teacher")


@pytest.fixture(scope="module")
def tiny_teacher(built_teacher, tmp_path_factory):
    """The same teacher saved and loaded back, as distill.py sees it (its saved processor files differ)."""
    from multistill import MultiStillForEmotionClassification, MultiStillProcessor

    model, processor = built_teacher
    folder = tmp_path_factory.mktemp("tiny_teacher")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return MultiStillForEmotionClassification.from_pretrained(folder).eval(), MultiStillProcessor.from_pretrained(folder)


@pytest.fixture(scope="module")
def rows_dataset(synthetic_root):
    """16 decoded synthetic utterances with the builder's features."""
    from loading_scripts.kemdy import Kemdy

    builder = Kemdy(config_name="all", data_dir=str(synthetic_root), cache_dir=str(synthetic_root / "_cache"),
                    sessions=[1])
    builder.download_and_prepare()
    return builder.as_dataset("train").select(range(16))


@pytest.fixture(scope="module")
def small_splits(rows_dataset):
    """``rows_dataset`` as train (10), validation (3) and test (3) splits."""
    return datasets.DatasetDict(train=rows_dataset.select(range(10)),
                                validation=rows_dataset.select(range(10, 13)), test=rows_dataset.select(range(13, 16)))
