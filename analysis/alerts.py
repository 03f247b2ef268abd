"""Alerts: the comments scored at suicide risk >= a threshold, as CSV and as a Markdown table.

One row per comment, highest level and newest first: level, confidence, time,
topics, text, and the comment and post ids needed to find it on Weibo. No author
or reply hashes are written. The Markdown starts with the caution every reader of
these rows must see.

    python -m analysis.alerts --since 1d
    python -m analysis.alerts --threshold 8 --limit 100 --topic 高考
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pandas as pd

from analysis import queries
from analysis.common import (
    Context,
    add_threshold,
    atomic_write,
    build_context,
    make_parser,
    positive,
    report_written,
    run,
    warn_invalid_utf8,
    write_text_atomic,
)
from analysis.rollup_queries import source
from weibo_mh.rubric import CAUTION
from weibo_mh.sanitize import csv_cell, visible

LIMIT_DEFAULT = 500
MD_TEXT_CHARS = 280

NO_RESOURCES = ("Set `analysis.crisis_resources` in the config to list the crisis lines your team "
                "passes on; they will be printed here.")


def load(ctx: Context, limit: int) -> tuple[pd.DataFrame, int]:
    if not ctx.scorer:
        return pd.DataFrame(columns=queries.ALERT_COLUMNS), 0
    scorer = ctx.scorer
    return ctx.query(("alerts", ctx.threshold, limit),
                     lambda c: source(ctx).alerts(c, ctx.window, scorer, ctx.threshold, limit))


def resources(ctx: Context) -> str:
    """The team's crisis resources from the config (analysis.crisis_resources), or ''."""
    return (getattr(ctx.cfg.analysis, "crisis_resources", "") if ctx.cfg else "").strip()


#: Markdown that could make a cell a link, an image, markup or another column.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]()<>!|#~])")


def _cell(text: object, limit: int | None = None) -> str:
    """A Markdown table cell: one line, controls and bidi shown visibly, link syntax escaped."""
    s = "" if text is None or (isinstance(text, float) and pd.isna(text)) else str(text)
    s = " ".join(s.split())
    if limit and len(s) > limit:
        s = s[: limit - 1] + "…"
    return _MD_SPECIAL.sub(r"\\\1", visible(s))


def html_text(text: object) -> str:
    """An HTML table cell: one line, controls and bidi shown visibly, escaped."""
    return html.escape(visible(" ".join(str(text).split())))


def fmt_time(t: object) -> str:
    return "" if t is None or pd.isna(t) else pd.Timestamp(t).strftime("%Y-%m-%d %H:%M")


def fmt_conf(c: object) -> str:
    return "" if c is None or pd.isna(c) else f"{float(c):.2f}"  # type: ignore[arg-type]


def markdown(ctx: Context, rows: pd.DataFrame, total: int, crisis: str) -> str:
    lines = [f"# Suicide-risk alerts: level ≥ {ctx.threshold}", "",
             f"> **Caution.** {CAUTION}", ">",
             f"> **Crisis resources:** {crisis}" if crisis else f"> {NO_RESOURCES}", "",
             f"Window: {ctx.window.describe()}. Scorer: `{ctx.scorer or 'none'}`. "
             f"Comments at level ≥ {ctx.threshold}: **{total}**"
             + (f" (showing the {len(rows)} highest, newest first; raise --limit for more)."
                if total > len(rows) else "."), ""]
    if rows.empty:
        lines.append("No comments at or above the threshold in this window.")
        return "\n".join(lines) + "\n"
    lines += ["| level | confidence | time (Asia/Shanghai) | topics | text | comment id |",
              "|---:|---:|---|---|---|---|"]
    for r in rows.itertuples():
        lines.append(f"| {r.level} | {fmt_conf(r.confidence)} | {fmt_time(r.time)} | "
                     f"{_cell(r.topics)} | {_cell(r.text, MD_TEXT_CHARS)} | {_cell(r.comment_id)} |")
    return "\n".join(lines) + "\n"


def html_table(rows: pd.DataFrame) -> str:
    """The alert rows as an HTML table for the report (text escaped)."""
    if rows.empty:
        return "<p>No comments at or above the threshold in this window.</p>"
    out = ["<table class='alerts'><thead><tr><th>level</th><th>confidence</th><th>time</th>"
           "<th>topics</th><th>text</th><th>comment id</th></tr></thead><tbody>"]
    for r in rows.itertuples():
        out.append(f"<tr><td>{r.level}</td><td>{fmt_conf(r.confidence)}</td><td>{fmt_time(r.time)}</td>"
                   f"<td>{html_text(r.topics)}</td><td>{html_text(r.text)}</td>"
                   f"<td>{html_text(r.comment_id)}</td></tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def build(ctx: Context, limit: int = LIMIT_DEFAULT) -> list[Path]:
    rows, total = load(ctx, limit)
    csv_path = ctx.path("alerts", "csv")
    out = rows.copy()
    out["time"] = [fmt_time(t) for t in out["time"]]
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = [csv_cell(v) for v in out[col]]
    # BOM: Excel reads the Chinese right
    atomic_write(csv_path, lambda tmp: out.to_csv(tmp, index=False, encoding="utf-8-sig"))
    md_path = ctx.path("alerts", "md")
    write_text_atomic(md_path, markdown(ctx, rows, total, resources(ctx)))
    return [csv_path, md_path]


def main(argv: list[str] | None = None) -> int:
    ap = make_parser("alerts", __doc__)
    add_threshold(ap)
    ap.add_argument("--limit", type=positive, default=LIMIT_DEFAULT, metavar="N",
                    help=f"at most N rows, highest level and newest first (default {LIMIT_DEFAULT})")
    a = ap.parse_args(argv)
    ctx = build_context(a)
    paths = build(ctx, a.limit)
    rows, total = load(ctx, a.limit)
    print(f"caution: {CAUTION}")
    report_written(paths, {"scorer": ctx.scorer or "none", "threshold": ctx.threshold,
                           "alerts in window": total, "rows written": len(rows)})
    warn_invalid_utf8()
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
