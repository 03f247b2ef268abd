"""One configuration for all three services: a TOML file plus environment overrides.

Every key is declared in ``SPEC`` with its type, default and meaning, so that a
typo or a wrong type stops the program at start-up (exit status 2) with a
message naming the key and the file, and so that the README's configuration
reference can be generated from (and checked against) the code.

Secrets never live in the file: the cookie, the salt, the API key and database
passwords come from environment variables or from files outside the repository.
"""

from __future__ import annotations

import os
import re
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
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


def _k(type_, default, doc, **kw) -> Key:
    return Key(type_, default, doc, **kw)


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
        "search_sources": _k(list, ["s.weibo.com", "weibo.cn"], "Topic search sources, tried in "
                             "order: the next one is used for a topic when a source answers with a "
                             "login wall or no posts (recorded in crawl_runs.stats). "
                             "Entries: s.weibo.com, weibo.cn."),
        "comments_source": _k(str, "weibo.cn", "Where comments come from: weibo.cn pages (flat "
                              "replies) or the weibo.com buildComments JSON (second-level replies, "
                              "root_id/reply_to_id).", choices=("weibo.cn", "weibo.com")),
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
        "topic_limit": _k(int, 20, "How many hot-search topics to crawl per run."),
        "max_post_pages": _k(int, 3, "Search-result pages to follow per topic."),
        "max_comment_pages": _k(int, 50, "Comment pages to follow per post."),
        "incremental": _k(bool, True, "Stop paging a post's comments at a page that is already stored."),
        "download_delay": _k(float, 3.0, "Seconds between requests to one domain (politeness)."),
        "autothrottle": _k(bool, True, "Use Scrapy AutoThrottle on top of the delay."),
        "concurrent_per_domain": _k(int, 1, "Concurrent requests per domain."),
        "ban_limit": _k(int, 5, "Stop as rate_limited after this many block answers (ban_http_codes, "
                        "captcha or verification redirects) in a row."),
        "ban_http_codes": _k(list, [418, 403, 429, 432], "HTTP statuses that mean a block: back off, "
                             "then stop as rate_limited."),
        "ban_backoff_seconds": _k(float, 30.0, "First back-off after a block answer; doubles each time."),
        "ban_backoff_max_seconds": _k(float, 600.0, "Longest single back-off."),
        "user_agent": _k(str, "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 "
                         "(KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36", "User-Agent header."),
        "flush_items": _k(int, 200, "Write to the database every N items…"),
        "flush_seconds": _k(float, 10.0, "…or every T seconds, and at close."),
        "scheduler_backend": _k(str, "memory", "memory: one process per machine; redis: share the "
                                "request queue and dupe filter through scrapy-redis.",
                                choices=("memory", "redis")),
        "redis_url": _k(str, "redis://127.0.0.1:6379/0", "Redis for scheduler_backend = redis.",
                        env="REDIS_URL", secret=True),
        "redis_key_prefix": _k(str, "weibo_mh", "Prefix of the shared Redis keys (queue, dupe filter); "
                               "crawlers that should cooperate use the same prefix."),
        "redis_idle_seconds": _k(float, 10.0, "With redis: wait this long for shared work before a "
                                 "crawler with nothing to do closes."),
        "retry_times": _k(int, 3, "Retries of a request after 5xx answers or network errors."),
        "log_level": _k(str, "INFO", "Scrapy log level.", choices=("DEBUG", "INFO", "WARNING", "ERROR")),
    },
    "schedule": {
        "times": _k(list, ["10:00", "22:00"], "Daily start times, HH:MM local time."),
        "every_minutes": _k(int, 0, "If > 0, run every N minutes instead of at `times`."),
        "time_budget_minutes": _k(float, 60.0, "A crawl is stopped (SIGTERM, then SIGKILL) after this."),
        "grace_seconds": _k(float, 30.0, "Seconds between SIGTERM and SIGKILL."),
        "lock_file": _k(str, "data/crawl.lock", "File lock so two crawls never overlap.", path=True),
        "log_dir": _k(str, "data/logs", "One log file per scheduled crawl goes here.", path=True),
        "notify_command": _k(str, "", "Command run (no shell; split like a shell line) after a run "
                             "ends with a status in notify_on, with WEIBO_MH_RUN_ID, "
                             "WEIBO_MH_RUN_STATUS and WEIBO_MH_RUN_ERROR in its environment. "
                             "Empty: none."),
        "notify_on": _k(list, ["login_required", "rate_limited"], "Run statuses that trigger "
                        "notify_command."),
    },
    "worker": {
        "backend": _k(str, "lexicon", "Scorer: lexicon (CPU default), classifier, transformers or openai.",
                      choices=("lexicon", "classifier", "transformers", "openai", "null")),
        "batch_size": _k(int, 16, "Comments claimed and scored together."),
        "lease_seconds": _k(int, 600, "A claim not renewed for this long (its worker died) may be "
                            "taken over by another worker; a live worker renews it while it scores."),
        "max_batch_seconds": _k(float, 3600.0, "Stop renewing a batch's claims after this (a hung "
                                "backend); 0: renew for as long as the backend runs."),
        "max_attempts": _k(int, 3, "After this many failed attempts a comment becomes failed."),
        "idle_sleep_max_seconds": _k(float, 60.0, "Longest wait between polls of an empty queue."),
        "max_chars": _k(int, 512, "Comment text is truncated to this many characters (recorded)."),
        "rubric": _k(str, "core", "core: the four dimensions; extended: also the ICD-10 F blocks.",
                     choices=("core", "extended")),
        "metrics_port": _k(int, 0, "Serve Prometheus /metrics on this port (0: off)."),
        "metrics_host": _k(str, "127.0.0.1", "Address for the metrics endpoint."),
    },
    "transformers": {
        "model": _k(str, "THUDM/glm-4-9b-chat-hf", "Hub id or local path of a GLM-4 chat model "
                    "(GlmForCausalLM or Glm4ForCausalLM; no remote code)."),
        "device": _k(str, "auto", "auto, cpu, cuda or cuda:N.", choices=("auto", "cpu", "cuda", "cuda:0",
                                                                          "cuda:1", "cuda:2", "cuda:3")),
        "explain": _k(bool, False, "Also generate a short rationale (slower)."),
        "max_new_tokens": _k(int, 64, "Rationale length when explain is on."),
        "local_files_only": _k(bool, False, "Never contact the hub; load only from disk or cache."),
        "max_comment_tokens": _k(int, 512, "The comment is cut to this many tokens (after worker.max_chars)."),
    },
    "openai": {
        "base_url": _k(str, "http://127.0.0.1:8000/v1", "OpenAI-compatible server (vLLM, SGLang, Ollama…)."),
        "model": _k(str, "THUDM/glm-4-9b-chat-hf", "Model name the server knows."),
        "api_key_env": _k(str, "OPENAI_API_KEY", "Environment variable holding the API key (may be unset)."),
        "concurrency": _k(int, 8, "Requests in flight per worker."),
        "timeout_seconds": _k(float, 60.0, "Per-request timeout."),
        "max_retries": _k(int, 3, "Retries per request on timeouts, 5xx and 429, with back-off."),
        "backoff_seconds": _k(float, 1.0, "First back-off before a retry; doubles each time (capped at 60 s)."),
        "guided_json": _k(bool, True, "Ask for JSON-schema-guided output (response_format)."),
        "logprobs": _k(bool, True, "Ask for logprobs to derive confidences when offered."),
        "method": _k(str, "json", "json: all dimensions in one schema-guided JSON answer (any server); "
                     "likelihood: one request per dimension, the level read from the top logprobs of the "
                     "answer token, as the transformers backend does (needs a server with top_logprobs "
                     "and continue_final_message, e.g. vLLM or SGLang).", choices=("json", "likelihood")),
    },
    "classifier": {
        "model_path": _k(str, "data/models/classifier.joblib",
                         "Trained model from python -m llm_worker.training.train.", path=True),
    },
    "analysis": {
        "out_dir": _k(str, "reports", "Where plots and reports go.", path=True),
        "scorer": _k(str, "", "Scorer to chart by default (empty: the most used one)."),
        "alert_threshold": _k(int, 7, "Suicide-risk level at or above which a comment is an alert."),
        "top_topics": _k(int, 8, "Topics drawn separately in trend charts."),
        "crisis_resources": _k(str, "", "Crisis lines/resources your team passes on; printed under "
                               "every alert table (alerts.md, the report)."),
    },
}

