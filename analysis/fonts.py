"""Chinese glyphs in charts: a CJK font on every machine, and no glyph-warning floods.

Topic names on Weibo are Chinese. matplotlib's default font (DejaVu Sans) has no
CJK glyphs, so without help every topic name would render as empty boxes. We put
a CJK font after DejaVu Sans in the fallback list: Latin text keeps its usual look
and matplotlib takes each missing glyph from the CJK font.

Where the font comes from, in order:

1. ``WEIBO_MH_CJK_FONT=/path/font.ttc``, when set;
2. a system Noto Sans CJK, Source Han Sans or WenQuanYi font (preferred when present);
3. Noto Sans CJK SC shipped by the ``mplfonts`` PyPI package (SIL Open Font License
   1.1), a dependency of the analysis group, so Linux, macOS and Windows need no apt step;
4. the usual macOS/Windows families (PingFang, YaHei …) if the package is missing.

Glyphs that no font has (an emoji in a topic word, say) would make matplotlib warn
once per glyph per draw; ``quiet_glyph_warnings`` turns all of them into one line.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any, cast

import matplotlib

matplotlib.use("Agg")  # never open a window; scripts run on servers

from matplotlib import font_manager  # noqa: E402

#: System families preferred over the packaged font: Noto Sans CJK (Debian/Ubuntu:
#: fonts-noto-cjk), Source Han Sans (the same design), WenQuanYi.
SYSTEM_FAMILIES: tuple[str, ...] = (
    "Noto Sans CJK SC", "Noto Sans CJK TC", "Noto Sans CJK JP", "Noto Sans SC",
    "Source Han Sans SC", "Source Han Sans CN",
    "WenQuanYi Zen Hei", "WenQuanYi Micro Hei",
)
#: Desktop families, tried only when neither a system font above nor the package is there.
DESKTOP_FAMILIES: tuple[str, ...] = (
    "PingFang SC", "Heiti SC", "Hiragino Sans GB", "Microsoft YaHei", "Arial Unicode MS",
)
CJK_FAMILIES: tuple[str, ...] = SYSTEM_FAMILIES + DESKTOP_FAMILIES

#: The packaged font: (import name of the package, file inside its ``fonts`` folder).
#: Only this OFL-licensed file is used; the package ships other fonts we never load.
PACKAGED_FONT = ("mplfonts", "NotoSansCJKsc-Regular.otf")

#: File-name fragments of CJK fonts that may be installed after matplotlib's cache was built.
_FILE_HINTS = ("notosanscjk", "notoserifcjk", "notosanssc", "sourcehansans", "wqy", "wenquanyi")

#: Set this to a font file (.ttf/.otf/.ttc) to use it instead of searching.
FONT_ENV = "WEIBO_MH_CJK_FONT"

INSTALL_HINT = ("reinstall the analysis requirements (`pip install mplfonts`, which ships Noto Sans "
                "CJK SC), install a system font (`apt-get install fonts-noto-cjk`), or set "
                "WEIBO_MH_CJK_FONT=/path/font.ttc")

_state: dict[str, Any] = {"done": False, "family": None, "warned": False, "source": None,
                          "glyph_warned": False, "hooked": False}


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


def packaged_font_file() -> Path | None:
    """The Noto Sans CJK SC file of the ``mplfonts`` package, or None when it is not installed."""
    package, name = PACKAGED_FONT
    spec = importlib.util.find_spec(package)  # locate only: importing it would touch rcParams
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "fonts" / name
        if path.is_file():
            return path
    return None


def _add_file(path: str | Path) -> str | None:
    try:
        font_manager.fontManager.addfont(str(path))
        return str(font_manager.FontProperties(fname=str(path)).get_name())
    except (OSError, RuntimeError, ValueError):
        return None


def find_cjk_font(candidates: tuple[str, ...] | list[str] = CJK_FAMILIES,
                  packaged: bool = True) -> str | None:
    """The CJK family to use (see the module docstring for the order), or None."""
    _state["source"] = None
    override = os.environ.get(FONT_ENV, "").strip()
    if override:
        name = _add_file(override)
        if name:
            _state["source"] = override
            return name
        print(f"warning: {FONT_ENV}={override} is not a readable font file; searching instead",
              file=sys.stderr)
    system = [c for c in candidates if c in SYSTEM_FAMILIES]
    families = _known_families()
    found = next((n for n in system if n in families), None)
    if found is None and system:
        _add_system_cjk_files()
        families = _known_families()
        found = next((n for n in system if n in families), None)
    if found:
        _state["source"] = "system"
        return found
    if packaged and candidates:
        path = packaged_font_file()
        name = _add_file(path) if path else None
        if name:
            _state["source"] = str(path)
            return name
    found = next((n for n in candidates if n not in SYSTEM_FAMILIES and n in families), None)
    if found:
        _state["source"] = "system"
    return found


def font_source() -> str | None:
    """Where the font of the last search came from: "system", a file path, or None."""
    return _state["source"]


def setup_fonts(candidates: tuple[str, ...] | list[str] = CJK_FAMILIES, force: bool = False,
                packaged: bool = True) -> str | None:
    """Configure matplotlib for Chinese text once per process; returns the CJK family used.

    Without any CJK font this prints ONE warning (per process) to stderr and returns None.
    """
    if _state["done"] and not force:
        return cast("str | None", _state["family"])
    family = find_cjk_font(candidates, packaged=packaged)
    rc = matplotlib.rcParams
    # An explicit family list (not the generic "sans-serif") turns on per-glyph fallback.
    rc["font.family"] = ["DejaVu Sans"] + ([family] if family else [])
    rc["axes.unicode_minus"] = False  # some CJK fonts lack U+2212
    rc["svg.fonttype"] = "path"       # SVGs look the same without the font installed
    if family is None and not _state["warned"]:
        print("warning: no CJK font found; Chinese topic names will show as boxes. "
              f"To fix: {INSTALL_HINT}", file=sys.stderr)
        _state["warned"] = True
    quiet_glyph_warnings()
    _state["done"] = True
    _state["family"] = family
    return family


def quiet_glyph_warnings() -> None:
    """Show at most one line, ever, for glyphs that no configured font has.

    matplotlib warns once per missing glyph and per draw (a hundred lines for one
    report without a CJK font). The first such warning becomes one line on stderr;
    the rest are dropped. Other warnings pass unchanged. The font manager's
    "findfont" log lines are silenced too: the fallback list above is deliberate.
    """
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    if _state["hooked"]:
        return
    _state["hooked"] = True
    previous = warnings.showwarning

    def show(message: Any, category: Any, filename: str, lineno: int, file: Any = None,
             line: str | None = None) -> None:
        if issubclass(category, UserWarning) and "missing from font" in str(message):
            if not _state["glyph_warned"]:
                _state["glyph_warned"] = True
                print(f"warning: {str(message).splitlines()[0]} (and maybe other characters; "
                      "shown once, they draw as boxes)", file=sys.stderr)
            return
        previous(message, category, filename, lineno, file, line)

    warnings.showwarning = show
