"""The ceiling of any Flask view under gunicorn, for bench/ingest.py: a bare Flask app (no
database, no authentication) whose two routes parse the same JSON bodies as event ingestion
and echo them back. What ingestion adds on top of it is Ledgerline's own cost.

    gunicorn --workers 2 'echo_app:app'   (from bench/)
"""

from __future__ import annotations

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/api/v1/events")
def create_event() -> object:
    return jsonify(event=request.get_json()["event"])


@app.post("/api/v1/events/batch")
def create_events() -> object:
    return jsonify(events=request.get_json()["events"])
