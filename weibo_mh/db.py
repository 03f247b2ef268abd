"""The database contract between the services: tables, migrations, engines, upserts.

The SQLAlchemy Core metadata below is the single source of truth. ``sql/schema.sql``
is generated from it (``python -m weibo_mh.db ddl``) and a test fails when the two
drift apart. One set of queries runs on MySQL/MariaDB (pymysql or mysql-connector)
and on SQLite.

Times: every DATETIME column holds naive wall-clock time in Asia/Shanghai (UTC+8,
no daylight saving), the time zone of Weibo itself, so that ``GROUP BY day`` in SQL
gives Chinese calendar days on both engines. Use ``now()`` and ``to_db_time()``.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")

CRAWL_STATUSES = ("running", "ok", "failed", "login_required", "rate_limited", "timed_out", "bad_cookie")
#: What a crawl run did (crawl_runs.kind, migration 8): the hot-topic crawl or a watch round.
CRAWL_KINDS = ("hot", "watch")
SCORE_STATUSES = ("pending", "claimed", "done", "failed")

metadata = sa.MetaData()

# MySQL index keys are limited to 3072 bytes; utf8mb4 needs 4 bytes a character.
WORD = sa.String(191)
ID = sa.String(32)
HASH = sa.String(64)
LONGTEXT = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")
BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _enum_sql(column: str, values: Sequence[str]) -> str:
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


def _enum_check(column: str, values: Sequence[str], name: str) -> sa.CheckConstraint:
    return sa.CheckConstraint(_enum_sql(column, values), name=name)


schema_version = sa.Table(
    "schema_version", metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("applied_at", sa.DateTime, nullable=False),
    sa.Column("description", sa.String(255), nullable=False, server_default=""),
    mysql_engine="InnoDB", mysql_charset="utf8mb4", mysql_collate="utf8mb4_unicode_ci",
)

crawl_runs = sa.Table(
    "crawl_runs", metadata,
    sa.Column("id", BIGINT, primary_key=True, autoincrement=True),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("finished_at", sa.DateTime),
    sa.Column("status", sa.String(20), nullable=False, server_default="running"),
    sa.Column("host", sa.String(255), nullable=False, server_default=""),
    sa.Column("topics", sa.Integer, nullable=False, server_default="0"),
    sa.Column("posts_new", sa.Integer, nullable=False, server_default="0"),
    sa.Column("posts_updated", sa.Integer, nullable=False, server_default="0"),
    sa.Column("comments_new", sa.Integer, nullable=False, server_default="0"),
    sa.Column("comments_updated", sa.Integer, nullable=False, server_default="0"),
    sa.Column("pages", sa.Integer, nullable=False, server_default="0"),
    sa.Column("dropped", sa.Integer, nullable=False, server_default="0"),
    sa.Column("errors", sa.Integer, nullable=False, server_default="0"),
    sa.Column("stats", sa.Text, comment="JSON: dropped items by reason, malformed URLs, …"),
    sa.Column("error", sa.Text),
    sa.Column("kind", sa.String(10), nullable=False, server_default="hot",
              comment="hot: the hot-topic crawl; watch: a watch round (migration 8)"),
    _enum_check("status", CRAWL_STATUSES, "ck_crawl_runs_status"),
    sa.Index("ix_crawl_runs_kind", "kind", "id"),
    mysql_engine="InnoDB", mysql_charset="utf8mb4", mysql_collate="utf8mb4_unicode_ci",
)

topics = sa.Table(
    "topics", metadata,
    sa.Column("id", BIGINT, primary_key=True, autoincrement=True),
    sa.Column("word", WORD, nullable=False),
    sa.Column("first_seen", sa.DateTime, nullable=False),
    sa.Column("last_seen", sa.DateTime, nullable=False),
    sa.UniqueConstraint("word", name="uq_topics_word"),
    mysql_engine="InnoDB", mysql_charset="utf8mb4", mysql_collate="utf8mb4_bin",
)

topic_snapshots = sa.Table(
    "topic_snapshots", metadata,
    sa.Column("id", BIGINT, primary_key=True, autoincrement=True),
    sa.Column("crawl_run_id", BIGINT, sa.ForeignKey("crawl_runs.id", name="fk_snap_run"), nullable=False),
    sa.Column("topic_id", BIGINT, sa.ForeignKey("topics.id", name="fk_snap_topic"), nullable=False),
    sa.Column("rank", sa.Integer, nullable=False),
    sa.Column("heat", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("category", sa.String(64), comment="only when the hot-search list gives one"),
    sa.Column("label", sa.String(16), comment="the list's badge (label_name: 热, 新, 沸, 爆 …)"),
    sa.Column("seen_at", sa.DateTime, nullable=False),
    sa.UniqueConstraint("crawl_run_id", "topic_id", name="uq_snap_run_topic"),
    sa.Index("ix_snap_topic_seen", "topic_id", "seen_at"),
    mysql_engine="InnoDB", mysql_charset="utf8mb4", mysql_collate="utf8mb4_unicode_ci",
)

posts = sa.Table(
    "posts", metadata,
    sa.Column("mid", ID, primary_key=True, comment="Weibo post id"),
    sa.Column("author_hash", HASH, comment="HMAC-SHA256 of the user id under the secret salt"),
    sa.Column("author_raw", ID, comment="only with privacy.keep_raw_ids = true"),
    sa.Column("text", LONGTEXT, nullable=False),
    sa.Column("created_at", sa.DateTime),
    sa.Column("reposts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("comments_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("likes", sa.Integer, nullable=False, server_default="0"),
    sa.Column("source", sa.String(255)),
    sa.Column("first_scraped_at", sa.DateTime, nullable=False),
    sa.Column("scraped_at", sa.DateTime, nullable=False),
    sa.Column("ip_location", sa.String(64), comment="IP属地 as Weibo shows it (a province or country)"),
    sa.Column("is_retweet", sa.Boolean, nullable=False, server_default=sa.false(),
              comment="text and counts are the retweeter's own"),
    sa.Index("ix_posts_created", "created_at"),
    mysql_engine="InnoDB", mysql_charset="utf8mb4", mysql_collate="utf8mb4_unicode_ci",
)

post_topics = sa.Table(
    "post_topics", metadata,
    sa.Column("mid", ID, sa.ForeignKey("posts.mid", name="fk_pt_post"), primary_key=True),
    sa.Column("topic_id", BIGINT, sa.ForeignKey("topics.id", name="fk_pt_topic"), primary_key=True),
    sa.Column("first_seen", sa.DateTime, nullable=False),
    sa.Index("ix_pt_topic", "topic_id"),
    sa.Index("ix_pt_first_seen", "first_seen"),
    mysql_engine="InnoDB", mysql_charset="utf8mb4", mysql_collate="utf8mb4_unicode_ci",
)

comments = sa.Table(
    "comments", metadata,
    sa.Column("id", ID, primary_key=True, comment="Weibo comment id"),
    sa.Column("mid", ID, sa.ForeignKey("posts.mid", name="fk_comments_post"), nullable=False),
    sa.Column("author_hash", HASH),
    sa.Column("author_raw", ID, comment="only with privacy.keep_raw_ids = true"),
    sa.Column("reply_to_hash", HASH, comment="HMAC of the replied-to user (nickname), if a reply"),
    sa.Column("text", LONGTEXT, nullable=False),
    sa.Column("likes", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", sa.DateTime),
    sa.Column("source", sa.String(255)),
    sa.Column("first_scraped_at", sa.DateTime, nullable=False),
    sa.Column("scraped_at", sa.DateTime, nullable=False),
    # Scoring state: the worker's queue lives on the comment itself.
    sa.Column("score_status", sa.String(10), nullable=False, server_default="pending"),
    sa.Column("claimed_by", sa.String(128)),
    sa.Column("lease_until", sa.DateTime),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text),
    sa.Column("last_output", sa.Text, comment="raw model output of the last failure, truncated"),
    sa.Column("scored_at", sa.DateTime),
    sa.Column("ip_location", sa.String(64), comment="IP属地 as Weibo shows it (a province or country)"),
    sa.Column("is_hot", sa.Boolean, nullable=False, server_default=sa.false(),
              comment="listed among the post's hot (most-liked) comments"),
    sa.Column("root_id", ID, comment="weibo.com source: the first-level comment of this thread"),
    sa.Column("reply_to_id", ID, comment="weibo.com source: the comment this one answers"),
    sa.Column("priority", sa.SmallInteger, nullable=False, server_default="0",
              comment="1: a watched post's comment, claimed before the backlog (migration 8)"),
    _enum_check("score_status", SCORE_STATUSES, "ck_comments_score_status"),
    sa.Index("ix_comments_mid", "mid"),
    sa.Index("ix_comments_queue", "score_status", "lease_until"),
    # the watched comments' queue: priority > 0 AND score_status = 'pending' is one short range
    sa.Index("ix_comments_priority_queue", "priority", "score_status"),
    sa.Index("ix_comments_created", "created_at"),
    sa.Index("ix_comments_first_scraped", "first_scraped_at"),
    mysql_engine="InnoDB", mysql_charset="utf8mb4", mysql_collate="utf8mb4_unicode_ci",
)

scores = sa.Table(
    "scores", metadata,
    sa.Column("comment_id", ID, sa.ForeignKey("comments.id", name="fk_scores_comment"), primary_key=True),
    sa.Column("dimension", sa.String(32), primary_key=True),
    sa.Column("scorer", sa.String(128), primary_key=True, comment="backend:model, e.g. lexicon:v2"),
    sa.Column("value", sa.SmallInteger, nullable=False),
    sa.Column("confidence", sa.Float),
    sa.Column("rationale", sa.Text),
    sa.Column("rubric_version", sa.String(32), nullable=False),
    sa.Column("truncated", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("scored_at", sa.DateTime, nullable=False),
    # Likelihood scoring (migration 4): the probability put on the levels 0-10 together, the
    # most the levels missing from a server's top-k logprobs may add (NULL: exact), and the
    # flag for answer_mass < worker.answer_mass_floor (NULL: other scorers, never judged).
    sa.Column("answer_mass", sa.Float),
    sa.Column("answer_mass_gap", sa.Float),
    sa.Column("uncertain", sa.Boolean),
    sa.CheckConstraint("value >= 0 AND value <= 10", name="ck_scores_value"),
    # Alert queries: WHERE scorer = ? AND dimension = 'suicide_risk' AND value >= ? (migration 2).
    sa.Index("ix_scores_alerts", "scorer", "dimension", "value"),
    mysql_engine="InnoDB", mysql_charset="utf8mb4", mysql_collate="utf8mb4_unicode_ci",
)

# Daily rollups (migration 2; maintained by weibo_mh.rollups, read by the analysis report).
LEVEL_COLUMNS = tuple(f"l{v}" for v in range(11))

score_rollups = sa.Table(
    "score_rollups", metadata,
    sa.Column("scorer", sa.String(128), primary_key=True,
              comment="'' = comments collected (scored or not)"),
    sa.Column("dimension", sa.String(32), primary_key=True,
              comment="'' = comments with at least one score of the scorer"),
    sa.Column("day", sa.Date, primary_key=True, comment="day of COALESCE(created_at, first_scraped_at)"),
    sa.Column("topic_id", BIGINT, primary_key=True, autoincrement=False,
              comment="0 = all comments, each once"),
    sa.Column("n", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("total", sa.BigInteger, nullable=False, server_default="0"),
    *(sa.Column(name, sa.BigInteger, nullable=False, server_default="0") for name in LEVEL_COLUMNS),
    mysql_engine="InnoDB", mysql_charset="utf8mb4", mysql_collate="utf8mb4_bin",
)

pair_rollups = sa.Table(
    "pair_rollups", metadata,
    sa.Column("scorer_a", sa.String(128), primary_key=True, comment="scorer_a < scorer_b"),
    sa.Column("scorer_b", sa.String(128), primary_key=True),
    sa.Column("dimension", sa.String(32), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("a", sa.SmallInteger, primary_key=True, autoincrement=False, comment="scorer_a's level"),
    sa.Column("b", sa.SmallInteger, primary_key=True, autoincrement=False, comment="scorer_b's level"),
    sa.Column("n", sa.BigInteger, nullable=False, server_default="0",
              comment="comments both scored, at these two levels (agreement charts)"),
    mysql_engine="InnoDB", mysql_charset="utf8mb4", mysql_collate="utf8mb4_bin",
)

region_rollups = sa.Table(
    "region_rollups", metadata,
    sa.Column("scorer", sa.String(128), primary_key=True),
    sa.Column("dimension", sa.String(32), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True, comment="day of COALESCE(created_at, first_scraped_at)"),
    sa.Column("location", sa.String(64), primary_key=True,
              comment="comments.ip_location as stored; '' = none shown"),
    sa.Column("n", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("total", sa.BigInteger, nullable=False, server_default="0"),
    *(sa.Column(name, sa.BigInteger, nullable=False, server_default="0") for name in LEVEL_COLUMNS),
    comment="scores per IP location and day (migration 6; analysis.regions reads them)",
    # the collation of comments.ip_location, so a location groups here as it does in the raw rows
    mysql_engine="InnoDB", mysql_charset="utf8mb4", mysql_collate="utf8mb4_unicode_ci",
)

#: The lowest suicide-risk level ``risk_scores`` holds; alert lists with a lower threshold read
#: the raw score rows.
RISK_FLOOR = 4

risk_scores = sa.Table(
    "risk_scores", metadata,
    sa.Column("scorer", sa.String(128), primary_key=True),
    sa.Column("value", sa.SmallInteger, primary_key=True, autoincrement=False),
    sa.Column("comment_time", sa.DateTime, primary_key=True,
              comment="COALESCE(created_at, first_scraped_at) of the comment"),
    sa.Column("comment_id", ID, primary_key=True),
    sa.Index("ix_risk_comment", "comment_id"),  # re-scores and deletions find their row by comment
    comment=f"suicide-risk scores at level >= {RISK_FLOOR} in alert order (highest, newest first), so "
            "that an alert list reads its rows instead of joining every high score to its comment "
            "(migration 7; weibo_mh.rollups keeps it)",
    mysql_engine="InnoDB", mysql_charset="utf8mb4", mysql_collate="utf8mb4_unicode_ci",
)

#: comments.priority of a watched post's comment: the worker claims these before the backlog.
WATCHED_PRIORITY = 1

#: Where a watched post came from: a [watch] posts entry, or a keyword watch's search.
WATCH_ORIGIN_POST = "post"

watched_posts = sa.Table(
    "watched_posts", metadata,
    sa.Column("mid", ID, primary_key=True, comment="Weibo post id"),
    sa.Column("bid", ID, comment="the post's base-62 id, as weibo.cn and weibo.com URLs show it"),
    sa.Column("label", sa.String(64), nullable=False, comment="the watch entry's label ([watch])"),
    sa.Column("origin", sa.String(191), nullable=False, server_default=WATCH_ORIGIN_POST,
              comment="post: a [watch] posts entry; keyword:<kw>: found by a keyword watch"),
    sa.Column("added_at", sa.DateTime, nullable=False),
    sa.Column("newest_comment_id", ID, comment="the newest comment id stored, where a round stops"),
    sa.Column("newest_comment_at", sa.DateTime, comment="that comment's time"),
    sa.Column("last_crawled_at", sa.DateTime, comment="end of the last round that read the post"),
    sa.Column("last_run_id", BIGINT, comment="crawl_runs.id of that round"),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true(),
              comment="false: no longer in the config (kept for the console's history)"),
    comment="posts the watch rounds read (migration 8; weibo.store keeps it)",
    mysql_engine="InnoDB", mysql_charset="utf8mb4", mysql_collate="utf8mb4_unicode_ci",
)

rollup_links = sa.Table(
    "rollup_links", metadata,
    sa.Column("mid", ID, primary_key=True),
    sa.Column("topic_id", BIGINT, primary_key=True, autoincrement=False),
    comment="the post_topics links the rollups have attributed (weibo_mh.rollups)",
    mysql_engine="InnoDB", mysql_charset="utf8mb4", mysql_collate="utf8mb4_unicode_ci",
)

rollup_state = sa.Table(
    "rollup_state", metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("value", sa.DateTime),
    mysql_engine="InnoDB", mysql_charset="utf8mb4", mysql_collate="utf8mb4_unicode_ci",
)


# Review console (migration 5): human labels live in ``scores`` (scorer ``human:<name>``);
# these tables hold who may log in, what each annotator is given, the alert queue, and
# the audit trail.
CONSOLE_ROLES = ("annotator", "responder", "admin")
TASK_STATES = ("open", "done", "skipped")
ALERT_STATES = ("new", "acknowledged", "escalated", "dismissed", "resolved")

console_users = sa.Table(
    "console_users", metadata,
    sa.Column("id", BIGINT, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(64), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("password_hash", sa.String(255), nullable=False, comment="argon2id"),
    sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("last_login_at", sa.DateTime),
    sa.UniqueConstraint("username", name="uq_console_users_username"),
    _enum_check("role", CONSOLE_ROLES, "ck_console_users_role"),
    mysql_engine="InnoDB", mysql_charset="utf8mb4", mysql_collate="utf8mb4_unicode_ci",
)

annotation_tasks = sa.Table(
    "annotation_tasks", metadata,
    sa.Column("id", BIGINT, primary_key=True, autoincrement=True),
    sa.Column("comment_id", ID, sa.ForeignKey("comments.id", name="fk_tasks_comment"), nullable=False),
    sa.Column("copy", sa.SmallInteger, nullable=False, server_default="1",
              comment="1: first coding; 2: the double-coded second one"),
    sa.Column("annotator", sa.String(64), comment="NULL until an annotator takes the task"),
    sa.Column("state", sa.String(10), nullable=False, server_default="open"),
    sa.Column("sample", sa.String(64), nullable=False, server_default="",
              comment="how the comment was chosen: stratified:<scorer>, random, ids"),
    sa.Column("stratum", sa.SmallInteger, comment="the sampling scorer's level, if stratified"),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("taken_at", sa.DateTime),
    sa.Column("done_at", sa.DateTime),
    sa.UniqueConstraint("comment_id", "copy", name="uq_tasks_comment_copy"),
    _enum_check("state", TASK_STATES, "ck_tasks_state"),
    sa.Index("ix_tasks_annotator_state", "annotator", "state", "done_at"),
    sa.Index("ix_tasks_open", "state", "annotator"),
    sa.Index("ix_tasks_comment", "comment_id", "annotator"),
    mysql_engine="InnoDB", mysql_charset="utf8mb4", mysql_collate="utf8mb4_unicode_ci",
)

alerts = sa.Table(
    "alerts", metadata,
    sa.Column("id", BIGINT, primary_key=True, autoincrement=True),
    sa.Column("comment_id", ID, sa.ForeignKey("comments.id", name="fk_alerts_comment"), nullable=False),
    sa.Column("scorer", sa.String(128), nullable=False, comment="the scorer whose level raised it"),
    sa.Column("dimension", sa.String(32), nullable=False, server_default="suicide_risk"),
    sa.Column("level", sa.SmallInteger, nullable=False),
    sa.Column("author_hash", HASH, comment="copied from the comment, to count repeated risk"),
    sa.Column("comment_time", sa.DateTime, nullable=False, comment="created_at, else first_scraped_at"),
    sa.Column("repeat_count", sa.Integer, nullable=False, server_default="1",
              comment="alerts from the same author_hash in the repeat window up to this one"),
    sa.Column("state", sa.String(16), nullable=False, server_default="new"),
    sa.Column("assignee", sa.String(64)),
    sa.Column("notes", sa.Text),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("acknowledged_at", sa.DateTime),
    sa.Column("acknowledged_by", sa.String(64)),
    sa.Column("closed_at", sa.DateTime, comment="when escalated, dismissed or resolved"),
    sa.Column("closed_by", sa.String(64)),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.UniqueConstraint("comment_id", name="uq_alerts_comment"),
    _enum_check("state", ALERT_STATES, "ck_alerts_state"),
    sa.Index("ix_alerts_state_level", "state", "level", "comment_time"),
    sa.Index("ix_alerts_state_time", "state", "comment_time"),
    sa.Index("ix_alerts_state_repeat", "state", "repeat_count", "level", "comment_time"),
    sa.Index("ix_alerts_author_time", "author_hash", "comment_time"),
    mysql_engine="InnoDB", mysql_charset="utf8mb4", mysql_collate="utf8mb4_unicode_ci",
)

audit_log = sa.Table(
    "audit_log", metadata,
    sa.Column("id", BIGINT, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("actor", sa.String(64), nullable=False, comment="console user, or '-' before login"),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("target", sa.String(191), nullable=False, server_default=""),
    sa.Column("detail", sa.Text),
    sa.Column("ip", sa.String(64), nullable=False, server_default=""),
    sa.Column("hits", sa.Integer, nullable=False, server_default="1",
              comment="requests this row stands for (refused anonymous requests: per address and minute)"),
    sa.Column("bucket", sa.String(191), comment="action|address|minute of a counted row; NULL otherwise"),
    sa.Index("ix_audit_at", "at"),
    sa.Index("ix_audit_target", "target", "at"),
    sa.Index("ix_audit_ip", "ip", "at"),
    sa.Index("ix_audit_actor", "actor", "at"),
    sa.Index("ix_audit_action", "action"),
    sa.Index("uq_audit_bucket", "bucket", unique=True),
    mysql_engine="InnoDB", mysql_charset="utf8mb4", mysql_collate="utf8mb4_unicode_ci",
)

# Console hardening (migration 11): sessions the server can end, and the failed-login
# count per (user name, address) pair that the exponential login delay reads.
console_sessions = sa.Table(
    "console_sessions", metadata,
    sa.Column("id", BIGINT, primary_key=True, autoincrement=True),
    sa.Column("token_hash", HASH, nullable=False, comment="sha256 of the token in the cookie"),
    sa.Column("user_id", BIGINT, sa.ForeignKey("console_users.id", name="fk_sessions_user"), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("last_seen_at", sa.DateTime, nullable=False),
    sa.Column("revoked_at", sa.DateTime, comment="NULL while the session is live"),
    sa.Column("revoked_why", sa.String(32), comment="logout, password, role, disabled, admin:<name>"),
    sa.Column("ip", sa.String(64), nullable=False, server_default=""),
    sa.Column("user_agent", sa.String(191), nullable=False, server_default=""),
    sa.UniqueConstraint("token_hash", name="uq_sessions_token"),
    sa.Index("ix_sessions_user", "user_id", "revoked_at"),
    sa.Index("ix_sessions_live", "revoked_at", "created_at"),
    mysql_engine="InnoDB", mysql_charset="utf8mb4", mysql_collate="utf8mb4_unicode_ci",
)

login_attempts = sa.Table(
    "login_attempts", metadata,
    sa.Column("username", sa.String(64), primary_key=True),
    sa.Column("ip", sa.String(64), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False, server_default="0",
              comment="attempts since the last success (or since the window passed)"),
    sa.Column("last_at", sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"), nullable=False,
              comment="with microseconds: the login delay starts at 1 s"),
    sa.Index("ix_login_attempts_last", "last_at"),
    mysql_engine="InnoDB", mysql_charset="utf8mb4", mysql_collate="utf8mb4_unicode_ci",
)

# Deletion requests (migration 10): the hashes whose rows ``weibo-mh forget`` removed; the
# spider drops new rows of these authors (weibo.store), so a re-crawl never brings them back.
FORGOTTEN_KINDS = ("author", "nickname")

forgotten_authors = sa.Table(
    "forgotten_authors", metadata,
    sa.Column("hash", HASH, primary_key=True,
              comment="author_hash (HMAC of the user id), or the reply_to_hash of a nickname"),
    sa.Column("kind", sa.String(16), nullable=False, server_default="author"),
    sa.Column("forgotten_at", sa.DateTime, nullable=False),
    _enum_check("kind", FORGOTTEN_KINDS, "ck_forgotten_kind"),
    comment="never the raw id: only the salted hash (weibo_mh.protection.forget)",
    mysql_engine="InnoDB", mysql_charset="utf8mb4", mysql_collate="utf8mb4_unicode_ci",
)

#: The push-notification outbox (weibo_mh.notify): one row per alert and channel, written in the
#: transaction that creates the alert, so that a channel that is down loses nothing.
NOTIFY_STATES = ("pending", "sent", "failed")

notifications = sa.Table(
    "notifications", metadata,
    sa.Column("id", BIGINT, primary_key=True, autoincrement=True),
    sa.Column("alert_id", BIGINT, sa.ForeignKey("alerts.id", name="fk_notifications_alert"), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False, comment="webhook, email or command"),
    sa.Column("state", sa.String(16), nullable=False, server_default="pending"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.String(500)),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("next_attempt_at", sa.DateTime, nullable=False, comment="not sent before this"),
    sa.Column("sent_at", sa.DateTime),
    sa.Column("digest", sa.String(32), comment="id of the message that carried it; rows sent "
              "together (one digest) share it"),
    sa.UniqueConstraint("alert_id", "channel", name="uq_notifications_alert_channel"),
    _enum_check("state", NOTIFY_STATES, "ck_notifications_state"),
    sa.Index("ix_notifications_due", "channel", "state", "next_attempt_at"),
    sa.Index("ix_notifications_sent", "channel", "sent_at"),
    mysql_engine="InnoDB", mysql_charset="utf8mb4", mysql_collate="utf8mb4_unicode_ci",
)

#: One row per channel: who is sending on it now (a lease, so two notifiers never send the same
#: rows) and when it may be tried again after a failure (back-off for the whole channel).
notify_channels = sa.Table(
    "notify_channels", metadata,
    sa.Column("channel", sa.String(16), primary_key=True),
    sa.Column("lease_owner", sa.String(128)),
    sa.Column("lease_until", sa.DateTime),
    sa.Column("failures", sa.Integer, nullable=False, server_default="0",
              comment="failed sends in a row; the back-off grows with it"),
    sa.Column("retry_at", sa.DateTime, comment="after a failure: no send before this"),
    sa.Column("last_error", sa.String(500)),
    mysql_engine="InnoDB", mysql_charset="utf8mb4", mysql_collate="utf8mb4_unicode_ci",
)

#: Stratified sampling picks comments by one scorer's level of one dimension, and agreement
#: reads the human scorers' levels: comment_id makes both index-only on SQLite too (InnoDB
#: secondary indexes carry the primary key anyway).
SCORES_LEVEL_INDEX = sa.Index("ix_scores_level", scores.c.scorer, scores.c.dimension, scores.c.value,
                              scores.c.comment_id)

CONSOLE_TABLES = (console_users, annotation_tasks, alerts, audit_log, scores)


# --------------------------------------------------------------------------- time


def now() -> datetime:
    """Current time as stored in the database (naive Asia/Shanghai)."""
    return datetime.now(SHANGHAI).replace(tzinfo=None, microsecond=0)


def to_db_time(value: datetime | None) -> datetime | None:
    """An aware datetime converted to naive Asia/Shanghai; naive values are taken as already so."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(SHANGHAI).replace(tzinfo=None)
    return value.replace(microsecond=0)


