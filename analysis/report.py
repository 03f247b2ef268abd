"""Report: every chart, the alert table and the headline counts in one folder with an index.html.

Runs trends, distributions, topics, regions, compare_scorers and alerts with the same
window and scorer, then writes ``index.html`` that shows every chart, the alert
table and the counts (comments, topics, scored, failed, window). Open it in a
browser or copy the folder anywhere: all links are relative and only point at
files that were written.

    python -m analysis.report --since 7d
    python -m analysis.report --db mysql+pymysql://reader@db/weibo --out /srv/www/weekly --format svg
"""

from __future__ import annotations

import html
import sys
import time
from pathlib import Path

from analysis import alerts, compare_scorers, distributions, regions, topics, trends
from analysis.common import (
    INVALID_UTF8,
    Context,
    UsageError,
    add_freq,
    add_threshold,
    add_top,
    build_context,
    make_parser,
    positive,
    prepare_out,
    report_written,
    run,
    warn_invalid_utf8,
    write_text_atomic,
)
from analysis.rollup_queries import source
from weibo_mh import db

CSS = """
body{font-family:system-ui,"Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:2em auto;max-width:1400px;
color:#222;padding:0 1em}
h1{margin-bottom:.2em} h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
.caution{background:#fff4e5;border-left:5px solid #e67e22;padding:.8em 1em;margin:1em 0}
table{border-collapse:collapse;font-size:14px} td,th{border:1px solid #ddd;padding:4px 8px;vertical-align:top}
th{background:#f5f5f5} table.counts td:last-child{text-align:right}
table.alerts td:nth-child(5){max-width:600px}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}
.meta{color:#666;font-size:13px}
"""


def _rel(path: Path, root: Path) -> str:
    return path.resolve().relative_to(root.resolve()).as_posix()


def _section(title: str, paths: list[Path], root: Path, intro: str = "") -> list[str]:
    """Charts as images, tables as links: only files that exist."""
    out = [f"<h2>{html.escape(title)}</h2>"]
    if intro:
        out.append(f"<p>{intro}</p>")
    images = [p for p in paths if p.suffix in (".png", ".svg") and p.is_file()]
    tables = [p for p in paths if p.suffix in (".csv", ".md") and p.is_file()]
    for p in images:
        rel = html.escape(_rel(p, root), quote=True)
        out.append(f"<p><a href='{rel}'><img src='{rel}' alt='{html.escape(p.stem)}'></a></p>")
    if tables:
        links = ", ".join(f"<a href='{html.escape(_rel(p, root), quote=True)}'>{html.escape(p.name)}</a>"
                          for p in tables)
        out.append(f"<p class='meta'>Data: {links}</p>")
    return out


def _counts_table(c: dict, ctx: Context) -> str:
    first = c["first"].strftime("%Y-%m-%d %H:%M") if c["first"] else "–"
    last = c["last"].strftime("%Y-%m-%d %H:%M") if c["last"] else "–"
    rows = [("window asked", ctx.window.describe()),
            ("comments in window (first – last)", f"{first} – {last}"),
            ("comments", c["comments"]), ("topics", c["topics"]),
            (f"scored by {c['scorer'] or '(no scorer)'}", c["scored"]),
            ("scoring: done / pending / claimed", f"{c['done']} / {c['pending']} / {c['claimed']}"),
            ("scoring failed", c["failed"]),
            (f"alerts (suicide risk ≥ {ctx.threshold})", c["alerts"])]
    body = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return f"<table class='counts'>{body}</table>"


def write_index(ctx: Context, sections: list[tuple[str, list[Path], str]], counts: dict,
                alert_rows, alert_total: int, alert_files: list[Path], errors: list[str]) -> Path:  # noqa: ANN001
    root = ctx.out
    crisis = alerts.resources(ctx)
    parts = ["<!doctype html><html lang='en'><head><meta charset='utf-8'>",
             "<title>weibo-mental-health report</title>", f"<style>{CSS}</style></head><body>",
             "<h1>weibo-mental-health report</h1>",
             f"<p class='meta'>Generated {db.now():%Y-%m-%d %H:%M} (Asia/Shanghai) from "
             f"{html.escape(db.mask(ctx.url))}; scorer <code>{html.escape(ctx.scorer or 'none')}</code>; "
             f"per {ctx.freq}.</p>",
             f"<div class='caution'><b>Caution.</b> {html.escape(alerts.CAUTION)}<br>"
             + (f"<b>Crisis resources:</b> {html.escape(crisis)}" if crisis else
                html.escape(alerts.NO_RESOURCES.replace("`", "")))
             + "</div>",
             "<h2>Counts</h2>", _counts_table(counts, ctx)]
    bad_text = INVALID_UTF8["values"]
    if bad_text:
        parts.append(f"<p class='caution'>{bad_text} text values in the database were not valid "
                     "UTF-8; they are shown with their bad bytes replaced by \ufffd.</p>")
    if errors:
        parts.append("<div class='caution'><b>Some sections failed:</b><ul>"
                     + "".join(f"<li>{html.escape(e)}</li>" for e in errors) + "</ul></div>")
    for title, paths, intro in sections:
        parts += _section(title, paths, root, intro)
    parts.append(f"<h2>Alerts: suicide risk ≥ {ctx.threshold}</h2>")
    shown = f"showing {len(alert_rows)} of {alert_total}" if alert_total > len(alert_rows) else \
        f"{alert_total} in the window"
    files = [p for p in alert_files if p.is_file()]
    links = ", ".join(f"<a href='{html.escape(_rel(p, root), quote=True)}'>{html.escape(p.name)}</a>"
                      for p in files)
    parts.append(f"<p class='meta'>{shown}; highest level and newest first. "
                 + (f"Files: {links}." if links else "") + "</p>")
    parts.append(alerts.html_table(alert_rows))
    parts.append("</body></html>")
    path = ctx.path("index", "html")
    write_text_atomic(path, "\n".join(parts))
    return path


