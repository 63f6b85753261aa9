"""Option checks shared by the benchmark scripts: a bad option is refused before anything is built or timed."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any


def check_numbers(args: Any, positive: tuple[str, ...] = (), non_negative: tuple[str, ...] = ()) -> None:
    """Refuse an option of ``args`` (a number or a list of numbers; ``None`` is unset) that is not finite and
    ``> 0`` (``positive``) or ``>= 0`` (``non_negative``): a ``UsageError`` naming it, which
    :func:`multistill.training.arguments.run_script` prints as one ``error:`` line (exit status 2)."""
    from multistill.training.arguments import UsageError

    for names, bound in ((positive, "> 0"), (non_negative, ">= 0")):
        for name in names:
            value = getattr(args, name)
            values = [] if value is None else value if isinstance(value, list) else [value]
            if not values and isinstance(value, list):
                raise UsageError(f"--{name} needs at least one value.")
            if any(not math.isfinite(v) or v < 0 or (bound == "> 0" and v == 0) for v in values):
                raise UsageError(f"--{name} must be {bound}, got {value}.")


def check_file_stem(name: str | None, argument: str = "--name") -> None:
    """Refuse an output file stem (``None``: unset) that names a folder too: the files go to ``--output_dir``."""
    from multistill.training.arguments import UsageError

    if name is not None and (Path(name).name != name or name in ("", ".", "..")):
        raise UsageError(f"{argument} {name!r}: give a file stem without a folder (the files go to --output_dir).")
