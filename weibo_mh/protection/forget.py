"""``weibo-mh forget``: a deletion request for one person (PIPL art. 47; GDPR art. 17).

The person is named by their Weibo user id (``--weibo-uid``, hashed here with the configured
salt exactly as the spider hashes it) or by the hash itself (``--author-hash``). Their
comments go with their scores, human labels, alerts and annotation tasks, and every rollup
moves exactly as if they had never been stored (``weibo_mh.rollups.purge_comments``, the
deletion path of the scores). Other people's comments that answer theirs lose the pointer
(``reply_to_id``, ``root_id``, ``reply_to_hash``); ``--nickname`` also clears the hashed reply
targets that name them on weibo.cn pages, which link replies by nickname only. Their posts
keep their rows (other people's comments hang on them) but lose text and author.

The hashes are kept in ``forgotten_authors`` so that the spider drops what it finds of them
later (counted as ``forgotten_author`` in the run's dropped stats). The audit row and the
printout hold the hash, never the id.

    python -m weibo_mh.protection.forget --weibo-uid 1234567890 --dry-run
    python -m weibo_mh.protection.forget --author-hash 3f5c…e1 --nickname 某某
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from weibo_mh import db, rollups
from weibo_mh.protection.common import (
    LABELS,
    add_counts,
    audit,
    chunks,
    count,
    lines,
    run_cli,
    transaction,
)

C = db.comments
P = db.posts
F = db.forgotten_authors
HASH = re.compile(r"^[0-9a-f]{64}$")


def user_key(uid: str) -> str:
    """The spider's key for a user before hashing: ``u:<digits>``, or ``c:<name>`` for a
    weibo.cn custom address (weibo.parsing.common.author_key_from_href)."""
    uid = uid.strip().lstrip("/")
    if not uid:
        raise ValueError("empty Weibo user id")
    return f"u:{uid}" if uid.isdigit() else f"c:{uid}"


def _author_ids(conn: Connection, authors: Sequence[str], raw: str | None) -> list[str]:
    """Every comment of these authors (one pass: comments has no author index, and a
    deletion request is rare)."""
    cond: list[Any] = [C.c.author_hash.in_(list(authors))]
    if raw:
        cond.append(C.c.author_raw == raw)
    return sorted(conn.execute(sa.select(C.c.id).where(sa.or_(*cond))).scalars())


def _post_cond(authors: Sequence[str], raw: str | None) -> Any:
    cond: list[Any] = [P.c.author_hash.in_(list(authors))]
    if raw:
        cond.append(P.c.author_raw == raw)
    return sa.or_(*cond)


def _posts_of(conn: Connection, ids: Sequence[str]) -> list[str]:
    """The posts these comments are on: a reply is on the post of the comment it answers, so
    the reply look-ups below go through ix_comments_mid instead of scanning every comment
    (reply_to_id and root_id have no index). Read first: MySQL refuses a subquery on the
    table an UPDATE changes."""
    return list(conn.execute(sa.select(C.c.mid).where(C.c.id.in_(ids)).distinct()).scalars())


def _pointers(conn: Connection, ids: Sequence[str]) -> Any:
    """Comments that answer one of ``ids`` or sit in a thread under one of them."""
    return sa.and_(C.c.mid.in_(_posts_of(conn, ids)), sa.or_(C.c.reply_to_id.in_(ids), C.c.root_id.in_(ids)))


REPLIES = "replies pointing at them"
NICK_REPLIES = "replies naming their nickname"
POSTS = "posts (text and author emptied)"


def keys(nicknames: Sequence[str]) -> list[str]:
    """What forget removes, in the order it is printed."""
    return ["comments", "scores", LABELS, *(t.name for t, _ in rollups.ALERT_DEPENDENTS),
            *(t.name for t, _ in rollups.COMMENT_DEPENDENTS), REPLIES, *([NICK_REPLIES] if nicknames else []),
            POSTS]


def preview(engine: Engine, authors: Sequence[str], nicknames: Sequence[str] = (),
            raw: str | None = None) -> dict[str, int]:
    """What ``forget`` would remove, per table."""
    out = dict.fromkeys(keys(nicknames), 0)
    with engine.connect() as conn:
        ids = _author_ids(conn, authors, raw)
        out["comments"] = len(ids)
        for part in chunks(ids):
            S = db.scores
            out["scores"] += count(conn, sa.select(S.c.comment_id).where(S.c.comment_id.in_(part)))
            out[LABELS] += count(conn, sa.select(S.c.comment_id).where(
                S.c.comment_id.in_(part), S.c.scorer.like("human:%")))
            alert_ids = sa.select(db.alerts.c.id).where(db.alerts.c.comment_id.in_(part))
            for table, col in rollups.ALERT_DEPENDENTS:
                out[table.name] += count(conn, sa.select(table.c[col]).where(table.c[col].in_(alert_ids)))
            for table, col in rollups.COMMENT_DEPENDENTS:
                out[table.name] += count(conn, sa.select(table.c[col]).where(table.c[col].in_(part)))
            out[REPLIES] += count(conn, sa.select(C.c.id).where(_pointers(conn, part), C.c.id.not_in(ids)))
        if nicknames:
            out[NICK_REPLIES] = count(conn, sa.select(C.c.id).where(
                C.c.reply_to_hash.in_(list(nicknames))))
        out[POSTS] = count(conn, sa.select(P.c.mid).where(_post_cond(authors, raw)))
    return out


def forget(engine: Engine, authors: Sequence[str], nicknames: Sequence[str] = (), raw: str | None = None,
           batch_size: int = 500) -> dict[str, int]:
    """Remove everything of these author hashes (and reply targets of these nickname hashes);
    record them in ``forgotten_authors`` and write one audit row. Returns rows per table."""
    authors = sorted(set(authors))
    nicknames = sorted(set(nicknames))
    t = db.now()

    def record(conn: Connection) -> None:  # first, so a crawl running meanwhile drops them already
        have = set(conn.execute(sa.select(F.c.hash).where(F.c.hash.in_(authors + nicknames))).scalars())
        rows = [{"hash": h, "kind": "author", "forgotten_at": t} for h in authors if h not in have] + \
               [{"hash": h, "kind": "nickname", "forgotten_at": t} for h in nicknames if h not in have]
        if rows:
            conn.execute(F.insert(), rows)

    transaction(engine, record, "record forgotten authors")
    with engine.connect() as conn:
        ids = _author_ids(conn, authors, raw)
    out = dict.fromkeys(keys(nicknames), 0)
    for part in chunks(ids, batch_size):
        def step(conn: Connection, part: Sequence[str] = part) -> dict[str, int]:
            mids = _posts_of(conn, part)
            n = conn.execute(sa.update(C).where(C.c.mid.in_(mids), C.c.reply_to_id.in_(part))
                             .values(reply_to_id=None, reply_to_hash=None)).rowcount
            conn.execute(sa.update(C).where(C.c.mid.in_(mids), C.c.root_id.in_(part)).values(root_id=None))
            labels = count(conn, sa.select(db.scores.c.comment_id).where(
                db.scores.c.comment_id.in_(part), db.scores.c.scorer.like("human:%")))
            return {**rollups.purge_comments(conn, part), LABELS: labels,
                    REPLIES: n}

        add_counts(out, transaction(engine, step, "forget comments"))
    # the pointers count only other people's replies (the author's own went with their comments)
    if nicknames:
        def nick_step(conn: Connection) -> dict[str, int]:
            return {NICK_REPLIES: conn.execute(
                sa.update(C).where(C.c.reply_to_hash.in_(nicknames)).values(reply_to_hash=None)).rowcount}

        add_counts(out, transaction(engine, nick_step, "forget nickname"))

    def posts_step(conn: Connection) -> dict[str, int]:
        return {POSTS: conn.execute(
            sa.update(P).where(_post_cond(authors, raw)).values(text="", author_hash=None, author_raw=None)).rowcount}

    add_counts(out, transaction(engine, posts_step, "forget posts"))
    detail = {"authors": authors, "nicknames": nicknames, "removed": {k.strip(): v for k, v in out.items()}}
    transaction(engine, lambda conn: audit(conn, "forget", f"author:{authors[0]}" if authors else "", detail),
                "audit row")
    return out


def main(argv: list[str] | None = None) -> int:
    from weibo_mh.config import ConfigError, load_or_exit
    from weibo_mh.privacy import pseudonymiser_from

    doc = __doc__ or ""
    ap = argparse.ArgumentParser(prog="python -m weibo_mh.protection.forget",
                                 description=doc.split("\n\n    python -m")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    who = ap.add_mutually_exclusive_group(required=True)
    who.add_argument("--weibo-uid", metavar="UID", help="the person's Weibo user id (digits), or the "
                     "name of their weibo.cn custom address; hashed with the configured salt")
    who.add_argument("--author-hash", metavar="HASH", help="their author_hash (64 hex digits)")
    ap.add_argument("--nickname", action="append", default=[], metavar="NICK",
                    help="a nickname of theirs: replies naming it lose their hashed target "
                         "(reply_to_hash); repeatable")
    ap.add_argument("--dry-run", action="store_true", help="print what would be removed; change nothing")
    ap.add_argument("--db", help="database URL (default: DATABASE_URL or the config's database.url)")
    ap.add_argument("--config", help="TOML config file (default: $WEIBO_MH_CONFIG or configs/default.toml)")
    a = ap.parse_args(argv)
    cfg = load_or_exit(a.config)
    raw: str | None = None
    nicknames: list[str] = []
    try:
        p = pseudonymiser_from(cfg) if (a.weibo_uid or a.nickname) else None
        if a.weibo_uid:
            assert p is not None
            key = user_key(a.weibo_uid)
            author = p.hash(key) or ""
            raw = key.split(":", 1)[1][:32] if cfg.privacy.keep_raw_ids else None
        else:
            author = a.author_hash.strip().lower()
            if not HASH.match(author):
                ap.error("--author-hash must be 64 hexadecimal digits (an author_hash as stored)")
        if p is not None:
            nicknames = [h for n in a.nickname if n.strip() and (h := p.hash(f"n:{n.strip()}"))]
    except ConfigError as e:
        print(f"configuration error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:
        ap.error(str(e))
    url = a.db or cfg.database.url

    def body() -> int:
        engine = db.open_checked(url)
        if a.dry_run:
            counts = preview(engine, [author], nicknames, raw)
            print(f"forget author {author} (dry run): would remove")
            print("\n".join(lines(counts, "")))
            return 0
        counts = forget(engine, [author], nicknames, raw, cfg.retention.batch_size)
        print(f"forgot author {author}: removed")
        print("\n".join(lines(counts, "")))
        print("the spider drops this author's comments and posts from now on (forgotten_authors)")
        return 0

    return run_cli(body, "forget")


if __name__ == "__main__":
    raise SystemExit(main())