def from_db_time(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=SHANGHAI)


def utcnow() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------- engines


class SchemaError(RuntimeError):
    """The database schema is missing or older than this code expects."""


def parse_url(url: str) -> sa.URL:
    """The URL as SQLAlchemy reads it, or SchemaError (password masked) when it would be misread.

    A password with an unencoded "@" would make SQLAlchemy (and the driver) take part of
    the password for the host name; such URLs are refused with advice to percent-encode.
    """
    from weibo_mh.config import check_url

    try:
        check_url(url)
    except ValueError as e:
        raise SchemaError(str(e)) from None
    return sa.engine.make_url(url)


def normalise_url(url: str) -> str:
    """Add utf8mb4 to MySQL URLs that do not name a charset (4-byte emoji must survive)."""
    u = parse_url(url)
    if u.get_backend_name() in ("mysql", "mariadb") and "charset" not in u.query:
        u = u.update_query_dict({"charset": "utf8mb4"})
        if u.get_driver_name() == "mysqlconnector" and "collation" not in u.query:
            u = u.update_query_dict({"collation": "utf8mb4_unicode_ci"})
    return u.render_as_string(hide_password=False)


def make_engine(url: str, echo: bool = False, **kw: Any) -> Engine:
    """An engine with the settings both services need: pre-ping, WAL, busy timeout."""
    u = sa.engine.make_url(normalise_url(url))
    backend = u.get_backend_name()
    if backend == "sqlite":
        # No mkdir here: a mistyped path must fail to connect, not create an empty database
        # in a new folder. `migrate` creates the folder (ensure_sqlite_dir).
        engine = sa.create_engine(u, echo=echo, connect_args={"timeout": 30}, **kw)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see begin event)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            mode = conn.get_execution_options().get("sqlite_begin", "")
            conn.exec_driver_sql(f"BEGIN {mode}".strip())

        return engine
    if backend in ("mysql", "mariadb"):
        kw.setdefault("pool_pre_ping", True)
        kw.setdefault("pool_recycle", 3600)
        kw.setdefault("isolation_level", "READ COMMITTED")
        return sa.create_engine(u, echo=echo, **kw)
    raise SchemaError(f"unsupported database {backend!r} in {mask(url)}: use sqlite or mysql")


