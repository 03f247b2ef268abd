"""Chinese glyphs in charts: find a CJK font through matplotlib's font manager.

Topic names on Weibo are Chinese. matplotlib's default font (DejaVu Sans) has no
CJK glyphs, so without help every topic name would render as empty boxes. We put
a CJK font after DejaVu Sans in the fallback list: Latin text keeps its usual look
and matplotlib takes each missing glyph from the CJK font. With no CJK font at all
we print one warning and carry on (charts still render, names as boxes).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # never open a window; scripts run on servers

from matplotlib import font_manager  # noqa: E402

#: Families tried in order. Noto Sans CJK (Debian/Ubuntu: fonts-noto-cjk) first, then
#: WenQuanYi, then the usual macOS/Windows families for analysts on their laptops.
CJK_FAMILIES: tuple[str, ...] = (
    "Noto Sans CJK SC", "Noto Sans CJK TC", "Noto Sans CJK JP", "Noto Sans SC",
    "Source Han Sans SC", "Source Han Sans CN",
    "WenQuanYi Zen Hei", "WenQuanYi Micro Hei",
    "PingFang SC", "Heiti SC", "Hiragino Sans GB", "Microsoft YaHei", "SimHei",
    "Arial Unicode MS",
)

#: File-name fragments of CJK fonts that may be installed after matplotlib's cache was built.
_FILE_HINTS = ("notosanscjk", "notoserifcjk", "notosanssc", "sourcehansans", "wqy", "wenquanyi")

#: Set this to a font file (.ttf/.otf/.ttc) to use it instead of searching.
FONT_ENV = "WEIBO_MH_CJK_FONT"

INSTALL_HINT = ("install one, e.g. `apt-get install fonts-noto-cjk` (Debian/Ubuntu) or "
                "`dnf install google-noto-sans-cjk-fonts`, or set WEIBO_MH_CJK_FONT=/path/font.ttc")

_state: dict[str, object] = {"done": False, "family": None, "warned": False}


def _known_families() -> set[str]:
    return {f.name for f in font_manager.fontManager.ttflist}


def _add_system_cjk_files() -> None:
    """Register CJK font files that matplotlib's cached font list does not know yet."""
    known = {f.fname for f in font_manager.fontManager.ttflist}
    for path in font_manager.findSystemFonts():
        if path in known:
            continue
        if any(h in Path(path).name.lower() for h in _FILE_HINTS):
            try:
                font_manager.fontManager.addfont(path)
            except (OSError, RuntimeError, ValueError):
                continue


def find_cjk_font(candidates: tuple[str, ...] | list[str] = CJK_FAMILIES) -> str | None:
    """The first installed CJK family among ``candidates``, or None."""
    override = os.environ.get(FONT_ENV, "").strip()
    if override:
        try:
            font_manager.fontManager.addfont(override)
            return font_manager.FontProperties(fname=override).get_name()
        except (OSError, RuntimeError, ValueError):
            print(f"warning: {FONT_ENV}={override} is not a readable font file; searching instead",
                  file=sys.stderr)
    families = _known_families()
    for name in candidates:
        if name in families:
            return name
    if not candidates:
        return None
    _add_system_cjk_files()
    families = _known_families()
    return next((name for name in candidates if name in families), None)


def setup_fonts(candidates: tuple[str, ...] | list[str] = CJK_FAMILIES, force: bool = False) -> str | None:
    """Configure matplotlib for Chinese text once per process; returns the CJK family used.

    Without a CJK font this prints ONE warning (per process) to stderr and returns None.
    """
    if _state["done"] and not force:
        return _state["family"]  # type: ignore[return-value]
    family = find_cjk_font(candidates)
    rc = matplotlib.rcParams
    # An explicit family list (not the generic "sans-serif") turns on per-glyph fallback.
    rc["font.family"] = ["DejaVu Sans"] + ([family] if family else [])
    rc["axes.unicode_minus"] = False  # some CJK fonts lack U+2212
    rc["svg.fonttype"] = "path"       # SVGs look the same without the font installed
    if family is None and not _state["warned"]:
        print("warning: no CJK font found (Noto Sans CJK or WenQuanYi); Chinese topic names will "
              f"show as boxes. To fix: {INSTALL_HINT}", file=sys.stderr)
        _state["warned"] = True
    _state["done"] = True
    _state["family"] = family
    return family
