"""Trends over time: the mean of each dimension and the share of high-risk comments per day.

Draws all comments together, then the top N topics (by scored comments) as small
multiples, and the high-risk share of those topics on one chart. Bars show how
many comments were collected in each bucket, so a spike in a mean can be read
against how many comments it rests on.

    python -m analysis.trends --since 2026-11-01 --freq day
    python -m analysis.trends --topic 高考 --freq hour --format svg
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pandas as pd

from analysis import queries
from analysis.common import (
    Context,
    add_freq,
    add_threshold,
    add_top,
    build_context,
    make_parser,
    report_written,
    run,
    write_csv,
)
from analysis.plotting import (
    bars,
    dim_color,
    dim_label,
    new_figure,
    no_data_figure,
    save,
    short,
    title,
)
from analysis.rollup_queries import source

TITLE = "Trends"


def _axis_index(frames: list[pd.DataFrame], freq: str) -> pd.DatetimeIndex:
    """Every bucket from the first to the last with data, so gaps show as gaps."""
    times = pd.concat([f["bucket"] for f in frames if not f.empty])
    step = "D" if freq == "day" else "h"
    return pd.date_range(times.min(), times.max(), freq=step)


def _bar_width(freq: str) -> float:
    return 0.8 if freq == "day" else 0.8 / 24


def load(ctx: Context) -> dict[str, pd.DataFrame]:
    """The aggregated tables this chart needs (cached for the report)."""
    w, f, t = ctx.window, ctx.freq, ctx.threshold
    if not ctx.scorer:
        empty = pd.DataFrame()
        return {"all": empty, "volume": empty, "topics": empty, "top": empty, "topic_volume": empty}
    s_all = ctx.query(("series_all", f, t), lambda c: source(ctx).series_all(c, w, ctx.scorer, f, t))
    vol = ctx.query(("volume_all", f), lambda c: source(ctx).volume_all(c, w, f))
    s_top = ctx.query(("series_topics", f, t), lambda c: source(ctx).series_topics(c, w, ctx.scorer, f, t))
    top = queries.top_topics(s_top, ctx.top)
    ids = [int(i) for i in top["topic_id"]]
    vol_t = ctx.query(("volume_topics", f, tuple(ids)), lambda c: source(ctx).volume_topics(c, w, ids, f))
    return {"all": s_all, "volume": vol, "topics": s_top, "top": top, "topic_volume": vol_t}


def _draw_panel(ax, series: pd.DataFrame, volume: pd.DataFrame, index: pd.DatetimeIndex,
                dims: tuple[str, ...], freq: str, legend: bool, small: bool = False) -> None:
    vax = ax.twinx()
    v = volume.set_index("bucket")["comments"].reindex(index, fill_value=0)
    if len(index) > 200:  # thousands of bars draw slowly and read no better than an area
        vax.fill_between(index, v.values, step="mid", color="#cfd8dc", label="comments collected")
    else:
        bars(vax, index, v.values, _bar_width(freq), facecolors="#cfd8dc", label="comments collected")
    vax.set_ylim(bottom=0)
    vax.set_ylabel("comments", fontsize=8 if small else 10)
    ax.set_zorder(vax.get_zorder() + 1)
    ax.patch.set_visible(False)
    for i, d in enumerate(dims):
        m = series[series["dimension"] == d].set_index("bucket")["mean"].reindex(index)
        ax.plot(index, m.values, color=dim_color(d, i), lw=1.2 if small else 1.8, marker="." if len(index) < 40 else None,
                label=f"mean {dim_label(d)}")
    ax.set_ylim(0, 10)
    ax.set_ylabel("mean level (0–10)", fontsize=8 if small else 10)
    ax.grid(axis="y", alpha=0.3)
    if legend:
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = vax.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, loc="upper left", fontsize=8, ncols=3)
    if small:
        ax.tick_params(labelsize=7)
        vax.tick_params(labelsize=7)


def _share(series: pd.DataFrame, index: pd.DatetimeIndex) -> pd.Series:
    r = series[series["dimension"] == queries.RISK].set_index("bucket")
    return (100.0 * r["high"] / r["n"]).reindex(index)


def draw_all(ctx: Context, data: dict[str, pd.DataFrame]) -> Path:
    path = ctx.path(f"trends_all_{ctx.freq}")
    heading = f"{TITLE}: all comments, per {ctx.freq} ({ctx.scorer or 'no scorer'})"
    s, vol = data["all"], data["volume"]
    if s.empty:
        return save(no_data_figure("trends_all", heading, _why(ctx)), path)
    index = _axis_index([s, vol], ctx.freq)
    fig = new_figure("trends_all")
    ax, ax2 = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    _draw_panel(ax, s, vol, index, ctx.dimensions, ctx.freq, legend=True)
    title(ax, heading + f"\n{ctx.window.describe()}", fontsize=11)
    share = _share(s, index)
    ax2.plot(index, share.values, color=dim_color(queries.RISK), lw=1.6,
             marker="." if len(index) < 40 else None)
    ax2.set_ylabel(f"% suicide risk ≥ {ctx.threshold}", fontsize=9)
    ax2.set_ylim(bottom=0)
    ax2.grid(alpha=0.3)
    fig.autofmt_xdate(bottom=0.12)
    return save(fig, path)


def draw_topics(ctx: Context, data: dict[str, pd.DataFrame]) -> list[Path]:
    p1 = ctx.path(f"trends_topics_{ctx.freq}")
    p2 = ctx.path(f"trends_topics_risk_{ctx.freq}")
    t1 = f"{TITLE}: top {ctx.top} topics by scored comments, per {ctx.freq}"
    t2 = f"Share of comments with suicide risk ≥ {ctx.threshold}, top {ctx.top} topics, per {ctx.freq}"
    top, s = data["top"], data["topics"]
    if top.empty:
        why = _why(ctx)
        return [save(no_data_figure("trends_topics", t1, why), p1),
                save(no_data_figure("trends_topics_risk", t2, why), p2)]
    index = _axis_index([s[s["topic_id"].isin(top["topic_id"])], data["topic_volume"]], ctx.freq)
    n = len(top)
    ncols = 2 if n <= 8 else 3
    nrows = math.ceil(n / ncols)
    fig = new_figure("trends_topics")
    fig.suptitle(t1 + f"\n{ctx.window.describe()}", fontsize=11)
    axes = fig.subplots(nrows, ncols, sharex=True, squeeze=False).ravel()
    for k, row in enumerate(top.itertuples()):
        ts = s[s["topic_id"] == row.topic_id]
        vol = data["topic_volume"][data["topic_volume"]["topic_id"] == row.topic_id]
        _draw_panel(axes[k], ts, vol, index, ctx.dimensions, ctx.freq, legend=(k == 0), small=True)
        title(axes[k], f"{short(row.topic, 24)} (n={row.comments})", fontsize=9)
    for ax in axes[n:]:
        ax.set_axis_off()
    for ax in axes:
        for label in ax.get_xticklabels():
            label.set_rotation(30)
            label.set_fontsize(7)
    out = [save(fig, p1)]

    fig = new_figure("trends_topics_risk")
    ax = fig.add_subplot()
    for k, row in enumerate(top.itertuples()):
        share = _share(s[s["topic_id"] == row.topic_id], index)
        ax.plot(index, share.values, lw=1.4, label=short(row.topic, 20), color=f"C{k % 10}",
                marker="." if len(index) < 40 else None)
    title(ax, t2 + f"\n{ctx.window.describe()}", fontsize=11)
    ax.set_ylabel("% of the topic's scored comments")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncols=2, loc="upper left")
    fig.autofmt_xdate(bottom=0.15)
    out.append(save(fig, p2))
    return out


def _why(ctx: Context) -> str:
    if not ctx.scorers:
        return "the database has no scores yet (run the scoring worker)"
    return f"no scored comments in {ctx.window.describe()}"


def write_tables(ctx: Context, data: dict[str, pd.DataFrame]) -> list[Path]:
    out = []
    if not data["all"].empty:
        p = ctx.path(f"trends_all_{ctx.freq}", "csv")
        t = data["all"].merge(data["volume"], on="bucket", how="outer").sort_values(["bucket", "dimension"])
        t = t.astype({c: "Int64" for c in ("n", "total", "high", "comments")})  # NaN-safe integers
        write_csv(p, t, index=False)
        out.append(p)
    if not data["top"].empty:
        p = ctx.path(f"trends_topics_{ctx.freq}", "csv")
        s = data["topics"]
        write_csv(p, s[s["topic_id"].isin(data["top"]["topic_id"])], index=False)
        out.append(p)
    return out


def build(ctx: Context) -> list[Path]:
    """Draw the trend charts and write their tables; returns the files written."""
    data = load(ctx)
    if not data["all"].empty and ctx.freq == "hour":
        span = (data["all"]["bucket"].max() - data["all"]["bucket"].min()).days
        if span > 31:
            print(f"note: {span} days in hourly buckets make dense charts; narrow the window with "
                  "--since/--until or use --freq day", file=sys.stderr)
    return [draw_all(ctx, data), *draw_topics(ctx, data), *write_tables(ctx, data)]


def main(argv: list[str] | None = None) -> int:
    ap = make_parser("trends", __doc__)
    add_freq(ap)
    add_top(ap, "topics drawn separately (default: the config's analysis.top_topics, 8)")
    add_threshold(ap)
    ctx = build_context(ap.parse_args(argv))
    paths = build(ctx)
    data = load(ctx)
    report_written(paths, {"scorer": ctx.scorer or "none", "buckets": data["all"]["bucket"].nunique()
                           if not data["all"].empty else 0,
                           "scored comments": _scored(data["all"]), "topics drawn": len(data["top"])})
    return 0


def _scored(s: pd.DataFrame) -> int:
    if s.empty:
        return 0
    return int(s.groupby("dimension")["n"].sum().max())


if __name__ == "__main__":
    raise SystemExit(run(main))
