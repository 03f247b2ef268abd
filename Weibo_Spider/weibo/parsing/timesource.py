"""weibo.cn's ``span.ct``: the time, then the client and the IP location (IP属地).

Variants seen on real 2025 pages (dataabc/weiboSpider tests/testdata; nghuyong
commit 80ebe77), nbsp between the parts and sometimes trailing spaces:

- ``2020-06-05 11:12:14&nbsp;网页``: a hot comment; client 网页, no place;
- ``01月10日 12:43&nbsp;来自来自河南``: no client, IP location 河南;
- ``今天 08:30&nbsp;来自iPhone客户端``: a client only;
- ``5分钟前&nbsp;来自iPhone客户端来自广东``: a client and a place.
"""

from __future__ import annotations

import re

from weibo.parsing.common import normalise_text

_SPLIT = re.compile(r"^(?P<when>.*?)\s*(?P<rest>(?:网页|来自|IP属地).*)?$")
_IP = re.compile(r"IP属地[:：]?\s*(\S+)")


def split_ct(raw: str | None) -> tuple[str, str | None, str | None]:
    """'01月10日 12:43\\xa0来自来自河南' -> ('01月10日 12:43', None, '河南')."""
    raw = raw or ""
    if "\u00a0" in raw.strip():
        when, _, rest = raw.strip().partition("\u00a0")
        when, rest = normalise_text(when), normalise_text(rest)
    else:
        m = _SPLIT.match(normalise_text(raw))
        when, rest = (m.group("when"), m.group("rest") or "") if m else (normalise_text(raw), "")
    ip = None
    m_ip = _IP.search(rest)
    if m_ip:
        ip = m_ip.group(1)
        rest = rest[:m_ip.start()]
    parts = [p.strip() for p in rest.split("来自")]
    head, tail = parts[0], parts[1:]
    client: str | None
    if not tail:
        client = head or None
    elif len(tail) == 1:
        client, ip = (head, ip or tail[0]) if head else (tail[0], ip)
    else:
        client, ip = tail[0] or head or None, ip or tail[-1]
    return when.strip(), client or None, ip or None
