"""Job: terminate the wallets whose expiration time has passed."""

from __future__ import annotations

from billing.services import wallets
from extensions import db


def run_wallet_expiration() -> int:
    """Terminate expired wallets; returns how many."""
    try:
        expired = wallets.terminate_expired_wallets()
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return len(expired)
