"""Regions: scores by IP location (IP属地), the province or country Weibo shows beside a comment.

One row per IP location (no location shown: "unknown"): scored comments, mean of each
core dimension, and the share at suicide risk at or above the threshold; sorted by
comments. The chart shows the high-risk share of the top locations that have at
least --min-comments scored comments (smaller groups are left out: their shares are
noise). A location is where Weibo placed the commenter's IP address, not where the
person lives (VPNs, travel, 海外 for every country abroad).

    python -m analysis.regions --since 7d
    python -m analysis.regions --min-comments 50 --top 15 --threshold 8
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis import common, queries
from analysis.alerts import CAUTION
from analysis.common import (
    Context,
    add_threshold,
    add_top,
    build_context,
    make_parser,
    positive,
    report_written,
    run,
)
from analysis.plotting import new_figure, no_data_figure, save, short
from analysis.rollup_queries import source
from weibo_mh.rubric import CORE_DIMENSIONS
from weibo_mh.sanitize import csv_cell

TOP_DEFAULT = 20
MIN_COMMENTS_DEFAULT = 20
UNKNOWN = queries.UNKNOWN_LOCATION


def table(sums: pd.DataFrame, threshold: int) -> pd.DataFrame:
    """One row per location: comments, mean_<dim> for each core dimension, high_risk_share
    (suicide risk >= threshold); sorted by comments (most first), then location."""
    cols = ["location", "comments", *(f"mean_{d}" for d in CORE_DIMENSIONS), "high_risk_share"]
    if sums.empty:
        return pd.DataFrame(columns=cols)
    # Two locations may differ only by case/collation on MariaDB; sum them as pandas sees them.
    g = sums.groupby(["location", "dimension"], as_index=False)[["n", "total", "high"]].sum()
    means = g.assign(mean=g["total"] / g["n"]).pivot(index="location", columns="dimension", values="mean")
    n = g.groupby("location")["n"].max()
    risk = g[g["dimension"] == queries.RISK].set_index("location")
    out = pd.DataFrame({"location": n.index, "comments": n.to_numpy()})
    for d in CORE_DIMENSIONS:
        out[f"mean_{d}"] = means[d].reindex(n.index).to_numpy() if d in means.columns else float("nan")
    out["high_risk_share"] = (risk["high"] / risk["n"]).reindex(n.index).to_numpy()
    out.attrs["threshold"] = threshold
    return out.sort_values(["comments", "location"], ascending=[False, True], kind="stable",
                           ignore_index=True)[cols]


def load(ctx: Context) -> pd.DataFrame:
    if not ctx.scorer:
        return table(pd.DataFrame(), ctx.threshold)
    w, s, t = ctx.window, ctx.scorer, ctx.threshold
    sums = ctx.query(("by_location", s, t), lambda c: source(ctx).by_location(c, w, s, t))
    return table(sums, t)


def chart_rows(tbl: pd.DataFrame, top: int, min_comments: int) -> pd.DataFrame:
    """The ``top`` locations with most comments among those with at least ``min_comments``."""
    keep = tbl[(tbl["comments"] >= min_comments) & tbl["high_risk_share"].notna()]
    return keep.head(top)


def draw(ctx: Context, tbl: pd.DataFrame, top: int, min_comments: int) -> Path:
    path = ctx.path("regions")
    title = (f"Share of comments at suicide risk ≥ {ctx.threshold} by IP location (IP属地), "
             f"top {top} by comments")
    rows = chart_rows(tbl, top, min_comments)
    note = (f"Locations with fewer than {min_comments} scored comments are left out. A location is "
            "where Weibo placed the IP address, not where people live.")
    if rows.empty:
        why = ("the database has no scores yet (run the scoring worker)" if not ctx.scorers else
               f"no IP location has ≥ {min_comments} scored comments in {ctx.window.describe()}")
        fig = no_data_figure("regions", title, why)
    else:
        fig = new_figure("regions")
        ax = fig.add_subplot()
        y = list(range(len(rows)))[::-1]  # most comments at the top
        share = rows["high_risk_share"].to_numpy(dtype=float) * 100
        ax.barh(y, share, color="#d62828", height=0.7)
        ax.set_yticks(y, [f"{short(loc, 12)} (n={n})" for loc, n in
                          zip(rows["location"], rows["comments"], strict=True)], fontsize=9)
        for yi, v in zip(y, share, strict=True):
            ax.text(v, yi, f" {v:.1f}%", va="center", fontsize=8)
        ax.set_xlabel(f"% of scored comments at suicide risk ≥ {ctx.threshold}")
        ax.set_xlim(0, max(10.0, float(share.max()) * 1.15))
        ax.grid(axis="x", alpha=0.3)
        ax.set_title(f"{title}\n{note}\n{ctx.scorer}; {ctx.window.describe()}", fontsize=10)
    fig.text(0.5, 0.01, f"Caution. {CAUTION}", ha="center", va="bottom", fontsize=7,
             color="#8a4b08", wrap=True)
    return save(fig, path)


def write_csv(ctx: Context, tbl: pd.DataFrame) -> Path:
    """The table as CSV; location cells are made formula-safe (they come from Weibo's pages)."""
    p = ctx.path("regions", "csv")
    out = tbl.copy()
    out["location"] = [csv_cell(v) for v in out["location"]]
    common.write_csv(p, out, index=False, encoding="utf-8-sig")
    return p


def build(ctx: Context, top: int | None = None, min_comments: int | None = None,
          tbl: pd.DataFrame | None = None) -> list[Path]:
    """The chart and the CSV; ``tbl``: the table when the caller has already loaded it."""
    top = top or TOP_DEFAULT
    min_comments = MIN_COMMENTS_DEFAULT if min_comments is None else min_comments
    tbl = load(ctx) if tbl is None else tbl
    out = [draw(ctx, tbl, top, min_comments)]
    if not tbl.empty:
        out.append(write_csv(ctx, tbl))
    return out


def add_options(ap) -> None:  # noqa: ANN001 - an argparse parser or group
    ap.add_argument("--min-comments", type=positive, metavar="N",
                    help=f"leave out IP locations with fewer scored comments from the chart "
                         f"(default {MIN_COMMENTS_DEFAULT}; the CSV keeps every location)")


def main(argv: list[str] | None = None) -> int:
    ap = make_parser("regions", __doc__)
    add_top(ap, f"IP locations in the chart (default {TOP_DEFAULT})")
    add_options(ap)
    add_threshold(ap)
    a = ap.parse_args(argv)
    ctx = build_context(a)
    tbl = load(ctx)  # one query, for the files and the counts printed
    paths = build(ctx, a.top, a.min_comments, tbl)
    report_written(paths, {"scorer": ctx.scorer or "none", "IP locations": len(tbl),
                           "scored comments": int(tbl["comments"].sum()) if not tbl.empty else 0})
    print(f"caution: {CAUTION}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
