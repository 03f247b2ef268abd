"""One configuration for all three services: a TOML file plus environment overrides.

Every key is declared in ``SPEC`` with its type, default and meaning, so that a
typo or a wrong type stops the program at start-up (exit status 2) with a
message naming the key and the file, and so that the README's configuration
reference can be generated from (and checked against) the code.

Secrets never live in the file: the cookie, the salt, the API key and database
passwords come from environment variables or from files outside the repository.
"""

from __future__ import annotations

import math
import os
import re
import secrets
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = PROJECT_ROOT / "configs"
DEFAULT_CONFIG = CONFIG_DIR / "default.toml"

#: Environment variable that names the config file when --config is not given.
CONFIG_ENV = "WEIBO_MH_CONFIG"


class ConfigError(Exception):
    """A configuration problem the user must fix; the message says what and where."""


@dataclass(frozen=True)
class Key:
    type: type | tuple[type, ...]
    default: Any
    doc: str
    choices: tuple[Any, ...] = ()
    #: A path relative to the project root (resolved when loaded).
    path: bool = False
    env: str = ""
    secret: bool = False
    #: Smallest and largest accepted value of a number (inclusive). Numbers are never
    #: negative unless ``min`` says so, and floats are always finite (no inf, no nan).
    min: float | None = 0
    max: float | None = None


def _k(type_, default, doc, **kw) -> Key:
    return Key(type_, default, doc, **kw)


#: About a week in seconds: the longest lease or batch that makes sense.
WEEK_SECONDS = 7 * 24 * 3600


