"""Watch rounds (issue 26): `scrapy crawl watch` over HTTP against the local site, into SQLite and
MariaDB. Incremental (stop at the first stored comment), bounded (the page budget), keyword
watches newest first, the same statuses as the hot-topic crawl, and rounds that run beside a
long hot-topic crawl without waiting for it.
"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from weibo.localsite import TREE_HOLE_MID, LocalSite, watch_corpus
from weibo.parsing import mid_to_bid
from weibo.store import Store

from tests.spider.helpers import PY, SPIDER_DIR, crawl_env, run_crawl, runs, write_config
from weibo_mh import db

pytestmark = pytest.mark.slow
BID = mid_to_bid(TREE_HOLE_MID)


def watch_config(tmp_path: Path, site: LocalSite, watch: str = "", spider: str = "") -> Path:
    return write_config(tmp_path / "watch.toml", site, spider, extra=f"""
[watch]
posts = [{{post = "https://weibo.com/1700000001/{BID}", label = "树洞"}}]
lock_file = "{tmp_path / 'watch.lock'}"
{watch}
""")


def watched(url: str) -> dict[str, dict[str, Any]]:
    eng = db.make_engine(url)
    try:
        with eng.connect() as conn:
            return {r.mid: dict(r._mapping) for r in conn.execute(sa.select(db.watched_posts))}
    finally:
        eng.dispose()


def comment_rows(url: str, mid: str) -> dict[str, dict[str, Any]]:
    eng = db.make_engine(url)
    c = db.comments.c
    try:
        with eng.connect() as conn:
            return {r.id: dict(r._mapping) for r in conn.execute(
                sa.select(c.id, c.priority, c.created_at, c.text).where(c.mid == mid))}
    finally:
        eng.dispose()


def comment_pages(site: LocalSite) -> list[int]:
    """The comment pages of the tree-hole post fetched so far, in order of page number."""
    return sorted(int(t.rsplit("page=", 1)[1]) for t in site.hits.elements()
                  if t.startswith(f"/comment/{BID}?"))


def test_a_round_reads_new_comments_only_and_records_where_it_stopped(db_url: str, tmp_path: Path) -> None:
    with LocalSite(watch_corpus(25)) as site:
        config = watch_config(tmp_path, site, "page_budget = 2")
        first = run_crawl(config, db_url, spider="watch")
        assert first.ok, first.output
        # first round: the newest two pages (page budget), not the post's whole history
        assert comment_pages(site) == [1, 2]
        assert len(comment_rows(db_url, TREE_HOLE_MID)) == 20
        site.hits.clear()
        added = site.add_comment(TREE_HOLE_MID, "今晚想结束这一切了", ip="江苏")
        second = run_crawl(config, db_url, spider="watch")
        assert second.ok, second.output
        # second round: page 1 holds the stored comments after the new one: it stops there
        assert comment_pages(site) == [1]
    r1, r2 = runs(db_url)
    assert (r1["kind"], r1["status"], r1["comments_new"]) == ("watch", "ok", 20)
    assert (r2["kind"], r2["status"], r2["comments_new"]) == ("watch", "ok", 1)
    assert r1["stats"]["watch"]["stops"] == {"first_round": 1}
    assert r2["stats"]["watch"]["stops"] == {"stored": 1}
    rows = comment_rows(db_url, TREE_HOLE_MID)
    new = rows[added["id"]]
    assert new["text"] == "今晚想结束这一切了" and new["priority"] == db.WATCHED_PRIORITY
    assert new["created_at"].strftime("%Y-%m-%d %H:%M:%S") == added["created"]
    (w,) = watched(db_url).values()
    assert (w["mid"], w["bid"], w["label"], w["origin"]) == (TREE_HOLE_MID, BID, "树洞", "post")
    assert w["newest_comment_id"] == added["id"] and w["last_run_id"] == r2["id"]
    assert w["newest_comment_at"] == new["created_at"] and w["last_crawled_at"] is not None


def test_the_page_budget_bounds_a_round_that_finds_more_new_comments(sqlite_url: str,
                                                                      tmp_path: Path) -> None:
    with LocalSite(watch_corpus(5)) as site:
        config = watch_config(tmp_path, site, "page_budget = 2")
        assert run_crawl(config, sqlite_url, spider="watch").ok
        for i in range(25):   # three pages of new comments
            site.add_comment(TREE_HOLE_MID, f"新的留言 {i}")
        site.hits.clear()
        crawl = run_crawl(config, sqlite_url, spider="watch")
        assert crawl.ok, crawl.output
        assert comment_pages(site) == [1, 2]
    run = runs(sqlite_url)[-1]
    assert run["comments_new"] == 20 and run["stats"]["watch"]["stops"] == {"budget": 1}
    assert run["stats"]["watch"]["budget_reached"] == [TREE_HOLE_MID]
    assert "watch.page_budget reached" in crawl.output


def test_keyword_watches_search_newest_first_and_watch_what_they_find(sqlite_url: str,
                                                                      tmp_path: Path) -> None:
    with LocalSite(watch_corpus(), scenario="sweibo_login") as site:
        post = site.add_post("深夜的树洞，有人在吗")
        site.add_comment(post["mid"], "我在，一直都在")
        config = watch_config(tmp_path, site, 'keywords = [{keyword = "树洞", label = "树洞搜索"}]')
        crawl = run_crawl(config, sqlite_url, spider="watch")
        hits = list(site.hits)
    assert crawl.ok, crawl.output
    # s.weibo.com's real-time search wanted a login: weibo.cn's search by time took over
    assert any(h.startswith("/sweibo/realtime?q=") for h in hits)
    assert any(h.startswith("/search/mblog?") and "sort=time" in h for h in hits)
    found = watched(sqlite_url)[post["mid"]]
    assert (found["label"], found["origin"]) == ("树洞搜索", "keyword:树洞")
    assert [r["text"] for r in comment_rows(sqlite_url, post["mid"]).values()] == ["我在，一直都在"]
    eng = db.make_engine(sqlite_url)
    with eng.connect() as conn:
        text = conn.execute(sa.select(db.posts.c.text).where(db.posts.c.mid == post["mid"])).scalar()
    eng.dispose()
    assert text == "深夜的树洞，有人在吗"


def _found_then_buried(site: LocalSite, tmp_path: Path, url: str, spider: str = "") -> tuple[dict[str, Any], Path]:
    """A round whose keyword found a post, then a full page of newer posts over it: the next
    round's one search page no longer lists it."""
    post = site.add_post("深夜的树洞，有人在吗")
    site.add_comment(post["mid"], "我在，一直都在")
    config = watch_config(tmp_path, site, 'keywords = [{keyword = "树洞", label = "树洞搜索"}]', spider)
    assert run_crawl(config, url, spider="watch").ok
    for i in range(10):
        site.add_post(f"又一个树洞 {i}")
    return post, config


