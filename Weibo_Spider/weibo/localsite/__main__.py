"""python -m weibo.localsite: serve the local weibo.cn stand-in until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from weibo.localsite.corpus import TREE_HOLE_MID, Corpus, small_corpus, watch_corpus
from weibo.localsite.server import SCENARIOS, LocalSite


def load_corpus(name: str) -> Corpus:
    if name == "demo":
        try:
            from weibo.localsite.demo_corpus import build_corpus  # written with the demo
        except ImportError:
            print("warning: weibo.localsite.demo_corpus is not there yet; serving the test corpus",
                  file=sys.stderr)
            return small_corpus()
        return build_corpus()
    return watch_corpus() if name == "watch" else small_corpus()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m weibo.localsite",
        description="Serve Weibo-shaped pages from a built-in corpus on a local port: the hot-search "
                    "JSON at /ajax/side/hotSearch, weibo.cn (/search/mblog, /comment/BID), "
                    "s.weibo.com under /sweibo (/sweibo/weibo?q=…) and the weibo.com comment JSON "
                    "under /wcom (/wcom/ajax/statuses/buildComments). Point the spider at it with "
                    "spider.hotsearch_url, spider.weibo_cn_base, spider.s_weibo_base and "
                    "spider.weibo_com_base. The watch corpus adds a tree-hole post (mid "
                    f"{TREE_HOLE_MID}) that gains a comment with every POST /_localsite/comment "
                    "{\"mid\": …, \"text\": …}.")
    ap.add_argument("--corpus", choices=["demo", "test", "watch"], default="demo",
                    help="demo: the demo corpus; test: the small test corpus; watch: the test corpus "
                         "and a watched tree-hole post (default: demo)")
    ap.add_argument("--scenario", choices=SCENARIOS, default="ok", help="failure scenario (default: ok)")
    ap.add_argument("--after", type=int, default=0, help="requests served before the scenario starts")
    ap.add_argument("--delay", type=float, default=0.0, help="seconds added to every answer")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8765)
    a = ap.parse_args(argv)
    try:
        site = LocalSite(load_corpus(a.corpus), scenario=a.scenario, host=a.host, port=a.port,
                         after=a.after, delay=a.delay)
    except OSError as e:
        print(f"error: cannot listen on {a.host}:{a.port}: {e.strerror}", file=sys.stderr)
        return 2

    def stop(*_: object) -> None:
        threading.Thread(target=site.httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    n_topics = len(site.corpus["topics"])
    print(f"local weibo site on {site.url} ({a.corpus} corpus, {n_topics} topics, "
          f"{len(site.posts)} posts, scenario {a.scenario}); hot search: {site.hotsearch_url}",
          flush=True)
    site.httpd.serve_forever()
    site.httpd.server_close()
    print(f"stopped after {site.page_hits()} requests", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
