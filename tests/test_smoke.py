from tests.conftest import make_jpeg


def test_album_version_follows_its_photos(app, make_album):
    album_id = make_album(count=2)
    with app.app_context():
        from photoshare.extensions import db
        from photoshare.models import Album

        album = db.session.get(Album, album_id)
        assert len(album.photos) == 2 and album.version != "empty"
