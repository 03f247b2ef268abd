"""The review console as a Flask application: pages rendered on the server, one small script.

Security, in the order a request meets it: every POST must carry the session's CSRF
token; every page except /login, /healthz and the static files needs a live session
(signed, HttpOnly, SameSite=Strict, expiring cookie; the user is re-read from the
database each time, so a disabled user is out at once); each page names the roles
that may open it. Jinja2 escapes everything it prints, and the Content-Security-Policy
allows only this console's own script, so a comment holding ``<script>`` is shown as
text and could not run even if it were not.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
from sqlalchemy.engine import Engine

from analysis.console import annotate, auth, scales, triage
from analysis.console.agreement_cache import AgreementCache
from analysis.console.auth import User
from weibo_mh import db
from weibo_mh.alert_queue import fill_alerts
from weibo_mh.rubric import CORE_DIMENSIONS, LEVELS

HERE = Path(__file__).resolve().parent
#: The agreement page reuses its figures for this long at most (see agreement_cache).
AGREEMENT_TTL = 300.0
PUBLIC = {"login", "healthz", "static"}
HOME = {"annotator": "annotate_page", "responder": "alerts_page", "admin": "admin_page"}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")


class _Sha256Sessions(SecureCookieSessionInterface):
    """Flask's signed cookie sessions, with HMAC-SHA256 instead of SHA-1."""

    digest_method = staticmethod(hashlib.sha256)


def client_ip() -> str:
    return request.remote_addr or ""


def user() -> User:
    u: User | None = g.get("user")
    if u is None:  # before_request let an anonymous request through to a login-only page
        abort(401)
    return u


