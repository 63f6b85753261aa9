"""Hangul in matplotlib figures: one place that picks a font with Hangul syllables.

matplotlib's default font (DejaVu Sans) has no Hangul, so Korean text would be drawn as empty boxes. The
``plots`` extra installs koreanize-matplotlib, whose NanumGothic font files are registered here (its module is
not imported: importing it changes matplotlib's global settings and needs ``distutils``, gone in Python 3.12);
without it, any installed font with Hangul (``fonts-nanum``, Noto Sans CJK) is used. Callers keep a fallback
for machines with none (the timeline numbers its utterances instead of writing their Korean text).
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ParamSpec, TypeVar

logger = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")

HANGUL = re.compile("[\uac00-\ud7a3\u3131-\u318e]")
#: The package whose font files the ``plots`` extra brings (NanumGothic, SIL Open Font License).
FONT_PACKAGE = "koreanize_matplotlib"
INSTALL_HINT = 'pip install "multistill[plots]" (koreanize-matplotlib) or a system font such as fonts-nanum'


def has_hangul(text: str | None) -> bool:
    return bool(text) and HANGUL.search(text) is not None


def bundled_font_files() -> list[Path]:
    """koreanize-matplotlib's NanumGothic files, if that package is installed (found without importing it)."""
    spec = importlib.util.find_spec(FONT_PACKAGE)
    if spec is None or not spec.origin:
        return []
    return sorted((Path(spec.origin).parent / "fonts").glob("NanumGothic*.ttf"))


@functools.cache
def hangul_font() -> str | None:
    """Family name of a font with Hangul syllables: NanumGothic from the ``plots`` extra, else the first
    installed font that has them; ``None`` when there is none."""
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    files = bundled_font_files()
    for path in files:
        font_manager.fontManager.addfont(str(path))
    if files:
        return font_manager.FontProperties(fname=str(files[0])).get_name()
    for entry in font_manager.fontManager.ttflist:
        if "last resort" in entry.name.lower():  # maps every code point to a placeholder box
            continue
        try:
            if 0xAC00 in FT2Font(entry.fname).get_charmap():
                return entry.name
        except (OSError, RuntimeError, ValueError):
            continue
    return None


@contextmanager
def korean_text() -> Iterator[str | None]:
    """Draw the figures made inside with a Hangul font as fallback for the default one (glyph by glyph, so
    Latin text looks as before); yields the font's name, or ``None`` when no font has Hangul."""
    import matplotlib
    from matplotlib import font_manager

    font = hangul_font()
    if font is None:
        yield None
        return
    # glyph fallback needs named families: the default font first, then the Hangul one
    default = font_manager.FontProperties(fname=font_manager.findfont(font_manager.FontProperties())).get_name()
    with matplotlib.rc_context({"font.family": list(dict.fromkeys([default, font]))}):
        yield font


def with_korean_text(function: Callable[P, R]) -> Callable[P, R]:
    """Decorator: the figures a plotting function draws use :func:`korean_text`."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with korean_text():
            return function(*args, **kwargs)

    return wrapper


def warn_without_font(texts: list[str | None], what: str) -> None:
    """One warning when Korean text will be left out of a figure because no font has Hangul."""
    if hangul_font() is None and any(has_hangul(t) for t in texts):
        logger.warning("No installed font has Hangul (%s): %s", INSTALL_HINT, what)


__all__ = ["HANGUL", "has_hangul", "hangul_font", "korean_text", "warn_without_font", "with_korean_text"]
