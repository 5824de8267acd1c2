"""E-mail: cases, messages (in and out), IMAP mailbox positions.

Revision ID: 0004_email
Revises: 0003_customers
Create Date: 2026-11-23 08:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004_email"
down_revision: str | None = "0003_customers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
Timestamp = sa.DateTime(timezone=True)
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "email_cases",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("customer_id", Id, nullable=True),
        sa.Column("address", sa.String(320), nullable=True),
        sa.Column("mailbox", sa.String(320), nullable=False),
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("skills", Json, nullable=False),
        sa.Column("rules", Json, nullable=False),
        sa.Column("language", sa.String(16), nullable=True),
        sa.Column("item_id", sa.String(64), nullable=True),
        sa.Column("item_seq", sa.Integer(), nullable=False),
        sa.Column("agent", sa.String(32), nullable=True),
        sa.Column("waiting_since", Timestamp, nullable=True),
        sa.Column("first_response_at", Timestamp, nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.Column("closed_at", Timestamp, nullable=True),
        sa.CheckConstraint("status IN ('open', 'answered', 'closed')", name=op.f("ck_email_cases_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_cases")),
    )
    op.create_index(op.f("ix_email_cases_customer_id"), "email_cases", ["customer_id"])
    op.create_index(op.f("ix_email_cases_address"), "email_cases", ["address"])
    op.create_index(op.f("ix_email_cases_status_updated_at"), "email_cases", ["status", "updated_at"])
    op.create_table(
        "email_messages",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("case_id", Id, nullable=True),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("source", sa.String(80), nullable=False),
        sa.Column("message_id", sa.String(512), nullable=True),
        sa.Column("in_reply_to", sa.String(512), nullable=True),
        sa.Column("reference_ids", sa.Text(), nullable=False),
        sa.Column("mail_from", sa.String(320), nullable=True),
        sa.Column("rcpt_to", Json, nullable=False),
        sa.Column("from_addr", sa.String(320), nullable=True),
        sa.Column("from_name", sa.String(200), nullable=False),
        sa.Column("to_addrs", Json, nullable=False),
        sa.Column("cc_addrs", Json, nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("date", Timestamp, nullable=True),
        sa.Column("received_at", Timestamp, nullable=False),
        sa.Column("peer", sa.String(320), nullable=True),
        sa.Column("eml_path", sa.String(512), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("text_source", sa.String(8), nullable=False),
        sa.Column("attachments", Json, nullable=False),
        sa.Column("problems", Json, nullable=False),
        sa.Column("headers", Json, nullable=False),
        sa.Column("language", sa.String(16), nullable=True),
        sa.Column("agent", sa.String(32), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", Timestamp, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", Timestamp, nullable=True),
        sa.Column("imap_mailbox", sa.String(64), nullable=True),
        sa.Column("imap_uidvalidity", sa.BigInteger(), nullable=True),
        sa.Column("imap_uid", sa.BigInteger(), nullable=True),
        sa.Column("data", Json, nullable=False),
        sa.CheckConstraint("direction IN ('in', 'out')", name=op.f("ck_email_messages_direction")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_messages")),
        sa.UniqueConstraint("imap_mailbox", "imap_uidvalidity", "imap_uid",
                            name=op.f("uq_email_messages_imap_mailbox_imap_uidvalidity_imap_uid")),
    )
    op.create_index(op.f("ix_email_messages_case_id"), "email_messages", ["case_id"])
    op.create_index(op.f("ix_email_messages_message_id"), "email_messages", ["message_id"])
    op.create_index(op.f("ix_email_messages_peer"), "email_messages", ["peer"])
    op.create_index(op.f("ix_email_messages_direction_status"), "email_messages", ["direction", "status"])
    op.create_table(
        "email_mailboxes",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("last_uid", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_email_mailboxes")),
    )


def downgrade() -> None:
    op.drop_table("email_mailboxes")
    op.drop_table("email_messages")
    op.drop_table("email_cases")
