"""The review console as a Flask application: pages rendered on the server, one small script.

Security, in the order a request meets it: the session is looked up on the server
(sessions.py: the signed, HttpOnly, SameSite=Strict cookie carries only a token; logout,
a new password or role, disabling and an admin end it at once); every POST must carry
the session's CSRF token; every page except /login, /healthz and the static files needs
a live session; each page names the roles that may open it, checked here for every
method (GET, HEAD, OPTIONS, POST). Every write is one write transaction (writes.py).
Jinja2 escapes everything it prints, and the Content-Security-Policy allows only this
console's own script, so a comment holding ``<script>`` is shown as text and could not
run even if it were not.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import re
import secrets
import unicodedata
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import sqlalchemy as sa
from flask import (
    Flask,
    Response,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    stream_with_context,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy.engine import Connection, Engine
from werkzeug.routing import IntegerConverter

from analysis.console import annotate, auth, scales, sessions, triage, watch
from analysis.console.agreement_cache import AgreementCache
from analysis.console.auth import User
from analysis.console.writes import retryable, write
from weibo_mh import db
from weibo_mh.alert_queue import missing_scorer_hint
from weibo_mh.config import ConfigError
from weibo_mh.notify.outbox import policy_from
from weibo_mh.rubric import CORE_DIMENSIONS, LEVELS

HERE = Path(__file__).resolve().parent
#: The agreement page reuses its figures for this long at most (see agreement_cache).
AGREEMENT_TTL = 300.0
PUBLIC = {"login", "healthz", "static"}
HOME = {"annotator": "annotate_page", "responder": "alerts_page", "admin": "admin_page"}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
#: Ids and page numbers beyond a signed 64-bit integer never reach SQL (404 or 400).
MAX_ID = 2**63 - 1
DIGITS = re.compile(r"[0-9]{1,19}", re.ASCII)
#: A label is one of the ASCII digits 0-10, or the keyboard's ``t`` for 10.
LABEL = re.compile(r"10|[0-9]|t", re.ASCII)
SEEN = re.compile(r"[0-9a-f]{16}", re.ASCII)
AUDIT_PAGE = 100
log = logging.getLogger("analysis.console")


class _Id(IntegerConverter):
    """``<id:...>``: a positive id within the 64-bit range (anything else is 404)."""

    def __init__(self, url_map: Any, *args: Any, **kw: Any) -> None:
        super().__init__(url_map, min=1, max=MAX_ID)


class _Sha256Sessions(SecureCookieSessionInterface):
    """Flask's signed cookie sessions, with HMAC-SHA256 instead of SHA-1."""

    digest_method = staticmethod(hashlib.sha256)


def client_ip() -> str:
    """The client's address: the connecting one, or X-Forwarded-For's behind a trusted proxy."""
    return str(g.get("ip") or request.remote_addr or "")