def test_a_post_a_keyword_found_is_read_in_later_rounds_after_it_leaves_the_search(
        sqlite_url: str, tmp_path: Path) -> None:
    with LocalSite(watch_corpus()) as site:
        post, config = _found_then_buried(site, tmp_path, sqlite_url)
        added = site.add_comment(post["mid"], "谢谢你还在")
        site.hits.clear()
        crawl = run_crawl(config, sqlite_url, spider="watch")
        hits = list(site.hits)
    assert crawl.ok, crawl.output
    assert not any("page=2" in h for h in hits if "q=" in h or "keyword=" in h)
    assert sum(1 for h in hits if h.startswith(f"/comment/{post['bid']}?")) == 1   # read once
    assert added["id"] in comment_rows(sqlite_url, post["mid"])
    run = runs(sqlite_url)[-1]
    assert run["comments_new"] == 1 and run["stats"]["watch"]["posts"] == 2
    assert watched(sqlite_url)[post["mid"]]["newest_comment_id"] == added["id"]


def _age_watched(url: str, mid: str, days: int) -> None:
    eng = db.make_engine(url)
    with eng.begin() as conn:
        conn.execute(db.watched_posts.update().where(db.watched_posts.c.mid == mid)
                     .values(added_at=db.now() - timedelta(days=days)))
    eng.dispose()


