"""Every weibo.cn time form becomes an aware Asia/Shanghai datetime, relative to the crawl time."""

from datetime import UTC, datetime, timedelta

import pytest
from weibo.timeparse import parse_weibo_time, split_time_source

from weibo_mh import db

SH = db.SHANGHAI
CRAWL = datetime(2026, 11, 24, 22, 30, 15, tzinfo=SH)


@pytest.mark.parametrize("text, expected", [
    ("刚刚", datetime(2026, 11, 24, 22, 30, 15, tzinfo=SH)),
    ("30秒前", datetime(2026, 11, 24, 22, 29, 45, tzinfo=SH)),
    ("5分钟前", datetime(2026, 11, 24, 22, 25, 15, tzinfo=SH)),
    ("59 分钟前", datetime(2026, 11, 24, 21, 31, 15, tzinfo=SH)),
    ("2小时前", datetime(2026, 11, 24, 20, 30, 15, tzinfo=SH)),
    ("今天 08:30", datetime(2026, 11, 24, 8, 30, tzinfo=SH)),
    ("今天08:30", datetime(2026, 11, 24, 8, 30, tzinfo=SH)),
    ("昨天 23:10", datetime(2026, 11, 23, 23, 10, tzinfo=SH)),
    ("11月20日 12:00", datetime(2026, 11, 20, 12, 0, tzinfo=SH)),
    ("1月2日 07:05", datetime(2026, 1, 2, 7, 5, tzinfo=SH)),
    ("2026-11-20 12:00:00", datetime(2026, 11, 20, 12, 0, 0, tzinfo=SH)),
    ("2026-11-20 12:00", datetime(2026, 11, 20, 12, 0, tzinfo=SH)),
    ("2024-02-29", datetime(2024, 2, 29, tzinfo=SH)),
    ("2025年12月31日 23:59", datetime(2025, 12, 31, 23, 59, tzinfo=SH)),
    ("11-20 12:00", datetime(2026, 11, 20, 12, 0, tzinfo=SH)),
    ("今天\u00a008:30", datetime(2026, 11, 24, 8, 30, tzinfo=SH)),
])
def test_every_form_is_read_relative_to_the_crawl_time(text: str, expected: datetime) -> None:
    got = parse_weibo_time(text, CRAWL)
    assert got == expected
    assert got.utcoffset() == timedelta(hours=8)


def test_a_year_less_date_in_the_future_belongs_to_last_year() -> None:
    new_year = datetime(2027, 1, 2, 0, 10, tzinfo=SH)
    assert parse_weibo_time("12月31日 23:50", new_year) == datetime(2026, 12, 31, 23, 50, tzinfo=SH)
    assert parse_weibo_time("1月1日 23:50", new_year) == datetime(2027, 1, 1, 23, 50, tzinfo=SH)


def test_a_crawl_time_in_another_zone_is_converted_first() -> None:
    utc_crawl = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)  # 01:00 on the 25th in Shanghai
    assert parse_weibo_time("今天 00:30", utc_crawl) == datetime(2026, 11, 25, 0, 30, tzinfo=SH)


@pytest.mark.parametrize("text", ["", None, "很久以前", "13月40日 12:00", "2026-02-30 10:00", "今天 25:99"])
def test_unknown_or_impossible_times_give_none(text: str | None) -> None:
    assert parse_weibo_time(text, CRAWL) is None


def test_stored_times_are_naive_shanghai_wall_clock() -> None:
    assert db.to_db_time(parse_weibo_time("今天 08:30", CRAWL)) == datetime(2026, 11, 24, 8, 30)


def test_time_and_source_are_split() -> None:
    assert split_time_source("今天 08:30\u00a0来自iPhone客户端") == ("今天 08:30", "iPhone客户端")
    assert split_time_source("  5分钟前  ") == ("5分钟前", None)
