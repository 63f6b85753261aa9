"""README's commands run as written: every option in its bash blocks and inline commands exists in the parser.

Each command of README.md's bash blocks (continuation lines joined, ``$COMMON``-style variables expanded,
``[optional]`` brackets dropped) is matched to its program: ``python SCRIPT.py``, ``accelerate launch`` /
``torchrun`` of a script, ``python -m MODULE`` and ``multistill COMMAND``. The program's own argument parser is
captured in this process (its ``main`` is called and stopped where it starts parsing), so nothing long runs; every
``--option`` of the command must be one of the parser's. ``pip``, ``bash``, ``source``, ``python -c`` and other
packages' ``python -m`` lines are not checked here, nor the commands of past runs inside rendered result blocks (``scripts/*.sh --help`` and the install lines are covered by the set-up itself).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import re
import shlex
import sys
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
NOT_CHECKED = {"pip", "bash", "source", "export", "cd", "accelerate-config"}


class _Parsing(Exception):
    """Raised where a program starts parsing: its parser is captured, nothing else runs."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        super().__init__("parsing")
        self.parser = parser


def readme_commands() -> list[list[str]]:
    """Every command line of README's bash blocks and inline ``python ...`` / ``multistill ...`` spans, as tokens."""
    commands = []
    prose = re.sub(r"```.*?```|<!-- table:(\w+) -->.*?<!-- /table:\1 -->", "", README, flags=re.S)  # rendered
    inline = re.findall(r"(?<!`)`((?:python|multistill) [^`]+)`(?!`)", prose)  # blocks: commands of past runs
    for block in re.findall(r"```bash\n(.*?)```", README, re.S) + [" ".join(span.split()) for span in inline]:
        variables: dict[str, str] = {}
        for line in block.replace("\\\n", " ").splitlines():
            for name, value in variables.items():
                line = line.replace(f"${name}", value)
            tokens = [t.strip("[]") for t in shlex.split(line, comments=True)]
            tokens = [t for t in tokens if t and t != "..."]
            if len(tokens) == 1 and re.fullmatch(r"[A-Z_]+=.*", tokens[0]):
                name, value = tokens[0].split("=", 1)
                variables[name] = value
            elif tokens:
                commands.append(tokens)
    return commands


def program_of(tokens: list[str]) -> tuple[str, list[str]] | None:
    """``(program, its arguments)``, or ``None`` for lines this test does not check."""
    if tokens[0] in ("accelerate", "torchrun"):
        script = next(i for i, t in enumerate(tokens) if t.endswith(".py"))
        return tokens[script], tokens[script + 1:]
    if tokens[:3] == ["python", "-m", "multistill"]:
        tokens = tokens[2:]
    if tokens[0] == "multistill":
        return (f"multistill {tokens[1]}", tokens[2:]) if len(tokens) > 1 else None
    if tokens[0] == "python" and tokens[1] == "-m":
        return (tokens[2], tokens[3:]) if tokens[2].startswith("multistill.") else None  # e.g. pytest
    if tokens[0] == "python" and tokens[1].endswith(".py"):
        return tokens[1], tokens[2:]
    if tokens[0] in NOT_CHECKED or tokens[:2] == ["python", "-c"]:
        return None
    raise AssertionError(f"README command of an unknown program: {shlex.join(tokens)}")


def _capture(main, argv: list[str]) -> argparse.ArgumentParser:
    original = argparse.ArgumentParser.parse_known_args

    def stop(self, args=None, namespace=None):
        raise _Parsing(self)

    argparse.ArgumentParser.parse_known_args = stop
    try:
        main(argv)
    except _Parsing as parsing:
        return parsing.parser
    finally:
        argparse.ArgumentParser.parse_known_args = original
    raise AssertionError(f"{main} returned without parsing its arguments")


def _script_main(path: str):
    name = "readme_" + re.sub(r"\W", "_", path)
    spec = importlib.util.spec_from_file_location(name, ROOT / path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module.main


@cache
def options(program: str) -> frozenset[str]:
    """The option strings the program's parser accepts."""
    if program.startswith("multistill "):
        from multistill.cli import build_parser

        parser = build_parser()
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        command = program.split()[1]
        assert command in sub.choices, f"multistill has no command {command!r}"
        return frozenset(parser._option_string_actions) | frozenset(sub.choices[command]._option_string_actions)
    if program == "multistill.tools.experiment":  # options it does not know go to train.py / distill.py
        from multistill.tools.experiment import main

        own = frozenset(_capture(main, [])._option_string_actions)
        return own | options("train.py") | options("distill.py")
    if program == "scripts/validation_search.py":  # options it does not know go to every run of the recipe
        return (frozenset(_capture(_script_main(program), [])._option_string_actions)
                | options("multistill.tools.experiment"))
    if program == "multistill.tools.whisper_base":
        from multistill.tools.whisper_base import main

        return frozenset(_capture(main, ["verify"])._option_string_actions) | {"verify"}
    if program.endswith(".py"):
        return frozenset(_capture(_script_main(program), [])._option_string_actions)
    return frozenset(_capture(importlib.import_module(program).main, [])._option_string_actions)


COMMANDS = [(tokens, found) for tokens in readme_commands() if (found := program_of(tokens))]


def test_readme_has_the_commands_it_documents():
    """The extraction finds the documented programs, and an option they lack is caught."""
    assert "--bogus_option" not in options("train.py") and "--learning_rate" in options("train.py")
    assert "--asr" in options("multistill stream") and "--asr" not in options("multistill convert-whisper")
    programs = {program for _, (program, _) in COMMANDS}
    assert {"train.py", "distill.py", "multistill.tools.experiment", "multistill predict", "multistill stream",
            "benchmarks/benchmark.py", "push_to_hub.py"} <= programs


@pytest.mark.parametrize("tokens,found", COMMANDS, ids=[shlex.join(t)[:60] for t, _ in COMMANDS])
def test_readme_command_options_exist(tokens, found):
    program, argv = found
    known = options(program)
    unknown = [t.split("=", 1)[0] for t in argv if t.startswith("--") and t.split("=", 1)[0] not in known]
    assert not unknown, f"{shlex.join(tokens)}: {program} has no option {unknown}"