def ensure_sqlite_dir(url: str) -> None:
    """Create the folder of a SQLite file (for ``migrate``, which may create the database)."""
    u = parse_url(url)
    if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
        from pathlib import Path

        Path(u.database).parent.mkdir(parents=True, exist_ok=True)


def mask(url: str) -> str:
    from weibo_mh.config import mask_url

    return mask_url(url)


def is_sqlite(bind: Engine | Connection) -> bool:
    return bind.dialect.name == "sqlite"


# --------------------------------------------------------------------------- migrations

Migration = Callable[[Connection], None]


def sync_tables(conn: Connection, tables: Sequence[sa.Table]) -> None:
    """Bring ``tables`` up to the metadata: create missing tables, columns and indexes.

    Idempotent, so that one migration serves both a database created at version 1 (which
    gets the ALTERs) and a fresh one (whose version-1 ``create_all`` already made today's
    tables, so there is nothing left to do). Columns added this way must be nullable or
    carry a server default.
    """
    from sqlalchemy.schema import CreateColumn

    insp = sa.inspect(conn)
    for table in tables:
        if not insp.has_table(table.name):
            table.create(conn)
            continue
        have = {c["name"] for c in insp.get_columns(table.name)}
        for col in table.columns:
            if col.name not in have:
                spec = CreateColumn(col).compile(dialect=conn.dialect)
                conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {spec}")
        have_ix = {ix["name"] for ix in insp.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in have_ix:
                index.create(conn)


def _v1(conn: Connection) -> None:
    metadata.create_all(conn, checkfirst=True)


def backfill(target: str) -> Migration:
    """A migration step that fills new tables from old rows, named ``"module:function"``.

    The feature that owns the tables owns the backfill (``weibo_mh.rollups:rebuild``); it is
    imported only when the migration runs, so this module, which every feature imports for
    its tables, imports none of them.
    """
    def run(conn: Connection) -> None:
        import importlib

        module, _, name = target.partition(":")
        getattr(importlib.import_module(module), name)(conn)

    return run


def _v2(conn: Connection) -> None:
    sync_tables(conn, [scores, post_topics, comments, score_rollups, pair_rollups, rollup_links,
                       rollup_state])
    # a database upgraded from version 1 gets rollups of what it holds
    backfill("weibo_mh.rollups:rebuild")(conn)


def _v6(conn: Connection) -> None:
    sync_tables(conn, [region_rollups])
    backfill("weibo_mh.rollups:rebuild_regions")(conn)


def _v7(conn: Connection) -> None:
    sync_tables(conn, [risk_scores])
    backfill("weibo_mh.rollups:rebuild_risk")(conn)
    # ix_scores_alerts (scorer, dimension, value) serves every query the older
    # (scorer, dimension) index did; one index fewer to write with every score
    if "ix_scores_scorer_dim" in {ix["name"] for ix in sa.inspect(conn).get_indexes("scores")}:
        conn.exec_driver_sql("DROP INDEX ix_scores_scorer_dim" + ("" if is_sqlite(conn) else " ON scores"))


def replace_check(conn: Connection, table: str, name: str, sqltext: str) -> None:
    """Give the named CHECK constraint of ``table`` a new condition (``sync_tables`` never
    touches constraints, and a fresh database's ``create_all`` already has the new one).

    MySQL/MariaDB drop and re-add it in one ALTER TABLE (DROP CONSTRAINT: MariaDB 10.2.1+,
    MySQL 8.0.19+; tested on MariaDB 10.11).
    SQLite cannot alter a constraint; the table's stored CREATE statement is edited in
    place (https://www.sqlite.org/lang_altertable.html, "Making Other Kinds Of Table Schema
    Changes", the simpler procedure), which is safe only when every stored row satisfies
    the new condition: use it to widen a condition, never to narrow one.
    """
    if is_sqlite(conn):
        row = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
                                   (table,)).one()
        pattern = re.compile(rf"(CONSTRAINT {re.escape(name)} CHECK \()(.*?)(\)(?:,|\s*\)$))", re.S)
        new, n = pattern.subn(lambda m: m.group(1) + sqltext + m.group(3), row[0], count=1)
        if n != 1:
            raise SchemaError(f"{table}: no CHECK constraint {name} to replace")
        version = conn.exec_driver_sql("PRAGMA schema_version").scalar()
        conn.exec_driver_sql("PRAGMA writable_schema = ON")
        try:
            conn.exec_driver_sql("UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?",
                                 (new, table))
            conn.exec_driver_sql(f"PRAGMA schema_version = {int(version or 0) + 1}")
        finally:
            conn.exec_driver_sql("PRAGMA writable_schema = OFF")
        # reading the table makes SQLite parse the edited statement (an error rolls it back);
        # no stored row may break the new condition
        bad = conn.exec_driver_sql(f"SELECT COUNT(*) FROM {table} WHERE NOT ({sqltext})").scalar()
        if bad:
            raise SchemaError(f"{table}: {bad} rows break the new {name}; not replaced")
        return
    have = conn.exec_driver_sql(
        "SELECT COUNT(*) FROM information_schema.table_constraints WHERE table_schema = DATABASE() "
        "AND table_name = %s AND constraint_name = %s AND constraint_type = 'CHECK'", (table, name)).scalar()
    # one statement, so that a refused condition (a stored row breaks it) leaves the old one in place
    drop = f"DROP CONSTRAINT {name}, " if have else ""
    conn.exec_driver_sql(f"ALTER TABLE {table} {drop}ADD CONSTRAINT {name} CHECK ({sqltext})")


