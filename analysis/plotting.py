"""Figures without pyplot: fixed sizes, a "no data" chart, cheap bars and titles, saving PNG or SVG.

Every chart has a fixed size in inches at a fixed DPI, so a PNG's pixel size is
known in advance (tests check it) and reports look the same run after run. We use
``matplotlib.figure.Figure`` directly instead of pyplot: no global state, and each
figure is freed as soon as it is saved.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

import analysis.fonts  # noqa: F401 - selects the Agg backend before any drawing

DPI = 100

#: (width, height) in inches of each chart; pixels = inches * DPI.
SIZES: dict[str, tuple[float, float]] = {
    "trends_all": (12, 7),
    "trends_topics": (14, 10),
    "trends_topics_risk": (12, 6),
    "histograms": (12, 7),
    "risk_by_topic": (12, 8),
    "topic_heatmap": (10, 10),
    "topic_heat": (12, 6),
    "compare_scorers": (11, 10),
    "regions": (11, 8),
}

#: Fixed margins of each chart (figure fractions). matplotlib's constrained layout would
#: find them itself, but it measures every label of every axis on every save and took
#: half of the report's drawing time; the charts' contents are fixed, so fixed margins fit.
MARGINS: dict[str, dict[str, float]] = {
    "trends_all": dict(left=0.06, right=0.93, top=0.90, bottom=0.12, hspace=0.08),
    "trends_topics": dict(left=0.045, right=0.955, top=0.91, bottom=0.08, hspace=0.42, wspace=0.24),
    "trends_topics_risk": dict(left=0.06, right=0.98, top=0.88, bottom=0.15),
    "histograms": dict(left=0.06, right=0.98, top=0.87, bottom=0.08, hspace=0.45, wspace=0.2),
    "risk_by_topic": dict(left=0.19, right=0.98, top=0.91, bottom=0.13),
    "topic_heatmap": dict(left=0.25, right=0.99, top=0.85, bottom=0.03),
    "topic_heat": dict(left=0.07, right=0.98, top=0.88, bottom=0.15),
    "compare_scorers": dict(left=0.07, right=0.97, top=0.87, bottom=0.06, hspace=0.5, wspace=0.3),
    "regions": dict(left=0.17, right=0.97, top=0.86, bottom=0.12),
}

#: Dimension colours, the same in every chart.
DIM_COLORS = {"positivity": "#2a9d8f", "mood_disorder": "#7b6fd0", "substance_use": "#e9a23b",
              "suicide_risk": "#d62828"}
DIM_LABELS = {"positivity": "positivity", "mood_disorder": "mood disorder",
              "substance_use": "substance use", "suicide_risk": "suicide risk"}


def bars(ax: Axes, x: Any, heights: Any, width: float, **kw: Any) -> PolyCollection:
    """Vertical bars drawn as one collection instead of ``ax.bar``'s one Rectangle per bar.

    The report's trend charts draw a bar for every day of every topic panel: with
    ``ax.bar`` those hundreds of artists, each updating the axes' limits on its own, were
    a quarter of the report's drawing time. ``x`` may be dates (the axis's unit converter
    turns them into numbers; ``width`` is then in days, as for ``ax.bar``)."""
    ax.xaxis.update_units(x)
    xs = np.asarray(ax.convert_xunits(x), dtype=float)
    h = np.asarray(heights, dtype=float)
    lo, hi = xs - width / 2, xs + width / 2
    verts = np.stack([np.column_stack([lo, np.zeros_like(h)]), np.column_stack([lo, h]),
                      np.column_stack([hi, h]), np.column_stack([hi, np.zeros_like(h)])], axis=1)
    coll = PolyCollection(list(verts), edgecolors="none", **kw)
    ax.add_collection(coll, autolim=True)
    ax.autoscale_view()
    return coll


def title(ax: Axes, text: str, **kw: Any) -> None:
    """``ax.set_title`` at a fixed height: matplotlib otherwise measures every axis's tick
    labels on each save to keep the title clear of labels on top, which none of these
    charts has (the heatmap, whose labels are on top, keeps matplotlib's placement)."""
    ax.set_title(text, y=1.0, **kw)


def pixel_size(kind: str) -> tuple[int, int]:
    """(width, height) in pixels of a chart kind, as saved."""
    w, h = SIZES[kind]
    return int(round(w * DPI)), int(round(h * DPI))


def new_figure(kind: str) -> Figure:
    fig = Figure(figsize=SIZES[kind], dpi=DPI)
    fig.subplots_adjust(**MARGINS[kind])
    return fig


def dim_color(dim: str, i: int = 0) -> str:
    palette = ["#264653", "#f4a261", "#8ab17d", "#e76f51", "#6d597a", "#b56576", "#457b9d"]
    return DIM_COLORS.get(dim, palette[i % len(palette)])


def dim_label(dim: str) -> str:
    return DIM_LABELS.get(dim, dim)


def no_data_figure(kind: str, title: str, reason: str) -> Figure:
    """A chart of the usual size that says "no data" and why, instead of failing."""
    fig = new_figure(kind)
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_title(title, fontsize=14)
    ax.text(0.5, 0.55, "no data", ha="center", va="center", fontsize=32, color="#888888",
            transform=ax.transAxes)
    ax.text(0.5, 0.4, reason, ha="center", va="center", fontsize=12, color="#555555",
            transform=ax.transAxes, wrap=True)
    return fig


def save(fig: Figure, path: Path) -> Path:
    """Write the figure (format from the suffix) at the fixed DPI; no tight bbox, so sizes hold."""
    from analysis.common import atomic_write  # late: common imports the chart modules' helpers

    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = path.suffix.lstrip(".")
    # zlib level 3 instead of 6: a third less encoding time for 5% larger files (flat-colour charts)

    def write(tmp: Path) -> None:
        if fmt == "png":
            fig.savefig(tmp, dpi=DPI, format=fmt, pil_kwargs={"compress_level": 3})
        else:  # the SVG writer takes no PIL options
            fig.savefig(tmp, dpi=DPI, format=fmt)

    atomic_write(path, write)
    return path  # no fig.clear(): clearing re-creates every axis's ticks; the figure is garbage now


def short(text: str, n: int = 16) -> str:
    """Topic words can be long; keep chart labels readable."""
    return text if len(text) <= n else text[: n - 1] + "…"
