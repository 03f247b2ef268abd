"""Latency of the watch → score → notify loop: posted → notified, p50 and p95.

The scheduler (watch rounds, ``watch.every_minutes = 1``, the default politeness:
``download_delay = 3.0`` with AutoThrottle) and the scoring worker (lexicon, default idle
back-off, notifier thread with the default poll) run as child processes, as in production,
on a fresh SQLite file. A LocalSite serves a watched tree-hole post; every 60–90 s (seeded
random gaps, so comments land at every phase of the watch round) the benchmark adds a comment
the lexicon puts at suicide risk 10 and notes the time. A local webhook receiver (checking
the HMAC signature) and a local SMTP server (STARTTLS, login) record arrival times.

Digest settings: ``notify.digest_minutes = 1`` and ``notify.max_per_hour = 60`` (the
defaults, 5 and 12, would gather these back-to-back alerts into digests: by design, and
measured as such they would time the digest window, not the pipeline). Every other
setting is the default.

Beside it, on paper: the hot-topic schedule (10:00 and 22:00) a comment waits for.

    nice -n 10 .venv/bin/python bench/bench_watch.py [--comments 20] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "Weibo_Spider"))

import sqlalchemy as sa  # noqa: E402
from weibo.localsite import TREE_HOLE_MID, LocalSite, watch_corpus  # noqa: E402

from tests.notify.conftest import SECRET, SMTP_PASSWORD, SMTP_USER  # noqa: E402
from tests.notify.pipeline import HIGH_RISK, Pipeline  # noqa: E402
from tests.notify.receivers import SmtpInbox, WebhookReceiver, self_signed_cert  # noqa: E402
from weibo_mh import db  # noqa: E402

ALERT_LINE = re.compile(r"^Alert (\d+):", re.M)


def pct(xs: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(xs)
    return s[max(0, min(len(s) - 1, int(-(-q * len(s) // 1)) - 1))]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def on_paper(times: tuple[str, ...] = ("10:00", "22:00")) -> dict[str, float]:
    """Hours a comment posted at a uniformly random time waits for the next scheduled hot crawl
    to start (crawl and scoring time not included; nothing is pushed afterwards)."""
    mins = sorted(int(t[:2]) * 60 + int(t[3:]) for t in times)
    steps = 1440 * 10  # every 6 s of a day
    samples = [min((m - s / 10) % 1440 for m in mins) for s in range(steps)]
    return {"p50_h": pct(samples, 0.5) / 60, "p95_h": pct(samples, 0.95) / 60}


def run(n: int, gap: tuple[float, float], seed: int, drain: float) -> dict[str, Any]:
    rng = random.Random(seed)
    work = Path(tempfile.mkdtemp(prefix="bench_watch_"))
    url = f"sqlite:///{work / 'watch.db'}"
    engine = db.make_engine(url)
    db.migrate(engine)
    cert, key = self_signed_cert(work)
    inbox = SmtpInbox(cert, key, user=SMTP_USER, password=SMTP_PASSWORD).start()
    hook = WebhookReceiver(SECRET).start()
    posted: dict[str, float] = {}
    with LocalSite(watch_corpus()) as site:
        pipe = Pipeline(work, url, site, inbox, hook, cert, fast=False,
                        notify="digest_minutes = 1.0\nmax_per_hour = 60\n")
        pipe.start(nice=10)
        t0 = time.time()
        try:
            time.sleep(45)  # the first round reads the post's old comments
            for i in range(n):
                c = site.add_comment(TREE_HOLE_MID, f"{HIGH_RISK}（{i}）", uid=f"71{i:05d}")
                posted[c["id"]] = time.time()
                print(f"[{time.time() - t0:7.1f}s] comment {i + 1}/{n} posted ({c['id']}); "
                      f"webhook has {len(hook.alert_ids())}, inbox {len(inbox.messages)}", flush=True)
                if i < n - 1:
                    time.sleep(rng.uniform(*gap))
            end = time.time() + drain
            while time.time() < end and len(set(hook.alert_ids())) < n:
                time.sleep(2)
            time.sleep(5)
        finally:
            pipe.stop()
    inbox.stop()
    hook.stop()
    with engine.connect() as conn:
        comment_of = dict(conn.execute(sa.select(db.alerts.c.id, db.alerts.c.comment_id)).all())
        runs = conn.execute(sa.select(sa.func.count(), sa.func.avg(
            sa.func.julianday(db.crawl_runs.c.finished_at) - sa.func.julianday(db.crawl_runs.c.started_at)))
            .where(db.crawl_runs.c.kind == "watch")).one()
    engine.dispose()
    hook_at: dict[str, list[float]] = {}
    for payload, at in zip(hook.accepted, hook.arrivals, strict=True):
        for a in payload["alerts"]:
            hook_at.setdefault(comment_of.get(a["alert_id"], "?"), []).append(at)
    mail_at: dict[str, list[float]] = {}
    for body, at in zip(inbox.bodies(), inbox.arrivals, strict=True):
        for aid in ALERT_LINE.findall(body):
            mail_at.setdefault(comment_of.get(int(aid), "?"), []).append(at)
    out: dict[str, Any] = {"comments": n, "watch_rounds": int(runs[0]),
                           "round_seconds_mean": round(float(runs[1] or 0) * 86400, 1),
                           "webhook_messages": len(hook.accepted), "mails": len(inbox.messages)}
    for name, got in (("webhook", hook_at), ("email", mail_at)):
        lat = [min(got[cid]) - t for cid, t in posted.items() if cid in got]
        out[name] = {"delivered": len(lat), "duplicates": sum(len(v) - 1 for v in got.values()),
                     "p50_s": round(statistics.median(lat), 1) if lat else None,
                     "p95_s": round(pct(lat, 0.95), 1) if lat else None,
                     "max_s": round(max(lat), 1) if lat else None}
    out["hot_schedule_on_paper"] = {k: round(v, 2) for k, v in on_paper().items()}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--comments", type=int, default=20, help="high-risk comments added (default 20)")
    ap.add_argument("--gap-min", type=float, default=60.0, help="shortest gap between comments, s")
    ap.add_argument("--gap-max", type=float, default=90.0, help="longest gap between comments, s")
    ap.add_argument("--drain", type=float, default=300.0, help="longest wait for the last deliveries, s")
    ap.add_argument("--seed", type=int, default=26)
    ap.add_argument("--out", type=Path, help="also write the result as JSON here")
    a = ap.parse_args()
    started = datetime.now().astimezone()
    res = run(a.comments, (a.gap_min, a.gap_max), a.seed, a.drain)
    res.update(date=started.isoformat(timespec="minutes"), machine=machine())
    text = json.dumps(res, ensure_ascii=False, indent=2)
    print(text)
    if a.out:
        a.out.write_text(text + "\n", encoding="utf-8")
    ok = res["webhook"]["delivered"] == a.comments and res["email"]["delivered"] == a.comments
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
