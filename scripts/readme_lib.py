"""What every README block shares: the code paths results depend on, provenance and staleness from git, and
the formatting of figures and tables (used by ``render_readme.py`` and ``readme_recipe.py``)."""

from __future__ import annotations

import ast
import functools
import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: The code a training result depends on (the brief: everything the scripts import).
TRAINING_CODE = ("multistill", "train.py", "distill.py", "loading_scripts")
#: The code of the full-size latency benchmark.
BENCH_CODE = ("benchmarks/benchmark.py", "benchmarks/bench_lib.py", "benchmarks/bench_jobs.py",
              "multistill/modeling_multistill.py", "multistill/configuration_multistill.py",
              "multistill/processing_multistill.py", "multistill/offline.py")
STREAM_CODE = ("benchmarks/stream_rtf.py", "multistill/live/streaming.py", "multistill/live/vad.py", "multistill/asr.py",
               "multistill/pipeline_multistill.py", "multistill/modeling_multistill.py",
               "multistill/processing_multistill.py")
STALE_PREFIX = "**STALE**"


@dataclass
class Table:
    """One README block: its result files, the function that renders them, the code they depend on."""

    sources: tuple[str, ...]
    render: Callable[[dict[str, Any]], str]
    code: tuple[str, ...]
    #: code only some of the sources depend on (e.g. the script that joined two runs, not the runs themselves)
    source_code: dict[str, tuple[str, ...]] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Git: provenance and staleness
# --------------------------------------------------------------------------------------------


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=60, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


@functools.cache
def added_in(path: str) -> str | None:
    """The commit that first added ``path`` (for result files that record no commit of their own)."""
    commits = _git("log", "--diff-filter=A", "--format=%H", "--", path)
    return commits.splitlines()[-1] if commits else None


def code_of(text: str | None, path: str) -> str | None:
    """What a file does: a Python file's syntax tree without its docstrings (comments are not in it), other files
    as they are; a change of wording in a docstring or a comment leaves the figures the file made as they were."""
    if text is None or not path.endswith(".py"):
        return text
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return text
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


#: The ledger of results-neutral commits (see :func:`neutral_changes`), relative to the repository root.
NEUTRAL_CHANGES = "results/neutral_changes.json"


def neutral_changes() -> set[tuple[str, str]]:
    """``(commit, path)`` pairs of :data:`NEUTRAL_CHANGES`: commits whose change to those paths runs only where no
    result is made (an argument check before anything loads, an error message), each entry with why and how it was
    verified. Such a change does not make a block stale, so that fixes of bad-input handling in the training code
    do not mark hours of runs for rerunning; any other change to the same file still does."""
    ledger = ROOT / NEUTRAL_CHANGES
    if not ledger.is_file():
        return set()
    entries = json.loads(ledger.read_text(encoding="utf-8"))["changes"]
    return {(entry["commit"], path) for entry in entries for path in entry["paths"]}


def _code_at(revision: str, path: str) -> str | None:
    return code_of(_git("show", f"{revision}:{path}"), path)


def changed_by_others(commit: str, path: str, neutral: set[tuple[str, str]]) -> bool:
    """Whether what ``path`` does now (uncommitted edits included) differs from what it did at ``commit`` by more
    than neutral changes: walking the later commits of ``path`` in order, a neutral commit applied to a version
    already accepted makes its result accepted too (a change later reverted leaves the version accepted)."""
    accepted = {_code_at(commit, path)}
    for later in (_git("log", "--reverse", "--format=%H", f"{commit}..HEAD", "--", path) or "").split():
        if (later, path) in neutral and _code_at(f"{later}^", path) in accepted:
            accepted.add(_code_at(later, path))
    now = ROOT / path
    return code_of(now.read_text(encoding="utf-8").strip() if now.is_file() else None, path) not in accepted


