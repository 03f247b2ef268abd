"""Topics: which hot-search topics carry the most worrying comments, and how hot they were.

Draws a heatmap of topics x dimensions (mean level of the topic's scored comments),
rows sorted by mean suicide risk, and each topic's hot-search heat over time from
the topic snapshots the spider records on every crawl.

    python -m analysis.topics --since 2026-11-01 --top 40
    python -m analysis.topics --min-comments 50 --freq hour
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis import queries
from analysis.common import (
    Context,
    add_freq,
    add_threshold,
    add_top,
    build_context,
    make_parser,
    positive,
    report_written,
    run,
    write_csv,
)
from analysis.plotting import dim_label, new_figure, no_data_figure, save, short
from analysis.rollup_queries import source

TOP_DEFAULT = 30
MIN_COMMENTS_DEFAULT = 10
HEAT_LINES = 10


def load(ctx: Context) -> dict[str, pd.DataFrame]:
    w, f, t = ctx.window, ctx.freq, ctx.threshold
    heat = ctx.query(("topic_heat", f), lambda c: source(ctx).topic_heat(c, w, f))
    if not ctx.scorer:
        return {"means": pd.DataFrame(), "heat": heat}
    s_top = ctx.query(("series_topics", f, t), lambda c: source(ctx).series_topics(c, w, ctx.scorer, f, t))
    return {"means": queries.topic_means(s_top), "heat": heat}


def heatmap_table(means: pd.DataFrame, dims: tuple[str, ...], top: int, min_comments: int) -> pd.DataFrame:
    """Topic x dimension means for the ``top`` topics with most comments (at least ``min_comments``),
    sorted by mean suicide risk (highest first). Adds the column ``comments``."""
    if means.empty:
        return pd.DataFrame()
    n = means.groupby("topic")["n"].max()
    keep = n[n >= min_comments].sort_values(ascending=False, kind="stable").index[:top]
    if len(keep) == 0:
        return pd.DataFrame()
    t = means[means["topic"].isin(keep)].pivot_table(index="topic", columns="dimension", values="mean")
    t = t.reindex(columns=[d for d in dims if d in t.columns])
    sort_by = queries.RISK if queries.RISK in t.columns else t.columns[0]
    t["comments"] = n.reindex(t.index).astype(int)
    return t.sort_values([sort_by, "comments"], ascending=[False, False], kind="stable")


def draw_heatmap(ctx: Context, table: pd.DataFrame, top: int, min_comments: int) -> Path:
    path = ctx.path("topic_heatmap")
    title = f"Mean level per topic and dimension, top {top} topics by comments (≥ {min_comments} each)"
    if table.empty:
        why = ("the database has no scores yet (run the scoring worker)" if not ctx.scorers else
               f"no topic has ≥ {min_comments} scored comments in {ctx.window.describe()}")
        return save(no_data_figure("topic_heatmap", title, why), path)
    dims = [c for c in table.columns if c != "comments"]
    values = table[dims].to_numpy(dtype=float)
    # Colour shows concern: for positivity a low mean is the worrying end, so it is inverted.
    concern = np.array([10 - values[:, j] if d == "positivity" else values[:, j]
                        for j, d in enumerate(dims)]).T
    fig = new_figure("topic_heatmap")
    ax = fig.add_subplot()
    im = ax.imshow(concern, cmap="Reds", vmin=0, vmax=10, aspect="auto")
    fs = 9 if len(table) <= 30 else 7
    ax.set_xticks(np.arange(len(dims)), [dim_label(d) for d in dims], fontsize=9)
    ax.set_yticks(np.arange(len(table)),
                  [f"{short(w, 18)} (n={n})" for w, n in zip(table.index, table["comments"], strict=True)],
                  fontsize=fs)
    ax.xaxis.tick_top()
    for (i, j), v in np.ndenumerate(values):
        if not np.isnan(v):
            ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=fs - 1,
                    color="white" if concern[i, j] > 6 else "black")
    fig.colorbar(im, ax=ax, shrink=0.6, label="concern: mean level (positivity: 10 − mean)")
    ax.set_title(f"{title}\nsorted by mean suicide risk; {ctx.scorer}; {ctx.window.describe()}",
                 fontsize=10)
    return save(fig, path)


def draw_heat(ctx: Context, heat: pd.DataFrame) -> Path:
    path = ctx.path(f"topic_heat_{ctx.freq}")
    title = f"Hot-search heat over time (highest per {ctx.freq}), top {HEAT_LINES} topics by peak heat"
    if heat.empty:
        return save(no_data_figure("topic_heat", title,
                                   f"no topic snapshots in {ctx.window.describe()}"), path)
    peak = heat.groupby("topic")["heat"].max().sort_values(ascending=False, kind="stable")
    fig = new_figure("topic_heat")
    ax = fig.add_subplot()
    for k, word in enumerate(peak.index[:HEAT_LINES]):
        h = heat[heat["topic"] == word]
        ax.plot(h["bucket"], h["heat"], marker="o", ms=3, lw=1.4, color=f"C{k % 10}",
                label=short(word, 20))
    ax.set_ylabel("heat (Weibo hot-search score)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncols=2, loc="upper left")
    ax.set_title(f"{title}\n{ctx.window.describe()}", fontsize=11)
    fig.autofmt_xdate(bottom=0.15)
    return save(fig, path)


def build(ctx: Context, top: int | None = None, min_comments: int | None = None) -> list[Path]:
    top = top or TOP_DEFAULT
    min_comments = MIN_COMMENTS_DEFAULT if min_comments is None else min_comments
    data = load(ctx)
    table = heatmap_table(data["means"], ctx.dimensions, top, min_comments)
    out = [draw_heatmap(ctx, table, top, min_comments), draw_heat(ctx, data["heat"])]
    if not table.empty:
        p = ctx.path("topic_heatmap", "csv")
        write_csv(p, table)
        out.append(p)
    if not data["heat"].empty:
        p = ctx.path(f"topic_heat_{ctx.freq}", "csv")
        write_csv(p, data["heat"], index=False)
        out.append(p)
    return out


def add_options(ap) -> None:  # noqa: ANN001 - an argparse parser or group
    ap.add_argument("--min-comments", type=positive, metavar="N",
                    help=f"leave out topics with fewer scored comments from the heatmap "
                         f"(default {MIN_COMMENTS_DEFAULT}; their means are noise)")


def main(argv: list[str] | None = None) -> int:
    ap = make_parser("topics", __doc__)
    add_top(ap, f"topics in the heatmap (default {TOP_DEFAULT})")
    add_options(ap)
    add_freq(ap)
    add_threshold(ap)
    a = ap.parse_args(argv)
    ctx = build_context(a)
    paths = build(ctx, a.top, a.min_comments)
    data = load(ctx)
    report_written(paths, {"scorer": ctx.scorer or "none",
                           "topics with scores": data["means"]["topic"].nunique() if not data["means"].empty else 0,
                           "topics with snapshots": data["heat"]["topic"].nunique() if not data["heat"].empty else 0})
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