SPEC: dict[str, dict[str, Key]] = {
    "database": {
        "url": _k(str, "sqlite:///data/weibo.db",
                  "SQLAlchemy URL: sqlite:///PATH, mysql+pymysql://USER@HOST/DB or "
                  "mysql+mysqlconnector://…. A relative SQLite path is relative to the project root. "
                  "Put passwords in DATABASE_URL, not here.", env="DATABASE_URL", secret=True),
        "echo": _k(bool, False, "Log every SQL statement (debugging)."),
    },
    "privacy": {
        "salt_file": _k(str, "", "File holding the secret HMAC salt for author_hash "
                        "(overridden by WEIBO_MH_SALT / WEIBO_MH_SALT_FILE).", path=True),
        "demo_salt": _k(bool, False, "Demo only: create a random salt in data/ on first use "
                        "instead of refusing to start without one."),
        "keep_raw_ids": _k(bool, False, "Also store raw Weibo user ids next to their hashes. "
                           "Off by default; see docs/deploying.md, Data protection."),
    },
    "spider": {
        "hotsearch_url": _k(str, "https://weibo.com/ajax/side/hotSearch", "Hot-search JSON endpoint."),
        "weibo_cn_base": _k(str, "https://weibo.cn", "Base URL of the weibo.cn mobile site."),
        "s_weibo_base": _k(str, "https://s.weibo.com", "Base URL of s.weibo.com topic search."),
        "weibo_com_base": _k(str, "https://weibo.com", "Base URL of weibo.com (the comment JSON)."),
        "m_weibo_base": _k(str, "https://m.weibo.cn", "Base URL of m.weibo.cn (the hotflow comment "
                           "JSON; it takes the weibo.cn cookie)."),
        "search_sources": _k(list, ["s.weibo.com", "weibo.cn"], "Topic search sources, tried in "
                             "order: the next one is used for a topic when a source answers with a "
                             "login wall or no posts, or fails (network error, 5xx after retries, "
                             "403/404), recorded in crawl_runs.stats. Entries: s.weibo.com, weibo.cn."),
        "comments_source": _k((str, list), "weibo.cn", "Where comments come from: weibo.cn pages "
                              "(flat replies), the weibo.com buildComments JSON (second-level replies, "
                              "root_id/reply_to_id) or the m.weibo.cn hotflow JSON (replies inline). "
                              "One source, or a list tried in order per post when a source fails or "
                              "refuses its cookie. Entries: weibo.cn, weibo.com, m.weibo.cn."),
        "max_reply_pages": _k(int, 3, "weibo.com comments source: reply pages (100 each) to follow "
                              "per first-level comment that has replies; 0: none."),
        "cookie_file": _k(str, "", "File holding the weibo.cn Cookie header "
                          "(overridden by WEIBO_COOKIE / WEIBO_COOKIE_FILE).", path=True),
        "weibo_com_cookie_file": _k(str, "", "File holding the weibo.com Cookie header, sent to "
                                    "weibo.com and s.weibo.com (overridden by WEIBO_COM_COOKIE / "
                                    "WEIBO_COM_COOKIE_FILE).", path=True),
        "browser_user_agent": _k(str, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
                                 "(KHTML, like Gecko) Chrome/131.0 Safari/537.36",
                                 "User-Agent for weibo.com and s.weibo.com (a desktop browser's)."),
        "topic_limit": _k(int, 20, "How many hot-search topics to crawl per run.", min=1, max=1000),
        "max_post_pages": _k(int, 3, "Search-result pages to follow per topic.", min=1, max=1000),
        "max_comment_pages": _k(int, 50, "Comment pages to follow per post.", min=1, max=100_000),
        "incremental": _k(bool, True, "Stop paging a post's comments at a page that is already stored."),
        "download_delay": _k(float, 3.0, "Seconds between requests to one domain (politeness).", max=3600),
        "autothrottle": _k(bool, True, "Use Scrapy AutoThrottle on top of the delay."),
        "concurrent_per_domain": _k(int, 1, "Concurrent requests per domain.", min=1, max=256),
        "ban_limit": _k(int, 5, "Stop as rate_limited after this many block answers (ban_http_codes, "
                        "captcha or verification redirects) in a row.", min=1, max=100_000),
        "ban_http_codes": _k(list, [418, 403, 429, 432], "HTTP statuses that mean a block: back off, "
                             "then stop as rate_limited."),
        "ban_backoff_seconds": _k(float, 30.0, "First back-off after a block answer; doubles each time.", max=86_400),
        "ban_backoff_max_seconds": _k(float, 600.0, "Longest single back-off.", max=86_400),
        "user_agent": _k(str, "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 "
                         "(KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36", "User-Agent header."),
        "flush_items": _k(int, 200, "Write to the database every N items…", min=1, max=1_000_000),
        "flush_seconds": _k(float, 10.0, "…or every T seconds, and at close.", max=3600),
        "scheduler_backend": _k(str, "memory", "memory: one process per machine; redis: share the "
                                "request queue and dupe filter through scrapy-redis.",
                                choices=("memory", "redis")),
        "redis_url": _k(str, "redis://127.0.0.1:6379/0", "Redis for scheduler_backend = redis.",
                        env="REDIS_URL", secret=True),
        "redis_key_prefix": _k(str, "weibo_mh", "Prefix of the shared Redis keys (queue, dupe filter); "
                               "crawlers that should cooperate use the same prefix."),
        "redis_idle_seconds": _k(float, 10.0, "With redis: wait this long for shared work before a "
                                 "crawler with nothing to do closes.", max=86_400),
        "download_maxsize": _k(int, 16 * 1024 * 1024, "Largest answer in bytes (after decompression): a "
                               "bigger one is cancelled, and a hot search that big fails the run "
                               "(Scrapy DOWNLOAD_MAXSIZE).", min=1024, max=2**31),
        "download_warnsize": _k(int, 4 * 1024 * 1024, "Log a warning for answers above this many bytes "
                                "(Scrapy DOWNLOAD_WARNSIZE; 0: never).", max=2**31),
        "retry_times": _k(int, 3, "Retries of a request after 5xx answers or network errors.", max=100),
        "log_level": _k(str, "INFO", "Scrapy log level.", choices=("DEBUG", "INFO", "WARNING", "ERROR")),
    },
    "schedule": {
        "times": _k(list, ["10:00", "22:00"], "Daily start times, HH:MM local time."),
        "every_minutes": _k(int, 0, "If > 0, run every N minutes instead of at `times`.", max=10_080),
        "time_budget_minutes": _k(float, 60.0, "A crawl is stopped (SIGTERM, then SIGKILL) after this.", min=0.01, max=10_080),
        "grace_seconds": _k(float, 30.0, "Seconds between SIGTERM and SIGKILL.", max=3600),
        "lock_file": _k(str, "data/crawl.lock", "File lock so two crawls never overlap.", path=True),
        "log_dir": _k(str, "data/logs", "One log file per scheduled crawl goes here.", path=True),
        "notify_command": _k(str, "", "Command run (no shell; split like a shell line) after a run "
                             "ends with a status in notify_on, with WEIBO_MH_RUN_ID, "
                             "WEIBO_MH_RUN_STATUS, WEIBO_MH_RUN_ERROR and WEIBO_MH_RUN_KIND (hot or "
                             "watch) in its environment. "
                             "Empty: none."),
        "notify_on": _k(list, ["failed", "login_required", "bad_cookie", "rate_limited"], "Run statuses that trigger "
                        "notify_command."),
    },
    "watch": {
        "posts": _k(list, [], "Posts to watch, each an inline table {post = \"…\", label = \"…\"}: "
                    "post is a weibo.com, m.weibo.cn or weibo.cn URL of the post, its bid or its mid; "
                    "label names it in the console and in notifications."),
        "keywords": _k(list, [], "Keyword watches, each {keyword = \"…\", label = \"…\"}: every round "
                       "searches the keyword newest first and reads the comments of the posts found."),
        "every_minutes": _k(int, 10, "Minutes from the start of one watch round to the next.",
                            min=1, max=1440),
        "page_budget": _k(int, 5, "Comment pages a round reads per watched post, newest first; it "
                          "stops earlier at the first comment already stored.", min=1, max=50),
        "search_pages": _k(int, 1, "Search result pages (newest first) a round reads per keyword.",
                           min=1, max=50),
        "keyword_post_days": _k(int, 7, "A post a keyword found is read for this many days after it "
                                "was found, then no longer (its row is kept, inactive); list it under "
                                "watch.posts to watch it for longer. 0: for ever.", min=0, max=3650),
        "time_budget_minutes": _k(float, 8.0, "A watch round is stopped (SIGTERM, then SIGKILL after "
                                  "schedule.grace_seconds) after this.", min=0.01, max=1440),
        "lock_file": _k(str, "data/watch.lock", "File lock so two watch rounds never overlap (the "
                        "hot-topic crawl has its own, schedule.lock_file).", path=True),
    },
    "worker": {
        "backend": _k(str, "lexicon", "Scorer: lexicon (CPU default), classifier, transformers or openai.",
                      choices=("lexicon", "classifier", "transformers", "openai", "null")),
        "batch_size": _k(int, 16, "Comments claimed and scored together.", min=1, max=100_000),
        "lease_seconds": _k(int, 600, "A claim not renewed for this long (its worker died) may be "
                            "taken over by another worker; a live worker renews it while it scores.", min=1, max=WEEK_SECONDS),
        "max_batch_seconds": _k(float, 3600.0, "Stop renewing a batch's claims after this (a hung "
                                "backend); 0: renew for as long as the backend runs.", max=WEEK_SECONDS),
        "max_attempts": _k(int, 3, "After this many failed attempts a comment becomes failed.", min=1, max=1000),
        "idle_sleep_max_seconds": _k(float, 60.0, "Longest wait between polls of an empty queue.", max=86_400),
        "max_chars": _k(int, 512, "Comment text is truncated to this many characters (recorded).", max=10_000_000),
        "rubric": _k(str, "core", "core: the four dimensions; extended: also the ICD-10 F blocks.",
                     choices=("core", "extended")),
        "metrics_port": _k(int, 0, "Serve Prometheus /metrics on this port (0: off).", max=65_535),
        "metrics_host": _k(str, "127.0.0.1", "Address for the metrics endpoint."),
        "answer_mass_floor": _k(float, 0.5, "Likelihood scoring: a score whose answer mass (the "
                                "probability the model put on the levels 0-10 together) is below "
                                "this is stored flagged uncertain (0: never flag).", max=1.0),
    },
    "transformers": {
        "model": _k(str, "THUDM/glm-4-9b-chat-hf", "Hub id or local path of a GLM-4 chat model "
                    "(GlmForCausalLM or Glm4ForCausalLM; no remote code)."),
        "device": _k(str, "auto", "auto, cpu, cuda or cuda:N.", choices=("auto", "cpu", "cuda", "cuda:0",
                                                                          "cuda:1", "cuda:2", "cuda:3")),
        "explain": _k(bool, False, "Also generate a short rationale (slower)."),
        "max_new_tokens": _k(int, 64, "Rationale length when explain is on.", min=1, max=32_768),
        "local_files_only": _k(bool, False, "Never contact the hub; load only from disk or cache."),
        "max_comment_tokens": _k(int, 512, "The comment is cut to this many tokens (after worker.max_chars).", min=1, max=1_000_000),
        "adapter": _k(str, "", "LoRA adapter directory from python -m llm_worker.training.finetune, "
                      "loaded on top of model (empty: none); the scorer name carries its name and hash.",
                      path=True),
    },
    "openai": {
        "base_url": _k(str, "http://127.0.0.1:8000/v1", "OpenAI-compatible server (vLLM, SGLang, Ollama…)."),
        "model": _k(str, "THUDM/glm-4-9b-chat-hf", "Model name the server lists at GET /v1/models (checked at "
                    "start-up; empty: the server's only model). The scorer name is openai:<model>:<method>."),
        "api_key_env": _k(str, "OPENAI_API_KEY", "Environment variable holding the API key (may be unset)."),
        "concurrency": _k(int, 8, "Requests in flight per worker.", min=1, max=4096),
        "timeout_seconds": _k(float, 60.0, "Per-request timeout.", min=0.001, max=86_400),
        "max_retries": _k(int, 3, "Retries per request on timeouts, 5xx and 429, with back-off.", max=1000),
        "backoff_seconds": _k(float, 1.0, "First back-off before a retry; doubles each time (capped at 60 s).", max=3600),
        "guided_json": _k(bool, True, "Ask for JSON-schema-guided output: structured_outputs (vLLM >= "
                          "0.12), response_format json_schema, response_format json_object with a schema "
                          "(llama.cpp), guided_json (vLLM < 0.12); each verified on a probe at start-up."),
        "logprobs": _k(bool, True, "Ask for logprobs to derive confidences when offered."),
        "method": _k(str, "json", "json: all dimensions in one schema-guided JSON answer (any server); "
                     "likelihood: one request per dimension, the level read from the top logprobs of the "
                     "answer token(s), as the transformers backend does (needs a tokenizer endpoint, "
                     "top_logprobs and either continue_final_message, e.g. vLLM, or openai.chat_template, "
                     "e.g. llama.cpp).", choices=("json", "likelihood")),
        "top_logprobs": _k(int, 20, "Likelihood method: top logprobs asked for (lowered to the "
                           "server's --max-logprobs when it says so).", min=1, max=100_000),
        "chat_template": _k(str, "", "Likelihood method: the served model's .gguf file (or a Jinja chat "
                            "template) to render the prompt here and score through /v1/completions, for "
                            "servers that ignore continue_final_message (llama.cpp); checked at start-up.",
                            path=True),
        "special_tokens": _k(list, [], "Special-token strings broken inside comments so that a comment "
                             "cannot fake a chat turn (empty: the built-in GLM-4, Qwen and Llama list)."),
    },
    "classifier": {
        "model_path": _k(str, "data/models/classifier.joblib",
                         "Trained model from python -m llm_worker.training.train.", path=True),
    },
    "analysis": {
        "out_dir": _k(str, "reports", "Where plots and reports go.", path=True),
        "scorer": _k(str, "", "Scorer to chart by default (empty: the most used one)."),
        "alert_threshold": _k(int, 7, "Suicide-risk level at or above which a comment is an alert.", max=10),
        "exclude_uncertain": _k(bool, False, "Leave out scores flagged uncertain (likelihood scores whose "
                                "answer mass was below worker.answer_mass_floor); --exclude-uncertain."),
        "top_topics": _k(int, 8, "Topics drawn separately in trend charts.", min=1, max=1000),
        "crisis_resources": _k(str, "", "Crisis lines/resources your team passes on; printed under "
                               "every alert table (alerts.md, the report)."),
    },
    "console": {
        "host": _k(str, "127.0.0.1", "Address the review console binds to (keep it local; put a TLS "
                   "proxy in front to reach it from elsewhere)."),
        "port": _k(int, 8080, "Port of the review console.", min=1, max=65535),
        "secret_key_file": _k(str, "", "File holding the key that signs session cookies (overridden "
                              "by WEIBO_MH_CONSOLE_KEY / WEIBO_MH_CONSOLE_KEY_FILE).", path=True),
        "session_minutes": _k(int, 480, "A login expires after this many minutes.", min=1, max=525_600),
        "secure_cookie": _k(bool, False, "Send the session cookie over HTTPS only (set it behind a TLS proxy)."),
        "login_max_failures": _k(int, 5, "Failed logins for one user name from one address before each "
                                 "further try must wait (login_delay_seconds, doubling; never a lock).",
                                 min=1, max=1_000_000),
        "login_delay_seconds": _k(float, 1.0, "The wait after login_max_failures failures for one user name "
                                  "and address; it doubles with each further failure, up to "
                                  "login_window_minutes.", min=0.0, max=86_400.0),
        "login_window_minutes": _k(int, 15, "Failed logins older than this are forgotten; also the longest "
                                   "login delay.", min=1, max=525_600),
        "trusted_proxies": _k(list, [], "Addresses or networks (CIDR) of reverse proxies whose "
                              "X-Forwarded-For names the client; empty (the default): the header is ignored "
                              "and the connecting address counts."),
        "connection_limit": _k(int, 200, "Open connections waitress accepts at once; more wait in the "
                               "listen backlog.", min=1, max=100_000),
        "channel_timeout": _k(int, 30, "Seconds an idle or half-sent connection is kept before waitress "
                              "closes it.", min=1, max=3600),
        "cleanup_interval": _k(int, 10, "How often (seconds) waitress looks for timed-out connections.",
                               min=1, max=3600),
        "queue_size": _k(int, 200, "Comments added to the annotation queue by one fill (the default).", min=1, max=1_000_000),
        "double_coding_share": _k(float, 0.2, "Share (0-1) of queued comments that two annotators label.", max=1.0),
        "alert_scorer": _k(str, "", "Scorer whose suicide-risk levels raise alerts (empty: the worker "
                           "fills alerts with its own scorer; fill-alerts then needs --scorer or "
                           "analysis.scorer)."),
        "alert_threshold": _k(int, 7, "Suicide-risk level at or above which a comment becomes an alert.", max=10),
        "alerts_from_worker": _k(bool, True, "The worker fills the alerts table after each batch."),
        "repeat_days": _k(int, 7, "Window for counting repeated alerts from the same author_hash.", min=1, max=3650),
        "page_size": _k(int, 50, "Alerts per page.", min=1, max=10_000),
        "public_url": _k(str, "", "The console's address as responders reach it (e.g. "
                         "https://console.example.org); notifications link to <public_url>/alerts/<id>. "
                         "Empty: notifications name the alert id without a link."),
    },
    "notify": {
        "channels": _k(list, [], "Push channels for new alerts (empty: none). Entries: webhook, "
                       "email, command."),
        "min_level": _k(int, 7, "Suicide-risk level at or above which an alert is pushed (7: the "
                        "scale's suicide-risk levels).", max=10),
        "only_watched": _k(bool, False, "Push only alerts on comments of watched posts ([watch])."),
        "max_age_hours": _k(float, 72.0, "Alerts on comments older than this are not pushed (a "
                            "backfill of old comments would otherwise page responders); 0: no limit.",
                            max=87_600),
        "digest_minutes": _k(float, 5.0, "After a message on a channel, alerts wait up to this long "
                             "and go out together as one digest (the first alert goes at once).",
                             max=1440),
        "max_per_hour": _k(int, 12, "Messages per channel per hour; alerts the cap holds back go "
                           "out in the next digest, never dropped.", min=1, max=100_000),
        "include_text": _k(bool, False, "Put the comment's text in notifications. Off: a notification "
                           "carries levels, labels, times and a console link only (see docs/deploying.md)."),
        "backoff_seconds": _k(float, 30.0, "First wait after a failed send on a channel; doubles with "
                              "each failure in a row.", min=1, max=86_400),
        "backoff_max_seconds": _k(float, 1800.0, "Longest wait between tries of a failing channel.",
                                  min=1, max=86_400),
        "max_attempts": _k(int, 48, "After this many failed tries a notification is marked failed "
                           "(shown in the console; python -m weibo_mh.notify retry sends it again).",
                           min=1, max=100_000),
        "poll_seconds": _k(float, 10.0, "How often the sender looks at the outbox.", min=0.1, max=3600),
        "in_worker": _k(bool, True, "The scoring worker runs the sender in a thread (otherwise run "
                        "python -m weibo_mh.notify run)."),
        "webhook_url": _k(str, "", "webhook channel: URL that receives a JSON POST signed with "
                          "HMAC-SHA256 (X-WeiboMH-Signature: sha256=<hex> of \"<X-WeiboMH-Timestamp>.<body>\")."),
        "webhook_secret_file": _k(str, "", "File holding the webhook's HMAC secret (overridden by "
                                  "WEIBO_MH_WEBHOOK_SECRET / WEIBO_MH_WEBHOOK_SECRET_FILE).", path=True),
        "webhook_timeout_seconds": _k(float, 10.0, "webhook channel: request timeout.", min=0.1, max=600),
        "smtp_host": _k(str, "", "email channel: SMTP server."),
        "smtp_port": _k(int, 587, "email channel: SMTP port (587: submission with STARTTLS).",
                        min=1, max=65_535),
        "smtp_starttls": _k(bool, True, "email channel: upgrade to TLS with STARTTLS (refuse to send "
                            "if the server does not offer it)."),
        "smtp_ca_file": _k(str, "", "email channel: CA certificates to trust for the SMTP server "
                           "(empty: the system's).", path=True),
        "smtp_user": _k(str, "", "email channel: SMTP login (empty: no login). The password comes "
                        "from WEIBO_MH_SMTP_PASSWORD or WEIBO_MH_SMTP_PASSWORD_FILE."),
        "smtp_timeout_seconds": _k(float, 30.0, "email channel: SMTP timeout.", min=0.1, max=600),
        "mail_from": _k(str, "", "email channel: From address."),
        "mail_to": _k(list, [], "email channel: recipient addresses."),
        "command": _k(str, "", "command channel: program run (no shell; split like a shell line) "
                      "with the digest in WEIBO_MH_NOTIFY_* variables and as JSON on stdin."),
        "command_timeout_seconds": _k(float, 60.0, "command channel: time limit of one run.", min=0.1, max=3600),
    },
    "retention": {
        "texts_days": _k(int, 0, "weibo-mh retention: empty the texts of comments and posts older "
                         "than this many days; rows, scores and rollups stay (0: keep texts).",
                         max=36_500),
        "rows_days": _k(int, 0, "weibo-mh retention: delete comments older than this many days with "
                        "their scores, alerts, annotation tasks and labels, and posts left without "
                        "comments; the rollups keep those days' counts (0: keep rows).", max=36_500),
        "audit_log_days": _k(int, 0, "weibo-mh retention: delete review-console audit_log rows older "
                             "than this many days (0: keep them).", max=36_500),
        "batch_size": _k(int, 500, "Comments deleted or emptied per transaction, so the worker and "
                         "the console keep working during a retention run.", min=1, max=100_000),
        "pause_seconds": _k(float, 0.05, "Pause between two batches of a retention run.", max=60),
    },
}

