"""Compare two scorers on the comments both of them scored: confusion matrices and weighted kappa.

For each dimension: the confusion matrix of levels (scorer A down, scorer B across,
counted in SQL) and Cohen's kappa with quadratic weights, which credits near misses
(a 6 against a 7) far more than far ones (a 1 against a 9). Use it before switching
the worker to a new model, or to check a cheap scorer against a careful one.

    python -m analysis.compare_scorers --scorer-a transformers:glm-4-9b-chat --scorer-b lexicon:v2
    python -m analysis.compare_scorers --since 2026-11-01
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm

from analysis import queries
from analysis.agreement import weighted_kappa
from analysis.common import (
    Context,
    UsageError,
    build_context,
    make_parser,
    report_written,
    run,
    write_csv,
)
from analysis.plotting import dim_label, new_figure, no_data_figure, save
from analysis.rollup_queries import source
from weibo_mh.rubric import LEVELS


def matrices(conf: pd.DataFrame) -> dict[str, np.ndarray]:
    """dimension -> 11 x 11 count matrix from the (dimension, a, b, count) rows."""
    out: dict[str, np.ndarray] = {}
    for dim, g in conf.groupby("dimension"):
        m = np.zeros((len(LEVELS), len(LEVELS)), dtype=np.int64)
        for a, b, c in g[["a", "b", "count"]].itertuples(index=False):
            m[int(a), int(b)] += int(c)
        out[str(dim)] = m
    return out


def summary(conf: pd.DataFrame) -> pd.DataFrame:
    """Per dimension: pairs, quadratic kappa, exact agreement, agreement within one level."""
    rows = []
    for dim, m in matrices(conf).items():
        n = int(m.sum())
        i, j = np.indices(m.shape)
        rows.append({"dimension": dim, "pairs": n, "kappa_quadratic": weighted_kappa(m),
                     "exact": float(m[i == j].sum() / n) if n else float("nan"),
                     "within_1": float(m[np.abs(i - j) <= 1].sum() / n) if n else float("nan")})
    df = pd.DataFrame(rows, columns=["dimension", "pairs", "kappa_quadratic", "exact", "within_1"])
    order = {d: k for k, d in enumerate(queries.order_dimensions(set(df["dimension"])))}
    return df.sort_values("dimension", key=lambda s: s.map(order), ignore_index=True)


def pick_pair(ctx: Context, a: str | None, b: str | None) -> tuple[str | None, str | None]:
    """Scorer A (given, else the chart scorer) and B (given, else the next most used)."""
    for name in (a, b):
        if name and ctx.scorers and name not in ctx.scorers:
            raise UsageError(f"no scores from scorer {name!r}; known: {', '.join(ctx.scorers)}")
    a = a or ctx.scorer
    if b is None:
        b = next((s for s in ctx.scorers if s != a), None)
    if a and b and a == b:
        raise UsageError(f"--scorer-a and --scorer-b are both {a!r}: pick two different scorers")
    return a, b


def load(ctx: Context, a: str, b: str) -> pd.DataFrame:
    return ctx.query(("confusion", a, b), lambda c: source(ctx).confusion(c, ctx.window, a, b))


def build(ctx: Context, scorer_a: str | None = None, scorer_b: str | None = None) -> list[Path]:
    a, b = pick_pair(ctx, scorer_a, scorer_b)
    path = ctx.path("compare_scorers")
    title = f"Agreement between scorers: {a or '?'} (rows) vs {b or '?'} (columns)"
    if not a or not b:
        why = ("the database has no scores yet" if not ctx.scorers else
               f"only one scorer in the database ({a}); score some comments with a second backend")
        return [save(no_data_figure("compare_scorers", title, why), path)]
    conf = load(ctx, a, b)
    if conf.empty:
        why = f"no comment scored by both in {ctx.window.describe()}"
        return [save(no_data_figure("compare_scorers", title, why), path)]
    mats = matrices(conf)
    summ = summary(conf)
    dims = list(summ["dimension"])
    ncols = 2 if len(dims) <= 4 else 4
    nrows = math.ceil(len(dims) / ncols)
    fig = new_figure("compare_scorers")
    fig.suptitle(f"{title}\n{ctx.window.describe()}", fontsize=11)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, row in zip(axes, summ.itertuples(), strict=False):
        m = mats[row.dimension]
        im = ax.imshow(np.where(m > 0, m, np.nan), cmap="Blues",
                       norm=LogNorm(vmin=0.5, vmax=max(1, int(m.max()))), origin="upper")
        kappa = "n/a" if np.isnan(row.kappa_quadratic) else f"{row.kappa_quadratic:.2f}"
        ax.set_title(f"{dim_label(row.dimension)}\nκ={kappa}, exact {row.exact:.0%}, "
                     f"±1 {row.within_1:.0%}, n={row.pairs}", fontsize=9)
        ax.set_xticks(list(LEVELS))
        ax.set_yticks(list(LEVELS))
        ax.tick_params(labelsize=7)
        ax.set_xlabel(b, fontsize=8)
        ax.set_ylabel(a, fontsize=8)
        ax.plot([-0.5, 10.5], [-0.5, 10.5], color="#999999", lw=0.6)
        fig.colorbar(im, ax=ax, shrink=0.8, label="comments")
    for ax in axes[len(dims):]:
        ax.set_axis_off()
    out = [save(fig, path)]
    p = ctx.path("compare_scorers", "csv")
    write_csv(p, conf, index=False)
    p2 = ctx.path("compare_scorers_summary", "csv")
    write_csv(p2, summ, index=False)
    return out + [p, p2]


def add_options(ap) -> None:  # noqa: ANN001
    ap.add_argument("--scorer-a", metavar="NAME", help="first scorer (default: --scorer or the most used)")
    ap.add_argument("--scorer-b", metavar="NAME", help="second scorer (default: the next most used)")


def main(argv: list[str] | None = None) -> int:
    ap = make_parser("compare_scorers", __doc__)
    add_options(ap)
    a = ap.parse_args(argv)
    ctx = build_context(a)
    paths = build(ctx, a.scorer_a, a.scorer_b)
    counts: dict[str, object] = {}
    sa_, sb_ = pick_pair(ctx, a.scorer_a, a.scorer_b)
    conf = ctx.peek(("confusion", sa_, sb_))
    if conf is not None and not conf.empty:
        for row in summary(conf).itertuples():
            counts[f"{row.dimension} kappa"] = f"{row.kappa_quadratic:.3f} (n={row.pairs})"
    report_written(paths, counts or {"pairs": 0})
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
