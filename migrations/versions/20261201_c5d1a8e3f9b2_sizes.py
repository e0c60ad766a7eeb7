"""sizes: photos' large rendition and location-free copy (size, sha256, CRC-32), share links' size cap and
location removal, prepared jobs' variant

Revision ID: c5d1a8e3f9b2
Revises: c4e8a2f6b1d9
Create Date: 2026-12-01 19:40:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c5d1a8e3f9b2'
down_revision = 'c4e8a2f6b1d9'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('photos', schema=None) as batch_op:
        batch_op.add_column(sa.Column('large_size', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('large_sha256', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('large_crc32', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('has_location', sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column('clean_size', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('clean_sha256', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('clean_crc32', sa.BigInteger(), nullable=True))

    # Existing links keep sending what they sent: originals, location and all (new links remove it).
    with op.batch_alter_table('share_links', schema=None) as batch_op:
        batch_op.add_column(sa.Column('web_size_only', sa.Boolean(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('strip_location', sa.Boolean(), server_default='0', nullable=False))

    # A prepared archive is one variant of the album (its version is that variant's plan digest).
    with op.batch_alter_table('download_jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('variant', sa.String(length=16), server_default='original', nullable=False))


def downgrade():
    with op.batch_alter_table('download_jobs', schema=None) as batch_op:
        batch_op.drop_column('variant')

    with op.batch_alter_table('share_links', schema=None) as batch_op:
        batch_op.drop_column('strip_location')
        batch_op.drop_column('web_size_only')

    with op.batch_alter_table('photos', schema=None) as batch_op:
        batch_op.drop_column('clean_crc32')
        batch_op.drop_column('clean_sha256')
        batch_op.drop_column('clean_size')
        batch_op.drop_column('has_location')
        batch_op.drop_column('large_crc32')
        batch_op.drop_column('large_sha256')
        batch_op.drop_column('large_size')