#: Push channels the notifier knows.
NOTIFY_CHANNELS = ("webhook", "email", "command")

#: Environment variables that carry secrets; never printed.
SECRET_ENV = ("WEIBO_COOKIE", "WEIBO_COOKIE_FILE", "WEIBO_COM_COOKIE", "WEIBO_COM_COOKIE_FILE",
              "WEIBO_MH_SALT", "WEIBO_MH_SALT_FILE", "DATABASE_URL", "REDIS_URL",
              "WEIBO_MH_CONSOLE_KEY", "WEIBO_MH_CONSOLE_KEY_FILE", "WEIBO_MH_WEBHOOK_SECRET",
              "WEIBO_MH_WEBHOOK_SECRET_FILE", "WEIBO_MH_SMTP_PASSWORD", "WEIBO_MH_SMTP_PASSWORD_FILE")

#: Search and comment sources the spider knows.
SEARCH_SOURCES = ("s.weibo.com", "weibo.cn")
COMMENT_SOURCES = ("weibo.cn", "weibo.com", "m.weibo.cn")
#: Which cookie each site uses: (variable, file variable, [spider] key). weibo.cn and weibo.com
#: are separate logins; s.weibo.com uses the weibo.com one.
COOKIES = {
    "weibo.cn": ("WEIBO_COOKIE", "WEIBO_COOKIE_FILE", "cookie_file"),
    "weibo.com": ("WEIBO_COM_COOKIE", "WEIBO_COM_COOKIE_FILE", "weibo_com_cookie_file"),
}


