"""Distributions: how many comments sit at each level (0-10) of each dimension.

Draws one histogram per dimension (all comments in the window, counted in SQL),
and the suicide-risk levels of the top N topics as stacked bars (share of each
topic's scored comments at each level), topics sorted by their high-risk share.

    python -m analysis.distributions --since 7d
    python -m analysis.distributions --scorer classifier:v1 --top 20
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps

from analysis import queries
from analysis.common import (
    Context,
    add_threshold,
    add_top,
    build_context,
    make_parser,
    report_written,
    run,
    write_csv,
)
from analysis.plotting import dim_color, dim_label, new_figure, no_data_figure, save, short
from analysis.rollup_queries import source
from weibo_mh.rubric import LEVELS

TOP_DEFAULT = 15


def load(ctx: Context) -> dict[str, pd.DataFrame]:
    if not ctx.scorer:
        return {"hist": pd.DataFrame(), "levels": pd.DataFrame()}
    w = ctx.window
    hist = ctx.query(("histogram",), lambda c: source(ctx).histogram(c, w, ctx.scorer))
    levels = ctx.query(("levels_by_topic",), lambda c: source(ctx).levels_by_topic(c, w, ctx.scorer))
    return {"hist": hist, "levels": levels}


def _why(ctx: Context) -> str:
    if not ctx.scorers:
        return "the database has no scores yet (run the scoring worker)"
    return f"no scored comments in {ctx.window.describe()}"


def draw_histograms(ctx: Context, hist: pd.DataFrame) -> Path:
    path = ctx.path("histograms")
    title = f"Levels of each dimension, all comments ({ctx.scorer or 'no scorer'})"
    if hist.empty:
        return save(no_data_figure("histograms", title, _why(ctx)), path)
    dims = ctx.dimensions or queries.order_dimensions(set(hist["dimension"]))
    ncols = 2 if len(dims) <= 4 else 4
    nrows = math.ceil(len(dims) / ncols)
    fig = new_figure("histograms")
    fig.suptitle(f"{title}\n{ctx.window.describe()}", fontsize=11)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for i, d in enumerate(dims):
        h = hist[hist["dimension"] == d].set_index("value")["count"].reindex(LEVELS, fill_value=0)
        ax = axes[i]
        bars = ax.bar(h.index, h.values, color=dim_color(d, i), width=0.8)
        ax.bar_label(bars, fontsize=7, padding=1)  # the rare high levels matter most; show counts
        ax.margins(y=0.12)
        ax.set_title(f"{dim_label(d)} (n={int(h.sum())})", fontsize=10)
        ax.set_xticks(list(LEVELS))
        ax.set_xlabel("level")
        ax.set_ylabel("comments")
        ax.grid(axis="y", alpha=0.3)
        if d == queries.RISK:
            ax.axvline(ctx.threshold - 0.5, color="#333333", ls="--", lw=1)
            ax.text(ctx.threshold - 0.4, ax.get_ylim()[1] * 0.9, f"alert ≥ {ctx.threshold}", fontsize=8)
    for ax in axes[len(dims):]:
        ax.set_axis_off()
    return save(fig, path)


def risk_table(levels: pd.DataFrame, top: int, threshold: int) -> pd.DataFrame:
    """Topics x levels (counts) for the ``top`` topics with most scored comments, by high-risk share."""
    if levels.empty:
        return pd.DataFrame()
    t = levels.pivot_table(index="topic", columns="value", values="count", aggfunc="sum", fill_value=0)
    t = t.reindex(columns=list(LEVELS), fill_value=0)
    t = t.loc[t.sum(axis=1).sort_values(ascending=False, kind="stable").index[:top]]
    share = t[[lv for lv in LEVELS if lv >= threshold]].sum(axis=1) / t.sum(axis=1)
    return t.loc[share.sort_values(ascending=False, kind="stable").index]


def draw_risk_by_topic(ctx: Context, levels: pd.DataFrame, top: int) -> Path:
    path = ctx.path("risk_by_topic")
    title = f"Suicide-risk levels by topic (share of each topic's scored comments), top {top} topics"
    t = risk_table(levels, top, ctx.threshold)
    if t.empty:
        return save(no_data_figure("risk_by_topic", title, _why(ctx)), path)
    shares = t.div(t.sum(axis=1), axis=0) * 100
    fig = new_figure("risk_by_topic")
    ax = fig.add_subplot()
    cmap = colormaps["RdYlGn_r"]
    left = np.zeros(len(shares))
    labels = [f"{short(w, 18)} (n={int(n)})" for w, n in zip(shares.index, t.sum(axis=1), strict=True)]
    y = np.arange(len(shares))
    for lv in LEVELS:
        vals = shares[lv].to_numpy()
        ax.barh(y, vals, left=left, color=cmap(lv / 10), label=str(lv), height=0.8)
        left += vals
    ax.set_yticks(y, labels, fontsize=9)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of the topic's scored comments at each suicide-risk level")
    ax.set_title(f"{title}\nsorted by share at level ≥ {ctx.threshold}; {ctx.window.describe()}",
                 fontsize=11)
    ax.legend(title="level", ncols=11, loc="upper center", bbox_to_anchor=(0.5, -0.08), fontsize=8)
    return save(fig, path)


def build(ctx: Context, top: int | None = None) -> list[Path]:
    data = load(ctx)
    top = top or TOP_DEFAULT
    out = [draw_histograms(ctx, data["hist"]), draw_risk_by_topic(ctx, data["levels"], top)]
    if not data["hist"].empty:
        p = ctx.path("histograms", "csv")
        write_csv(p, data["hist"], index=False)
        out.append(p)
    t = risk_table(data["levels"], top, ctx.threshold)
    if not t.empty:
        p = ctx.path("risk_by_topic", "csv")
        write_csv(p, t)
        out.append(p)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = make_parser("distributions", __doc__)
    add_top(ap, f"topics in the stacked chart (default {TOP_DEFAULT})")
    add_threshold(ap)
    a = ap.parse_args(argv)
    ctx = build_context(a)
    paths = build(ctx, a.top)
    data = load(ctx)
    scored = int(data["hist"].groupby("dimension")["count"].sum().max()) if not data["hist"].empty else 0
    report_written(paths, {"scorer": ctx.scorer or "none", "scored comments": scored,
                           "topics": data["levels"]["topic_id"].nunique() if not data["levels"].empty else 0})
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
