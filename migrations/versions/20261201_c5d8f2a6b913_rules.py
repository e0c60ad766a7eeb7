"""rules: per-link download rules (visitor e-mail, download PIN, download limits and the slots taken)

Revision ID: c5d8f2a6b913
Revises: a7c3e9d1f2b4
Create Date: 2026-12-01 19:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c5d8f2a6b913'
down_revision = 'b5e2d8c4f9a1'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('share_links', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ask_email', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('download_pin_hash', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('download_pin_generation', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('max_album_downloads', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('max_photo_downloads', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('album_downloads', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('photo_downloads', sa.Integer(), server_default='0', nullable=False))


def downgrade():
    with op.batch_alter_table('share_links', schema=None) as batch_op:
        for column in ('photo_downloads', 'album_downloads', 'max_photo_downloads', 'max_album_downloads',
                       'download_pin_generation', 'download_pin_hash', 'ask_email'):
            batch_op.drop_column(column)