@dataclass
class Config:
    """Validated configuration. ``cfg.worker.batch_size`` etc.; ``cfg.source`` names the file."""

    source: Path | None
    sections: dict[str, SimpleNamespace] = field(default_factory=dict)

    def __getattr__(self, name: str) -> SimpleNamespace:
        try:
            return self.__dict__["sections"][name]
        except KeyError:
            raise AttributeError(name) from None

    def as_dict(self, masked: bool = True) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for sec, keys in SPEC.items():
            out[sec] = {}
            for name, key in keys.items():
                value = getattr(self.sections[sec], name)
                if masked and key.secret and isinstance(value, str):
                    value = mask_url(value)
                out[sec][name] = value
        return out

    def dump(self, env: Mapping[str, str] | None = None) -> str:
        """The effective configuration as TOML-ish text, secrets masked: the file's values
        after the environment's overrides, each override named in a comment."""
        environ: Mapping[str, str] = os.environ if env is None else env
        overrides = env_overrides(self, environ)
        lines = [f"# effective configuration from {self.source or 'built-in defaults'}, "
                 "after environment overrides"]
        for sec, values in self.as_dict(masked=True).items():
            lines.append(f"[{sec}]")
            for k, v in values.items():
                value, origin = overrides.get(f"{sec}.{k}", (v, ""))
                lines.append(f"{k} = {_toml_value(value)}" + (f"  # from {origin}" if origin else ""))
            lines.append("")
        return "\n".join(lines)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + "}"
    return str(v)