#: Environment variables that carry secrets; never printed.
SECRET_ENV = ("WEIBO_COOKIE", "WEIBO_COOKIE_FILE", "WEIBO_COM_COOKIE", "WEIBO_COM_COOKIE_FILE",
              "WEIBO_MH_SALT", "WEIBO_MH_SALT_FILE", "DATABASE_URL", "REDIS_URL")

#: Search and comment sources the spider knows.
SEARCH_SOURCES = ("s.weibo.com", "weibo.cn")
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

    def dump(self) -> str:
        """The effective configuration as TOML-ish text, secrets masked."""
        lines = [f"# effective configuration from {self.source or 'built-in defaults'}"]
        for sec, values in self.as_dict(masked=True).items():
            lines.append(f"[{sec}]")
            for k, v in values.items():
                lines.append(f"{k} = {_toml_value(v)}")
            lines.append("")
        return "\n".join(lines)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return str(v)


_URL_PASSWORD = re.compile(r"^(?P<head>[a-zA-Z0-9+.\-]+://[^:/@]*:)(?P<pw>[^@]*)(?P<tail>@.*)$")


def mask_url(url: str) -> str:
    """Hide the password of a URL (``mysql+pymysql://u:***@h/db``)."""
    m = _URL_PASSWORD.match(url)
    if not m:
        return url
    return f"{m.group('head')}***{m.group('tail')}"


