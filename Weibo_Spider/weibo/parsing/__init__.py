"""Pure parsing of Weibo's pages and JSON, one module per source.

- ``hotsearch``: the hot-search list (weibo.com JSON);
- ``sweibo``: s.weibo.com topic search (HTML cards);
- ``weibocn``: weibo.cn keyword search and comment pages;
- ``weibocom``: the weibo.com comment JSON (second-level replies);
- ``mweibo``: the m.weibo.cn comment JSON (hotflow, replies inline);
- ``timesource``: weibo.cn's time / client / IP-location span;
- ``ids``: mid <-> bid (base 62).

Every function takes the page text, its URL and the crawl time and returns the plain
dataclasses of ``common``. A page is classified before it is read, so that a login
wall is never taken for "no results".
"""

from weibo.parsing.common import (
    MENTION,
    Comment,
    CommentPage,
    MalformedPage,
    Post,
    SearchPage,
    Topic,
    author_key_from_href,
    is_block_url,
    is_login_url,
    normalise_text,
    strip_private_use,
)
from weibo.parsing.hotsearch import parse_hotsearch
from weibo.parsing.ids import bid_to_mid, canonical_mid, mid_to_bid
from weibo.parsing.mweibo import parse_hotflow
from weibo.parsing.sweibo import parse_sweibo_page
from weibo.parsing.timesource import split_ct
from weibo.parsing.weibocn import COMMENT_PAGE_CAP, parse_comment_page, parse_search_page
from weibo.parsing.weibocom import is_login_json, parse_build_comments

__all__ = ["COMMENT_PAGE_CAP", "MENTION", "Comment", "CommentPage", "MalformedPage", "Post",
           "SearchPage", "Topic", "author_key_from_href", "bid_to_mid", "canonical_mid",
           "is_block_url", "is_login_json", "is_login_url", "mid_to_bid", "normalise_text",
           "parse_build_comments", "parse_comment_page", "parse_hotflow", "parse_hotsearch",
           "parse_search_page", "parse_sweibo_page", "split_ct", "strip_private_use"]