# Greedy up to the LAST "@": a password with an unencoded "@" is masked whole, never in part.
_URL_PASSWORD = re.compile(r"^(?P<head>[a-zA-Z0-9+.\-]+://[^:/@]*:)(?P<pw>.*)(?P<tail>@[^@]*)$", re.S)
PERCENT_ENCODE_HINT = ("percent-encode special characters in the user name and password "
                       "(@ as %40, : as %3A, / as %2F, % as %25), e.g. with python3 -c "
                       "\"import urllib.parse,getpass; print(urllib.parse.quote(getpass.getpass(), safe=''))\"")


def mask_url(url: str) -> str:
    """Hide the password of a URL (``mysql+pymysql://u:***@h/db``).

    SQLAlchemy's parser (``sqlalchemy.make_url``) decides what the password is; when the
    URL does not parse as it should (an unencoded ``@`` in the password makes the host
    ``rest@host``), everything between ``user:`` and the last ``@`` is hidden.
    """
    import sqlalchemy as sa

    try:
        u = sa.make_url(url)
    except Exception:  # noqa: BLE001 - any parse failure: fall back to the greedy pattern
        u = None
    if u is not None and "@" not in (u.host or "") and u.password is None:
        return url
    m = _URL_PASSWORD.match(url)
    if not m:
        return url
    return f"{m.group('head')}***{m.group('tail')}"


def check_url(url: str) -> None:
    """Refuse a database URL that SQLAlchemy would read differently from what was meant.

    ValueError (message without the password) for a URL that does not parse, a port that
    is not a number, or a host holding "@" (a password with an unencoded "@").
    """
    import sqlalchemy as sa

    try:
        u = sa.make_url(url)
        port = u.port  # noqa: F841 - parsing the port raises for "h:33o6"
    except Exception as e:  # noqa: BLE001 - ArgumentError, ValueError: all mean "not a URL"
        hint = f"; {PERCENT_ENCODE_HINT}" if "@" in url or "%" in url else ""
        raise ValueError(f"not a database URL: {mask_url(url)} ({type(e).__name__}){hint}") from None
    if "@" in (u.host or "") or "@" in (u.username or ""):
        raise ValueError(f"{mask_url(url)}: the user name or password holds an unencoded '@', so "
                         f"part of the password would be taken for the host name; {PERCENT_ENCODE_HINT}")


def out_of_range(value: Any, key: Key) -> str:
    """Why a number is outside the limits its Key declares ('' when it is fine)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    if key.min is not None and value < key.min:
        return "must not be negative" if key.min == 0 else f"must be at least {_num(key.min)}"
    if key.max is not None and value > key.max:
        return f"must be at most {_num(key.max)}"
    return ""


def spec_arg(section: str, name: str) -> Callable[[str], Any]:
    """An argparse ``type`` for a command-line flag that overrides ``[section] name``: the same
    type and limits as the SPEC declares, so a flag cannot pass what the config file may not."""
    import argparse

    key = SPEC[section][name]
    kind = key.type if key.type in (int, float) else None
    if kind is None:
        raise TypeError(f"{section}.{name} is not a number")

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from None
        why = out_of_range(value, key)
        if why:
            raise argparse.ArgumentTypeError(f"{text!r} {why} ({section}.{name})")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _limits(key: Key) -> str:
    if key.type not in (int, float):
        return ""
    lo = "" if key.min is None else _num(key.min)
    hi = "" if key.max is None else _num(key.max)
    return f" Range: {lo}–{hi}." if hi else f" At least {lo}." if lo else ""


def _check_type(value: Any, key: Key) -> bool:
    if key.type is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if key.type is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, key.type)


def comment_sources(value: str | list[Any]) -> list[str]:
    """spider.comments_source as a list, in order: "m.weibo.cn" -> ["m.weibo.cn"]."""
    return [value] if isinstance(value, str) else list(value)


def _type_name(t: type | tuple[type, ...]) -> str:
    names = {str: "string", int: "integer", float: "number", bool: "boolean", list: "list"}
    if isinstance(t, tuple):
        return " or ".join(_type_name(x) for x in t)
    if isinstance(t, type) and t in names:
        return names[t]
    return getattr(t, "__name__", str(t))


def _a(noun: str) -> str:
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"


def resolve_path(value: str) -> str:
    """Relative paths in the config are relative to the project root, not the cwd."""
    if not value:
        return value
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else PROJECT_ROOT / p)


def resolve_sqlite_url(url: str, base: Path = PROJECT_ROOT) -> str:
    """Make ``sqlite:///relative.db`` absolute against ``base`` (the project root for config files)."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith("sqlite:////") and url != "sqlite:///:memory:":
        rest = url[len(prefix):]
        if rest and not rest.startswith(":memory:"):
            return prefix + str((base / rest).resolve())
    return url


