"""alerting: alerts, transitions, groups, notifications, deliveries, silences

Revision ID: 20261204_0004
Revises: 20261204_0001
Create Date: 2026-12-04 20:47:44.976147
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '20261204_0004'
down_revision = '20261204_0001'
branch_labels = ('alerting',)
depends_on = None


def upgrade() -> None:
    op.create_table('alert_groups',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('group_key', sa.String(length=1000), nullable=False),
    sa.Column('route', sa.String(length=200), nullable=False),
    sa.Column('receiver', sa.String(length=200), nullable=False),
    sa.Column('group_labels', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('next_flush_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_flush_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_notified_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('notified_firing', sa.JSON(), nullable=False),
    sa.Column('firing_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('escalated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('notified_acked', sa.Boolean(), nullable=False),
    sa.Column('active_count', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alert_groups')),
    sa.UniqueConstraint('group_key', name=op.f('uq_alert_groups_group_key'))
    )
    with op.batch_alter_table('alert_groups', schema=None) as batch_op:
        batch_op.create_index('ix_alert_groups_next_flush', ['next_flush_at'], unique=False)

    op.create_table('alert_silences',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('matchers', sa.JSON(), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('mute_resolved', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alert_silences'))
    )
    with op.batch_alter_table('alert_silences', schema=None) as batch_op:
        batch_op.create_index('ix_alert_silences_ends_at', ['ends_at'], unique=False)

    op.create_table('alerts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('fingerprint', sa.String(length=32), nullable=False),
    sa.Column('rule', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('condition', sa.Boolean(), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('device', sa.String(length=200), nullable=True),
    sa.Column('site', sa.String(length=200), nullable=True),
    sa.Column('labels', sa.JSON(), nullable=False),
    sa.Column('annotations', sa.JSON(), nullable=False),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('active_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_evaluated', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_change_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_by', sa.String(length=200), nullable=True),
    sa.Column('acknowledged_by', sa.String(length=200), nullable=True),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ack_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ack_comment', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alerts')),
    sa.UniqueConstraint('fingerprint', name=op.f('uq_alerts_fingerprint'))
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index('ix_alerts_device', ['device'], unique=False)
        batch_op.create_index('ix_alerts_rule', ['rule'], unique=False)
        batch_op.create_index('ix_alerts_state', ['state', 'ends_at'], unique=False)

    op.create_table('alert_notifications',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('idempotency_key', sa.String(length=1100), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=True),
    sa.Column('group_key', sa.String(length=1000), nullable=False),
    sa.Column('receiver', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('content', sa.JSON(), nullable=False),
    sa.Column('alert_count', sa.Integer(), nullable=False),
    sa.Column('delivery_state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['group_id'], ['alert_groups.id'], name=op.f('fk_alert_notifications_group_id_alert_groups'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alert_notifications')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_alert_notifications_idempotency_key'))
    )
    with op.batch_alter_table('alert_notifications', schema=None) as batch_op:
        batch_op.create_index('ix_alert_notifications_state', ['delivery_state', 'created_at'], unique=False)

    op.create_table('alert_transitions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('alert_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('to_state', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['alert_id'], ['alerts.id'], name=op.f('fk_alert_transitions_alert_id_alerts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alert_transitions'))
    )
    with op.batch_alter_table('alert_transitions', schema=None) as batch_op:
        batch_op.create_index('ix_alert_transitions_alert_at', ['alert_id', 'at'], unique=False)

    op.create_table('alert_delivery_attempts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('notification_id', sa.Integer(), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('destination', sa.String(length=300), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('latency_ms', sa.Float(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['notification_id'], ['alert_notifications.id'], name=op.f('fk_alert_delivery_attempts_notification_id_alert_notifications'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alert_delivery_attempts'))
    )
    with op.batch_alter_table('alert_delivery_attempts', schema=None) as batch_op:
        batch_op.create_index('ix_alert_delivery_attempts_notification', ['notification_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('alert_delivery_attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_alert_delivery_attempts_notification')

    op.drop_table('alert_delivery_attempts')
    with op.batch_alter_table('alert_transitions', schema=None) as batch_op:
        batch_op.drop_index('ix_alert_transitions_alert_at')

    op.drop_table('alert_transitions')
    with op.batch_alter_table('alert_notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_alert_notifications_state')

    op.drop_table('alert_notifications')
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_alerts_state')
        batch_op.drop_index('ix_alerts_rule')
        batch_op.drop_index('ix_alerts_device')

    op.drop_table('alerts')
    with op.batch_alter_table('alert_silences', schema=None) as batch_op:
        batch_op.drop_index('ix_alert_silences_ends_at')

    op.drop_table('alert_silences')
    with op.batch_alter_table('alert_groups', schema=None) as batch_op:
        batch_op.drop_index('ix_alert_groups_next_flush')

    op.drop_table('alert_groups')