def proxy_networks(entries: list[Any]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """``console.trusted_proxies`` as networks; a bad entry stops the console at start-up."""
    out = []
    for e in entries:
        try:
            out.append(ipaddress.ip_network(str(e).strip(), strict=False))
        except ValueError:
            raise ConfigError(f"console.trusted_proxies: {e!r} is not an address or network (CIDR)") from None
    return tuple(out)


def forwarded_for(remote: str, header: str, proxies: tuple[Any, ...]) -> str:
    """The client behind trusted proxies: X-Forwarded-For read from the right, skipping proxies.

    Only when the connecting address is a trusted proxy; a malformed hop ends the walk at
    the last address that was certain (a client may write anything to the left of the hops
    our proxies appended).
    """
    def trusted(addr: str) -> bool:
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            return False
        return any(ip in n for n in proxies)

    if not proxies or not trusted(remote):
        return remote
    client = remote
    for hop in reversed([h.strip() for h in header.split(",") if h.strip()]):
        try:
            client = str(ipaddress.ip_address(hop))
        except ValueError:
            break
        if not trusted(client):
            break
    return client


def user() -> User:
    u: User | None = g.get("user")
    if u is None:  # before_request let an anonymous request through to a login-only page
        abort(401)
    return u


def requires(*roles: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Only these roles may open the page; others get 403 (and an audit_log row).

    The check runs in the app's before_request for every method, so HEAD and OPTIONS
    (which Flask answers without calling the view) meet the same rule as GET.
    """

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn.roles = roles  # type: ignore[attr-defined]
        return fn

    return wrap


def error(status: int, title: str, message: str) -> Any:
    return render_template("error.html", title=title, message=message), status


def arg_int(text: str | None, default: int, lo: int = 1, hi: int = MAX_ID) -> int:
    """A whole number from a query or form field: ASCII digits within [lo, hi], else 400."""
    if text is None or text == "":
        return default
    if not DIGITS.fullmatch(text) or not lo <= int(text) <= hi:
        abort(400)
    return int(text)


def create_app(cfg: Any, engine: Engine, secret_key: str) -> Flask:
    """The console over ``engine``; ``cfg`` is the loaded configuration."""
    app = Flask("analysis.console", template_folder=str(HERE / "templates"),
                static_folder=str(HERE / "static"))
    con = cfg.console
    app.config.update(
        SECRET_KEY=secret_key, SESSION_COOKIE_NAME="wmh_console", SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict", SESSION_COOKIE_SECURE=bool(con.secure_cookie),
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=con.session_minutes),
        MAX_CONTENT_LENGTH=2 * 1024 * 1024, SEND_FILE_MAX_AGE_DEFAULT=0)
    app.session_interface = _Sha256Sessions()
    app.url_map.converters["id"] = _Id
    app.url_map.merge_slashes = False  # "/static//x" is 404, not a redirect built from Host
    app.jinja_env.autoescape = True
    app.jinja_env.globals.update(scales=scales, dims=CORE_DIMENSIONS, levels=LEVELS,
                                 crisis=(cfg.analysis.crisis_resources or "").strip(),
                                 csrf_token=lambda: session.get("csrf", ""))
    app.extensions["wmh"] = {"cfg": cfg, "engine": engine}
    proxies = proxy_networks(list(con.trusted_proxies or []))
    limit = auth.Limit(con.login_max_failures, float(con.login_delay_seconds), con.login_window_minutes)
    figures = AgreementCache(engine, AGREEMENT_TTL)
    app.extensions["wmh"]["agreement"] = figures

    @app.before_request
    def _gate() -> Any:
        g.engine = engine
        g.cfg = cfg
        g.user = None
        g.ip = forwarded_for(request.remote_addr or "", request.headers.get("X-Forwarded-For", ""), proxies)
        if request.endpoint in ("healthz", "static"):
            return None  # no session, no cookie
        if "csrf" not in session:
            session["csrf"] = secrets.token_urlsafe(32)
        token = session.get("sid")
        if token:
            with engine.connect() as conn:
                live = sessions.lookup(conn, str(token), con.session_minutes)
            if live is None:
                session.clear()
                session["csrf"] = secrets.token_urlsafe(32)
                flash("Your session has ended (logged out, expired or ended by an admin); log in again.")
            else:
                g.user = User(live.user_id, live.username, live.role)
                g.session_id = live.id
                if sessions.needs_touch(live):
                    write(engine, lambda conn: sessions.touch(conn, live.id))
        if request.method == "POST":
            sent = request.form.get("csrf_token", "")
            if not sent or not hmac.compare_digest(sent, session["csrf"]):
                _refused("csrf_refused")
                return error(403, "Refused", "This form's security token is missing or stale. "
                                             "Reload the page and try again.")
        if request.endpoint in PUBLIC or request.endpoint is None:
            return None
        if g.user is None:
            return redirect(url_for("login", next=request.full_path if request.query_string
                                    else request.path))
        roles = getattr(app.view_functions.get(request.endpoint), "roles", None)
        if roles is not None and g.user.role not in roles:
            _refused("refused")
            return error(403, "Not for your role", f"Your role ({g.user.role}) may not open this page.")
        return None

    def _refused(action: str) -> None:
        """A refused request in audit_log: one row for a user's, counted rows for anonymous ones."""
        u, path, ip = g.user, request.path[:191], client_ip()
        if u is None:
            write(engine, lambda conn: auth.count(conn, action, ip, path, {"method": request.method}))
        else:
            write(engine, lambda conn: auth.audit(conn, u.username, action, path,
                                                  {"role": u.role, "method": request.method}, ip=ip))

    @app.after_request
    def _headers(resp: Response) -> Response:
        resp.headers["Content-Security-Policy"] = CSP
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers.setdefault("Cache-Control", "no-store")
        loc = resp.headers.get("Location")
        if loc:  # every redirect stays on this console: a relative path, never a Host-built URL
            parts = urlsplit(loc)
            if parts.scheme or parts.netloc or parts.path.startswith("//"):
                resp.headers["Location"] = urlunsplit(("", "", "/" + parts.path.lstrip("/"), parts.query, ""))
        return resp

    @app.errorhandler(sa.exc.OperationalError)
    def _busy(e: sa.exc.OperationalError) -> Any:
        why = db.server_state_error(e)
        log.warning("event=database_error path=%s error=%s", request.path, why or db.short_error(e))
        if retryable(e) or "database is locked" in str(e.orig).lower():
            return error(503, "Database busy", "The database did not answer in time; nothing was saved. "
                                               "Try again in a moment.")
        return error(503, "Database error", "The database refused this request; nothing was saved. "
                                            "The console's log names the cause.")

    @app.errorhandler(400)
    def _400(_e: Any) -> Any:
        return error(400, "Bad request", "This request holds a value out of range or malformed.")

    @app.context_processor
    def _ctx() -> dict[str, Any]:
        return {"me": g.get("user")}

    # ------------------------------------------------------------------ login

    @app.get("/healthz")
    def healthz() -> Any:
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError:
            return {"status": "database unavailable"}, 503
        return {"status": "ok"}

    @app.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        nxt = request.values.get("next", "")
        if request.method == "POST":
            res = auth.login(engine, request.form.get("username", ""), request.form.get("password", ""),
                             client_ip(), limit=limit, lifetime_minutes=con.session_minutes,
                             user_agent=request.headers.get("User-Agent", ""))
            if res.user is not None:
                session.clear()  # a fresh session (and CSRF token) for the logged-in user
                session.permanent = True
                session.update(sid=res.token, csrf=secrets.token_urlsafe(32))
                return redirect(_safe_next(nxt) or url_for("home"))
            page = render_template("login.html", error=res.why, next=_safe_next(nxt))
            if res.retry_after:
                return page, 429, {"Retry-After": str(res.retry_after)}
            return page, 401
        if g.user is not None:
            return redirect(url_for("home"))
        return render_template("login.html", error="", next=_safe_next(nxt))

    @app.post("/logout")
    def logout() -> Any:
        u, sid, ip = user(), int(g.session_id), client_ip()

        def run(conn: Connection) -> None:
            sessions.end(conn, sid, "logout")
            auth.audit(conn, u.username, "logout", f"user:{u.username}", ip=ip)

        write(engine, run)
        session.clear()
        return redirect(url_for("login"))

    @app.get("/")
    def home() -> Any:
        return redirect(url_for(HOME[user().role]))

    # ------------------------------------------------------------------ annotate

    @app.get("/annotate")
    @requires("annotator", "admin")
    def annotate_page() -> Any:
        u = user()
        with engine.connect() as conn:   # a view or reload takes no write lock while a task is held
            mine = annotate.held_task(conn, u)
        if mine is None:
            mine = write(engine, lambda conn: annotate.take_task(conn, u))
        with engine.connect() as conn:
            t = None if mine is None else annotate.task(conn, mine)
            prog = annotate.progress(conn, u)
        return render_template("annotate.html", task=t, progress=prog)

    @app.post("/annotate/label")
    @requires("annotator", "admin")
    def annotate_label() -> Any:
        u, ip = user(), client_ip()
        task_id = arg_int(request.form.get("task"), 0)
        sent = [request.form.get(d, "") for d in CORE_DIMENSIONS]
        if not task_id or not all(LABEL.fullmatch(v) for v in sent):
            return error(400, "Not saved", "Give a level 0–10 (the digits, or t for 10) for each of the "
                                           "four scales.")
        values = {d: 10 if v == "t" else int(v) for d, v in zip(CORE_DIMENSIONS, sent, strict=True)}
        ok = write(engine, lambda conn: annotate.label(conn, u, task_id, values, ip=ip))
        if not ok:
            flash("That comment is no longer yours to label (already done, or taken back).")
        figures.warm()
        return redirect(url_for("annotate_page"))

    @app.post("/annotate/skip")
    @requires("annotator", "admin")
    def annotate_skip() -> Any:
        u, ip = user(), client_ip()
        task_id = arg_int(request.form.get("task"), 0)
        write(engine, lambda conn: annotate.skip(conn, u, task_id, ip=ip))
        figures.warm()
        return redirect(url_for("annotate_page"))

    @app.post("/annotate/undo")
    @requires("annotator", "admin")
    def annotate_undo() -> Any:
        u, ip = user(), client_ip()
        cid = write(engine, lambda conn: annotate.undo(conn, u, ip=ip))
        flash("Undone: label that comment again." if cid else "Nothing to undo.")
        figures.warm()
        return redirect(url_for("annotate_page"))

    # ------------------------------------------------------------------ alerts

    def _states() -> tuple[str, tuple[str, ...]]:
        name = request.args.get("state", "open")
        if name not in triage.FILTERS:
            name = "open"
        return name, triage.FILTERS[name]

    @app.get("/alerts")
    @requires("responder", "admin")
    def alerts_page() -> Any:
        state, states = _states()
        sort = request.args.get("sort", "level")
        if sort not in triage.SORTS:
            sort = "level"
        size = con.page_size
        page_no = arg_int(request.args.get("page"), 1, 1, MAX_ID // size)
        with engine.connect() as conn:
            rows = triage.page(conn, states, sort, size + 1, (page_no - 1) * size)
            counts = triage.counts(conn)
        return render_template("alerts.html", rows=rows[:size], more=len(rows) > size, counts=counts,
                               state=state, sort=sort, page=page_no, repeat_days=con.repeat_days,
                               filters=list(triage.FILTERS), sorts=list(triage.SORTS))

    @app.get("/alerts/<id:alert_id>")
    @requires("responder", "admin")
    def alert_page(alert_id: int) -> Any:
        with engine.connect() as conn:
            a = triage.get(conn, alert_id)
            if a is None:
                abort(404)
            others = triage.same_author(conn, a, con.repeat_days)
            hist = triage.history(conn, alert_id)
            assignees = auth.active_users(conn, triage.ASSIGNEE_ROLES)
            notified = watch.notifications(conn, [alert_id]).get(alert_id, [])
        link = triage.comment_url(cfg.spider.weibo_cn_base, a["mid"], a["comment_id"])
        allowed = [act for act, (starts, _) in triage.ACTIONS.items() if a["state"] in starts]
        return render_template("alert.html", a=a, others=others, history=hist, link=link,
                               allowed=allowed, repeat_days=con.repeat_days, assignees=assignees,
                               notified=notified)

    @app.post("/alerts/<id:alert_id>/act")
    @requires("responder", "admin")
    def alert_act(alert_id: int) -> Any:
        u, ip = user(), client_ip()
        action = request.form.get("action", "")
        assignee = request.form.get("assignee")
        note = request.form.get("note", "")
        seen = request.form.get("seen", "")
        if not SEEN.fullmatch(seen):
            return error(400, "Not saved", "This decision does not say which version of the alert it was "
                                           "made on (the form's seen field): open the alert and decide "
                                           "there.")
        if action not in ("assign", "acknowledge"):
            assignee = None
        try:
            new = write(engine, lambda conn: triage.act(conn, u, alert_id, action, note=note,
                                                        assignee=assignee, ip=ip, seen=seen))
            flash(f"Alert {alert_id}: {action} done; it is now {new}.")
        except triage.TriageError as e:
            flash(f"Alert {alert_id}: {e}")
        return redirect(url_for("alert_page", alert_id=alert_id))

    @app.get("/alerts/export.csv")
    @requires("responder", "admin")
    def alerts_export() -> Any:
        u, ip = user(), client_ip()
        state, states = _states()
        stamp = db.now().strftime("%Y%m%d-%H%M")
        headers = {"Content-Disposition": f"attachment; filename=alerts-{state}-{stamp}.csv"}
        if request.method == "HEAD":  # the headers only: nothing was exported, nothing to log
            return Response(b"", mimetype="text/csv", headers=headers)
        write(engine, lambda conn: auth.audit(conn, u.username, "export_alerts", f"alerts:{state}", ip=ip))
        base = cfg.spider.weibo_cn_base

        def body() -> Any:
            with engine.connect() as conn:
                yield from triage.export_rows(conn, states, base)

        return Response(stream_with_context(body()), mimetype="text/csv", headers=headers)

    # ------------------------------------------------------------------ agreement

    @app.get("/agreement")
    @requires("admin")
    def agreement_page() -> Any:
        from analysis import agreement

        with engine.connect() as conn:
            ag = figures.get(conn)
        risk = {k: m for k, m in ag.matrices.items() if k[0] == agreement.RISK}
        return render_template("agreement.html", ag=ag, risk=risk, fmt=agreement._num)

    # ------------------------------------------------------------------ admin

    @app.get("/admin")
    @requires("admin")
    def admin_page() -> Any:
        with engine.connect() as conn:
            people = auth.users(conn)
            queue = annotate.queue_counts(conn)
            alert_counts = triage.counts(conn)
            known = [s for s in annotate.scorer_names(conn) if not s.startswith("human:")]
            live = sessions.live(conn, con.session_minutes)
        return render_template("admin.html", people=people, queue=queue, alert_counts=alert_counts,
                               live=live,
                               scorers=known, con=con, strategies=annotate.STRATEGIES,
                               default_scorer=con.alert_scorer or cfg.analysis.scorer or
                               (known[0] if known else ""))

    @app.post("/admin/queue")
    @requires("admin")
    def admin_queue() -> Any:
        u, ip = user(), client_ip()
        strategy = request.form.get("strategy", "stratified")
        n = arg_int(request.form.get("n"), min(con.queue_size, 100_000), 1, 100_000)
        ids = (request.form.get("ids") or "").split()
        scorer = request.form.get("scorer") or None
        try:
            out = write(engine, lambda conn: annotate.fill(
                conn, strategy, n if strategy != "ids" else len(ids), actor=u.username, scorer=scorer, ids=ids,
                share=con.double_coding_share, ip=ip))
            flash(f"Queued {out.comments} comments ({out.double_coded} of them for two annotators).")
        except annotate.QueueError as e:
            flash(f"Queue not filled: {e}")
        return redirect(url_for("admin_page"))

    @app.post("/admin/fill-alerts")
    @requires("admin")
    def admin_fill_alerts() -> Any:
        u, ip = user(), client_ip()
        scorer = request.form.get("scorer", "")
        threshold = arg_int(request.form.get("threshold"), con.alert_threshold, 0, 10)
        if not scorer or not 0 <= threshold <= 10:
            flash("Choose a scorer and a level 0–10.")
            return redirect(url_for("admin_page"))

        n = write(engine, lambda conn: triage.fill_and_audit(
            conn, u.username, scorer, threshold, con.repeat_days, policy_from(cfg), ip=ip))
        flash(f"{n} new alerts from {scorer} at level ≥ {threshold}.")
        if not n:
            with engine.connect() as conn:
                hint = missing_scorer_hint(conn, scorer)
            if hint:
                flash(hint)
        return redirect(url_for("admin_page"))

    @app.post("/admin/users/<name>/<what>")
    @requires("admin")
    def admin_user(name: str, what: str) -> Any:
        u = user()
        if what not in ("disable", "enable", "logout") or name == u.username:
            flash("You cannot do that to this account.")
        elif what == "logout":
            n = auth.end_sessions(engine, username=name, actor=u.username, ip=client_ip())
            flash(f"{name}: {n} session{'s' if n != 1 else ''} ended.")
        elif auth.set_disabled(engine, name, what == "disable", actor=u.username, ip=client_ip()):
            flash(f"{name}: {what}d.")
        return redirect(url_for("admin_page"))

    @app.post("/admin/sessions/<id:session_id>/end")
    @requires("admin")
    def admin_end_session(session_id: int) -> Any:
        n = auth.end_sessions(engine, session_id=session_id, actor=user().username, ip=client_ip())
        flash(f"Session {session_id} ended." if n else f"Session {session_id} had ended already.")
        return redirect(url_for("admin_page"))

    @app.get("/admin/audit")
    @requires("admin")
    def audit_page() -> Any:
        L = db.audit_log
        before = arg_int(request.args.get("before"), 0)
        actor = request.args.get("actor", "").strip()[:64]
        action = request.args.get("action", "").strip()
        if action not in auth.ACTIONS:
            action = ""
        q = sa.select(L).order_by(L.c.id.desc()).limit(AUDIT_PAGE + 1)
        if actor:
            q = q.where(L.c.actor == actor)
        if action:
            q = q.where(L.c.action == action)
        if before:
            q = q.where(L.c.id < before)
        with engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(q)]
        older = rows[AUDIT_PAGE - 1]["id"] if len(rows) > AUDIT_PAGE else None
        return render_template("audit.html", rows=rows[:AUDIT_PAGE], actor=actor, action=action,
                               actions=auth.ACTIONS, older=older, before=before)

    @app.errorhandler(404)
    def _404(_e: Any) -> Any:
        return render_template("error.html", title="Not found", message="No such page."), 404

    watch.register(app, engine, requires)   # /watch
    return app


def _safe_next(nxt: str) -> str:
    """Only a path on this console (no scheme, no host, no control character): no open redirect."""
    if not nxt.startswith("/") or nxt.startswith("//") or "\\" in nxt or len(nxt) > 2000:
        return ""
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in nxt):
        return ""
    parts = urlsplit(nxt)
    return "" if parts.scheme or parts.netloc else nxt