def _v12(conn: Connection) -> None:
    replace_check(conn, "crawl_runs", "ck_crawl_runs_status", _enum_sql("status", CRAWL_STATUSES))


#: version -> (description, function). Append, never edit, when the schema changes.
#: A new version changes the tables above and adds ``N: ("what", lambda c: sync_tables(c, [...]))``;
#: versions need not be contiguous (``migrate`` applies those above the database's, in order).
MIGRATIONS: dict[int, tuple[str, Migration]] = {
    1: ("initial schema", _v1),
    2: ("daily score rollups, alert index", _v2),
    3: ("spider: ip_location, is_hot, is_retweet, root_id, reply_to_id, hot-search label",
        lambda c: sync_tables(c, [posts, comments, topic_snapshots])),
    4: ("scores: answer_mass, answer_mass_gap, uncertain (likelihood scoring)",
        lambda c: sync_tables(c, [scores])),
    5: ("review console: users, annotation tasks, alerts, audit log",
        lambda c: sync_tables(c, CONSOLE_TABLES)),
    6: ("rollups by IP location (region_rollups)", _v6),
    7: ("high suicide-risk scores in alert order (risk_scores); drop the redundant ix_scores_scorer_dim", _v7),
    8: ("watch lists: watched_posts, crawl_runs.kind, comments.priority (watched comments first)",
        lambda c: sync_tables(c, [watched_posts, crawl_runs, comments])),
    9: ("push-notification outbox (notifications, notify_channels)",
        lambda c: sync_tables(c, [notifications, notify_channels])),
    10: ("deletion requests: forgotten_authors", lambda c: sync_tables(c, [forgotten_authors])),
    11: ("console: server-side sessions, login attempts per name and address, counted audit rows",
         lambda c: sync_tables(c, [audit_log, console_sessions, login_attempts])),
    12: ("crawl_runs.status: bad_cookie (a cookie file that is missing, unreadable or malformed)", _v12),
}


