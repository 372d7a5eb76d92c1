"""analysis results: health, forecasts, anomaly episodes, detector state, runs

Revision ID: 20261204_0003
Revises: 20261204_0001
Create Date: 2026-12-04 20:50:44.142627
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "20261204_0003"
down_revision = "20261204_0001"
branch_labels = ("analysis",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "analysis_runs",
        sa.Column("cycle_id", sa.String(length=100), nullable=False),
        sa.Column("shard", sa.String(length=200), nullable=False),
        sa.Column("worker", sa.String(length=200), nullable=False),
        sa.Column("series", sa.Integer(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("cycle_id", "shard", name=op.f("pk_analysis_runs")),
    )
    op.create_table(
        "detector_state",
        sa.Column("shard", sa.String(length=200), nullable=False),
        sa.Column("cycle_id", sa.String(length=100), nullable=False),
        sa.Column("processed_until_ms", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("shard", name=op.f("pk_detector_state")),
    )
    op.create_table(
        "anomaly_episodes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("device_id", sa.String(length=200), nullable=False),
        sa.Column("metric", sa.String(length=200), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("series_key", sa.String(length=1000), nullable=False),
        sa.Column("kind", sa.String(length=50), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("peak_score", sa.Float(), nullable=False),
        sa.Column("last_score", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_anomaly_episodes_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_anomaly_episodes")),
    )
    with op.batch_alter_table("anomaly_episodes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_anomaly_episodes_device", ["device_id", "started_at"], unique=False
        )
        batch_op.create_index(
            "ix_anomaly_episodes_open", ["series_key", "kind", "ended_at"], unique=False
        )

    op.create_table(
        "device_health",
        sa.Column("device_id", sa.String(length=200), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("risk_1h", sa.Float(), nullable=False),
        sa.Column("risk_24h", sa.Float(), nullable=False),
        sa.Column("health", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("top_signals", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_device_health_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("device_id", name=op.f("pk_device_health")),
    )
    op.create_table(
        "forecasts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("device_id", sa.String(length=200), nullable=False),
        sa.Column("metric", sa.String(length=200), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("series_key", sa.String(length=1000), nullable=False),
        sa.Column("limit_name", sa.String(length=100), nullable=False),
        sa.Column("limit_value", sa.Float(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("will_cross", sa.Boolean(), nullable=False),
        sa.Column("time_to_threshold_s", sa.Float(), nullable=True),
        sa.Column("lower_s", sa.Float(), nullable=True),
        sa.Column("upper_s", sa.Float(), nullable=True),
        sa.Column("crossing_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("current_value", sa.Float(), nullable=True),
        sa.Column("method", sa.String(length=50), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_forecasts_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_forecasts")),
    )
    with op.batch_alter_table("forecasts", schema=None) as batch_op:
        batch_op.create_index(
            "uq_forecasts_series_limit", ["device_id", "series_key", "limit_name"], unique=True
        )


def downgrade() -> None:
    with op.batch_alter_table("forecasts", schema=None) as batch_op:
        batch_op.drop_index("uq_forecasts_series_limit")

    op.drop_table("forecasts")
    op.drop_table("device_health")
    with op.batch_alter_table("anomaly_episodes", schema=None) as batch_op:
        batch_op.drop_index("ix_anomaly_episodes_open")
        batch_op.drop_index("ix_anomaly_episodes_device")

    op.drop_table("anomaly_episodes")
    op.drop_table("detector_state")
    op.drop_table("analysis_runs")
