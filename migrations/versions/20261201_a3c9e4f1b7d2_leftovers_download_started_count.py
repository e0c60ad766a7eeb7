"""leftovers: share links count downloads started beside downloads finished (download_count)

Revision ID: a3c9e4f1b7d2
Revises: 3b9e27c4a1f0
Create Date: 2026-12-01 17:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a3c9e4f1b7d2'
down_revision = '3b9e27c4a1f0'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('share_links', schema=None) as batch_op:
        batch_op.add_column(sa.Column('download_started_count', sa.Integer(), server_default='0', nullable=False))
    # Every download counted so far was started; abandoned ones were never recorded, so start from there.
    op.execute("UPDATE share_links SET download_started_count = download_count")


def downgrade():
    with op.batch_alter_table('share_links', schema=None) as batch_op:
        batch_op.drop_column('download_started_count')
