"""Scrapy settings, mapped from the project configuration (configs/*.toml).

The file named by WEIBO_MH_CONFIG (default configs/default.toml) is read and
validated once; a bad file stops ``scrapy`` with exit status 2. Every value
can still be overridden per run: ``scrapy crawl hot_topics -s DOWNLOAD_DELAY=0``.
Secrets stay out of the settings: the cookie is read by ``CookieMiddleware``
and the salt by the pipeline, so Scrapy's "Overridden settings" log never
shows them (DATABASE_URL and REDIS_URL are not Scrapy settings it prints).
"""

import os

from weibo_mh.config import comment_sources, load_or_exit

_cfg = load_or_exit(os.environ.get("WEIBO_MH_CONFIG"))
_sp = _cfg.spider

BOT_NAME = "weibo"
SPIDER_MODULES = ["weibo.spiders"]
NEWSPIDER_MODULE = "weibo.spiders"
COMMANDS_MODULE = "weibo.commands"

#: The config file in use; middlewares and pipelines re-read it for secrets.
WEIBO_MH_CONFIG = str(_cfg.source)
DATABASE_URL = _cfg.database.url

# Every [spider] default lives once, in weibo_mh.config.SPEC; components read these
# settings without a fallback of their own.
HOTSEARCH_URL = _sp.hotsearch_url
WEIBO_CN_BASE = _sp.weibo_cn_base.rstrip("/")
S_WEIBO_BASE = _sp.s_weibo_base.rstrip("/")
WEIBO_COM_BASE = _sp.weibo_com_base.rstrip("/")
M_WEIBO_BASE = _sp.m_weibo_base.rstrip("/")
SEARCH_SOURCES = list(_sp.search_sources)
#: In order; the next is asked for a post's comments when one fails or refuses its cookie.
COMMENTS_SOURCE = comment_sources(_sp.comments_source)
MAX_REPLY_PAGES = _sp.max_reply_pages
BROWSER_USER_AGENT = _sp.browser_user_agent
TOPIC_LIMIT = _sp.topic_limit
MAX_POST_PAGES = _sp.max_post_pages
MAX_COMMENT_PAGES = _sp.max_comment_pages
INCREMENTAL = _sp.incremental
FLUSH_ITEMS = _sp.flush_items
FLUSH_SECONDS = _sp.flush_seconds
# The watch lists ([watch]; the watch spider): entries as weibo_mh.config validated them.
WATCH_POSTS = list(_cfg.watch.posts)
WATCH_KEYWORDS = list(_cfg.watch.keywords)
WATCH_PAGE_BUDGET = _cfg.watch.page_budget
WATCH_SEARCH_PAGES = _cfg.watch.search_pages
WATCH_KEYWORD_POST_DAYS = _cfg.watch.keyword_post_days
#: Set by the scheduler: use this crawl_runs row instead of inserting one.
CRAWL_RUN_ID = 0
#: Attempts of one database transaction after a lost connection (8: about a minute; tests lower it).
STORE_RETRY_ATTEMPTS = 8

# Politeness: one request at a time per domain, at least 3 s apart by default.
ROBOTSTXT_OBEY = False
USER_AGENT = _sp.user_agent
DOWNLOAD_DELAY = _sp.download_delay
DOWNLOAD_DELAY_JITTER = 0.5  # ±50 % around DOWNLOAD_DELAY
CONCURRENT_REQUESTS_PER_DOMAIN = _sp.concurrent_per_domain
CONCURRENT_REQUESTS = max(8, _sp.concurrent_per_domain * 2)
# Scrapy 2.14+ overruns CONCURRENT_REQUESTS_PER_DOMAIN when DOWNLOAD_DELAY is 0; this one does not.
DOWNLOADER = "weibo.downloader.PoliteDownloader"
AUTOTHROTTLE_ENABLED = _sp.autothrottle
AUTOTHROTTLE_START_DELAY = max(_sp.download_delay, 1.0)
AUTOTHROTTLE_TARGET_CONCURRENCY = 1.0
DOWNLOAD_TIMEOUT = 30
# Bodies over DOWNLOAD_MAXSIZE (also after gzip/deflate decompression) are cancelled:
# a gzip bomb costs a few MiB, not gigabytes, and a hot search that big fails the run.
DOWNLOAD_MAXSIZE = _sp.download_maxsize
DOWNLOAD_WARNSIZE = _sp.download_warnsize
COOKIES_ENABLED = False  # the Cookie header comes from WEIBO_COOKIE(_FILE) only

# 5xx and network errors are retried; block answers (418/403/429/432) go to BanMiddleware,
# except 403/404 on a search or comment URL of a source with a next one: that source moves on.
RETRY_ENABLED = True
RETRY_TIMES = _sp.retry_times
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408]
BAN_HTTP_CODES = list(_sp.ban_http_codes)
BAN_LIMIT = _sp.ban_limit
BAN_BACKOFF_SECONDS = _sp.ban_backoff_seconds
BAN_BACKOFF_MAX_SECONDS = _sp.ban_backoff_max_seconds
HTTPERROR_ALLOWED_CODES: list[int] = []

DOWNLOADER_MIDDLEWARES = {
    "weibo.middlewares.BanMiddleware": 660,        # sees blocks and captcha redirects before
                                                   # RedirectMiddleware (600) and RetryMiddleware
    "weibo.middlewares.LoginWallMiddleware": 650,  # sees login redirects and ok:-100 first
    "weibo.middlewares.CookieMiddleware": 690,
}
ITEM_PIPELINES = {
    "weibo.pipelines.ValidatePipeline": 100,
    "weibo.pipelines.PseudonymisePipeline": 200,
    "weibo.pipelines.DatabasePipeline": 300,
}

LOG_LEVEL = _sp.log_level
LOG_FORMATTER = "weibo.logformatter.PrivateLogFormatter"  # no item contents (ids, texts) in logs
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False  # no listening ports on a crawler host
FEED_EXPORT_ENCODING = "utf-8"

# Scale-out: a shared request queue and dupe filter in Redis (scrapy-redis).
SCHEDULER_BACKEND = _sp.scheduler_backend
REDIS_URL = _sp.redis_url
REDIS_KEY_PREFIX = _sp.redis_key_prefix
REDIS_IDLE_SECONDS = _sp.redis_idle_seconds
# With SCHEDULER_BACKEND = redis the spider switches SCHEDULER and DUPEFILTER_CLASS
# to weibo.redis_backend (see HotTopicsSpider.update_settings), so -s works too.