SCHEMA_VERSION = max(MIGRATIONS)


def current_version(bind: Engine | Connection) -> int:
    """0 for an empty database."""
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            return current_version(conn)
    if not sa.inspect(bind).has_table("schema_version"):
        return 0
    v = bind.execute(sa.select(sa.func.max(schema_version.c.version))).scalar()
    return int(v or 0)


def migrate(engine: Engine) -> list[int]:
    """Bring the schema up to SCHEMA_VERSION; returns the versions applied (empty: nothing to do)."""
    applied: list[int] = []
    with engine.begin() as conn:
        have = current_version(conn)
        if have > SCHEMA_VERSION:
            raise SchemaError(f"database schema is version {have}, newer than this code "
                              f"({SCHEMA_VERSION}): upgrade the code")
        for version in sorted(v for v in MIGRATIONS if v > have):
            desc, fn = MIGRATIONS[version]
            log.info("applying schema migration %d: %s", version, desc)
            fn(conn)
            conn.execute(schema_version.insert().values(version=version, applied_at=now(),
                                                        description=desc))
            applied.append(version)
    return applied


def check_schema(engine: Engine) -> None:
    """Refuse to run against a missing or older schema, with a message that says what to run."""
    for attempt in range(3):
        try:
            have = current_version(engine)
            break
        except sa.exc.OperationalError as e:
            # a session killed mid-check is worth another try; a refusal or a bad password is not
            text = str(getattr(e, "orig", e)).lower()
            refused = any(s in text for s in ("can't connect", "connection refused", "access denied",
                                              "unknown database", "unable to open"))
            if attempt == 2 or refused or not is_disconnect(e):
                raise SchemaError(f"cannot connect to "
                                  f"{mask(str(engine.url.render_as_string(hide_password=False)))}: "
                                  f"{short_error(e)}") from None
            time.sleep(0.5)
    if have < SCHEMA_VERSION:
        what = "has no schema" if have == 0 else f"has schema version {have}"
        raise SchemaError(
            f"database {engine.url.render_as_string(hide_password=True)} {what}; this code needs "
            f"version {SCHEMA_VERSION}. Run: python -m weibo_mh.db migrate --db URL")
    if have > SCHEMA_VERSION:
        raise SchemaError(f"database schema version {have} is newer than this code ({SCHEMA_VERSION})")