def counts(ctx: Context) -> dict:
    return ctx.query(("counts", ctx.threshold),
                     lambda c: source(ctx).counts(c, ctx.window, ctx.scorer, ctx.threshold))


def build(ctx: Context, *, top_distributions: int | None = None, top_heatmap: int | None = None,
          min_comments: int | None = None, limit: int = alerts.LIMIT_DEFAULT,
          scorer_a: str | None = None, scorer_b: str | None = None) -> tuple[list[Path], dict]:
    steps = [
        ("Trends", lambda: trends.build(ctx),
         f"Mean level of each dimension per {ctx.freq}, the share of comments at suicide risk ≥ "
         f"{ctx.threshold}, and comments collected (bars)."),
        ("Distributions", lambda: distributions.build(ctx, top_distributions),
         "How many comments sit at each level; suicide-risk levels by topic."),
        ("Topics", lambda: topics.build(ctx, top_heatmap, min_comments),
         "Topics × dimensions (means, sorted by suicide risk) and hot-search heat over time."),
        ("IP locations", lambda: regions.build(ctx),
         f"Share of comments at suicide risk ≥ {ctx.threshold} by the IP location (IP属地) Weibo shows, "
         f"for locations with ≥ {regions.MIN_COMMENTS_DEFAULT} scored comments; the CSV has every "
         "location and each dimension's mean. Where Weibo placed the IP, not where people live."),
        ("Scorer agreement", lambda: compare_scorers.build(ctx, scorer_a, scorer_b),
         "Confusion matrices and Cohen's quadratic weighted kappa on comments two scorers both scored."),
    ]
    sections: list[tuple[str, list[Path], str]] = []
    errors: list[str] = []
    written: list[Path] = []
    for title, fn, intro in steps:
        t0 = time.perf_counter()
        try:
            paths = fn()
        except Exception as e:  # noqa: BLE001 - one broken chart must not lose the rest of the report
            if isinstance(e, (SystemExit, UsageError)):
                raise
            errors.append(f"{title}: {type(e).__name__}: {e}")
            print(f"error: {title} failed: {type(e).__name__}: {e}", file=sys.stderr)
            paths = []
        print(f"  {title}: {len(paths)} files in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
        sections.append((title, paths, intro))
        written += paths
    alert_files = alerts.build(ctx, limit)
    rows, total = alerts.load(ctx, limit)
    numbers = dict(counts(ctx))
    index = write_index(ctx, sections, numbers, rows, total, alert_files, errors)
    numbers["errors"] = len(errors)
    numbers["invalid_utf8"] = INVALID_UTF8["values"]
    return [*written, *alert_files, index], numbers


def main(argv: list[str] | None = None) -> int:
    ap = make_parser("report", __doc__)
    add_freq(ap)
    add_threshold(ap)
    add_top(ap, "topics drawn separately in the trend charts (default: the config's "
                "analysis.top_topics, 8)")
    ap.add_argument("--top-heatmap", type=positive, metavar="N",
                    help=f"topics in the heatmap (default {topics.TOP_DEFAULT})")
    ap.add_argument("--top-distributions", type=positive, metavar="N",
                    help=f"topics in the stacked risk chart (default {distributions.TOP_DEFAULT})")
    topics.add_options(ap)
    compare_scorers.add_options(ap)
    ap.add_argument("--limit", type=positive, default=alerts.LIMIT_DEFAULT, metavar="N",
                    help=f"alert rows in the table (default {alerts.LIMIT_DEFAULT})")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    ctx = build_context(a)
    if not a.out:
        ctx.out = ctx.out / f"report-{time.strftime('%Y%m%d-%H%M%S')}"
    prepare_out(ctx.out)
    paths, numbers = build(ctx, top_distributions=a.top_distributions, top_heatmap=a.top_heatmap,
                          min_comments=a.min_comments, limit=a.limit, scorer_a=a.scorer_a,
                          scorer_b=a.scorer_b)
    report_written(paths, {k: numbers[k] for k in ("comments", "topics", "scored", "failed", "alerts")})
    warn_invalid_utf8()
    print(f"report: {ctx.out / 'index.html'} ({len(paths)} files, {time.perf_counter() - t0:.1f}s)")
    return 1 if numbers["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(run(main))