def test_posts_a_keyword_found_are_read_for_keyword_post_days_then_retired(db_url: str) -> None:
    """Found longer ago than the days: inactive, kept; configured posts never age out; 0: for ever."""
    store = Store(db_url)
    configured = {"mid": "4990000000000001", "bid": None, "label": "树洞"}
    store.sync_watch_list([configured], ["树洞"])
    store.watch_found([{"mid": m, "bid": None, "label": "树洞搜索"} for m in ("4990000000000002",
                                                                           "4990000000000003")], "树洞")
    for mid in ("4990000000000001", "4990000000000002"):
        _age_watched(db_url, mid, 8)
    assert store.sync_watch_list([configured], ["树洞"], keyword_post_days=0).retired == 0
    listed = store.sync_watch_list([configured], ["树洞"], keyword_post_days=7)
    store.close()
    assert listed.retired == 1
    assert [p["mid"] for p in listed.keyword_posts] == ["4990000000000003"]
    rows = watched(db_url)
    assert {m: r["active"] for m, r in rows.items()} == {"4990000000000001": True, "4990000000000002": False,
                                                         "4990000000000003": True}


def test_a_round_searches_before_it_reads_old_finds_and_leaves_expired_ones(sqlite_url: str,
                                                                           tmp_path: Path) -> None:
    with LocalSite(watch_corpus()) as site:
        # one request at a time, as in production: the server sees the scheduler's order
        post, config = _found_then_buried(site, tmp_path, sqlite_url, "concurrent_per_domain = 1")
        site.hits.clear()
        crawl = run_crawl(config, sqlite_url, spider="watch")
        order = list(site.hits)   # in the order first asked for
        _age_watched(sqlite_url, post["mid"], 8)
        site.hits.clear()
        late = run_crawl(config, sqlite_url, spider="watch")
        hits = list(site.hits)
    assert crawl.ok and late.ok, late.output
    search = next(i for i, h in enumerate(order) if "keyword=" in h or "q=" in h)
    old_find = order.index(next(h for h in order if h.startswith(f"/comment/{post['bid']}?")))
    assert search < old_find, order
    assert not any(h.startswith(f"/comment/{post['bid']}?") for h in hits)
    assert "1 found over 7 days ago no longer read" in late.output
    assert runs(sqlite_url)[-1]["stats"]["watch"]["keyword_posts_retired"] == 1
    assert watched(sqlite_url)[post["mid"]]["active"] is False


def test_mark_watched_records_each_post_and_keeps_the_newest_it_did_not_see(db_url: str) -> None:
    """One UPDATE for every post: a post whose newest comments are stored moves its mark, one
    whose ids are not stored keeps its old mark; both get the round's id and time."""
    store = Store(db_url)
    store.start_run(kind="watch")
    store.sync_watch_list([{"mid": m, "bid": None, "label": "树洞"} for m in ("4990000000000001",
                                                                             "4990000000000002")], [])
    t = db.now()
    for mid in ("4990000000000001", "4990000000000002"):
        store.add("post", {"mid": mid, "text": "一个树洞", "first_scraped_at": t, "scraped_at": t,
                           "full_text": True, "topics": []})
    store.add("comment", {"id": "5000000000000001", "mid": "4990000000000001", "text": "还在吗",
                          "likes": 0, "is_hot": False, "created_at": t, "first_scraped_at": t,
                          "scraped_at": t})
    store.flush()
    store.mark_watched({"4990000000000001": ["5000000000000001"], "4990000000000002": ["5000000000000009"]})
    rows = watched(db_url)
    a, b = rows["4990000000000001"], rows["4990000000000002"]
    assert (a["newest_comment_id"], a["last_run_id"]) == ("5000000000000001", store.run_id)
    assert a["newest_comment_at"] is not None and a["last_crawled_at"] is not None
    assert (b["newest_comment_id"], b["newest_comment_at"], b["last_run_id"]) == (None, None, store.run_id)
    store.mark_watched({"4990000000000001": ["5000000000000099"]})   # nothing of it stored
    store.close()
    again = watched(db_url)["4990000000000001"]
    assert (again["newest_comment_id"], again["newest_comment_at"]) == \
        (a["newest_comment_id"], a["newest_comment_at"])


