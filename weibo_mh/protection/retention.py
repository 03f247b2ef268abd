"""``weibo-mh retention``: empty old texts and delete old rows, in batches, from a timer.

``--texts-older-than DAYS`` empties the texts of comments and posts of the days before the
cut-off, and the rationales of their scores (model text that may quote them). Rows, levels,
rollups and charts stay as they were. A comment of those days still waiting to be scored
cannot be scored without its text: it becomes ``failed`` (one being scored now is left to
the next run).

``--rows-older-than DAYS`` deletes the comments of the days before the cut-off with their
scores (human labels are scores), alerts, annotation tasks and ``risk_scores`` rows, then
the posts of those days that no comment points at any more, with their topic links. The
daily rollups keep those days' counts (anonymous numbers: trend, distribution, topic and
region charts still draw them) and ``rollups verify`` / ``rebuild`` keep them too; see
``weibo_mh.rollups``, "Deleted days". Alert lists, exports and raw-row queries lose them.

``--audit-log-older-than DAYS`` deletes the review console's audit_log rows older than that.

A cut-off is a midnight (Asia/Shanghai, like every stored time): ``--rows-older-than 180``
on 2027-06-30 deletes the comments of the days before 2027-01-01, by the comment's time
(``created_at``, else when it was collected), which is also the day the rollups count it
under. Work goes in batches of ``[retention] batch_size`` comments, one short transaction
each, so the spider, the worker and the console keep writing meanwhile. Without flags the
``[retention]`` section decides (0 = keep), so a timer needs none.

    python -m weibo_mh.protection.retention --dry-run
    python -m weibo_mh.protection.retention --texts-older-than 90 --rows-older-than 730
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from weibo_mh import alert_queue, db, rollups
from weibo_mh.protection.common import LABELS, add_counts, audit, count, lines, run_cli, transaction

log = logging.getLogger(__name__)

C = db.comments
P = db.posts
S = db.scores
TEXT_GONE = "text removed by retention before it was scored"
UNSCORED = "comments.text (not yet scored: now failed)"
HUMAN = "human:%"


@dataclass(frozen=True)
class Plan:
    """Cut-offs (midnights; None: keep) and batching of one retention run."""

    texts_before: datetime | None = None
    rows_before: datetime | None = None
    audit_before: datetime | None = None
    batch_size: int = 500
    pause_seconds: float = 0.05
    repeat_days: int = 7

    def empty(self) -> bool:
        return self.texts_before is None and self.rows_before is None and self.audit_before is None

    def describe(self) -> str:
        parts = [f"{what} before {when:%Y-%m-%d}" for what, when in
                 (("texts", self.texts_before), ("rows", self.rows_before),
                  ("audit_log", self.audit_before)) if when is not None]
        return ", ".join(parts) or "nothing"


def cutoff(days: int, now: datetime | None = None) -> datetime | None:
    """Midnight of the first day kept when keeping ``days`` days (None for 0: keep all)."""
    if days <= 0:
        return None
    today = (now or db.now()).date() - timedelta(days=days)
    return datetime.combine(today, datetime.min.time())


def _unwatched() -> Any:
    """Posts the watch rounds still read keep their row (the console's watch page and the next
    round's notifications name them), whatever their age; their old comments go as any."""
    W = db.watched_posts
    return P.c.mid.not_in(sa.select(W.c.mid).where(W.c.active.is_(True)))


def _older(table: sa.Table, before: datetime) -> Any:
    """Rows whose time (created_at, else first_scraped_at) is before ``before``; written as an
    OR so that the created_at index serves it."""
    return sa.or_(table.c.created_at < before,
                  sa.and_(table.c.created_at.is_(None), table.c.first_scraped_at < before))


def _free(now: datetime) -> Any:
    """Comments no worker is scoring now (a live claim is left to the next run)."""
    return sa.or_(C.c.score_status != "claimed", C.c.lease_until.is_(None), C.c.lease_until < now)


def _doomed(plan: Plan, folded_until: datetime | None, now: datetime) -> Any:
    """SELECT of the ids of comments ``--rows-older-than`` deletes (already counted by the rollups)."""
    assert plan.rows_before is not None
    if folded_until is None:
        return sa.select(C.c.id).where(sa.false())
    return sa.select(C.c.id).where(_older(C, plan.rows_before), C.c.first_scraped_at <= folded_until,
                                   _free(now))


def _text_ids(plan: Plan, now: datetime) -> Any:
    assert plan.texts_before is not None
    return sa.select(C.c.id).where(_older(C, plan.texts_before), C.c.text != "", _free(now))


# --------------------------------------------------------------------------- dry run


def row_keys() -> list[str]:
    """The tables --rows-older-than deletes from, in the order they are printed."""
    return ["comments", "scores", LABELS, *(t.name for t, _ in rollups.ALERT_DEPENDENTS),
            *(t.name for t, _ in rollups.COMMENT_DEPENDENTS), db.risk_scores.name, "posts",
            *(t.name for t, _ in rollups.POST_DEPENDENTS)]


TEXT_KEYS = ("comments.text", UNSCORED, "scores.rationale", "posts.text")


def preview(engine: Engine, plan: Plan, now: datetime | None = None) -> tuple[dict[str, int], dict[str, int]]:
    """What a run would delete and empty, per table (nothing is changed)."""
    now = now or db.now()
    deleted = dict.fromkeys(row_keys() if plan.rows_before is not None else [], 0)
    emptied = dict.fromkeys(TEXT_KEYS if plan.texts_before is not None else (), 0)
    with engine.connect() as conn:
        if plan.rows_before is not None:
            until = rollups.state(conn, rollups.WATERMARK)
            bound = max(until, now - rollups.LAG) if until is not None else now - rollups.LAG
            doomed = _doomed(plan, bound, now)
            deleted["comments"] = count(conn, doomed)
            deleted["scores"] = count(conn, sa.select(S.c.comment_id).where(S.c.comment_id.in_(doomed)))
            deleted[LABELS] = count(conn, sa.select(S.c.comment_id).where(
                S.c.comment_id.in_(doomed), S.c.scorer.like(HUMAN)))
            alert_ids = sa.select(db.alerts.c.id).where(db.alerts.c.comment_id.in_(doomed))
            for table, col in rollups.ALERT_DEPENDENTS:
                deleted[table.name] = count(conn, sa.select(table.c[col]).where(table.c[col].in_(alert_ids)))
            for table, col in rollups.COMMENT_DEPENDENTS:
                deleted[table.name] = count(conn, sa.select(table.c[col]).where(table.c[col].in_(doomed)))
            deleted[db.risk_scores.name] = count(conn, sa.select(db.risk_scores.c.comment_id).where(
                db.risk_scores.c.comment_id.in_(doomed)))
            left = sa.exists().where(C.c.mid == P.c.mid, C.c.id.not_in(doomed))
            posts = sa.select(P.c.mid).where(_older(P, plan.rows_before), ~left, _unwatched())
            deleted["posts"] = count(conn, posts)
            for table, col in rollups.POST_DEPENDENTS:
                deleted[table.name] = count(conn, sa.select(table.c[col]).where(table.c[col].in_(posts)))
        if plan.texts_before is not None:
            ids = _text_ids(plan, now)
            if plan.rows_before is not None:   # what the rows pass deletes first is not emptied
                ids = ids.where(C.c.id.not_in(doomed))
            emptied["comments.text"] = count(conn, ids)
            emptied[UNSCORED] = count(conn, sa.select(C.c.id).where(
                C.c.id.in_(ids), C.c.score_status.in_(("pending", "claimed"))))
            emptied["scores.rationale"] = count(conn, sa.select(S.c.comment_id).where(
                S.c.comment_id.in_(ids), S.c.rationale.is_not(None)))
            post_texts = sa.select(P.c.mid).where(_older(P, plan.texts_before), P.c.text != "")
            if plan.rows_before is not None:
                post_texts = post_texts.where(P.c.mid.not_in(posts))
            emptied["posts.text"] = count(conn, post_texts)
        if plan.audit_before is not None:
            deleted["audit_log"] = count(conn, sa.select(db.audit_log.c.id).where(
                db.audit_log.c.at < plan.audit_before))
    return deleted, emptied


# --------------------------------------------------------------------------- the run


def _batches(engine: Engine, plan: Plan, step: Callable[[Connection], dict[str, int] | None],
             what: str, total: dict[str, int]) -> None:
    """Run ``step`` (one transaction each) until it returns None; a pause between two."""
    n = 0
    while True:
        got = transaction(engine, step, what)
        if got is None:
            return
        add_counts(total, got)
        n += 1
        if n % 20 == 0:
            log.info("retention: %s, %d batches so far: %s", what, n, total)
        if plan.pause_seconds:
            time.sleep(plan.pause_seconds)


def run(engine: Engine, plan: Plan) -> tuple[dict[str, int], dict[str, int]]:
    """Apply the plan in batches. Returns (deleted, emptied) rows per table; writes one audit row."""
    deleted = dict.fromkeys(row_keys() if plan.rows_before is not None else [], 0)
    emptied = dict.fromkeys(TEXT_KEYS if plan.texts_before is not None else (), 0)
    if plan.rows_before is not None:
        # fold recently collected comments into the rollups first, so their days keep them
        transaction(engine, lambda conn: rollups.refresh(conn), "refresh rollups")
        with engine.connect() as conn:
            until = rollups.state(conn, rollups.WATERMARK)
        before = plan.rows_before

        def rows_step(conn: Connection) -> dict[str, int] | None:
            ids = list(conn.execute(_doomed(plan, until, db.now()).limit(plan.batch_size)).scalars())
            if not ids:
                return None
            authors = set(conn.execute(sa.select(db.alerts.c.author_hash).where(
                db.alerts.c.comment_id.in_(ids), db.alerts.c.author_hash.is_not(None))).scalars())
            labels = count(conn, sa.select(S.c.comment_id).where(S.c.comment_id.in_(ids),
                                                                  S.c.scorer.like(HUMAN)))
            out = rollups.retire_comments(conn, ids, before)
            out[LABELS] = labels
            if authors:  # the alerts left of these authors count fewer repeats now
                alert_queue.update_repeats(conn, authors, plan.repeat_days)
            return out

        def posts_step(conn: Connection) -> dict[str, int] | None:
            mids = list(conn.execute(sa.select(P.c.mid).where(
                _older(P, before), ~sa.exists().where(C.c.mid == P.c.mid), _unwatched())
                .limit(plan.batch_size)).scalars())
            if not mids:
                return None
            out = rollups.retire_posts(conn, mids)
            out.pop(rollups.L.name, None)   # the rollups' own record of the links
            return out

        _batches(engine, plan, rows_step, "deleting old comments", deleted)
        _batches(engine, plan, posts_step, "deleting old posts", deleted)
    if plan.texts_before is not None:
        texts_before = plan.texts_before
        # keyset paging by id: emptied rows stay, and must not be walked again by every batch
        # (a batch whose transaction is retried after a lost connection leaves its rows to the
        # next run)
        last = {"comment": "", "post": ""}

        def texts_step(conn: Connection) -> dict[str, int] | None:
            ids = list(conn.execute(_text_ids(plan, db.now()).where(C.c.id > last["comment"])
                                    .order_by(C.c.id).limit(plan.batch_size)).scalars())
            if not ids:
                return None
            last["comment"] = ids[-1]
            failed = conn.execute(sa.update(C).where(C.c.id.in_(ids), C.c.score_status.in_(("pending", "claimed")))
                                  .values(score_status="failed", claimed_by=None, lease_until=None,
                                          last_error=TEXT_GONE)).rowcount
            n = conn.execute(sa.update(C).where(C.c.id.in_(ids)).values(text="", last_output=None)).rowcount
            return {"comments.text": n, UNSCORED: failed,
                    "scores.rationale": rollups.clear_rationales(conn, ids)}

        def post_texts_step(conn: Connection) -> dict[str, int] | None:
            mids = list(conn.execute(sa.select(P.c.mid).where(_older(P, texts_before), P.c.text != "",
                                                              P.c.mid > last["post"])
                                     .order_by(P.c.mid).limit(plan.batch_size)).scalars())
            if not mids:
                return None
            last["post"] = mids[-1]
            return {"posts.text": conn.execute(sa.update(P).where(P.c.mid.in_(mids)).values(text="")).rowcount}

        _batches(engine, plan, texts_step, "emptying old comment texts", emptied)
        _batches(engine, plan, post_texts_step, "emptying old post texts", emptied)
    if plan.audit_before is not None:
        deleted["audit_log"] = 0
        audit_before = plan.audit_before
        A = db.audit_log

        def audit_step(conn: Connection) -> dict[str, int] | None:
            ids = list(conn.execute(sa.select(A.c.id).where(A.c.at < audit_before).order_by(A.c.id)
                                    .limit(plan.batch_size)).scalars())
            if not ids:
                return None
            return {"audit_log": conn.execute(sa.delete(A).where(A.c.id.in_(ids))).rowcount}

        _batches(engine, plan, audit_step, "deleting old audit_log rows", deleted)
    detail = {"texts_before": plan.texts_before, "rows_before": plan.rows_before,
              "audit_before": plan.audit_before, "deleted": {k.strip(): v for k, v in deleted.items()},
              "emptied": emptied}
    transaction(engine, lambda conn: audit(conn, "retention", "", detail), "audit row")
    return deleted, emptied


# --------------------------------------------------------------------------- CLI


def plan_from(args: argparse.Namespace, cfg: Any, now: datetime | None = None) -> Plan:
    r = cfg.retention

    def pick(flag: int | None, key: int) -> int:
        return key if flag is None else flag

    return Plan(texts_before=cutoff(pick(args.texts_older_than, r.texts_days), now),
                rows_before=cutoff(pick(args.rows_older_than, r.rows_days), now),
                audit_before=cutoff(pick(args.audit_log_older_than, r.audit_log_days), now),
                batch_size=args.batch_size or r.batch_size, pause_seconds=r.pause_seconds,
                repeat_days=cfg.console.repeat_days)


def main(argv: list[str] | None = None) -> int:
    from weibo_mh.config import load_or_exit, spec_arg

    doc = __doc__ or ""
    ap = argparse.ArgumentParser(prog="python -m weibo_mh.protection.retention",
                                 description=doc.split("\n\n    python -m")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", help="database URL (default: DATABASE_URL or the config's database.url)")
    ap.add_argument("--config", help="TOML config file (default: $WEIBO_MH_CONFIG or configs/default.toml)")
    ap.add_argument("--texts-older-than", type=spec_arg("retention", "texts_days"), metavar="DAYS",
                    help="empty comment and post texts of days before today - DAYS (0: keep; "
                         "default: retention.texts_days)")
    ap.add_argument("--rows-older-than", type=spec_arg("retention", "rows_days"), metavar="DAYS",
                    help="delete comments (scores, alerts, tasks, labels) and posts of days before "
                         "today - DAYS; the rollups keep their counts (0: keep; default: "
                         "retention.rows_days)")
    ap.add_argument("--audit-log-older-than", type=spec_arg("retention", "audit_log_days"), metavar="DAYS",
                    help="delete console audit_log rows older than DAYS (0: keep; default: "
                         "retention.audit_log_days)")
    ap.add_argument("--batch-size", type=spec_arg("retention", "batch_size"), metavar="N",
                    help="comments per transaction (default: retention.batch_size)")
    ap.add_argument("--dry-run", action="store_true", help="print what would go, per table; change nothing")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    cfg = load_or_exit(a.config)
    url = a.db or cfg.database.url
    plan = plan_from(a, cfg)
    if plan.empty():
        print("retention: nothing to do (no cut-off given and [retention] texts_days, rows_days and "
              "audit_log_days are 0)")
        return 0

    def body() -> int:
        engine = db.open_checked(url)
        if a.dry_run:
            deleted, emptied = preview(engine, plan)
            print(f"retention (dry run, {plan.describe()}): would change")
        else:
            deleted, emptied = run(engine, plan)
            print(f"retention ({plan.describe()}):")
        width = max(map(len, [*deleted, *emptied]), default=0)
        for line in lines(deleted, "would be deleted" if a.dry_run else "deleted", width) + \
                lines(emptied, "would be emptied" if a.dry_run else "emptied", width):
            print(line)
        return 0

    return run_cli(body, "retention")


if __name__ == "__main__":
    raise SystemExit(main())