def _check_type(value: Any, key: Key) -> bool:
    if key.type is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if key.type is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, key.type)


def _type_name(t: type | tuple[type, ...]) -> str:
    names = {str: "string", int: "integer", float: "number", bool: "boolean", list: "list"}
    if isinstance(t, type) and t in names:
        return names[t]
    return getattr(t, "__name__", str(t))


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
                    f"{src}: {sec_name}.{name} must be a {_type_name(key.type)}, "
                    f"got {type(value).__name__} {value!r}")
            if key.type is float:
                value = float(value)
            if key.choices and value not in key.choices:
                raise ConfigError(f"{src}: {sec_name}.{name} = {value!r} is not one of "
                                  f"{', '.join(map(str, key.choices))}")
            if isinstance(value, int) and not isinstance(value, bool) and value < 0:
                raise ConfigError(f"{src}: {sec_name}.{name} must not be negative")
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
    sp = sections["spider"]
    if not sp.search_sources or any(x not in SEARCH_SOURCES for x in sp.search_sources):
        raise ConfigError(f"{src}: spider.search_sources must list one or more of "
                          f"{', '.join(SEARCH_SOURCES)}, got {sp.search_sources!r}")
    if any(not isinstance(c, int) or isinstance(c, bool) or not 100 <= c <= 599
           for c in sp.ban_http_codes):
        raise ConfigError(f"{src}: spider.ban_http_codes must be HTTP status numbers, "
                          f"got {sp.ban_http_codes!r}")
    if sections["worker"].batch_size < 1:
        raise ConfigError(f"{src}: worker.batch_size must be at least 1")
    if sections["worker"].max_attempts < 1:
        raise ConfigError(f"{src}: worker.max_attempts must be at least 1")
    return Config(source=src, sections=sections)


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
    if not text:
        raise ConfigError(f"{what} file {p} is empty")
    return text


def cookie_origin(cfg: Config, site: str = "weibo.cn", env: Mapping[str, str] | None = None) -> str:
    """Where the cookie of ``site`` comes from: the variable or key name ('' if none is set)."""
    environ: Mapping[str, str] = os.environ if env is None else env
    var, file_var, key = COOKIES[site]
    if environ.get(var):
        return var
    if environ.get(file_var):
        return file_var
    return f"spider.{key}" if getattr(cfg.spider, key) else ""


def cookie_from(cfg: Config, env: Mapping[str, str] | None = None, site: str = "weibo.cn") -> str:
    """The Cookie header of ``site`` (weibo.cn: WEIBO_COOKIE, WEIBO_COOKIE_FILE or spider.cookie_file;
    weibo.com: WEIBO_COM_COOKIE, WEIBO_COM_COOKIE_FILE or spider.weibo_com_cookie_file); '' if none.

    A line break inside a cookie (a paste gone wrong) is refused: Weibo would answer with
    empty pages and no error.
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    var, file_var, key = COOKIES[site]
    origin = cookie_origin(cfg, site, environ)
    if origin == var:
        value = environ[var].strip()
    elif origin == file_var:
        value = read_secret_file(environ[file_var], file_var)
    elif origin:
        value = read_secret_file(getattr(cfg.spider, key), origin)
    else:
        return ""
    if "\n" in value or "\r" in value:
        raise ConfigError(f"the {site} cookie from {origin} holds a line break: paste the Cookie "
                          f"header as one line")
    return value


def reference_markdown() -> str:
    """The configuration reference for docs/configuration.md, generated from SPEC."""
    out = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for sec, keys in SPEC.items():
        for name, key in keys.items():
            default = _toml_value(key.default).replace("|", "\\|")
            doc = key.doc.replace("|", "\\|")
            if key.choices:
                doc += " One of: " + ", ".join(f"`{c}`" for c in key.choices) + "."
            if key.env:
                doc += f" Env: `{key.env}`."
            out.append(f"| `{sec}.{name}` | {_type_name(key.type)} | `{default}` | {doc} |")
    return "\n".join(out)


if __name__ == "__main__":  # python -m weibo_mh.config [--config F] [--reference]
    import argparse

    ap = argparse.ArgumentParser(prog="python -m weibo_mh.config",
                                 description="Validate a config file and print the effective "
                                             "configuration (secrets masked).")
    ap.add_argument("--config", help="TOML file (default: $WEIBO_MH_CONFIG or configs/default.toml)")
    ap.add_argument("--reference", action="store_true", help="print the Markdown key reference")
    a = ap.parse_args()
    if a.reference:
        print(reference_markdown())
    else:
        print(load_or_exit(a.config).dump())
