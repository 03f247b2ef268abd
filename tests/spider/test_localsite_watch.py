"""The local site's hooks for watch tests and benchmarks: a watched post gains comments over HTTP."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from weibo.localsite import TREE_HOLE_MID, LocalSite, watch_corpus
from weibo.parsing import mid_to_bid, parse_comment_page

from weibo_mh.db import now


def post(site: LocalSite, path: str, body: bytes) -> tuple[int, dict]:
    req = urllib.request.Request(site.url + path, data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_a_comment_posted_from_another_process_comes_first_with_a_new_id_and_its_time() -> None:
    with LocalSite(watch_corpus(12)) as site:
        status, added = post(site, "/_localsite/comment",
                             json.dumps({"mid": TREE_HOLE_MID, "text": "今晚就想消失"}).encode())
        assert status == 200 and added["mid"] == TREE_HOLE_MID
        html = urllib.request.urlopen(f"{site.url}/comment/{mid_to_bid(TREE_HOLE_MID)}?page=1").read()
    page = parse_comment_page(html.decode(), site.url, now())
    first = [c for c in page.comments if not c.is_hot][0]
    assert (first.id, first.text) == (added["id"], "今晚就想消失")
    assert int(added["id"]) > max(int(c["id"]) for c in watch_corpus(12)["watch"][0]["comments_list"])
    assert first.created_at is not None and first.created_at.isoformat()[:19] == added["posted_at"][:19]


def test_bad_requests_are_refused_with_a_reason() -> None:
    with LocalSite(watch_corpus()) as site:
        assert post(site, "/_localsite/comment", b"not json")[0] == 400
        assert post(site, "/_localsite/comment", json.dumps({"mid": TREE_HOLE_MID}).encode())[0] == 400
        assert post(site, "/_localsite/comment", json.dumps({"mid": "1", "text": "x"}).encode()) == (
            404, {"error": "no such post"})
        status, new = post(site, "/_localsite/post", json.dumps({"text": "树洞 新的一条"}).encode())
        assert status == 200 and site.keyword_posts("树洞")[0]["mid"] == new["mid"]
