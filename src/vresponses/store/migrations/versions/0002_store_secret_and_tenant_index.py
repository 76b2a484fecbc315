"""Add the store's own secret (keying tenant ids and cache salts) and a per-tenant retention index.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create `store_secrets` holding one random key, made here once for every process on this database."""
    table = op.create_table(
        "store_secrets",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("value", sa.LargeBinary, nullable=False),
    )
    op.bulk_insert(table, [{"name": "tenant_key", "value": secrets.token_bytes(32)}])
    op.create_index("ix_responses_tenant_created_at", "responses", ["tenant", "created_at"])


def downgrade() -> None:
    """Drop the secret (tenant ids made with it stop matching their keys) and the index."""
    op.drop_index("ix_responses_tenant_created_at", "responses")
    op.drop_table("store_secrets")
