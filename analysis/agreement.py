"""How well do the scorers agree with human labels? Kappa, alpha, confusion, F1, reliability.

Human labels are the ``scores`` rows of scorers named ``human:<username>`` (written by
the review console). Per dimension and for every pair of scorers in which at least one
is human (human-human and human-machine), on the comments both scored: Cohen's kappa
with quadratic weights, exact agreement, agreement within one level, the 11 x 11
confusion matrix and, for suicide risk, binary F1 at the high-risk level (>= 6, the
first scorer of the pair being the reference). Across all annotators: Krippendorff's
alpha with the ordinal metric, per dimension. For each machine scorer that gives
confidences: a reliability curve, its stated confidence against how often its level
equals the human's.

    python -m analysis.agreement --out reports/agreement
    python -m analysis.agreement --db sqlite:///data/weibo.db --format svg
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from weibo_mh import db
from weibo_mh.rubric import HIGH_RISK_LEVEL, LEVELS, SUICIDE_RISK

S = db.scores
HUMAN = "human:"
#: In binary order every scorer name that starts with "human:" sorts between these two.
HUMAN_LO, HUMAN_HI = "human:", "human;"
RISK = SUICIDE_RISK
BINS = 10


def human_scorer(col: sa.ColumnElement, conn: Connection) -> sa.ColumnElement[bool]:
    """``col`` names a human scorer, in a form each database serves from the scorer index.

    SQLite's LIKE ignores case and so skips the index, but its comparisons are binary: a
    range. MySQL's unicode collations sort ";" before ":", so the range is wrong there, but
    a prefix LIKE uses the index.
    """
    if db.is_sqlite(conn):
        return sa.and_(col >= HUMAN_LO, col < HUMAN_HI)
    return col.like("human:%")


def is_human(scorer: str) -> bool:
    return scorer.startswith(HUMAN)


# --------------------------------------------------------------------------- arithmetic


def weighted_kappa(matrix: np.ndarray, weights: str = "quadratic") -> float:
    """Cohen's kappa of a k x k confusion matrix (rows: rater A, columns: rater B).

    ``quadratic`` (default) or ``linear`` disagreement weights, or ``none``. NaN when
    undefined (no pairs, or both raters always gave the same single level).
    """
    o = np.asarray(matrix, dtype=float)
    n = o.sum()
    if n == 0:
        return float("nan")
    k = o.shape[0]
    i, j = np.indices((k, k))
    if weights == "quadratic":
        w = (i - j) ** 2 / (k - 1) ** 2
    elif weights == "linear":
        w = np.abs(i - j) / (k - 1)
    elif weights == "none":
        w = (i != j).astype(float)
    else:
        raise ValueError(f"weights must be quadratic, linear or none, not {weights!r}")
    expected = np.outer(o.sum(axis=1), o.sum(axis=0)) / n
    denom = (w * expected).sum()
    if denom == 0:
        return float("nan")
    return float(1.0 - (w * o).sum() / denom)


def binary_f1(reference: np.ndarray, predicted: np.ndarray, level: int = HIGH_RISK_LEVEL) -> float:
    """F1 of "predicted >= level" against "reference >= level"; NaN when neither has a positive."""
    ref = np.asarray(reference) >= level
    pred = np.asarray(predicted) >= level
    tp = int(np.sum(ref & pred))
    fp = int(np.sum(~ref & pred))
    fn = int(np.sum(ref & ~pred))
    if tp + fp + fn == 0:
        return float("nan")
    return 2 * tp / (2 * tp + fp + fn)


def f1_from_matrix(m: np.ndarray, level: int = HIGH_RISK_LEVEL) -> float:
    """``binary_f1`` from a confusion matrix (rows: reference, columns: predicted)."""
    tp = m[level:, level:].sum()
    fp = m[:level, level:].sum()
    fn = m[level:, :level].sum()
    if tp + fp + fn == 0:
        return float("nan")
    return float(2 * tp / (2 * tp + fp + fn))


def krippendorff_alpha_ordinal(units: list[list[int]], levels: int = len(LEVELS)) -> float:
    """Krippendorff's alpha with the ordinal metric; ``units`` holds each unit's values.

    Units with fewer than two values are not pairable and are left out. NaN when
    undefined (no pairable unit, or a single level used throughout).
    """
    o = np.zeros((levels, levels))
    for values in units:
        m = len(values)
        if m < 2:
            continue
        counts = np.bincount(np.asarray(values, dtype=int), minlength=levels).astype(float)
        pairs = np.outer(counts, counts) - np.diag(counts)  # ordered pairs of different coders
        o += pairs / (m - 1)
    return _alpha_from_coincidences(o)


def alpha_from_rows(units: np.ndarray, values: np.ndarray, levels: int = len(LEVELS)) -> float:
    """``krippendorff_alpha_ordinal`` from parallel arrays (unit of each value, the value),
    vectorised: the per-unit value counts give the coincidences without a Python loop."""
    if len(units) == 0:
        return float("nan")
    _, inv = np.unique(units, return_inverse=True)
    counts = np.zeros((inv.max() + 1, levels))
    np.add.at(counts, (inv, values), 1)
    m = counts.sum(axis=1)
    keep = m >= 2
    counts, m = counts[keep], m[keep]
    if not len(m):
        return float("nan")
    # o = sum over units of (n_uc n_uk - [c = k] n_uc) / (m_u - 1)
    w = counts / (m - 1)[:, None]
    o = w.T @ counts - np.diag(w.sum(axis=0))
    return _alpha_from_coincidences(o)


def _alpha_from_coincidences(o: np.ndarray) -> float:
    levels = o.shape[0]
    n_c = o.sum(axis=1)
    n = n_c.sum()
    if n <= 1:
        return float("nan")
    cum = np.concatenate([[0.0], np.cumsum(n_c)])
    c, k = np.indices((levels, levels))
    lo, hi = np.minimum(c, k), np.maximum(c, k)
    delta2 = (cum[hi + 1] - cum[lo] - (n_c[c] + n_c[k]) / 2) ** 2
    d_o = (o * delta2).sum()
    d_e = (np.outer(n_c, n_c) * delta2).sum() / (n - 1)
    if d_e == 0:
        return float("nan")
    return float(1 - d_o / d_e)


# --------------------------------------------------------------------------- data


def pair_rows(conn: Connection) -> pd.DataFrame:
    """Every (human, other scorer) pair of scores on one comment and dimension.

    Driven by the human scores (the scorer index), each partner found through the
    primary key, so the cost grows with the labels, not with the database.
    """
    h = S.alias("h")
    o = S.alias("o")
    q = (sa.select(h.c.comment_id, h.c.dimension, h.c.scorer, h.c.value, o.c.scorer, o.c.value,
                   o.c.confidence)
         .select_from(h.join(o, sa.and_(o.c.comment_id == h.c.comment_id,
                                        o.c.dimension == h.c.dimension, o.c.scorer != h.c.scorer)))
         .where(human_scorer(h.c.scorer, conn)))
    df = pd.DataFrame([tuple(r) for r in conn.execute(q)],
                      columns=["comment_id", "dimension", "a", "a_value", "b", "b_value", "b_confidence"])
    if df.empty:
        return df
    human_b = df["b"].str.startswith(HUMAN)
    return df[~human_b | (df["a"] < df["b"])].reset_index(drop=True)


def human_labels(conn: Connection) -> pd.DataFrame:
    q = (sa.select(S.c.comment_id, S.c.dimension, S.c.scorer, S.c.value)
         .where(human_scorer(S.c.scorer, conn)))
    return pd.DataFrame([tuple(r) for r in conn.execute(q)],
                        columns=["comment_id", "dimension", "scorer", "value"])


@dataclass
class Agreement:
    pairs: pd.DataFrame
    matrices: dict[tuple[str, str, str], np.ndarray] = field(default_factory=dict)
    alpha: pd.DataFrame = field(default_factory=pd.DataFrame)
    reliability: pd.DataFrame = field(default_factory=pd.DataFrame)
    labels: int = 0
    annotators: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return self.pairs.empty


PAIR_COLUMNS = ["dimension", "scorer_a", "scorer_b", "kind", "comments", "kappa_quadratic",
                "exact", "within_1", "f1_high_risk"]


def compute(conn: Connection) -> Agreement:
    """All the figures, from the human labels and whatever other scores those comments have."""
    from analysis.queries import order_dimensions

    rows = pair_rows(conn)
    labels = human_labels(conn)
    out = Agreement(pairs=pd.DataFrame(columns=PAIR_COLUMNS), labels=len(labels),
                    annotators=tuple(sorted(labels["scorer"].unique())) if not labels.empty else ())
    dim_order = {d: i for i, d in enumerate(order_dimensions(set(labels["dimension"])))} \
        if not labels.empty else {}
    table = []
    for (dim, a, b), g in rows.groupby(["dimension", "a", "b"], sort=True):
        m = np.zeros((len(LEVELS), len(LEVELS)), dtype=np.int64)
        np.add.at(m, (g["a_value"].astype(int).to_numpy(), g["b_value"].astype(int).to_numpy()), 1)
        out.matrices[(str(dim), str(a), str(b))] = m
        n = int(m.sum())
        i, j = np.indices(m.shape)
        table.append({"dimension": dim, "scorer_a": a, "scorer_b": b,
                      "kind": "human-human" if is_human(str(b)) else "human-machine", "comments": n,
                      "kappa_quadratic": weighted_kappa(m), "exact": m[i == j].sum() / n,
                      "within_1": m[np.abs(i - j) <= 1].sum() / n,
                      "f1_high_risk": f1_from_matrix(m) if dim == RISK else float("nan")})
    if table:
        df = pd.DataFrame(table, columns=PAIR_COLUMNS)
        df["_o"] = df["dimension"].map(dim_order).fillna(99)
        out.pairs = df.sort_values(["_o", "kind", "scorer_a", "scorer_b"]).drop(columns="_o") \
            .reset_index(drop=True)
    alpha = []
    if not labels.empty:
        for dim, g in labels.groupby("dimension"):
            m_u = g.groupby("comment_id")["value"].transform("size")
            pairable = g[m_u >= 2]
            alpha.append({"dimension": dim, "annotators": g["scorer"].nunique(),
                          "comments_double_coded": int(pairable["comment_id"].nunique()),
                          "alpha_ordinal": alpha_from_rows(pairable["comment_id"].to_numpy(),
                                                           pairable["value"].astype(int).to_numpy())})
    out.alpha = pd.DataFrame(alpha, columns=["dimension", "annotators", "comments_double_coded",
                                             "alpha_ordinal"])
    if not out.alpha.empty:
        out.alpha = out.alpha.sort_values("dimension", key=lambda s: s.map(dim_order).fillna(99),
                                          ignore_index=True)
    out.reliability = reliability(rows)
    return out


def reliability(rows: pd.DataFrame, bins: int = BINS) -> pd.DataFrame:
    """Per machine scorer and dimension, confidence in ``bins`` equal bins: pairs, mean
    confidence, and the share of pairs whose level equals the human's."""
    cols = ["scorer", "dimension", "bin_low", "bin_high", "pairs", "mean_confidence", "accuracy"]
    if rows.empty:
        return pd.DataFrame(columns=cols)
    m = rows[~rows["b"].str.startswith(HUMAN) & rows["b_confidence"].notna()].copy()
    if m.empty:
        return pd.DataFrame(columns=cols)
    conf = m["b_confidence"].astype(float).clip(0, 1)
    # + 1e-9: 0.7 * 10 is 6.999… in binary floating point, and 0.7 belongs to the 0.7-0.8 bin
    m["bin"] = np.minimum(np.floor(conf * bins + 1e-9).astype(int), bins - 1)
    m["conf"] = conf
    m["hit"] = (m["a_value"].astype(int) == m["b_value"].astype(int)).astype(float)
    g = m.groupby(["b", "dimension", "bin"], as_index=False).agg(pairs=("hit", "size"),
                                                                 mean_confidence=("conf", "mean"),
                                                                 accuracy=("hit", "mean"))
    g["bin_low"] = g["bin"] / bins
    g["bin_high"] = (g["bin"] + 1) / bins
    g = g.rename(columns={"b": "scorer"})
    return g[cols].sort_values(["scorer", "dimension", "bin_low"], ignore_index=True)


