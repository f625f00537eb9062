"""Agent login and logout (Flask-Login sessions)."""

from flask import Blueprint

bp = Blueprint("auth", __name__)

from blueprints.auth import views  # noqa: E402,F401
