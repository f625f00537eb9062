"""Configuration read from the environment; tests override it with a mapping."""

from __future__ import annotations

import os
from pathlib import Path

INSTANCE_DIR = Path(__file__).resolve().parent / "instance"
#: the gettext catalogs (`<locale>/LC_MESSAGES/messages.po`, compiled to .mo at install)
TRANSLATIONS_DIR = Path(__file__).resolve().parent / "translations"


def normalize_database_url(url: str) -> str:
    """Accept the usual `postgres://` and `postgresql://` spellings and use psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class Config:
    """One place that reads environment variables."""

    def __init__(self, environ: os._Environ[str] | dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.SQLALCHEMY_DATABASE_URI = normalize_database_url(
            env.get("DATABASE_URL") or f"sqlite:///{INSTANCE_DIR / 'ledgerline.db'}"
        )
        # None: create_app uses the installation secret stored in the database (one key for
        # every process of the installation, surviving restarts).
        self.SECRET_KEY: str | None = env.get("SECRET_KEY") or None
        self.PUBLIC_URL = (env.get("PUBLIC_URL") or "").rstrip("/")
        self.PORT = int(env.get("PORT") or 5000)
        self.SQLALCHEMY_ENGINE_OPTIONS = engine_options(self.SQLALCHEMY_DATABASE_URI)
        self.JSON_SORT_KEYS = False
        self.MAX_CONTENT_LENGTH = 10 * 1024 * 1024
        self.API_PER_PAGE_MAX = 1000
        #: seconds between two writes of an API key's last-used time
        self.API_KEY_TOUCH_INTERVAL = 60
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        # Secure cookies whenever Ledgerline is served over https.
        self.SESSION_COOKIE_SECURE = self.PUBLIC_URL.startswith("https://")
        self.PERMANENT_SESSION_LIFETIME = 12 * 3600
        #: CSRF tokens live as long as the session (forms left open for hours still work)
        self.WTF_CSRF_TIME_LIMIT = None
        #: outgoing webhooks: request timeout, and how long a failing delivery is retried
        self.WEBHOOK_TIMEOUT_SECONDS = float(env.get("WEBHOOK_TIMEOUT_SECONDS") or 10)
        self.WEBHOOK_RETRY_HOURS = float(env.get("WEBHOOK_RETRY_HOURS") or 24)
        self.MAIL_TIMEOUT_SECONDS = float(env.get("MAIL_TIMEOUT_SECONDS") or 10)
        self.MAIL_RETRY_HOURS = float(env.get("MAIL_RETRY_HOURS") or 24)
        #: Flask-Babel (the portal): English unless the portal picks the visit's language
        self.BABEL_DEFAULT_LOCALE = "en"
        self.BABEL_DOMAIN = "messages"
        self.BABEL_TRANSLATION_DIRECTORIES = str(TRANSLATIONS_DIR)
        #: seconds a customer portal link stays valid
        self.PORTAL_TOKEN_MAX_AGE = int(env.get("PORTAL_TOKEN_MAX_AGE") or 12 * 3600)
        #: how many reverse proxies in front of Ledgerline set X-Forwarded-For/-Proto/-Host/-Port
        #: (0: trust no such header; the request's own scheme and address are used)
        self.TRUSTED_PROXIES = int(env.get("TRUSTED_PROXIES") or 0)
        #: rate limits kept in the database: "<count>/<period>" (second, minute, hour, day)
        self.RATE_LIMITS_ENABLED = env_flag(env.get("RATE_LIMITS_ENABLED"), default=True)
        #: login attempts per e-mail and, separately, per client address
        self.RATE_LIMIT_LOGIN = env.get("RATE_LIMIT_LOGIN") or "10/minute"
        #: requests under /hooks/ per (organization, client address)
        self.RATE_LIMIT_HOOKS = env.get("RATE_LIMIT_HOOKS") or "120/minute"

    def as_mapping(self) -> dict[str, object]:
        return {k: v for k, v in vars(self).items() if k.isupper()}


def env_flag(value: str | None, *, default: bool) -> bool:
    """`1/true/yes/on` → True, `0/false/no/off` → False, unset or empty → `default`."""
    if value is None or not value.strip():
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def engine_options(url: str) -> dict[str, object]:
    # Statement parameters (secrets, e-mails) never reach a log line or an error message.
    options: dict[str, object] = {"hide_parameters": True}
    if url.startswith("postgresql"):
        # psycopg switches to server-side prepared statements after a few executions; the
        # generic plan PostgreSQL then picks for search queries ignores the trigram indexes and
        # can be a thousand times slower. Plain per-execution planning is the safe default.
        return {**options, "pool_pre_ping": True, "connect_args": {"prepare_threshold": None}}
    return {**options, "connect_args": {"timeout": 15}}