def test_a_keyword_search_whose_source_is_unreachable_falls_back_to_the_next(
        sqlite_url: str, tmp_path: Path) -> None:
    """s.weibo.com refuses the connection (a closed port): weibo.cn's search by time takes over,
    the hand-over is recorded, and the post found is watched and its comments read."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    with LocalSite(watch_corpus()) as site:
        post = site.add_post("深夜的树洞，有人在吗")
        site.add_comment(post["mid"], "我在，一直都在")
        config = watch_config(tmp_path, site, 'keywords = [{keyword = "树洞", label = "树洞搜索"}]',
                              spider=f'retry_times = 1\ns_weibo_base = "http://127.0.0.1:{dead}/sweibo"')
        crawl = run_crawl(config, sqlite_url, spider="watch")
        hits = list(site.hits)
    assert crawl.ok, crawl.output
    assert any(h.startswith("/search/mblog?") and "sort=time" in h for h in hits)
    (run,) = runs(sqlite_url)
    assert run["status"] == "ok" and run["stats"]["watch"]["keywords_failed"] == {}
    (moved,) = run["stats"]["source_fallbacks"]
    assert (moved["keyword"], moved["source"], moved["reason"], moved["next"]) == \
        ("树洞", "s.weibo.com", "refused", "weibo.cn")
    assert watched(sqlite_url)[post["mid"]]["origin"] == "keyword:树洞"
    assert [r["text"] for r in comment_rows(sqlite_url, post["mid"]).values()] == ["我在，一直都在"]


def test_a_keyword_no_source_can_search_fails_a_keyword_only_round(sqlite_url: str, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    with LocalSite(watch_corpus()) as site:
        config = write_config(tmp_path / "watch.toml", site, (
            f'retry_times = 1\ns_weibo_base = "http://127.0.0.1:{dead}/sweibo"\n'
            f'weibo_cn_base = "http://127.0.0.1:{dead}"'), extra=f"""
