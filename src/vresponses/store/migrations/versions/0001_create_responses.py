"""Create the responses table with its chain, lease and retention indexes.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create `responses`; revisions are frozen, so this spells out columns instead of importing schema.py."""
    op.create_table(
        "responses",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("tenant", sa.Text, nullable=False),
        sa.Column("previous_response_id", sa.Text, nullable=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.Column("lease_until", sa.Double, nullable=True),
        sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("input_items", sa.LargeBinary, nullable=False),
        sa.Column("output_items", sa.LargeBinary, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_responses_tenant_id", "responses", ["tenant", "id"])
    op.create_index("ix_responses_previous_response_id", "responses", ["previous_response_id"])
    op.create_index("ix_responses_status_lease_until", "responses", ["status", "lease_until"])
    op.create_index("ix_responses_created_at", "responses", ["created_at"])


def downgrade() -> None:
    """Drop `responses` and its indexes."""
    op.drop_table("responses")
