"""plans: the selections table, and which plan (selection, part) a download job builds

Revision ID: b5e2d8c4f9a1
Revises: a7c3e9d1f2b4
Create Date: 2026-12-01 19:40:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b5e2d8c4f9a1'
down_revision = 'a7c3e9d1f2b4'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'selections',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('album_id', sa.Integer(), nullable=False),
        sa.Column('album_version', sa.String(length=64), nullable=False),
        sa.Column('photo_ids', sa.Text(), nullable=False),
        sa.Column('photo_count', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_selections')),
    )
    with op.batch_alter_table('selections', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_selections_album_id'), ['album_id'], unique=False)
    with op.batch_alter_table('download_jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('plan_ref', sa.String(length=48), server_default='', nullable=False))


def downgrade():
    with op.batch_alter_table('download_jobs', schema=None) as batch_op:
        batch_op.drop_column('plan_ref')
    with op.batch_alter_table('selections', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_selections_album_id'))
    op.drop_table('selections')
