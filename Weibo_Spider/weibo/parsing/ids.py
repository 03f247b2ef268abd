"""Weibo's two names for a post: the numeric ``mid`` and the base-62 ``bid`` of its URL.

weibo.cn addresses posts by bid (``/comment/z0JH2lOMb``), s.weibo.com cards and the
weibo.com JSON by mid. The spider stores the mid and converts where a source needs
the other. The bid is the mid cut into groups of 7 decimal digits from the right,
each written in base 62 (``0-9a-zA-Z``) and left-padded to 4 characters except the
first (as dataabc/weiboSpider ``bid2mid`` and nghuyong/WeiboSpider ``url_to_mid`` do;
test vector ``z0JH2lOMb`` <-> ``3501756485200075``).
"""

from __future__ import annotations

import string

ALPHABET = string.digits + string.ascii_lowercase + string.ascii_uppercase
_VALUE = {c: i for i, c in enumerate(ALPHABET)}


def _decode62(s: str) -> int:
    n = 0
    for c in s:
        n = n * 62 + _VALUE[c]
    return n


def _encode62(n: int) -> str:
    if n == 0:
        return "0"
    out = []
    while n:
        n, r = divmod(n, 62)
        out.append(ALPHABET[r])
    return "".join(reversed(out))


def bid_to_mid(bid: str) -> str:
    """'z0JH2lOMb' -> '3501756485200075'. ValueError for a string that is not base 62."""
    if not bid or any(c not in _VALUE for c in bid):
        raise ValueError(f"not a Weibo bid: {bid!r}")
    groups = []
    end = len(bid)
    while end > 0:
        start = max(0, end - 4)
        groups.append(_decode62(bid[start:end]))
        end = start
    groups.reverse()
    return str(groups[0]) + "".join(f"{g:07d}" for g in groups[1:])


def mid_to_bid(mid: str) -> str:
    """'3501756485200075' -> 'z0JH2lOMb'. ValueError for a string that is not digits."""
    if not mid or not mid.isdigit():
        raise ValueError(f"not a Weibo mid: {mid!r}")
    groups = []
    end = len(mid)
    while end > 0:
        start = max(0, end - 7)
        groups.append(_encode62(int(mid[start:end])))
        end = start
    groups.reverse()
    return groups[0] + "".join(g.rjust(4, "0") for g in groups[1:])


def canonical_mid(post_id: str | None) -> str | None:
    """The numeric mid for a mid or a bid; None when it is neither (an id that only looks
    base-62 comes back unchanged)."""
    if not post_id:
        return None
    if post_id.isdigit():
        return post_id.lstrip("0") or "0"
    try:
        mid = bid_to_mid(post_id)
    except ValueError:
        return None
    # not every base-62 string is a bid (a 4-character group can exceed 7 digits): such an
    # id is kept as it is rather than turned into a number that names another post
    return mid if mid_to_bid(mid) == post_id.lstrip("0") else post_id
