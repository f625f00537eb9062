"""Ledgerline's domain: models, services, money, time. Never imports flask.request or session."""
