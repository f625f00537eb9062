"""Serving stored PDFs: the signed download link, and the one response every PDF route sends."""

from __future__ import annotations

from flask import Response, jsonify
from flask.typing import ResponseReturnValue

from billing.services import documents
from blueprints.documents import bp

#: the console may frame its own PDF routes (the invoice page's preview); nothing else may
FRAMEABLE_BY_SELF_CSP = "frame-ancestors 'self'"
NEVER_FRAMED_CSP = "frame-ancestors 'none'"

LINK_MESSAGES = {
    True: "This download link has expired. Download the document again from the API "
    "(POST /api/v1/invoices/{lago_id}/download) or the console to get a fresh link.",
    False: "This download link is not valid: it was altered or cut short. Use the complete "
    "link, or get a fresh one from the API or the console.",
}


def pdf_response(
    content: bytes, filename: str, *, attachment: bool = False, frameable: bool = False
) -> Response:
    """A PDF, shown in the browser (or saved when `attachment`) under `filename`.

    The console's CSP is replaced by a policy of framing only: a PDF viewer is a plugin, which
    the console's `object-src 'none'` would block inside the preview frame."""
    response = Response(content, mimetype="application/pdf")
    response.headers.set(
        "Content-Disposition", "attachment" if attachment else "inline", filename=filename
    )
    response.headers["Content-Security-Policy"] = (
        FRAMEABLE_BY_SELF_CSP if frameable else NEVER_FRAMED_CSP
    )
    response.headers["X-Frame-Options"] = "SAMEORIGIN" if frameable else "DENY"
    response.headers["Cache-Control"] = "private, no-cache"
    return response


def _refused(status: int, code: str, message: str) -> Response:
    response = jsonify(
        {"status": status, "error": "Forbidden" if status == 403 else "Not Found",
         "code": code, "message": message}
    )  # fmt: skip
    response.status_code = status
    return response


@bp.get("/<token>")
def download(token: str) -> ResponseReturnValue:
    """The stored PDF a signed link names; 403 with the reason for an altered or expired
    link, 404 when the document does not exist (any more)."""
    try:
        kind, owner_lago_id = documents.read_download_token(token)
    except documents.LinkRefused as refused:
        code = "download_link_expired" if refused.expired else "download_link_invalid"
        return _refused(403, code, LINK_MESSAGES[refused.expired])
    linked = documents.linked_pdf(kind, owner_lago_id)
    if linked is None:
        return _refused(404, "document_not_found", "This document does not exist.")
    content, filename, etag = linked
    response = pdf_response(content, filename)
    response.headers["Referrer-Policy"] = "no-referrer"  # the link's token is in its path
    if etag is not None:
        response.set_etag(etag)
    return response
