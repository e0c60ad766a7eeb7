"""images: photos.rendition_name, the random name of a photo's thumbnail and large view

Until now a thumbnail (`thumbs/<stem>.jpg`) and a view (`views/<stem>.jpg`) shared the random name of their
original (`originals/<stem>.jpg`): a public thumbnail URL gave the original's key away. Every existing photo
gets a random name of its own here; its old thumbnail and view are remade under it on first use (one maker per
photo), which then removes the old ones.

Revision ID: a3c9e1f27b64
Revises: a3c9e4f1b7d2
Create Date: 2026-12-01 16:45:00.000000

"""
import secrets

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'a3c9e1f27b64'
down_revision = 'a3c9e4f1b7d2'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('photos', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rendition_name', sa.String(length=32), nullable=True))
    photos = sa.table('photos', sa.column('id', sa.Integer()), sa.column('rendition_name', sa.String(32)))
    connection = op.get_bind()
    for (photo_id,) in connection.execute(sa.select(photos.c.id)).all():
        connection.execute(
            photos.update().where(photos.c.id == photo_id).values(rendition_name=secrets.token_hex(16))
        )
    with op.batch_alter_table('photos', schema=None) as batch_op:
        batch_op.alter_column('rendition_name', existing_type=sa.String(length=32), nullable=False)
        batch_op.create_unique_constraint(batch_op.f('uq_photos_rendition_name'), ['rendition_name'])


def downgrade():
    with op.batch_alter_table('photos', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_photos_rendition_name'), type_='unique')
        batch_op.drop_column('rendition_name')
