"""names: bidi and control characters out of stored names and titles; album versions for Windows-safe entries

Data only, no schema change. Photo names and album titles lose bidi controls (a name that reads as another) and
control characters, by the same rules the app now applies on upload and rename (photoshare/names.py). Every
album's version is then recomputed with the current archive plan: the ZIP entry names changed (ARCHIVE_FORMAT 2),
and a stored version that no longer names the archive's bytes would let a resume mix two archives.

Revision ID: 3b9e27c4a1f0
Revises: 5d7818b17ce4
Create Date: 2026-12-01 17:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

from photoshare.albums import EMPTY_VERSION
from photoshare.archive import archive_digest, plan_archive
from photoshare.names import album_title, photo_name


# revision identifiers, used by Alembic.
revision = '3b9e27c4a1f0'
down_revision = '5d7818b17ce4'
branch_labels = None
depends_on = None

# Only the columns this revision reads or writes, typed so SQLite's dates come back as datetimes.
albums = sa.table(
    'albums', sa.column('id', sa.Integer), sa.column('title', sa.String), sa.column('version', sa.String)
)
photos = sa.table(
    'photos',
    sa.column('id', sa.Integer),
    sa.column('album_id', sa.Integer),
    sa.column('position', sa.Integer),
    sa.column('original_filename', sa.String),
    sa.column('stored_name', sa.String),
    sa.column('size', sa.BigInteger),
    sa.column('sha256', sa.String),
    sa.column('taken_at', sa.DateTime),
    sa.column('uploaded_at', sa.DateTime),
)


def upgrade():
    bind = op.get_bind()
    for album_id, title, version in bind.execute(sa.select(albums.c.id, albums.c.title, albums.c.version)).all():
        rows = bind.execute(
            sa.select(photos).where(photos.c.album_id == album_id).order_by(photos.c.position, photos.c.id)
        ).all()
        plan = []
        for row in rows:
            name = photo_name(row.original_filename)
            if name != row.original_filename:
                bind.execute(sa.update(photos).where(photos.c.id == row.id).values(original_filename=name))
            moment = row.taken_at or row.uploaded_at
            plan.append((name, f'originals/{row.stored_name}', row.size, row.sha256, moment))
        clean_title = album_title(title) or 'Album'
        new_version = archive_digest(plan_archive(plan)) if plan else EMPTY_VERSION
        if (clean_title, new_version) != (title, version):
            bind.execute(sa.update(albums).where(albums.c.id == album_id).values(title=clean_title, version=new_version))


def downgrade():
    # Nothing to undo: clean names are valid names for older code too. Versions stay as computed here; older
    # code stores its own the next time each album changes.
    pass