def short_error(exc: BaseException) -> str:
    """The first line of a (driver) error, for one-line log events and messages."""
    text = str(getattr(exc, "orig", exc)) or type(exc).__name__
    return text.splitlines()[0][:300]


def open_checked(url: str, echo: bool = False) -> Engine:
    """Engine for a service: connects, checks the schema version, or raises SchemaError.

    Services never create a database: a SQLite file that does not exist is an error
    (a mistyped path must not leave an empty file behind); only ``migrate`` creates one.
    """
    u = parse_url(url)
    if u.get_backend_name() == "sqlite":
        from pathlib import Path

        path = u.database or ""
        if not path or path == ":memory:" or path.startswith("file:"):
            raise SchemaError(f"{mask(url)}: give the path of a SQLite file")
        if not Path(path).is_file():
            raise SchemaError(f"no such database file: {path}; create it with: "
                              f"python -m weibo_mh.db migrate --db {mask(url)}")
    engine = make_engine(url, echo=echo)
    check_schema(engine)
    return engine


# --------------------------------------------------------------------------- upserts


def upsert(conn: Connection, table: sa.Table, rows: Sequence[dict[str, Any]],
           update: Iterable[str], keys: Sequence[str] | None = None) -> tuple[int, int]:
    """Insert rows, or update the ``update`` columns of rows that exist. Returns (new, updated).

    New and updated are told apart with one SELECT of the batch's keys, so a re-crawl
    counts its updates without a query per row.
    """
    if not rows:
        return 0, 0
    keys = list(keys or [c.name for c in table.primary_key.columns])
    # de-duplicate within the batch: the last row for a key wins
    uniq: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in rows:
        uniq[tuple(r[k] for k in keys)] = r
    rows = list(uniq.values())
    existing = _existing_keys(conn, table, keys, list(uniq))
    update = list(update)
    stmt: Any
    if conn.dialect.name == "sqlite":
        stmt = sqlite.insert(table)
        if update:
            stmt = stmt.on_conflict_do_update(index_elements=keys,
                                              set_={c: stmt.excluded[c] for c in update})
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=keys)
    else:
        stmt = mysql.insert(table)
        if update:
            stmt = stmt.on_duplicate_key_update({c: stmt.inserted[c] for c in update})
        else:
            stmt = stmt.prefix_with("IGNORE")
    conn.execute(stmt, rows)
    updated = sum(1 for k in uniq if k in existing)
    return len(rows) - updated, updated


