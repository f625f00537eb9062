"""Ledgerline's application factory: `flask --app app ...` works from the repository root."""

from __future__ import annotations

import gc
import logging
import secrets
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy import inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from config import INSTANCE_DIR, Config, engine_options
from extensions import (
    SQLITE_BUSY_TIMEOUT_MS,
    babel,
    csrf,
    db,
    login_manager,
    migrate,
    reset_write_intent,
    set_write_intent,
)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """Build the WSGI application from the environment, with optional overrides (tests)."""
    app = Flask(__name__, instance_path=str(INSTANCE_DIR))
    app.config.from_mapping(Config().as_mapping())
    if overrides:
        app.config.from_mapping(overrides)
        if "SQLALCHEMY_DATABASE_URI" in overrides and "SQLALCHEMY_ENGINE_OPTIONS" not in overrides:
            app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(
                app.config["SQLALCHEMY_DATABASE_URI"]
            )
    app.json.sort_keys = False  # type: ignore[attr-defined]
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # WeasyPrint narrates every step of every render at INFO
    logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)

    prepare_sqlite_file(app.config["SQLALCHEMY_DATABASE_URI"])
    import billing.models  # noqa: F401  (registers the models with the metadata)

    db.init_app(app)
    if not app.config.get("SECRET_KEY"):
        use_installation_secret(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR))
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = None  # the login page explains itself

    from blueprints import security
    from blueprints.api import bp as api_bp
    from blueprints.auth import bp as auth_bp
    from blueprints.console import bp as console_bp
    from blueprints.documents import bp as documents_bp
    from blueprints.filters import register_filters
    from blueprints.hooks import bp as hooks_bp
    from blueprints.portal import bp as portal_bp
    from blueprints.portal import visit_locale

    # gettext in views and templates (`_()`, `{% trans %}`): the portal's pages in the visit's
    # language, every other page in the default one (English)
    babel.init_app(app, locale_selector=visit_locale)

    # The API authenticates every request with its Bearer key; no cookie, so no CSRF.
    csrf.exempt(api_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(console_bp)
    app.register_blueprint(documents_bp)
    # Inbound hooks are authenticated by their signature; no cookie, so no CSRF.
    csrf.exempt(hooks_bp)
    app.register_blueprint(hooks_bp)
    # The portal sets no cookie: its writes carry the link's token and a signed form nonce.
    csrf.exempt(portal_bp)
    app.register_blueprint(portal_bp)
    register_filters(app)
    register_request_hooks(app)
    register_error_handlers(app)
    # Headers on every response, ProxyFix behind TRUSTED_PROXIES, masked request logs.
    security.install(app)
    check_rate_limits(app)

    @app.get("/health")
    def health() -> Response | tuple[Response, int]:
        """Liveness for load balancers: the process answers and the database is reachable."""
        try:
            db.session.execute(text("SELECT 1"))
        except Exception:
            logging.getLogger(__name__).exception("health check: database unreachable")
            return jsonify(status="unavailable"), 503
        return jsonify(status="ok")

    from cli import register_commands

    register_commands(app)
    # The application's long-lived objects (models, templates, routes) never become garbage;
    # freezing them keeps full collections, which would walk them all, out of request time.
    gc.collect()
    gc.freeze()
    return app


def use_installation_secret(app: Flask) -> None:
    """Without SECRET_KEY, sign and verify with the installation secret stored by migration
    0023, so every process of the installation (web workers, the jobs process, commands) shares
    one key that survives restarts.

    Read once at start-up. A database that cannot be reached then is read again before each
    request (which answers 503 until it can) and each job: a made-up key would sign links and
    encrypt passwords that no other process could read. Before the migrations have run
    (`flask db upgrade` on a fresh database) there is no secret yet: this process gets a random
    key of its own, with a warning."""
    try:
        app.config["SECRET_KEY"] = _installation_secret_key(app)
        return
    except SQLAlchemyError as exc:
        logging.getLogger(__name__).warning(
            "SECRET_KEY is not set and the database cannot be reached (%s): the installation "
            "secret will be read once it answers",
            type(exc).__name__,
        )

    def load_when_missing() -> None:
        if not app.config.get("SECRET_KEY"):
            app.config["SECRET_KEY"] = _installation_secret_key(app, dispose=False)

    app.extensions["ledgerline.load_secret_key"] = load_when_missing
    wsgi_app = app.wsgi_app

    def load_then_serve(environ: Any, start_response: Any) -> Any:
        # before the request context, whose session needs the key
        try:
            load_when_missing()
        except SQLAlchemyError as exc:
            from blueprints.api.errors import database_unavailable

            with app.app_context():
                return database_unavailable(exc)(environ, start_response)
        return wsgi_app(environ, start_response)

    app.wsgi_app = load_then_serve  # type: ignore[method-assign]


def ensure_secret_key(app: Flask) -> None:
    """Read the installation secret now if start-up could not (raises while the database is
    unreachable); nothing to do when SECRET_KEY is known."""
    load = app.extensions.get("ledgerline.load_secret_key")
    if load is not None:
        load()


def _installation_secret_key(app: Flask, *, dispose: bool = True) -> str:
    from billing.models import InstallationSecret

    with app.app_context():
        try:
            with db.engine.connect() as connection:
                stored = None
                if inspect(connection).has_table(InstallationSecret.__tablename__):
                    stored = connection.scalar(select(InstallationSecret.secret_key))
        finally:
            if dispose:  # at start-up: no pooled connection left for forked workers to share
                db.engine.dispose()
    if stored:
        return str(stored)
    logging.getLogger(__name__).warning(
        "SECRET_KEY is not set and the database has no installation secret yet (run "
        "`flask db upgrade`): this process signs with a random key of its own"
    )
    return secrets.token_hex(32)


def check_rate_limits(app: Flask) -> None:
    """Refuse to start with a rate limit setting that is not `<count>/<period>`."""
    from billing.services.rate_limits import Limit

    for name in ("RATE_LIMIT_LOGIN", "RATE_LIMIT_HOOKS"):
        try:
            Limit.parse(str(app.config[name]))
        except ValueError as exc:
            raise RuntimeError(f"{name}: {exc}") from exc


def prepare_sqlite_file(uri: str) -> None:
    """Create the SQLite file in WAL mode once, at creation (WAL is stored in the file)."""
    url = make_url(uri)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return
    path = Path(url.database)
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path)
    try:
        connection.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        connection.execute("PRAGMA journal_mode = WAL")
    finally:
        connection.close()


