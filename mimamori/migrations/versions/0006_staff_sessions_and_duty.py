"""Server-side staff sessions, staff members' contact details, on-duty flag and weekly rota

Signing out must end a session on the server, so each signed-in browser gets a row the cookie
refers to. Staff accounts gain a phone and LINE user id, an on-duty flag and a weekly rota
(duty_slots), so a tenant's admins decide who a `staff` alert step reaches.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 14:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('staff_sessions',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ip', sa.String(length=45), nullable=True),
    sa.Column('user_agent', sa.String(length=255), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_staff_sessions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_sessions'))
    )
    with op.batch_alter_table('staff_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_sessions_user_id'), ['user_id'], unique=False)

    op.create_table('duty_slots',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('weekday', sa.SmallInteger(), nullable=False),
    sa.Column('starts_at', sa.Time(), nullable=False),
    sa.Column('ends_at', sa.Time(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_duty_slots_tenant_id_tenants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_duty_slots_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_duty_slots'))
    )
    with op.batch_alter_table('duty_slots', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_duty_slots_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_duty_slots_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('phone', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('line_user_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('on_duty', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('on_duty')
        batch_op.drop_column('line_user_id')
        batch_op.drop_column('phone')

    with op.batch_alter_table('duty_slots', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_duty_slots_user_id'))
        batch_op.drop_index(batch_op.f('ix_duty_slots_tenant_id'))
    op.drop_table('duty_slots')

    with op.batch_alter_table('staff_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_sessions_user_id'))
    op.drop_table('staff_sessions')