def _existing_keys(conn: Connection, table: sa.Table, keys: list[str],
                   values: list[tuple[Any, ...]]) -> set[tuple[Any, ...]]:
    found: set[tuple[Any, ...]] = set()
    cols = [table.c[k] for k in keys]
    for i in range(0, len(values), 500):
        chunk = values[i:i + 500]
        if len(keys) == 1:
            cond = cols[0].in_([v[0] for v in chunk])
        else:
            cond = sa.tuple_(*cols).in_(chunk)
        found.update(tuple(r) for r in conn.execute(sa.select(*cols).where(cond)))
    return found


def retry_on_disconnect(fn: Callable[[], Any], attempts: int = 5, what: str = "database call",
                        first_wait: float = 0.5) -> Any:
    """Run ``fn`` again after a dropped connection or a restart (OperationalError), with back-off.

    ``fn`` must be a whole transaction, so that a retry repeats it from the start.
    """
    wait = first_wait
    for i in range(attempts):
        try:
            return fn()
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as e:
            if i == attempts - 1 or not is_disconnect(e):
                raise
            log.warning("%s: connection lost (%s); retrying in %.1fs", what, short_error(e), wait)
            time.sleep(wait)
            wait = min(wait * 2, 30)
    return None  # unreachable


def is_disconnect(e: sa.exc.DBAPIError) -> bool:
    """A dropped connection, a killed session, a restart or a lock timeout: worth a retry."""
    if getattr(e, "connection_invalidated", False):
        return True
    text = str(getattr(e, "orig", e)).lower()
    return any(s in text for s in ("lost connection", "gone away", "connection refused", "can't connect",
                                   "connection was killed", "not connected", "broken pipe",
                                   "connection reset", "deadlock found", "lock wait timeout",
                                   "database is locked", "server shutdown", "2013", "2006", "1927"))


#: MariaDB/MySQL error codes about the server's state, not the rows sent: what to do about each.
#: (Row errors, such as 1062 duplicate key, 1452 foreign key, 1406 data too long, 1366 bad
#: string value or 1264 out of range, are not listed: the database refuses those rows only.)
_MYSQL_SERVER_STATE: dict[int, str] = {
    **dict.fromkeys((1040, 1203, 1226), "too many connections to the database server: close idle "
                    "clients or raise max_connections / max_user_connections"),
    **dict.fromkeys((1021, 1114, 3), "disk (or table space) full on the database server: free space "
                    "there"),
    **dict.fromkeys((1205, 1213, 1206), "the database is busy with other writers' locks: it passes, "
                    "or find the long transaction holding them"),
    **dict.fromkeys((1290, 1836, 1792, 1036), "the database server is read-only (read_only, or a "
                    "replica): write to the primary or SET GLOBAL read_only=0"),
    **dict.fromkeys((1037, 1038, 1041, 1135), "the database server is out of memory or threads"),
    **dict.fromkeys((1044, 1045, 1142, 1143, 1227), "the database user may not write these tables: "
                    "grant it SELECT, INSERT, UPDATE on the database"),
    **dict.fromkeys((1049, 1054, 1146), "the database schema does not match this code: run "
                    "python -m weibo_mh.db migrate --db URL"),
    **dict.fromkeys((1030, 1180, 1181), "the database server's storage engine failed: see its error log"),
    **dict.fromkeys((1053, 1152, 1927, 2002, 2003, 2006, 2013, 2055, 4031), "the database connection "
                    "was lost or refused: it is retried until the server is back"),
}
#: SQLite primary result codes (sqlite_errorcode & 0xff) about the file or its disk, not the rows.
_SQLITE_SERVER_STATE: dict[int, str] = {
    13: "disk full (SQLITE_FULL, or the file's max_page_count): free space there",
    5: "the SQLite file stayed locked by another writer beyond the busy timeout: it passes, or stop "
       "the other writer",
    6: "the SQLite file stayed locked by another writer beyond the busy timeout: it passes, or stop "
       "the other writer",
    8: "the SQLite file is read-only: fix its permissions (or its folder's) or its mount",
    3: "the SQLite file is read-only: fix its permissions (or its folder's) or its mount",
    10: "disk I/O error on the SQLite file: check the disk",
    14: "the SQLite file cannot be opened: check its path and permissions",
    7: "out of memory",
    11: "the SQLite file is corrupt: restore it from a backup",
    26: "the SQLite file is corrupt: restore it from a backup",
}
#: The same for errors without a code (older Python, other drivers): message -> what to do.
_STATE_MESSAGES = (
    ("database or disk is full", 13), ("no space left", 13), ("disk full", 13),
    ("database is locked", 5), ("database table is locked", 6),
    ("readonly database", 8), ("read-only", 8), ("disk i/o error", 10),
    ("unable to open database", 14), ("malformed", 11), ("no such table", -1), ("no such column", -1),
)


