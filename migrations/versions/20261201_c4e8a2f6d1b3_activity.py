"""activity: visitor events per share link, their daily totals once old, first-download and digest notifications

Revision ID: c4e8a2f6d1b3
Revises: a7c3e9d1f2b4
Create Date: 2026-12-01 19:40:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c4e8a2f6d1b3'
down_revision = 'c5d8f2a6b913'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('activity_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('share_id', sa.Integer(), nullable=False),
    sa.Column('album_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('photo_id', sa.Integer(), nullable=True),
    sa.Column('part', sa.String(length=32), nullable=True),
    sa.Column('size', sa.String(length=16), nullable=True),
    sa.Column('bytes', sa.BigInteger(), nullable=False),
    sa.Column('finished', sa.Boolean(), nullable=False),
    sa.Column('browser', sa.String(length=64), nullable=True),
    sa.Column('os', sa.String(length=64), nullable=True),
    sa.Column('network', sa.String(length=64), nullable=True),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('visitor', sa.String(length=32), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('activity_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_activity_events_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_activity_events_share_id'), ['share_id'], unique=False)
        batch_op.create_index('ix_activity_events_album_at', ['album_id', 'at'], unique=False)

    op.create_table('activity_days',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('share_id', sa.Integer(), nullable=False),
    sa.Column('album_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('visits', sa.Integer(), nullable=False),
    sa.Column('visitors', sa.Integer(), nullable=False),
    sa.Column('downloads', sa.Integer(), nullable=False),
    sa.Column('bytes', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('share_id', 'day')
    )
    with op.batch_alter_table('activity_days', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_activity_days_album_id'), ['album_id'], unique=False)

    with op.batch_alter_table('albums', schema=None) as batch_op:
        batch_op.add_column(sa.Column('daily_digest', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('digest_sent_on', sa.Date(), nullable=True))

    with op.batch_alter_table('share_links', schema=None) as batch_op:
        batch_op.add_column(sa.Column('first_download_at', sa.DateTime(), nullable=True))
    # Links downloaded before activity existed were downloaded first long ago: no "first download" e-mail now.
    op.execute("UPDATE share_links SET first_download_at = created_at WHERE download_count > 0")


def downgrade():
    with op.batch_alter_table('share_links', schema=None) as batch_op:
        batch_op.drop_column('first_download_at')

    with op.batch_alter_table('albums', schema=None) as batch_op:
        batch_op.drop_column('digest_sent_on')
        batch_op.drop_column('daily_digest')

    with op.batch_alter_table('activity_days', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_activity_days_album_id'))

    op.drop_table('activity_days')
    with op.batch_alter_table('activity_events', schema=None) as batch_op:
        batch_op.drop_index('ix_activity_events_album_at')
        batch_op.drop_index(batch_op.f('ix_activity_events_share_id'))
        batch_op.drop_index(batch_op.f('ix_activity_events_at'))

    op.drop_table('activity_events')