def confusion_long(ag: Agreement) -> pd.DataFrame:
    rows = [(dim, a, b, i, j, int(m[i, j])) for (dim, a, b), m in ag.matrices.items()
            for i in LEVELS for j in LEVELS if m[i, j]]
    return pd.DataFrame(rows, columns=["dimension", "scorer_a", "scorer_b", "a", "b", "count"])


# --------------------------------------------------------------------------- output


def _num(x: float, pct: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:.0%}" if pct else f"{x:.3f}"


def markdown(ag: Agreement) -> str:
    lines = ["# Agreement between human labels and the scorers", "",
             f"{ag.labels} human label rows from {len(ag.annotators)} annotator(s)"
             + (f": {', '.join(f'`{a}`' for a in ag.annotators)}." if ag.annotators else "."), ""]
    if ag.empty:
        lines.append("No comment has both a human label and a second score yet.")
        return "\n".join(lines) + "\n"
    lines += ["## Pairs of scorers", "",
              "Scorer A is the reference for F1 (suicide risk, high risk = level ≥ 6).", "",
              "| dimension | scorer A | scorer B | comments | κ (quadratic) | exact | ±1 | F1 high risk |",
              "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in ag.pairs.itertuples():
        lines.append(f"| {r.dimension} | `{r.scorer_a}` | `{r.scorer_b}` | {r.comments} | "
                     f"{_num(r.kappa_quadratic)} | {_num(r.exact, True)} | {_num(r.within_1, True)} | "
                     f"{_num(r.f1_high_risk)} |")
    lines += ["", "## Krippendorff's alpha (ordinal) across annotators", "",
              "| dimension | annotators | double-coded comments | α |", "|---|---:|---:|---:|"]
    for r in ag.alpha.itertuples():
        lines.append(f"| {r.dimension} | {r.annotators} | {r.comments_double_coded} | {_num(r.alpha_ordinal)} |")
    if not ag.reliability.empty:
        lines += ["", "## Reliability of machine confidence", "",
                  "| scorer | dimension | confidence | pairs | mean confidence | level = human's |",
                  "|---|---|---|---:|---:|---:|"]
        for r in ag.reliability.itertuples():
            lines.append(f"| `{r.scorer}` | {r.dimension} | {r.bin_low:.1f}–{r.bin_high:.1f} | {r.pairs} | "
                         f"{r.mean_confidence:.2f} | {_num(r.accuracy, True)} |")
    return "\n".join(lines) + "\n"


def figures(ag: Agreement, out: Path, fmt: str = "png") -> list[Path]:
    """Confusion matrices for suicide risk (every pair) and the reliability curves."""
    from functools import partial

    from matplotlib.figure import Figure

    from analysis.common import atomic_write
    from analysis.fonts import setup_fonts

    setup_fonts()
    paths = []
    keys = [k for k in ag.matrices if k[0] == RISK]
    fig = Figure(figsize=(11, 9), dpi=100, layout="constrained")
    if not keys:
        ax = fig.add_subplot()
        ax.set_axis_off()
        ax.text(0.5, 0.5, "no data: no suicide-risk label has a second score yet", ha="center",
                transform=ax.transAxes)
    else:
        ncols = min(3, len(keys))
        nrows = math.ceil(len(keys) / ncols)
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        for ax, key in zip(axes, keys, strict=False):
            m = ag.matrices[key]
            ax.imshow(m, cmap="Blues", origin="upper")
            for i in LEVELS:
                for j in LEVELS:
                    if m[i, j]:
                        ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=6)
            k = weighted_kappa(m)
            ax.set_title(f"{key[1]} vs {key[2]}\nκ={_num(k)}, n={int(m.sum())}", fontsize=8)
            ax.set_xlabel(key[2], fontsize=7)
            ax.set_ylabel(key[1], fontsize=7)
            ax.set_xticks(list(LEVELS))
            ax.set_yticks(list(LEVELS))
            ax.tick_params(labelsize=6)
        for ax in axes[len(keys):]:
            ax.set_axis_off()
    fig.suptitle("Suicide risk: confusion matrices (rows: scorer A)")
    p = out / f"agreement_confusion.{fmt}"
    atomic_write(p, partial(fig.savefig, format=fmt))
    paths.append(p)
    fig = Figure(figsize=(8, 6), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="#999999", lw=0.8, ls="--", label="perfectly calibrated")
    rel = ag.reliability
    if rel.empty:
        ax.text(0.5, 0.5, "no data: no machine confidence on human-labelled comments",
                ha="center", transform=ax.transAxes)
    else:
        for (scorer, dim), g in rel.groupby(["scorer", "dimension"]):
            ax.plot(g["mean_confidence"], g["accuracy"], marker="o", label=f"{scorer} · {dim}")
        ax.legend(fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("machine confidence")
    ax.set_ylabel("share whose level equals the human label")
    ax.set_title("Reliability of machine confidence against human labels")
    p = out / f"agreement_reliability.{fmt}"
    atomic_write(p, partial(fig.savefig, format=fmt))
    paths.append(p)
    return paths


def write(ag: Agreement, out: Path, fmt: str = "png") -> list[Path]:
    from analysis.common import (  # not at import: the console stays light
        write_csv,
        write_text_atomic,
    )

    out.mkdir(parents=True, exist_ok=True)
    paths = []
    md = out / "agreement.md"
    write_text_atomic(md, markdown(ag))
    paths.append(md)
    for name, df in (("agreement_pairs", ag.pairs), ("agreement_alpha", ag.alpha),
                     ("agreement_confusion", confusion_long(ag)),
                     ("agreement_reliability", ag.reliability)):
        p = out / f"{name}.csv"
        write_csv(p, df, index=False)
        paths.append(p)
    return paths + figures(ag, out, fmt)


def main(argv: list[str] | None = None) -> int:
    from analysis.common import Parser, open_database, prepare_out, report_written
    from weibo_mh.config import load_or_exit, resolve_sqlite_url

    doc = __doc__ or ""
    ap = Parser(prog="python -m analysis.agreement", description=doc.split("\n\n    python")[0],
                formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", metavar="FILE",
                    help="TOML config (default: $WEIBO_MH_CONFIG or configs/default.toml)")
    ap.add_argument("--db", metavar="URL", help="database URL (default: DATABASE_URL, else database.url)")
    ap.add_argument("--out", metavar="DIR", help="output folder (default: the config's analysis.out_dir)")
    ap.add_argument("--format", choices=("png", "svg"), default="png", help="chart format (default png)")
    a = ap.parse_args(argv)
    cfg = load_or_exit(a.config)
    url = resolve_sqlite_url(a.db, Path.cwd()) if a.db else cfg.database.url
    engine = open_database(url)
    with engine.connect() as conn:
        ag = compute(conn)
    out = Path(a.out) if a.out else Path(cfg.analysis.out_dir)
    prepare_out(out)  # a file or a read-only folder there: one line and exit 2, not a traceback
    paths = write(ag, out, a.format)
    report_written(paths, {"human labels": ag.labels, "annotators": len(ag.annotators),
                           "pairs of scorers": len(ag.pairs) // max(1, ag.pairs["dimension"].nunique())
                           if not ag.empty else 0})
    return 0


if __name__ == "__main__":
    from analysis.common import run

    raise SystemExit(run(main))