def server_state_error(e: BaseException) -> str | None:
    """Why the database can take no row now (full disk, read-only, too many connections, locks,
    a lost connection, a missing table), with what to do; None when it refuses these rows only.

    A writer keeps its rows on a server-state error (writing them one by one would drop every
    one of them), and writes row by row, dropping only the rows refused again, on a row error.
    """
    orig = getattr(e, "orig", None) or e
    code: int | None = None
    if type(orig).__module__.split(".")[0] in ("pymysql", "MySQLdb", "mysql"):
        code = getattr(orig, "errno", None)  # mysql-connector
        if not isinstance(code, int) and orig.args and isinstance(orig.args[0], int):
            code = orig.args[0]  # pymysql / mysqlclient: (code, message)
    text = str(orig).lower()
    if isinstance(code, int) and code in _MYSQL_SERVER_STATE:
        what = _MYSQL_SERVER_STATE[code]
        if code in (1030, 1180, 1181) and ("no space left" in text or "error 28 " in text):
            what = _MYSQL_SERVER_STATE[1021]
        return f"{what} ({short_error(e)})"
    sqlite_code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(sqlite_code, int) and sqlite_code & 0xFF in _SQLITE_SERVER_STATE:
        return f"{_SQLITE_SERVER_STATE[sqlite_code & 0xFF]} ({short_error(e)})"
    if isinstance(e, (sa.exc.OperationalError, sa.exc.InterfaceError)) and is_disconnect(e):
        return f"{_MYSQL_SERVER_STATE[2013]} ({short_error(e)})"
    if isinstance(e, (sa.exc.IntegrityError, sa.exc.DataError)) or isinstance(code, int):
        return None  # the rows' own fault (a server code not listed above is one too)
    for needle, key in _STATE_MESSAGES:
        if needle in text:
            what = _SQLITE_SERVER_STATE.get(key, _MYSQL_SERVER_STATE[1146])
            return f"{what} ({short_error(e)})"
    return None


# --------------------------------------------------------------------------- DDL


def mysql_ddl() -> str:
    """The MySQL/MariaDB DDL of the metadata, as written to sql/schema.sql."""
    from sqlalchemy.schema import CreateIndex, CreateTable

    dialect = mysql.dialect()
    parts = [
        "-- weibo-mental-health schema, MySQL 8 / MariaDB 10.6+ (InnoDB, utf8mb4).",
        "-- GENERATED from weibo_mh/db.py: python -m weibo_mh.db ddl > sql/schema.sql",
        "-- Do not edit by hand; tests/test_schema.py fails when this file drifts.",
        "-- Prefer `python -m weibo_mh.db migrate --db URL`, which also records schema_version.",
        "",
    ]
    for table in metadata.sorted_tables:
        ddl = str(CreateTable(table).compile(dialect=dialect)).strip()
        ddl = "\n".join(line.rstrip() for line in ddl.splitlines() if line.strip())
        parts.append(ddl + ";\n")
        for index in sorted(table.indexes, key=lambda i: i.name or ""):
            parts.append(str(CreateIndex(index).compile(dialect=dialect)).strip() + ";\n")
    parts.append(f"INSERT INTO schema_version (version, applied_at, description) "
                 f"VALUES ({SCHEMA_VERSION}, NOW(), '{MIGRATIONS[SCHEMA_VERSION][0]}');\n")
    return "\n".join(parts)


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m weibo_mh.db",
        description="Create or upgrade the weibo-mental-health schema, or show its state.")
    sub = ap.add_subparsers(dest="command", required=True)
    for name, help_ in (("migrate", "create or upgrade the tables (idempotent)"),
                        ("status", "print the schema version and row counts"),
                        ("ddl", "print the MySQL DDL generated from the code")):
        p = sub.add_parser(name, help=help_)
        if name != "ddl":
            p.add_argument("--db", help="database URL (default: DATABASE_URL or the config's database.url)")
            p.add_argument("--config", help="TOML config file (default: $WEIBO_MH_CONFIG or configs/default.toml)")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("mysql.connector").setLevel(logging.WARNING)
    if a.command == "ddl":
        sys.stdout.write(mysql_ddl())
        return 0
    from weibo_mh.config import load_or_exit

    url = a.db or load_or_exit(a.config).database.url
    try:
        if a.command == "migrate":
            ensure_sqlite_dir(url)
        engine = make_engine(url)
        if a.command == "migrate":
            done = migrate(engine)
            if done:
                print(f"migrated {mask(url)} to schema version {SCHEMA_VERSION} (applied {done})")
            else:
                print(f"{mask(url)} is already at schema version {SCHEMA_VERSION}; nothing to do")
            return 0
        version = current_version(engine)
        print(f"database: {mask(url)}\nschema version: {version} (code expects {SCHEMA_VERSION})")
        if version:
            with engine.connect() as conn:
                for t in metadata.sorted_tables:
                    n = conn.execute(sa.select(sa.func.count()).select_from(t)).scalar()
                    print(f"  {t.name:16} {n:>10} rows")
                q = sa.select(comments.c.score_status, sa.func.count()).group_by(comments.c.score_status)
                for status, n in conn.execute(q):
                    print(f"  comments {status:7} {n:>10}")
        return 0
    except SchemaError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except sa.exc.SQLAlchemyError as e:
        print(f"error: cannot use database {mask(url)}: {short_error(e)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
