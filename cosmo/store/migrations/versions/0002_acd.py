"""ACD: agent states and durable work items.

Revision ID: 0002_acd
Revises: 0001_initial
Create Date: 2026-11-23 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002_acd"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "agent_states",
        sa.Column("extension", sa.String(32), nullable=False),
        sa.Column("snapshot", Json, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("extension", name=op.f("pk_agent_states")),
    )
    op.create_table(
        "work_items",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("skills", Json, nullable=False),
        sa.Column("enqueued_at", sa.Float(), nullable=False),
        sa.Column("data", Json, nullable=False),
        sa.Column("agent", sa.String(32), nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_items")),
    )
    op.create_index(op.f("ix_work_items_enqueued_at"), "work_items", ["enqueued_at"])


def downgrade() -> None:
    op.drop_table("work_items")
    op.drop_table("agent_states")
