"""Web-layer security that applies to every response and every request log line.

- Security headers on every response Flask sends (pages, errors, static files, API JSON, PDFs,
  the portal): a strict CSP unless a blueprint set its own, `nosniff`, a Referrer-Policy, and
  HSTS when the request came over https.
- `TRUSTED_PROXIES` > 0 wraps the app in werkzeug's ProxyFix, so the scheme (for HSTS and
  secure cookies) and the client address (for rate limits) come from that many proxies'
  `X-Forwarded-*` headers; with 0 (the default) those headers are ignored, since any client
  could send them.
- Request logs (the dev server's `werkzeug` logger, gunicorn's `gunicorn.access`) never show a
  portal token, a signed download link or an `api_key`-like query value.
"""

from __future__ import annotations

import logging
import re

from flask import Flask, Response, request
from werkzeug.middleware.proxy_fix import ProxyFix

#: no inline script or style, nothing from elsewhere, never framed
CONSOLE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HSTS = "max-age=31536000; includeSubDomains"
#: path prefixes whose next segment is a bearer secret (a signed token)
TOKEN_PATHS = ("portal", "documents")
MASK = "[masked]"
#: query parameters whose value is a credential
CREDENTIAL_PARAMS = (
    r"api[_-]?key|apikey|key|token|access[_-]?token|secret|password|passwd|signature|sig|"
    r"auth|authorization|nonce"
)
_TOKEN_IN_PATH = re.compile(rf"(/(?:{'|'.join(TOKEN_PATHS)})/)[^/?#\s\"']+")
_SECRET_QUERY = re.compile(rf"([?&;](?:[\w.-]*[_-])?(?:{CREDENTIAL_PARAMS})=)[^&;#\s\"']*", re.I)
_BEARER = re.compile(r"(\bBearer\s+)[^\s\"',]+", re.I)
#: loggers that write URLs: request lines (dev server, gunicorn), outgoing requests (webhooks)
REQUEST_LOGGERS = ("werkzeug", "gunicorn.access", "gunicorn.error", "httpx")


def mask_secrets(text: str) -> str:
    """`text` with portal/download tokens, credential query values and Bearer keys masked."""
    text = _TOKEN_IN_PATH.sub(rf"\g<1>{MASK}", text)
    text = _SECRET_QUERY.sub(rf"\g<1>{MASK}", text)
    return _BEARER.sub(rf"\g<1>{MASK}", text)


class SecretMaskingFilter(logging.Filter):
    """Rewrites each record's message with its secrets masked (the record is kept)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed record: leave it to logging's own report
            return True
        masked = mask_secrets(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def install_log_masking() -> None:
    """Mask the request loggers (idempotent: every app created in a process shares them)."""
    for name in REQUEST_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, SecretMaskingFilter) for f in logger.filters):
            logger.addFilter(SecretMaskingFilter())


def install_proxy_fix(app: Flask) -> None:
    """Trust `X-Forwarded-*` from `TRUSTED_PROXIES` proxies, and only when it is set."""
    proxies = int(app.config.get("TRUSTED_PROXIES") or 0)
    if proxies > 0:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies, x_port=proxies
        )


def security_headers(response: Response) -> Response:
    """The headers every response carries; a policy a blueprint set first is kept."""
    response.headers.setdefault("Content-Security-Policy", CONSOLE_CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]:
        response.headers.setdefault("X-Frame-Options", "DENY")
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    return response


def install(app: Flask) -> None:
    install_proxy_fix(app)
    install_log_masking()
    app.after_request(security_headers)
