"""The `responses` and `store_secrets` tables as SQLAlchemy Core metadata, matching the head migration revision."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Double, Index, LargeBinary, MetaData, Table, Text, false

metadata = MetaData()

# previous_response_id is deliberately not a foreign key: deleting a parent must succeed and leave
# its children in place; chain() then reports the broken link as None instead of cascading.
responses = Table(
    "responses",
    metadata,
    Column("id", Text, primary_key=True),
    Column("tenant", Text, nullable=False),
    Column("previous_response_id", Text, nullable=True),
    Column("status", Text, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    Column("lease_until", Double, nullable=True),
    Column("cancel_requested", Boolean, nullable=False, server_default=false()),
    Column("input_items", LargeBinary, nullable=False),
    Column("output_items", LargeBinary, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Index("ix_responses_tenant_id", "tenant", "id"),
    Index("ix_responses_previous_response_id", "previous_response_id"),
    Index("ix_responses_status_lease_until", "status", "lease_until"),
    Index("ix_responses_created_at", "created_at"),
    Index("ix_responses_tenant_created_at", "tenant", "created_at"),
)

# Random keys the store holds for every process that opens it; "tenant_key" keys tenant ids and cache salts.
store_secrets = Table(
    "store_secrets",
    metadata,
    Column("name", Text, primary_key=True),
    Column("value", LargeBinary, nullable=False),
)
