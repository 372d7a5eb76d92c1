"""actions: decisions, audit log, pauses, device and site gate state, stored policies

Revision ID: 20261204_0005
Revises: 20261204_0001
Create Date: 2026-12-04 20:44:42.163287
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '20261204_0005'
down_revision = '20261204_0001'
branch_labels = ('actions',)
depends_on = None


def upgrade() -> None:
    op.create_table('action_pauses',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('site_id', sa.String(length=200), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_action_pauses'))
    )
    op.create_table('action_policies',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('spec', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_action_policies'))
    )
    op.create_table('action_site_state',
    sa.Column('site_id', sa.String(length=200), nullable=False),
    sa.Column('storm_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('storm_cleared_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_drain_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('site_id', name=op.f('pk_action_site_state'))
    )
    op.create_table('action_device_state',
    sa.Column('device_id', sa.String(length=200), nullable=False),
    sa.Column('site_id', sa.String(length=200), nullable=False),
    sa.Column('cordoned', sa.Boolean(), nullable=False),
    sa.Column('cordoned_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('draining', sa.Boolean(), nullable=False),
    sa.Column('drain_started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('drained_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('held', sa.Boolean(), nullable=False),
    sa.Column('held_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('hold_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('healthy_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('release_requested_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('release_picked_up_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_action_device_state_device_id_devices'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('device_id', name=op.f('pk_action_device_state'))
    )
    with op.batch_alter_table('action_device_state', schema=None) as batch_op:
        batch_op.create_index('ix_action_device_state_site', ['site_id'], unique=False)

    op.create_table('actions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('idempotency_key', sa.String(length=64), nullable=False),
    sa.Column('policy', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('device_id', sa.String(length=200), nullable=False),
    sa.Column('site_id', sa.String(length=200), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('mode', sa.String(length=16), nullable=False),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('gate_reasons', sa.JSON(), nullable=False),
    sa.Column('trigger', sa.JSON(), nullable=False),
    sa.Column('plan', sa.JSON(), nullable=True),
    sa.Column('outcome', sa.JSON(), nullable=True),
    sa.Column('lead_time_s', sa.Double(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_by', sa.String(length=200), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('escalated_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_actions_device_id_devices'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_actions')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_actions_idempotency_key'))
    )
    with op.batch_alter_table('actions', schema=None) as batch_op:
        batch_op.create_index('ix_actions_device', ['device_id', 'created_at'], unique=False)
        batch_op.create_index('ix_actions_state', ['state', 'site_id'], unique=False)

    op.create_table('action_audit',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('action_id', sa.Integer(), nullable=True),
    sa.Column('device_id', sa.String(length=200), nullable=True),
    sa.Column('site_id', sa.String(length=200), nullable=True),
    sa.Column('policy', sa.String(length=100), nullable=True),
    sa.Column('kind', sa.String(length=32), nullable=True),
    sa.Column('event', sa.String(length=32), nullable=False),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['action_id'], ['actions.id'], name=op.f('fk_action_audit_action_id_actions'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_action_audit'))
    )
    with op.batch_alter_table('action_audit', schema=None) as batch_op:
        batch_op.create_index('ix_action_audit_at', ['at'], unique=False)
        batch_op.create_index('ix_action_audit_site', ['site_id', 'at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('action_audit', schema=None) as batch_op:
        batch_op.drop_index('ix_action_audit_site')
        batch_op.drop_index('ix_action_audit_at')

    op.drop_table('action_audit')
    with op.batch_alter_table('actions', schema=None) as batch_op:
        batch_op.drop_index('ix_actions_state')
        batch_op.drop_index('ix_actions_device')

    op.drop_table('actions')
    with op.batch_alter_table('action_device_state', schema=None) as batch_op:
        batch_op.drop_index('ix_action_device_state_site')

    op.drop_table('action_device_state')
    op.drop_table('action_site_state')
    op.drop_table('action_policies')
    op.drop_table('action_pauses')
