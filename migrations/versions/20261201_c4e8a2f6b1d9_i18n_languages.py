"""i18n: share_links.language (fixed by the owner; NULL = the visitor's choice) and download_notices.language

Revision ID: c4e8a2f6b1d9
Revises: a7c3e9d1f2b4
Create Date: 2026-12-01 19:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c4e8a2f6b1d9'
down_revision = 'c4e8a2f6d1b3'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('share_links', schema=None) as batch_op:
        batch_op.add_column(sa.Column('language', sa.String(length=8), nullable=True))
    with op.batch_alter_table('download_notices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('language', sa.String(length=8), nullable=True))


def downgrade():
    with op.batch_alter_table('download_notices', schema=None) as batch_op:
        batch_op.drop_column('language')
    with op.batch_alter_table('share_links', schema=None) as batch_op:
        batch_op.drop_column('language')