[watch]
keywords = [{{keyword = "树洞", label = "树洞搜索"}}]
lock_file = "{tmp_path / 'watch.lock'}"
""")
        crawl = run_crawl(config, sqlite_url, spider="watch")
    assert crawl.returncode == 1, crawl.output
    (run,) = runs(sqlite_url)
    cause = f"connection refused by 127.0.0.1:{dead}"
    assert run["status"] == "failed" and run["stats"]["watch"]["keywords_failed"] == {"树洞": cause}
    assert run["error"] == f"no watch keyword could be searched: 树洞 ({cause})"


def test_the_weibo_com_source_asks_for_comments_by_time(sqlite_url: str, tmp_path: Path) -> None:
    with LocalSite(watch_corpus(8)) as site:
        config = watch_config(tmp_path, site, spider='comments_source = "weibo.com"')
        crawl = run_crawl(config, sqlite_url, spider="watch")
        asked = [h for h in site.hits if "buildComments" in h]
    assert crawl.ok, crawl.output
    assert asked and all("flow=1" in h for h in asked)
    # first-level comments; a round does not follow reply threads (replies in a tree hole answer
    # older comments, which the time-ordered first level does not bring back anyway)
    first_level = {c["id"] for c in watch_corpus(8)["watch"][0]["comments_list"] if not c["reply_to"]}
    assert set(comment_rows(sqlite_url, TREE_HOLE_MID)) == first_level


def test_m_weibo_cn_in_the_source_list_is_passed_over_for_a_newest_first_source(
        sqlite_url: str, tmp_path: Path) -> None:
    """hotflow is ordered by heat: a round reads the next source in the list, and says why once."""
    with LocalSite(watch_corpus(8)) as site:
        config = watch_config(tmp_path, site,
                              spider='comments_source = ["m.weibo.cn", "weibo.com", "weibo.cn"]')
        crawl = run_crawl(config, sqlite_url, spider="watch")
        hits = list(site.hits)
    assert crawl.ok, crawl.output
    assert not any("/comments/hotflow" in h for h in hits)
    assert not any(h.startswith(f"/comment/{BID}?") for h in hits)
    assert [h for h in hits if "buildComments" in h and "flow=1" in h]
    assert crawl.output.count("comments are not read from m.weibo.cn") == 1
    (run,) = runs(sqlite_url)
    assert run["status"] == "ok" and run["stats"]["comment_fallbacks"] == []
    first_level = {c["id"] for c in watch_corpus(8)["watch"][0]["comments_list"] if not c["reply_to"]}
    assert set(comment_rows(sqlite_url, TREE_HOLE_MID)) == first_level


def test_m_weibo_cn_alone_fails_a_round_with_the_reason(sqlite_url: str, tmp_path: Path) -> None:
    with LocalSite(watch_corpus()) as site:
        config = watch_config(tmp_path, site, spider='comments_source = "m.weibo.cn"')
        crawl = run_crawl(config, sqlite_url, spider="watch")
        hits = sum(site.hits.values())
    assert crawl.returncode == 1, crawl.output
    (run,) = runs(sqlite_url)
    assert run["status"] == "failed" and hits == 0
    assert "weibo.cn or weibo.com" in run["error"] and "m.weibo.cn" in run["error"]


def test_a_failing_first_comment_source_hands_the_watched_post_to_the_next(
        db_url: str, tmp_path: Path) -> None:
    with socket.socket() as s:   # a port nothing listens on: weibo.com refuses the connection
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    with LocalSite(watch_corpus(25)) as site:
        config = watch_config(tmp_path, site, "page_budget = 2", spider=(
            f'retry_times = 1\nweibo_com_base = "http://127.0.0.1:{dead}"\n'
            'comments_source = ["m.weibo.cn", "weibo.com", "weibo.cn"]'))
        first = run_crawl(config, db_url, spider="watch")
        assert first.ok, first.output
        assert comment_pages(site) == [1, 2]        # weibo.cn, newest first, within the budget
        site.hits.clear()
        site.add_comment(TREE_HOLE_MID, "又是睡不着的一夜")
        second = run_crawl(config, db_url, spider="watch")
        assert second.ok, second.output
        assert comment_pages(site) == [1]           # after the fallback it stops at the stored ones
    r1, r2 = runs(db_url)
    for run in (r1, r2):
        assert (run["kind"], run["status"]) == ("watch", "ok")
        (moved,) = run["stats"]["comment_fallbacks"]
        assert (moved["mid"], moved["source"], moved["reason"], moved["next"]) == \
            (TREE_HOLE_MID, "weibo.com", "refused", "weibo.cn")
        assert run["stats"]["recrawl_mids"] == []
    assert (r1["comments_new"], r2["comments_new"]) == (20, 1)
    assert r1["stats"]["watch"]["posts"] == 1 and r2["stats"]["watch"]["stops"] == {"stored": 1}
    assert len(comment_rows(db_url, TREE_HOLE_MID)) == 21


def test_a_refused_weibo_com_cookie_hands_the_watched_post_to_weibo_cn(sqlite_url: str,
                                                                        tmp_path: Path) -> None:
    with LocalSite(watch_corpus(8), scenario="ok100") as site:   # every weibo.com answer: ok -100
        config = watch_config(tmp_path, site, spider='comments_source = ["weibo.com", "weibo.cn"]')
        crawl = run_crawl(config, sqlite_url, spider="watch")
    assert crawl.ok, crawl.output
    (run,) = runs(sqlite_url)
    assert run["status"] == "ok" and run["comments_new"] == 8
    assert run["stats"]["logins_refused"] == ["weibo.com"]
    assert [(f["source"], f["reason"], f["next"]) for f in run["stats"]["comment_fallbacks"]] == \
        [("weibo.com", "login_wall", "weibo.cn")]
    assert crawl.output.count("LOGIN REQUIRED") == 1


@pytest.mark.parametrize("scenario, code, status", [("login_redirect", 3, "login_required"),
                                                    ("ban418", 4, "rate_limited")])
def test_a_login_wall_or_a_block_ends_a_round_as_the_hot_topic_crawl_would(
        sqlite_url: str, tmp_path: Path, scenario: str, code: int, status: str) -> None:
    with LocalSite(watch_corpus(), scenario=scenario) as site:
        config = watch_config(tmp_path, site)
        crawl = run_crawl(config, sqlite_url, spider="watch")
    assert crawl.returncode == code, crawl.output
    (run,) = runs(sqlite_url)
    assert (run["kind"], run["status"]) == ("watch", status)


def test_a_round_that_can_read_no_watched_post_fails(sqlite_url: str, tmp_path: Path) -> None:
    with LocalSite(watch_corpus()) as site:
        config = watch_config(tmp_path, site)
    # the site is gone: every request fails after its retries
    crawl = run_crawl(config, sqlite_url, "RETRY_TIMES=0", spider="watch")
    assert crawl.returncode == 1, crawl.output
    (run,) = runs(sqlite_url)
    assert run["status"] == "failed" and "no watched post could be read" in run["error"]


def _schedule_module() -> Any:
    spec = importlib.util.spec_from_file_location("default_schedule", SPIDER_DIR / "default_schedule.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_watch_round_runs_while_a_long_hot_topic_crawl_holds_its_lock(
        sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Separate locks and child processes: the round starts, ends and is recorded while the
    hot-topic crawl (slow search pages) is still running."""
    sched = _schedule_module()
    from weibo_mh.config import load_config

    with LocalSite(watch_corpus(), delay=3.0, delay_prefix="/sweibo") as site:
        config = watch_config(tmp_path, site, spider="concurrent_per_domain = 1")
        for k, v in crawl_env(config, sqlite_url).items():
            monkeypatch.setenv(k, v)
        cfg = load_config(config)
        hot = sched.Scheduler(str(config), sqlite_url, 5.0, 5.0, cfg.schedule.lock_file,
                              cfg.schedule.log_dir, [])
        watch = sched.watch_scheduler(cfg, sqlite_url, [])
        statuses: dict[str, str] = {}
        thread = threading.Thread(target=lambda: statuses.update(hot=hot.run_once()))
        thread.start()
        deadline = time.monotonic() + 60
        while not site.hits["/ajax/side/hotSearch"] and time.monotonic() < deadline:
            time.sleep(0.1)
        statuses["watch"] = watch.run_once()
        hot_running = thread.is_alive()
        thread.join(timeout=120)
    assert statuses == {"hot": "ok", "watch": "ok"}
    assert hot_running, "the watch round waited for the hot-topic crawl"
    hot_run, watch_run = runs(sqlite_url)
    assert (hot_run["kind"], watch_run["kind"]) == ("hot", "watch")
    assert watch_run["finished_at"] <= hot_run["finished_at"]
    assert watch_run["comments_new"] == 25