def stale_since(commit: str | None, code: tuple[str, ...]) -> bool | None:
    """Whether what any of ``code`` does changed after ``commit`` (committed since, or uncommitted now: see
    :func:`code_of`; a new untracked file counts; the commits of :func:`neutral_changes` do not); None if
    unknown."""
    if not commit or _git("cat-file", "-e", f"{commit}^{{commit}}") is None:
        return None
    changed = _git("diff", "--name-only", commit, "--", *code)
    untracked = _git("ls-files", "--others", "--exclude-standard", "--", *code)
    if changed is None or untracked is None:
        return None
    if untracked:
        return True
    neutral = neutral_changes()
    for path in changed.splitlines():
        now = ROOT / path
        before = _git("show", f"{commit}:{path}")
        if (code_of(before, path) != code_of(now.read_text(encoding="utf-8").strip() if now.is_file() else None, path)
                and changed_by_others(commit, path, neutral)):
            return True
    return False


def provenance(command: str | None, commit: str | None, dirty: bool | None, source: str,
               date: str | None = None, changes: int | None = None) -> str:
    """One sentence: the source file, its command and commit (else the commit that added the file), the date."""
    if not commit:
        made = ("The file records no command or commit; it was added to the repository in commit "
                f"`{(added_in(source) or 'unknown')[:7]}`")
    else:
        tree = "" if dirty is None else (
            f" (dirty tree: {changes} uncommitted change{'s' if changes != 1 else ''})" if dirty and changes
            else " (dirty tree)" if dirty else " (clean tree)")
        made = (f"Made by `{command}`" if command else "Made") + f" at commit `{commit[:7]}`{tree}"
    return f"*Source: [`{source}`]({source}). {made}{f', {date[:10]}' if date else ''}.*"


def source_commit(data: dict[str, Any], source: str) -> str | None:
    """The commit a result file was made at (``provenance.git_commit`` or ``commit``), else the one that added it."""
    return (data.get("provenance") or {}).get("git_commit") or data.get("commit") or added_in(source)


def stale_note(files: dict[str, Any], code: tuple[str, ...],
               source_code: dict[str, tuple[str, ...]] | None = None) -> str | None:
    """The STALE paragraph when any of ``code`` (plus the source's own ``source_code``) changed after the commit of
    one of the block's result files."""
    for source, data in files.items():
        commit, depends = source_commit(data, source), code + (source_code or {}).get(source, ())
        if stale_since(commit, depends):
            return (f"{STALE_PREFIX}: code these figures depend on ({', '.join(f'`{c}`' for c in depends)}) changed "
                    f"after commit `{(commit or '')[:7]}` of `{source}`; re-run its command to refresh them.")
    return None


def from_file(data: dict[str, Any], source: str) -> str:
    """:func:`provenance` from a result file's ``provenance`` dict (``multistill.tools.experiment`` / benchmark layout)."""
    p = data.get("provenance") or {}
    return provenance(p.get("command"), p.get("git_commit"), p.get("git_dirty"), source,
                      p.get("date") or data.get("created"), p.get("git_changes"))


# --------------------------------------------------------------------------------------------
# Formatting helpers
# --------------------------------------------------------------------------------------------


def pm(stats: dict[str, Any] | None, scale: float = 100.0, digits: int = 2, signed: bool = False) -> str:
    """``mean ± std`` of a ``describe()`` dict (the mean alone for one value)."""
    if stats is None:
        return "–"
    text = f"{scale * stats['mean']:{'+' if signed else ''}.{digits}f}"
    return text if stats.get("std") is None else f"{text} ± {scale * stats['std']:.{digits}f}"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def ms(x: float) -> str:
    """Milliseconds with 3 significant figures (``2,135``, ``189``, ``75.0``)."""
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def ratio(x: float, span: list[float] | None = None) -> str:
    return f"{x:.1f}x" + (f" [{span[0]:.1f}-{span[1]:.1f}]" if span else "")


def paired_line(c: dict[str, Any], first: str = "KD", second: str = "no KD") -> str:
    """One paired comparison (macro-F1 points): mean ± std, seeds ahead, and only what holds across seeds."""
    d = c["differences"]["macro_f1"]
    text = f"{pm(d, 100.0, 1, signed=True)} ({first} ahead in {d['ahead']} of {d['n']} seeds)"
    if d.get("std") is None:
        return text + "; one seed: no conclusion."
    if d["covers_zero"]:
        return text + "; the spread covers zero: no difference shown."
    return text + f"; the spread excludes zero: {first} {'ahead' if d['mean'] > 0 else 'behind'} in mean ± std."