def register_request_hooks(app: Flask) -> None:
    @app.before_request
    def declare_write_intent() -> None:
        # Read-only requests take no write lock on SQLite, so they run side by side.
        request.environ["ledgerline.write_intent_token"] = set_write_intent(
            request.method not in READ_ONLY_METHODS
        )

    @app.teardown_request
    def reset_intent(_exc: BaseException | None) -> None:
        token = request.environ.pop("ledgerline.write_intent_token", None)
        if token is not None:
            reset_write_intent(token)


def is_api_request() -> bool:
    return request.path.startswith(("/api/", "/hooks/")) or request.path == "/api"


def register_error_handlers(app: Flask) -> None:
    from blueprints.api.errors import (
        http_error,
        is_database_unavailable,
        rollback_quietly,
        unexpected_error,
    )

    @app.errorhandler(CSRFError)
    def on_csrf_error(exc: CSRFError) -> Any:
        return error_page(
            400,
            "This form has expired",
            "The page was open too long or did not come from Ledgerline. Reload it and try again.",
        )

    @app.errorhandler(HTTPException)
    def on_http_error(exc: HTTPException) -> Any:
        if is_api_request():
            return http_error(exc)
        return error_page(exc.code or 500, exc.name, exc.description or "")

    @app.errorhandler(Exception)
    def on_unexpected_error(exc: Exception) -> Any:
        if is_api_request():
            return unexpected_error(exc)
        rollback_quietly()
        if is_database_unavailable(exc):
            logging.getLogger(__name__).warning("database unavailable: %s", exc)
            return error_page(
                503,
                "Temporarily unavailable",
                "The database cannot be reached. Try again in a moment.",
            )
        logging.getLogger(__name__).exception("unhandled error")
        return error_page(
            500, "Something went wrong", "The error was logged. Please try again in a moment."
        )


def error_page(code: int, title: str, message: str) -> tuple[str, int]:
    """A plain page for errors outside the API: no stack trace, a way back."""
    return render_template("errors/error.html", code=code, title=title, message=message), code
