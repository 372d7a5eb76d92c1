"""fleet inventory: sites and devices

Revision ID: 20261204_0001
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "20261204_0001"
down_revision = None
branch_labels = ("fleet",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sites",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("region", sa.String(100)),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("cluster", sa.String(200)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sites"),
    )
    op.create_table(
        "devices",
        sa.Column("id", sa.String(200), nullable=False),
        sa.Column("site_id", sa.String(200), nullable=False),
        sa.Column("hardware_model", sa.String(100), nullable=False),
        sa.Column("accelerator", sa.String(100)),
        sa.Column("firmware", sa.String(100)),
        sa.Column("runtime", sa.String(100)),
        sa.Column("node_name", sa.String(253)),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name="pk_devices"),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name="fk_devices_site_id_sites", ondelete="RESTRICT"
        ),
    )
    op.create_index("ix_devices_site_id", "devices", ["site_id"])
    op.create_index("ix_devices_cohort", "devices", ["hardware_model", "firmware", "site_id"])
    op.create_index("ix_devices_node_name", "devices", ["node_name"])


def downgrade() -> None:
    op.drop_index("ix_devices_node_name", table_name="devices")
    op.drop_index("ix_devices_cohort", table_name="devices")
    op.drop_index("ix_devices_site_id", table_name="devices")
    op.drop_table("devices")
    op.drop_table("sites")