def test_the_daemon_starts_watch_rounds_at_once_and_stops_cleanly(sqlite_url: str, tmp_path: Path) -> None:
    with LocalSite(watch_corpus()) as site:
        config = watch_config(tmp_path, site)
        proc = subprocess.Popen([PY, str(SPIDER_DIR / "default_schedule.py"), "--config", str(config)],
                                env=crawl_env(config, sqlite_url), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        seen = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stderr.readline() if proc.stderr else ""
            seen.append(line)
            if "watch round 1 ok" in line or not line:
                break
        proc.send_signal(2)
        _, err = proc.communicate(timeout=60)
    text = "".join(seen) + err
    assert proc.returncode == 0, text
    assert "watch rounds every 10 minutes" in text and "watch round 1 ok" in text
    assert "scheduler stopped" in text
    (run,) = runs(sqlite_url)
    assert (run["kind"], run["status"]) == ("watch", "ok")


@pytest.mark.redis
def test_a_round_keeps_its_own_scheduler_with_the_redis_backend(sqlite_url: str, tmp_path: Path) -> None:
    with LocalSite(watch_corpus(5)) as site:
        config = watch_config(tmp_path, site, spider=f'redis_key_prefix = "h26a-{tmp_path.name}"')
        crawl = run_crawl(config, sqlite_url, "SCHEDULER_BACKEND=redis", spider="watch")
    assert crawl.ok, crawl.output
    assert "shared scheduler on Redis" not in crawl.output
    assert runs(sqlite_url)[0]["comments_new"] == 5


def test_once_watch_without_a_watch_list_or_with_one_lock_for_both_exits_2(sqlite_url: str,
                                                                           tmp_path: Path) -> None:
    schedule = [PY, str(SPIDER_DIR / "default_schedule.py"), "--once", "--watch", "--config"]
    with LocalSite(watch_corpus()) as site:
        plain = write_config(tmp_path / "plain.toml", site)
        p = subprocess.run([*schedule, str(plain)], env=crawl_env(plain, sqlite_url), capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == 2 and "needs [watch] posts or keywords" in p.stderr
        shared = watch_config(tmp_path, site)   # the watch lock made the hot-topic crawl's
        shared.write_text(shared.read_text().replace(str(tmp_path / "watch.lock"),
                                                     str(tmp_path / "crawl.lock")))
        p = subprocess.run([*schedule, str(shared)], env=crawl_env(shared, sqlite_url),
                           capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "watch.lock_file must differ from schedule.lock_file" in p.stderr
    assert runs(sqlite_url) == []


def test_a_watch_round_behind_a_login_wall_runs_the_notification_with_its_kind(
        sqlite_url: str, tmp_path: Path) -> None:
    note = tmp_path / "note.txt"
    script = tmp_path / "notify.py"
    script.write_text("import os, pathlib, sys\npathlib.Path(sys.argv[1]).write_text(' '.join("
                      "os.environ[k] for k in ('WEIBO_MH_RUN_KIND', 'WEIBO_MH_RUN_STATUS', "
                      "'WEIBO_MH_RUN_ID')))\n")
    with LocalSite(watch_corpus(), scenario="login_redirect") as site:
        config = watch_config(tmp_path, site)
        config.write_text(config.read_text().replace(
            "[schedule]\n", f'[schedule]\nnotify_command = "{PY} {script} {note}"\n', 1))
        p = subprocess.run([PY, str(SPIDER_DIR / "default_schedule.py"), "--once", "--watch", "--config",
                            str(config)], env=crawl_env(config, sqlite_url), capture_output=True,
                           text=True, timeout=120)
    assert p.returncode == 3, p.stderr
    (run,) = runs(sqlite_url)
    assert note.read_text() == f"watch login_required {run['id']}"
    assert (run["kind"], run["status"]) == ("watch", "login_required")