def requires(*roles: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Only these roles may open the page; others get 403 (and an audit_log row)."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(fn)
        def inner(*args: Any, **kw: Any) -> Any:
            u = user()
            if u.role not in roles:
                with g.engine.begin() as conn:
                    auth.audit(conn, u.username, "refused", request.path[:191],
                               {"role": u.role, "method": request.method}, ip=client_ip())
                return render_template("error.html", title="Not for your role",
                                       message=f"Your role ({u.role}) may not open this page."), 403
            return fn(*args, **kw)

        inner.roles = roles  # type: ignore[attr-defined]
        return inner

    return wrap


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
    app.jinja_env.autoescape = True
    app.jinja_env.globals.update(scales=scales, dims=CORE_DIMENSIONS, levels=LEVELS,
                                 crisis=(cfg.analysis.crisis_resources or "").strip(),
                                 csrf_token=lambda: session.get("csrf", ""))
    app.extensions["wmh"] = {"cfg": cfg, "engine": engine}
    lifetime = con.session_minutes * 60
    figures = AgreementCache(engine, AGREEMENT_TTL)
    app.extensions["wmh"]["agreement"] = figures

    @app.before_request
    def _gate() -> Any:
        g.engine = engine
        g.cfg = cfg
        g.user = None
        if request.endpoint in ("healthz", "static"):
            return None  # no session, no cookie
        if "csrf" not in session:
            session["csrf"] = secrets.token_urlsafe(32)
        if request.method == "POST":
            sent = request.form.get("csrf_token", "")
            if not sent or not hmac.compare_digest(sent, session["csrf"]):
                with engine.begin() as conn:
                    auth.audit(conn, str(session.get("user", "-")), "csrf_refused", request.path[:191],
                               ip=client_ip())
                return render_template("error.html", title="Refused",
                                       message="This form's security token is missing or stale. "
                                               "Reload the page and try again."), 403
        uid = session.get("uid")
        if uid is not None:
            if time.time() - float(session.get("login_at", 0)) > lifetime:
                session.clear()
                flash("Your session expired; log in again.")
            else:
                with engine.connect() as conn:
                    g.user = auth.get_user(conn, int(uid))
                if g.user is None:
                    session.clear()
        if request.endpoint in PUBLIC or request.endpoint is None:
            return None
        if g.user is None:
            return redirect(url_for("login", next=request.full_path if request.query_string
                                    else request.path))
        return None

    @app.after_request
    def _headers(resp: Response) -> Response:
        resp.headers["Content-Security-Policy"] = CSP
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers.setdefault("Cache-Control", "no-store")
        return resp

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
            u, why = auth.login(engine, request.form.get("username", ""),
                                request.form.get("password", ""), client_ip(),
                                max_failures=con.login_max_failures,
                                window_minutes=con.login_window_minutes)
            if u is not None:
                session.clear()  # a fresh session (and CSRF token) for the logged-in user
                session.permanent = True
                session.update(uid=u.id, user=u.username, login_at=time.time(),
                               csrf=secrets.token_urlsafe(32))
                return redirect(_safe_next(nxt) or url_for("home"))
            return render_template("login.html", error=why, next=nxt), 401
        if g.user is not None:
            return redirect(url_for("home"))
        return render_template("login.html", error="", next=nxt)

    @app.post("/logout")
    def logout() -> Any:
        u = user()
        with engine.begin() as conn:
            auth.audit(conn, u.username, "logout", f"user:{u.username}", ip=client_ip())
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
        with engine.begin() as conn:
            t = annotate.current_task(conn, u)
            prog = annotate.progress(conn, u)
        return render_template("annotate.html", task=t, progress=prog)

    @app.post("/annotate/label")
    @requires("annotator", "admin")
    def annotate_label() -> Any:
        u = user()
        try:
            task_id = int(request.form["task"])
            values = {d: int(request.form[d]) for d in CORE_DIMENSIONS}
        except (KeyError, ValueError):
            flash("Give a level 0–10 for each of the four scales.")
            return redirect(url_for("annotate_page"))
        with engine.begin() as conn:
            try:
                ok = annotate.label(conn, u, task_id, values, ip=client_ip())
            except ValueError as e:
                flash(str(e))
                return redirect(url_for("annotate_page"))
        if not ok:
            flash("That comment is no longer yours to label (already done, or taken back).")
        figures.warm()
        return redirect(url_for("annotate_page"))

    @app.post("/annotate/skip")
    @requires("annotator", "admin")
    def annotate_skip() -> Any:
        u = user()
        with engine.begin() as conn:
            annotate.skip(conn, u, _int(request.form.get("task")), ip=client_ip())
        figures.warm()
        return redirect(url_for("annotate_page"))

    @app.post("/annotate/undo")
    @requires("annotator", "admin")
    def annotate_undo() -> Any:
        u = user()
        with engine.begin() as conn:
            cid = annotate.undo(conn, u, ip=client_ip())
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
        page_no = max(1, _int(request.args.get("page"), 1))
        size = con.page_size
        with engine.connect() as conn:
            rows = triage.page(conn, states, sort, size + 1, (page_no - 1) * size)
            counts = triage.counts(conn)
        return render_template("alerts.html", rows=rows[:size], more=len(rows) > size, counts=counts,
                               state=state, sort=sort, page=page_no, repeat_days=con.repeat_days,
                               filters=list(triage.FILTERS), sorts=list(triage.SORTS))

    @app.get("/alerts/<int:alert_id>")
    @requires("responder", "admin")
    def alert_page(alert_id: int) -> Any:
        with engine.connect() as conn:
            a = triage.get(conn, alert_id)
            if a is None:
                abort(404)
            others = triage.same_author(conn, a, con.repeat_days)
            hist = triage.history(conn, alert_id)
        link = triage.comment_url(cfg.spider.weibo_cn_base, a["mid"], a["comment_id"])
        allowed = [act for act, (starts, _) in triage.ACTIONS.items() if a["state"] in starts]
        return render_template("alert.html", a=a, others=others, history=hist, link=link,
                               allowed=allowed, repeat_days=con.repeat_days)

    @app.post("/alerts/<int:alert_id>/act")
    @requires("responder", "admin")
    def alert_act(alert_id: int) -> Any:
        u = user()
        action = request.form.get("action", "")
        assignee = request.form.get("assignee")
        if action not in ("assign", "acknowledge"):
            assignee = None
        try:
            with engine.begin() as conn:
                new = triage.act(conn, u, alert_id, action, note=request.form.get("note", ""),
                                 assignee=assignee, ip=client_ip(), seen=request.form.get("seen"))
            flash(f"Alert {alert_id}: {action} done; it is now {new}.")
        except triage.TriageError as e:
            flash(f"Alert {alert_id}: {e}")
        return redirect(url_for("alert_page", alert_id=alert_id))

    @app.get("/alerts/export.csv")
    @requires("responder", "admin")
    def alerts_export() -> Any:
        u = user()
        state, states = _states()
        with engine.begin() as conn:
            auth.audit(conn, u.username, "export_alerts", f"alerts:{state}", ip=client_ip())
        base = cfg.spider.weibo_cn_base

        def body() -> Any:
            with engine.connect() as conn:
                yield from triage.export_rows(conn, states, base)

        stamp = db.now().strftime("%Y%m%d-%H%M")
        return Response(stream_with_context(body()), mimetype="text/csv",
                        headers={"Content-Disposition": f"attachment; filename=alerts-{state}-{stamp}.csv"})

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
        return render_template("admin.html", people=people, queue=queue, alert_counts=alert_counts,
                               scorers=known, con=con, strategies=annotate.STRATEGIES,
                               default_scorer=con.alert_scorer or cfg.analysis.scorer or
                               (known[0] if known else ""))

    @app.post("/admin/queue")
    @requires("admin")
    def admin_queue() -> Any:
        u = user()
        strategy = request.form.get("strategy", "stratified")
        n = max(1, min(_int(request.form.get("n"), con.queue_size), 100_000))
        ids = (request.form.get("ids") or "").split()
        try:
            with engine.begin() as conn:
                out = annotate.fill(conn, strategy, n if strategy != "ids" else len(ids), actor=u.username,
                                    scorer=request.form.get("scorer") or None, ids=ids,
                                    share=con.double_coding_share, ip=client_ip())
            flash(f"Queued {out.comments} comments ({out.double_coded} of them for two annotators).")
        except annotate.QueueError as e:
            flash(f"Queue not filled: {e}")
        return redirect(url_for("admin_page"))

    @app.post("/admin/fill-alerts")
    @requires("admin")
    def admin_fill_alerts() -> Any:
        u = user()
        scorer = request.form.get("scorer", "")
        threshold = _int(request.form.get("threshold"), con.alert_threshold)
        if not scorer or not 0 <= threshold <= 10:
            flash("Choose a scorer and a level 0–10.")
            return redirect(url_for("admin_page"))
        with engine.begin() as conn:
            n = fill_alerts(conn, scorer, threshold, repeat_days=con.repeat_days)
            auth.audit(conn, u.username, "fill_alerts", f"scorer:{scorer}"[:191],
                       {"threshold": threshold, "created": n}, ip=client_ip())
        flash(f"{n} new alerts from {scorer} at level ≥ {threshold}.")
        return redirect(url_for("admin_page"))

    @app.post("/admin/users/<name>/<what>")
    @requires("admin")
    def admin_user(name: str, what: str) -> Any:
        u = user()
        if what not in ("disable", "enable") or name == u.username:
            flash("You cannot do that to this account.")
        elif auth.set_disabled(engine, name, what == "disable", actor=u.username, ip=client_ip()):
            flash(f"{name}: {what}d.")
        return redirect(url_for("admin_page"))

    @app.get("/admin/audit")
    @requires("admin")
    def audit_page() -> Any:
        L = db.audit_log
        q = sa.select(L).order_by(L.c.id.desc()).limit(300)
        actor = request.args.get("actor", "").strip()
        if actor:
            q = q.where(L.c.actor == actor)
        with engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(q)]
        return render_template("audit.html", rows=rows, actor=actor)

    @app.errorhandler(404)
    def _404(_e: Any) -> Any:
        return render_template("error.html", title="Not found", message="No such page."), 404

    from analysis.console.watch import register as register_watch  # /watch, the alert page's pushes
    register_watch(app, engine, requires)
    return app


def _int(text: str | None, default: int = 0) -> int:
    try:
        return int(text or "")
    except ValueError:
        return default


def _safe_next(nxt: str) -> str:
    """Only a path on this console (no scheme, no host): no open redirect after login."""
    if not nxt.startswith("/") or nxt.startswith("//") or "\\" in nxt:
        return ""
    parts = urlsplit(nxt)
    return "" if parts.scheme or parts.netloc else nxt
