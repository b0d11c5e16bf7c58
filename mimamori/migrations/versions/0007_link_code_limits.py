"""LINE link codes expire and their tries are counted

Residents' link codes get an expiry (null once used); `link_attempts` counts the codes tried per
LINE user and per tenant in the current window. Codes of residents not yet linked stay valid for
14 days from the upgrade; codes of linked residents are spent.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 13:55:00.000000

"""
from datetime import datetime, timedelta, timezone

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('link_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subject', sa.String(length=64), nullable=False),
    sa.Column('window_started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_link_attempts_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_link_attempts')),
    sa.UniqueConstraint('tenant_id', 'subject', name=op.f('uq_link_attempts_tenant_id_subject'))
    )
    with op.batch_alter_table('link_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_link_attempts_tenant_id'), ['tenant_id'], unique=False)

    with op.batch_alter_table('residents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('link_code_expires_at', sa.DateTime(timezone=True), nullable=True))

    residents = sa.table('residents', sa.column('line_user_id', sa.String()),
                         sa.column('link_code_expires_at', sa.DateTime(timezone=True)))
    expires = datetime.now(timezone.utc) + timedelta(days=14)
    if op.get_bind().dialect.name == 'sqlite':
        expires = expires.replace(tzinfo=None)  # stored as naive UTC there, as the app does
    op.execute(residents.update().where(residents.c.line_user_id.is_(None))
               .values(link_code_expires_at=expires))


def downgrade():
    with op.batch_alter_table('residents', schema=None) as batch_op:
        batch_op.drop_column('link_code_expires_at')

    with op.batch_alter_table('link_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_link_attempts_tenant_id'))

    op.drop_table('link_attempts')
