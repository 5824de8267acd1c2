"""Initial schema: agents, registrations, cdrs, event_log.

Revision ID: 0001_initial
Revises:
Create Date: 2025-01-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001_initial"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("extension", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("realm", sa.String(255), nullable=False),
        sa.Column("ha1_md5", sa.String(32), nullable=False),
        sa.Column("ha1_sha256", sa.String(64), nullable=False),
        sa.Column("skills", Json, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("extension", name=op.f("pk_agents")),
    )

    op.create_table(
        "registrations",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("aor", sa.String(255), nullable=False),
        sa.Column("contact", sa.Text(), nullable=False),
        sa.Column("expires_at", Timestamp, nullable=False),
        sa.Column("call_id", sa.String(255), nullable=False),
        sa.Column("cseq", sa.BigInteger(), nullable=False),
        sa.Column("source_transport", sa.String(8), nullable=False),
        sa.Column("source_host", sa.String(255), nullable=False),
        sa.Column("source_port", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.String(255), nullable=True),
        sa.Column("reg_id", sa.Integer(), nullable=True),
        sa.Column("user_agent", sa.String(255), nullable=True),
        sa.Column("path", Json, nullable=False),
        sa.Column("q", sa.Float(), nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registrations")),
        sa.UniqueConstraint("aor", "contact", name=op.f("uq_registrations_aor_contact")),
    )
    op.create_index(op.f("ix_registrations_aor"), "registrations", ["aor"])
    op.create_index(op.f("ix_registrations_expires_at"), "registrations", ["expires_at"])

    op.create_table(
        "cdrs",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("call_id", sa.String(255), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("trunk", sa.String(64), nullable=True),
        sa.Column("from_uri", sa.Text(), nullable=False),
        sa.Column("to_uri", sa.Text(), nullable=False),
        sa.Column("caller", sa.String(255), nullable=False),
        sa.Column("callee", sa.String(255), nullable=False),
        sa.Column("started_at", Timestamp, nullable=False),
        sa.Column("answered_at", Timestamp, nullable=True),
        sa.Column("ended_at", Timestamp, nullable=False),
        sa.Column("end_reason", sa.String(64), nullable=False),
        sa.Column("hangup_by", sa.String(16), nullable=True),
        sa.Column("sip_status", sa.Integer(), nullable=True),
        sa.Column("extra", Json, nullable=False),
        sa.CheckConstraint("direction IN ('inbound', 'outbound')", name=op.f("ck_cdrs_direction")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cdrs")),
    )
    op.create_index(op.f("ix_cdrs_call_id"), "cdrs", ["call_id"])
    op.create_index(op.f("ix_cdrs_started_at"), "cdrs", ["started_at"])

    op.create_table(
        "event_log",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("ts", Timestamp, nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("payload", Json, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_log")),
    )
    op.create_index(op.f("ix_event_log_ts"), "event_log", ["ts"])
    op.create_index(op.f("ix_event_log_type"), "event_log", ["type"])


def downgrade() -> None:
    op.drop_table("event_log")
    op.drop_table("cdrs")
    op.drop_table("registrations")
    op.drop_table("agents")