def load_config(path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read the TOML file (or the built-in defaults), validate it, apply environment overrides.

    ``path`` None means ``$WEIBO_MH_CONFIG`` or ``configs/default.toml``.
    Raises ConfigError with the key and the file named.
    """
    env = dict(os.environ if env is None else env)
    if path is None or str(path) == "":  # an empty --config or WEIBO_MH_CONFIG means "not given"
        path = env.get(CONFIG_ENV) or DEFAULT_CONFIG
    src = Path(path)
    try:
        raw = tomllib.loads(src.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{src}: config file not found") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{src}: not valid TOML: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{src}: cannot read: {e}") from None

    sections: dict[str, SimpleNamespace] = {}
    for sec_name, value in raw.items():
        if sec_name not in SPEC:
            raise ConfigError(f"{src}: unknown section [{sec_name}] (known: {', '.join(SPEC)})")
        if not isinstance(value, dict):
            raise ConfigError(f"{src}: [{sec_name}] must be a table")
    for sec_name, keys in SPEC.items():
        given = raw.get(sec_name, {})
        for k in given:
            if k not in keys:
                near = [n for n in keys if n.split("_")[0] == k.split("_")[0]]
                hint = f" (did you mean {near[0]!r}?)" if near else ""
                raise ConfigError(f"{src}: unknown key {sec_name}.{k}{hint}")
        values: dict[str, Any] = {}
        for name, key in keys.items():
            value = given.get(name, key.default)
            if not _check_type(value, key):
                raise ConfigError(
                    f"{src}: {sec_name}.{name} must be {_a(_type_name(key.type))}, "
                    f"got {type(value).__name__} {value!r}")
            if key.type is float:
                value = float(value)
            if key.choices and value not in key.choices:
                raise ConfigError(f"{src}: {sec_name}.{name} = {value!r} is not one of "
                                  f"{', '.join(map(str, key.choices))}")
            problem = out_of_range(value, key)
            if problem:
                raise ConfigError(f"{src}: {sec_name}.{name} = {value!r} {problem}")
            if key.path:
                value = resolve_path(value)
            values[name] = value
        sections[sec_name] = SimpleNamespace(**values)

    db = sections["database"]
    db.url = resolve_sqlite_url(db.url)
    if env.get("DATABASE_URL"):
        db.url = resolve_sqlite_url(env["DATABASE_URL"], Path.cwd())
    if env.get("REDIS_URL"):
        sections["spider"].redis_url = env["REDIS_URL"]
    for t in sections["schedule"].times:
        if not isinstance(t, str) or not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", t):
            raise ConfigError(f"{src}: schedule.times entries must be 'HH:MM' strings, got {t!r}")
    try:
        check_url(db.url)
    except ValueError as e:
        raise ConfigError(f"{src}: database.url (or DATABASE_URL): {e}") from None
    sp = sections["spider"]
    if not sp.search_sources or any(x not in SEARCH_SOURCES for x in sp.search_sources):
        raise ConfigError(f"{src}: spider.search_sources must list one or more of "
                          f"{', '.join(SEARCH_SOURCES)}, got {sp.search_sources!r}")
    given = comment_sources(sp.comments_source)
    if not given or any(x not in COMMENT_SOURCES for x in given) or len(set(given)) < len(given):
        raise ConfigError(f"{src}: spider.comments_source must be one of {', '.join(COMMENT_SOURCES)} "
                          f"or a list of them without repeats, got {sp.comments_source!r}")
    if any(not isinstance(c, int) or isinstance(c, bool) or not 100 <= c <= 599
           for c in sp.ban_http_codes):
        raise ConfigError(f"{src}: spider.ban_http_codes must be HTTP status numbers, "
                          f"got {sp.ban_http_codes!r}")
    _check_watch(src, sections["watch"])
    _check_notify(src, sections["notify"])
    return Config(source=src, sections=sections)


def _check_notify(src: Path, no: SimpleNamespace) -> None:
    """Each chosen channel has what it needs, so that a typo stops start-up, not the first alert."""
    bad = [c for c in no.channels if c not in NOTIFY_CHANNELS]
    if bad or len(set(no.channels)) != len(no.channels):
        raise ConfigError(f"{src}: notify.channels must list distinct entries of "
                          f"{', '.join(NOTIFY_CHANNELS)}, got {no.channels!r}")
    if "webhook" in no.channels and not re.match(r"https?://[^/\s]+", no.webhook_url):
        raise ConfigError(f"{src}: notify.channels has webhook: set notify.webhook_url to an "
                          f"http:// or https:// URL")
    if "email" in no.channels:
        if not no.smtp_host or not no.mail_from or not no.mail_to:
            raise ConfigError(f"{src}: notify.channels has email: set notify.smtp_host, "
                              f"notify.mail_from and notify.mail_to")
        if any(not isinstance(x, str) or "@" not in x for x in no.mail_to):
            raise ConfigError(f"{src}: notify.mail_to must list e-mail addresses, got {no.mail_to!r}")
    if "command" in no.channels and not no.command.strip():
        raise ConfigError(f"{src}: notify.channels has command: set notify.command")


#: Hosts whose post URLs a [watch] posts entry may give.
WATCH_HOSTS = ("weibo.com", "weibo.cn")
_POST_ID = re.compile(r"^[0-9A-Za-z]{1,32}$")
#: First path segments of a post URL that are not a user (weibo.cn/comment/BID, m.weibo.cn/detail/MID …).
_POST_PATHS = ("detail", "status", "comment", "repost", "attitude")


def watch_post_id(given: str) -> str | None:
    """The post id (bid or mid, as given) of a [watch] posts entry, or None when it names no post.

    Accepts a bare bid or mid, and the post URLs of weibo.com (``/<uid>/<bid>``, ``/detail/<mid>``),
    m.weibo.cn (``/detail/<mid>``, ``/status/<id>``, ``/<uid>/<mid>``) and weibo.cn
    (``/comment/<bid>``, ``/<uid>/<bid>``). A user page (``/u/<uid>``, ``/<name>``) is not a post.
    """
    from urllib.parse import urlsplit

    text = given.strip()
    if _POST_ID.match(text):
        return text
    parts = urlsplit(text if "//" in text else f"https://{text}")
    host = (parts.hostname or "").lower()
    if not any(host == h or host.endswith("." + h) for h in WATCH_HOSTS):
        return None
    segs = [s for s in parts.path.split("/") if s]
    if len(segs) != 2 or segs[0] == "u" or not _POST_ID.match(segs[1]):
        return None
    # /<path word>/<id> or /<uid or custom name>/<id>
    return segs[1] if segs[0] in _POST_PATHS or re.match(r"^[\w.-]{1,64}$", segs[0]) else None


def _watch_entry(src: Path, i: int, entry: Any, what: str, field: str, limit: int) -> dict[str, str]:
    where = f"{src}: watch.{what}[{i}]"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be an inline table {{{field} = \"…\", label = \"…\"}}, "
                          f"got {entry!r}")
    unknown = sorted(set(entry) - {field, "label"})
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (an entry has {field} and label)")
    for key, most in ((field, limit), ("label", 64)):
        value = entry.get(key)
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{where}: {key} must be a non-empty string, got {value!r}")
        if len(value.strip()) > most:
            raise ConfigError(f"{where}: {key} is longer than {most} characters")
    return {field: entry[field].strip(), "label": entry["label"].strip()}


def _check_watch(src: Path, watch: SimpleNamespace) -> None:
    """[watch] posts and keywords: tables with a post (or keyword) and a label; no repeats.

    posts become ``{"post": <bid or mid>, "label": …, "given": <as written>}``.
    """
    posts: list[dict[str, str]] = []
    for i, entry in enumerate(watch.posts):
        e = _watch_entry(src, i, entry, "posts", "post", 500)
        post = watch_post_id(e["post"])
        if post is None:
            raise ConfigError(f"{src}: watch.posts[{i}]: {e['post']!r} is not a Weibo post: give the "
                              "post's weibo.com or weibo.cn URL, its bid (e.g. z0JH2lOMb) or its mid")
        if any(p["post"] == post for p in posts):
            raise ConfigError(f"{src}: watch.posts[{i}]: post {post} is listed twice")
        posts.append({"post": post, "label": e["label"], "given": e["post"]})
    keywords: list[dict[str, str]] = []
    for i, entry in enumerate(watch.keywords):
        e = _watch_entry(src, i, entry, "keywords", "keyword", 100)
        if any(k["keyword"] == e["keyword"] for k in keywords):
            raise ConfigError(f"{src}: watch.keywords[{i}]: keyword {e['keyword']!r} is listed twice")
        keywords.append(e)
    watch.posts, watch.keywords = posts, keywords


def exit_on_config_error(exc: ConfigError) -> None:
    """The one way services report a bad configuration: a message and exit status 2."""
    print(f"configuration error: {exc}", file=sys.stderr)
    raise SystemExit(2)


def load_or_exit(path: str | os.PathLike[str] | None = None) -> Config:
    try:
        return load_config(path)
    except ConfigError as e:
        exit_on_config_error(e)
        raise  # unreachable


def read_secret_file(path: str, what: str) -> str:
    """Read a secret from a file, with a clear error that never prints the content."""
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise ConfigError(f"{what} file {p} does not exist") from None
    except OSError as e:
        raise ConfigError(f"{what} file {p} cannot be read: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{what} file {p} is not valid UTF-8 text (byte {e.start}); write the "
                          "secret as UTF-8 text, one line") from None
    if not text:
        raise ConfigError(f"{what} file {p} is empty")
    return text


def cookie_origin(cfg: Config, site: str = "weibo.cn", env: Mapping[str, str] | None = None) -> str:
    """Where the cookie of ``site`` comes from: the variable or key name ('' if none is set)."""
    var, file_var, key = COOKIES[site]
    return secret_origin(var, file_var, getattr(cfg.spider, key), f"spider.{key}", env)


def cookie_from(cfg: Config, env: Mapping[str, str] | None = None, site: str = "weibo.cn") -> str:
    """The Cookie header of ``site`` (weibo.cn: WEIBO_COOKIE, WEIBO_COOKIE_FILE or spider.cookie_file;
    weibo.com: WEIBO_COM_COOKIE, WEIBO_COM_COOKIE_FILE or spider.weibo_com_cookie_file); '' if none.

    A line break inside a cookie (a paste gone wrong) is refused: Weibo would answer with
    empty pages and no error.
    """
    var, file_var, key = COOKIES[site]
    value, origin = secret_and_origin(var, file_var, getattr(cfg.spider, key), f"spider.{key}", env)
    if not origin:
        return ""
    if "\n" in value or "\r" in value:
        raise ConfigError(f"the {site} cookie from {origin} holds a line break: paste the Cookie "
                          f"header as one line")
    return value


def secret_and_origin(var: str, file_var: str, cfg_file: str, cfg_key: str,
                      env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """A secret from ``$var``, the file named by ``$file_var``, or the config key's file, in that
    order, and the name it came from; ('', '') when none is set. Every secret the project reads
    (cookies, console key, salt, notification secrets) is looked up this one way. The value is
    never part of an error message."""
    environ: Mapping[str, str] = os.environ if env is None else env
    origin = secret_origin(var, file_var, cfg_file, cfg_key, environ)
    if not origin:
        return "", ""
    if origin == var:
        return environ[var].strip(), var
    return read_secret_file(environ[file_var] if origin == file_var else cfg_file, origin), origin


def secret_origin(var: str, file_var: str, cfg_file: str, cfg_key: str,
                  env: Mapping[str, str] | None = None) -> str:
    """Which of ``$var``, ``$file_var`` or the config key ``secret_and_origin`` would read, without
    reading it ('' when none is set): the one place that holds the lookup order."""
    environ: Mapping[str, str] = os.environ if env is None else env
    return var if environ.get(var) else file_var if environ.get(file_var) else cfg_key if cfg_file else ""


def secret_from(var: str, cfg_file: str, cfg_key: str, env: Mapping[str, str] | None = None) -> str:
    """A secret from ``$VAR``, the file named by ``$VAR_FILE``, or the config key's file, in that
    order; '' when none is set."""
    return secret_and_origin(var, var + "_FILE", cfg_file, cfg_key, env)[0]


def notify_secrets(cfg: Config, env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(webhook HMAC secret, SMTP password) for the configured [notify] channels ('' where a
    channel is off or needs none); ConfigError naming the variable to set when one is missing."""
    no = cfg.notify
    secret = password = ""
    if "webhook" in no.channels:
        secret = secret_from("WEIBO_MH_WEBHOOK_SECRET", no.webhook_secret_file, "notify.webhook_secret_file", env)
        if len(secret) < 16:
            raise ConfigError("the webhook channel needs an HMAC secret of at least 16 characters: "
                              "set WEIBO_MH_WEBHOOK_SECRET_FILE (or notify.webhook_secret_file) to a "
                              "file outside the repository")
    if "email" in no.channels:
        password = secret_from("WEIBO_MH_SMTP_PASSWORD", "", "", env)
        if no.smtp_user and not password:
            raise ConfigError("notify.smtp_user is set: put its password in WEIBO_MH_SMTP_PASSWORD "
                              "or in a file named by WEIBO_MH_SMTP_PASSWORD_FILE")
    return secret, password


def console_key_from(cfg: Config, env: Mapping[str, str] | None = None) -> str:
    """The key that signs console sessions: WEIBO_MH_CONSOLE_KEY, WEIBO_MH_CONSOLE_KEY_FILE or
    console.secret_key_file. Raises ConfigError when none is set or the key is short."""
    key, what = secret_and_origin("WEIBO_MH_CONSOLE_KEY", "WEIBO_MH_CONSOLE_KEY_FILE",
                                  cfg.console.secret_key_file, "console.secret_key_file", env)
    if not what:
        raise ConfigError("the console needs a session signing key: set WEIBO_MH_CONSOLE_KEY_FILE "
                          "(or console.secret_key_file) to a file outside the repository holding at "
                          "least 32 random characters, e.g. from: python -m analysis.console new-key FILE")
    if len(key) < 32:
        raise ConfigError(f"{what}: the console key must be at least 32 characters")
    return key


#: Config keys naming a secret's file, and the variables that override them: the secret
#: itself, then a file holding it.
SECRET_FILE_KEYS = {
    "privacy.salt_file": ("WEIBO_MH_SALT", "WEIBO_MH_SALT_FILE"),
    "spider.cookie_file": ("WEIBO_COOKIE", "WEIBO_COOKIE_FILE"),
    "spider.weibo_com_cookie_file": ("WEIBO_COM_COOKIE", "WEIBO_COM_COOKIE_FILE"),
    "console.secret_key_file": ("WEIBO_MH_CONSOLE_KEY", "WEIBO_MH_CONSOLE_KEY_FILE"),
    "notify.webhook_secret_file": ("WEIBO_MH_WEBHOOK_SECRET", "WEIBO_MH_WEBHOOK_SECRET_FILE"),
}
_HIDDEN = "(set in the environment, hidden)"


# The salt is a secret the configuration names, read like the cookies and the console key
# above; weibo_mh.privacy hashes with it.
DEMO_SALT_FILE = PROJECT_ROOT / "data" / "demo.salt"
MIN_SALT_CHARS = 16


def load_salt(cfg: Config, env: Mapping[str, str] | None = None) -> bytes:
    """The salt as bytes, or ConfigError explaining how to provide one."""
    salt, origin = secret_and_origin("WEIBO_MH_SALT", "WEIBO_MH_SALT_FILE", cfg.privacy.salt_file,
                                     "privacy.salt_file", env)
    if not origin and cfg.privacy.demo_salt:
        salt, origin = demo_salt(), str(DEMO_SALT_FILE)
    if not origin:
        raise ConfigError(
            f"{cfg.source}: no salt for pseudonymising user ids. Set WEIBO_MH_SALT_FILE to a file "
            "outside the repository (create one with: python -m weibo_mh.privacy new-salt > FILE), "
            "or set WEIBO_MH_SALT, or privacy.salt_file in the config.")
    if len(salt) < MIN_SALT_CHARS:
        raise ConfigError(f"the salt from {origin} is too short: use at least {MIN_SALT_CHARS} characters")
    return salt.encode("utf-8")


def demo_salt(path: Path = DEMO_SALT_FILE) -> str:
    """Read the demo salt, creating it (mode 0600) on first use."""
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = new_salt()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(value + "\n")
    return value


def new_salt() -> str:
    return secrets.token_hex(32)


def env_overrides(cfg: Config, env: Mapping[str, str]) -> dict[str, tuple[Any, str]]:
    """``section.key`` -> (effective value, the variable it comes from) for every key the
    environment overrides; a secret given itself (not as a file) shows as hidden."""
    out: dict[str, tuple[Any, str]] = {}
    if env.get("DATABASE_URL"):
        out["database.url"] = (mask_url(cfg.database.url), "DATABASE_URL")
    if env.get("REDIS_URL"):
        out["spider.redis_url"] = (mask_url(cfg.spider.redis_url), "REDIS_URL")
    for key, (var, file_var) in SECRET_FILE_KEYS.items():
        if env.get(var):
            out[key] = (_HIDDEN, var)
        elif env.get(file_var):
            out[key] = (str(Path(env[file_var]).expanduser()), file_var)
    return out


def file_problems(cfg: Config, env: Mapping[str, str] | None = None) -> list[str]:
    """Every file the configuration (with the environment's overrides) names that a
    service would fail to read: secrets (salt, cookies, console key) and model files.

    An unset secret is not a problem here (a machine that does not crawl needs no cookie
    and no salt); a named file that is missing, unreadable, empty or malformed is.
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    problems: list[str] = []

    def named(key: str) -> bool:
        var, file_var = SECRET_FILE_KEYS[key]
        sec, _, name = key.partition(".")
        return bool(environ.get(var) or environ.get(file_var) or getattr(cfg.sections[sec], name))

    checks: list[Callable[[], object]] = [partial(cookie_from, cfg, environ, site) for site in COOKIES]
    if named("privacy.salt_file"):
        checks.append(partial(load_salt, cfg, environ))
    if named("console.secret_key_file"):
        checks.append(partial(console_key_from, cfg, environ))
    if cfg.notify.channels:
        checks.append(partial(notify_secrets, cfg, environ))
    for check in checks:
        try:
            check()
        except ConfigError as e:
            problems.append(str(e))
    models = []
    if cfg.worker.backend == "classifier":
        models.append(("classifier.model_path", cfg.classifier.model_path, False))
    if cfg.transformers.adapter:
        models.append(("transformers.adapter", cfg.transformers.adapter, True))
    if "email" in cfg.notify.channels and cfg.notify.smtp_ca_file:
        models.append(("notify.smtp_ca_file", cfg.notify.smtp_ca_file, False))
    for key, path, folder in models:
        p = Path(path)
        if not (p.is_dir() if folder else p.is_file()) or not os.access(p, os.R_OK):
            what = "folder" if folder else "file"
            problems.append(f"{key}: {what} {p} does not exist or cannot be read")
    return problems


def reference_markdown() -> str:
    """The configuration reference for docs/configuration.md, generated from SPEC."""
    out = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for sec, keys in SPEC.items():
        for name, key in keys.items():
            default = _toml_value(key.default).replace("|", "\\|")
            doc = key.doc.replace("|", "\\|")
            if key.choices:
                doc += " One of: " + ", ".join(f"`{c}`" for c in key.choices) + "."
            doc += _limits(key)
            if key.env:
                doc += f" Env: `{key.env}`."
            out.append(f"| `{sec}.{name}` | {_type_name(key.type)} | `{default}` | {doc} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """``python -m weibo_mh.config [--config F] [--reference]``."""
    import argparse

    ap = argparse.ArgumentParser(
        prog="python -m weibo_mh.config",
        description="Validate a config file and print the effective configuration (after the "
                    "environment's overrides, secrets masked).",
        epilog="Also checks that every file it names (salt, cookies, console key, the classifier "
               "model) exists and can be read, after the environment's overrides (WEIBO_MH_SALT_FILE, "
               "WEIBO_COOKIE_FILE, ...). Exit status 0: valid; 2: not, with every problem on stderr.")
    ap.add_argument("--config", help="TOML file (default: $WEIBO_MH_CONFIG or configs/default.toml)")
    ap.add_argument("--reference", action="store_true", help="print the Markdown key reference")
    a = ap.parse_args(argv)
    if a.reference:
        print(reference_markdown())
        return 0
    cfg = load_or_exit(a.config)
    print(cfg.dump())
    found = file_problems(cfg)
    for problem in found:
        print(f"configuration error: {problem}", file=sys.stderr)
    return 2 if found else 0


if __name__ == "__main__":
    # through the imported module, so that its ConfigError is the one other modules import
    from weibo_mh.config import main as _main

    raise SystemExit(_main())
