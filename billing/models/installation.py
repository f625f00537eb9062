"""The installation's own secret, generated once by a migration and shared by every process."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, String, func
from sqlalchemy.orm import Mapped, mapped_column

from billing.models.types import UTCDateTime
from extensions import Base

#: the one row's id
INSTALLATION_SECRET_ID = 1


class InstallationSecret(Base):
    """The signing key used when no SECRET_KEY is configured (sessions, links, stored secrets).

    Migration 0023 writes the one row with a random key, so every web worker and the jobs
    process of an installation read the same key, and it survives restarts."""

    __tablename__ = "installation_secret"
    __table_args__ = (CheckConstraint("id = 1", name="ck_installation_secret_one_row"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    secret_key: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=func.now())
