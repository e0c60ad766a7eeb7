"""The command line is a public interface: exact names, scriptable output, one-line errors."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from PIL import Image
from werkzeug.security import check_password_hash

from photoshare import create_app
from photoshare.extensions import db
from photoshare.models import Album, ShareLink, User, utcnow
from tests.conftest import OWNER_EMAIL, ROOT, base_config, make_jpeg


def assert_one_line_error(result, exit_code: int = 1, contains: str = "") -> None:
    """Exit code, exactly one non-empty line on stderr saying what is wrong, nothing on stdout, no traceback."""
    assert result.exit_code == exit_code, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # anything else would be a traceback
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert contains in lines[0]
    assert result.stdout == ""


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (20, 10), (0, 128, 0)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def photo_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "shoot"
    folder.mkdir()
    (folder / "b_second.png").write_bytes(png())
    (folder / "a_first.jpg").write_bytes(make_jpeg())
    (folder / "c_notes.txt").write_text("not a photo")
    (folder / "d_cut.jpg").write_bytes(make_jpeg(100, 80, noise=1)[:500])
    (folder / "nested").mkdir()
    (folder / "nested" / "deeper.jpg").write_bytes(make_jpeg())  # only files directly in DIR count
    return folder


# ---- init-db, create-user ---------------------------------------------------------------------------------


def test_init_db_can_run_again_and_keeps_data(app, runner, owner):
    for _ in range(2):
        result = runner.invoke(args=["init-db"])
        assert result.exit_code == 0 and result.stdout == "database ready\n"
    with app.app_context():
        assert db.session.query(User).count() == 1


def test_create_user(app, runner):
    result = runner.invoke(args=["create-user", "Photographer@Example.com", "--password", "long enough"])
    assert result.exit_code == 0 and result.stdout == "created user photographer@example.com\n"
    with app.app_context():
        user = db.session.query(User).one()
        assert check_password_hash(user.password_hash, "long enough")


@pytest.mark.parametrize(
    ("args", "exit_code", "message"),
    [
        (["create-user", OWNER_EMAIL, "--password", "another one"], 1, "already exists"),
        (["create-user", "new@example.com", "--password", "short"], 1, "at least 8 characters"),
        (["create-user", "not-an-address", "--password", "long enough"], 1, "not an e-mail address"),
        (["create-user", "new@example.com"], 2, "Missing option '--password'"),
        (["create-user"], 2, "Missing argument 'EMAIL'"),
    ],
)
def test_bad_create_user_is_one_line(app, runner, owner, args, exit_code, message):
    assert_one_line_error(runner.invoke(args=args), exit_code, message)
    with app.app_context():
        assert db.session.query(User).count() == 1


def test_set_password_changes_it_and_ends_every_session(app, runner, owner):
    with app.app_context():
        before = db.session.get(User, owner).session_token
    result = runner.invoke(args=["set-password", OWNER_EMAIL.upper(), "--password", "a new long one"])
    assert result.exit_code == 0
    assert result.stdout == f"password changed for {OWNER_EMAIL}; every session of theirs has ended\n"
    with app.app_context():
        user = db.session.get(User, owner)
        assert check_password_hash(user.password_hash, "a new long one") and user.session_token != before


def test_set_password_asks_twice_without_echo_when_not_given(app, runner, owner):
    result = runner.invoke(args=["set-password", OWNER_EMAIL], input="typed not shown\ntyped not shown\n")
    assert result.exit_code == 0 and "typed not shown" not in result.output
    with app.app_context():
        assert check_password_hash(db.session.get(User, owner).password_hash, "typed not shown")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["set-password", "nobody@example.com", "--password", "long enough"], "no user nobody@example.com"),
        (["set-password", OWNER_EMAIL, "--password", "short"], "at least 8 characters"),
    ],
)
def test_bad_set_password_is_one_line_and_changes_nothing(app, runner, owner, args, message):
    with app.app_context():
        before = db.session.get(User, owner).password_hash
    assert_one_line_error(runner.invoke(args=args), 1, message)
    with app.app_context():
        assert db.session.get(User, owner).password_hash == before


# ---- import-album -----------------------------------------------------------------------------------------


def test_import_album_json_keeps_names_in_name_order_and_lists_skipped(app, runner, owner, photo_dir):
    result = runner.invoke(args=["import-album", str(photo_dir), "--title", "Shoot", "--owner", OWNER_EMAIL, "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["photos"] == 2
    assert [item["file"] for item in out["skipped"]] == ["c_notes.txt", "d_cut.jpg"]
    assert all(item["reason"] for item in out["skipped"])
    with app.app_context():
        album = db.session.get(Album, out["album_id"])
        assert album.title == "Shoot" and album.owner.email == OWNER_EMAIL
        assert [p.original_filename for p in album.photos] == ["a_first.jpg", "b_second.png"]
        assert album.version != "empty"


def test_import_album_skips_an_image_over_max_image_pixels_and_makes_views_of_the_rest(app, runner, owner, photo_dir):
    Image.new("RGB", (1500, 800)).save(photo_dir / "e_wide.png")
    app.config["MAX_IMAGE_PIXELS"] = 1_000_000
    result = runner.invoke(args=["import-album", str(photo_dir), "--title", "Shoot", "--owner", OWNER_EMAIL, "--json"])
    out = json.loads(result.stdout)
    assert {item["file"]: item["reason"] for item in out["skipped"]}["e_wide.png"] == (
        "the image is 1500 × 800 pixels (1.2 megapixels); the limit is 1 megapixels")
    uploads = Path(app.config["UPLOAD_DIR"])
    assert out["photos"] == 2 and len(list((uploads / "views").iterdir())) == 2  # made at import, not on first view


def test_make_renditions_makes_older_photos_thumbnails_and_views_once(app, runner, make_album):
    from photoshare import albums
    from photoshare.models import Photo
    from photoshare.storage import get_storage

    make_album(count=2)
    uploads = Path(app.config["UPLOAD_DIR"])
    with app.app_context():
        photos = db.session.execute(db.select(Photo)).scalars().all()
        get_storage().delete(albums.view_key(photos[0]))  # as an older photo: no view yet
        get_storage().delete(albums.photo_key(photos[1]))  # its original lost: reported, not fatal
        get_storage().delete(albums.thumbnail_key(photos[1]))

    first, again = runner.invoke(args=["make-renditions"]), runner.invoke(args=["make-renditions"])

    assert first.exit_code == 0 and first.stdout == "made the thumbnail and view of 1 photos\n"
    assert f"photo {photos[1].id} (IMG_0001.jpg): no thumbnail or view made" in first.stderr
    assert again.stdout == "made the thumbnail and view of 0 photos\n"
    assert (uploads / f"views/{photos[0].rendition_name}.jpg").is_file()


def test_import_album_prints_the_id_and_reports_skipped_files_on_stderr(app, runner, owner, photo_dir):
    result = runner.invoke(args=["import-album", str(photo_dir), "--title", "Shoot", "--owner", OWNER_EMAIL])
    assert result.exit_code == 0
    album_id = int(result.stdout.strip())
    assert "skipped c_notes.txt" in result.stderr and "skipped d_cut.jpg" in result.stderr
    with app.app_context():
        assert len(db.session.get(Album, album_id).photos) == 2


def test_import_album_keeps_names_as_they_are_on_disk_without_bidi_or_undecodable_bytes(app, runner, owner, tmp_path):
    folder = tmp_path / "names"
    folder.mkdir()
    for name in [b'a quote"and;semi.jpg', b"b CON.jpg", b"c what?<>.jpg", "d photo\u202egpj.exe".encode(), b"e caf\xe9.jpg"]:
        (folder / os.fsdecode(name)).write_bytes(make_jpeg())  # the last is Latin-1 on disk: not UTF-8
    result = runner.invoke(args=["import-album", str(folder), "--title", "Trip \u202eevil", "--owner", OWNER_EMAIL])
    assert result.exit_code == 0, result.output
    with app.app_context():
        album = db.session.get(Album, int(result.stdout))
        assert album.title == "Trip evil"
        assert [p.original_filename for p in album.photos] == [
            'a quote"and;semi.jpg', "b CON.jpg", "c what?<>.jpg", "d photogpj.exe", "e caf\ufffd.jpg",
        ]


@pytest.mark.parametrize(
    ("make_args", "exit_code", "message"),
    [
        (lambda d: ["import-album", str(d / "missing"), "--title", "T", "--owner", OWNER_EMAIL], 1, "is not a directory"),
        (lambda d: ["import-album", str(d / "a_first.jpg"), "--title", "T", "--owner", OWNER_EMAIL], 2, "is a file"),
        (lambda d: ["import-album", str(d), "--title", "T", "--owner", "ghost@example.com"], 1, "no user ghost@example.com"),
        (lambda d: ["import-album", str(d), "--title", "   ", "--owner", OWNER_EMAIL], 1, "needs a title"),
        (lambda d: ["import-album", str(d), "--owner", OWNER_EMAIL], 2, "Missing option '--title'"),
    ],
)
def test_bad_import_album_is_one_line_and_creates_nothing(app, runner, owner, photo_dir, make_args, exit_code, message):
    assert_one_line_error(runner.invoke(args=make_args(photo_dir)), exit_code, message)
    with app.app_context():
        assert db.session.query(Album).count() == 0


# ---- create-share -----------------------------------------------------------------------------------------


def test_create_share_prints_the_url_on_base_url(app, runner, make_album):
    album_id = make_album(count=1)
    result = runner.invoke(args=["create-share", str(album_id)])
    assert result.exit_code == 0
    url = result.stdout.strip()
    with app.app_context():
        link = db.session.query(ShareLink).one()
        assert url == f"http://photoshare.test/s/{link.token}"
        assert (link.password_hash, link.expires_at, link.downloads_allowed) == (None, None, True)


def test_create_share_json_with_password_expiry_and_no_downloads(app, runner, make_album):
    album_id = make_album(count=1)
    before = utcnow()
    result = runner.invoke(
        args=["create-share", str(album_id), "--password", "pw for client", "--expires-in", "1.5", "--no-downloads", "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert set(out) == {"token", "url"} and out["url"] == f"http://photoshare.test/s/{out['token']}"
    with app.app_context():
        link = db.session.query(ShareLink).filter_by(token=out["token"]).one()
        assert check_password_hash(link.password_hash, "pw for client")
        assert timedelta(minutes=90) <= link.expires_at - before < timedelta(minutes=91)
        assert link.downloads_allowed is False


def test_create_share_with_download_rules(app, runner, make_album):
    album_id = make_album(count=1)
    result = runner.invoke(args=["create-share", str(album_id), "--ask-email", "--download-pin", "048213",
                                 "--max-album-downloads", "2", "--max-photo-downloads", "10", "--json"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        link = db.session.query(ShareLink).filter_by(token=json.loads(result.stdout)["token"]).one()
        assert (link.ask_email, link.max_album_downloads, link.max_photo_downloads) == (True, 2, 10)
        assert check_password_hash(link.download_pin_hash, "048213")
        assert (link.album_downloads, link.photo_downloads) == (0, 0)


@pytest.mark.parametrize(
    ("extra", "exit_code", "message"),
    [
        (["999"], 1, "no album with id 999"),
        (["abc"], 2, "'abc' is not a valid integer"),
        ([], 2, "Missing argument 'ALBUM_ID'"),
        (["{album}", "--expires-in", "0"], 2, "must be more than 0"),
        (["{album}", "--expires-in", "-3"], 2, "must be more than 0"),
        (["{album}", "--expires-in", "soon"], 2, "is not a number of hours"),
        (["{album}", "--expires-in", "nan"], 2, "must be more than 0"),
        (["{album}", "--expires-in", "inf"], 2, "must be more than 0"),
        (["{album}", "--expires-in", "1e20"], 2, "must be more than 0"),
        (["{album}", "--password", ""], 1, "--password must not be empty"),
        (["{album}", "--bogus"], 2, "No such option '--bogus'"),
        (["{album}", "--download-pin", "12ab"], 1, "--download-pin must be 4 to 6 digits"),
        (["{album}", "--download-pin", "123"], 1, "--download-pin must be 4 to 6 digits"),
        (["{album}", "--download-pin", "\u0661\u0662\u0663\u0664"], 1, "--download-pin must be 4 to 6 digits"),
        (["{album}", "--max-album-downloads", "0"], 2, "0 is not in the range 1<=x<=1000000"),
        (["{album}", "--max-photo-downloads", "10000000000000000000000"], 2, "is not in the range 1<=x<=1000000"),
        (["{album}", "--max-photo-downloads", "many"], 2, "'many' is not a valid integer"),
    ],
)
def test_bad_create_share_is_one_line_and_creates_no_link(app, runner, make_album, extra, exit_code, message):
    album_id = make_album(count=1)
    args = ["create-share", *[arg.format(album=album_id) for arg in extra]]
    assert_one_line_error(runner.invoke(args=args), exit_code, message)
    with app.app_context():
        assert db.session.query(ShareLink).count() == 0


def test_commands_before_init_db_say_so_in_one_line(tmp_path):
    instance = tmp_path / "fresh"
    instance.mkdir()
    runner = create_app(base_config(instance)).test_cli_runner()
    assert_one_line_error(runner.invoke(args=["create-share", "1"]), 1, "has init-db been run?")
    assert_one_line_error(runner.invoke(args=["create-user", "a@b.example", "--password", "long enough"]), 1, "database error")


# ---- the real `flask` executable ---------------------------------------------------------------------------


def flask_cli(instance: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PHOTOSHARE_INSTANCE": str(instance), "SECRET_KEY": "cli-test", "BASE_URL": "http://cli.test"}
    env.pop("DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_real_flask_command_scripts_a_whole_share_and_fails_in_one_line(tmp_path, photo_dir):
    instance = tmp_path / "instance"
    assert flask_cli(instance, "init-db").returncode == 0
    assert flask_cli(instance, "create-user", "me@example.com", "--password", "long enough").returncode == 0
    imported = flask_cli(instance, "import-album", str(photo_dir), "--title", "Shoot", "--owner", "me@example.com", "--json")
    album_id = json.loads(imported.stdout)["album_id"]
    shared = flask_cli(instance, "create-share", str(album_id), "--json")
    assert shared.returncode == 0 and json.loads(shared.stdout)["url"].startswith("http://cli.test/s/")

    bad = flask_cli(instance, "create-share", "not-a-number")
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip().splitlines() == ["Error: Invalid value for 'ALBUM_ID': 'not-a-number' is not a valid integer."]
    duplicate = flask_cli(instance, "create-user", "me@example.com", "--password", "long enough")
    assert duplicate.returncode == 1 and duplicate.stderr.strip().splitlines() == ["Error: a user me@example.com already exists"]


# ---- demo (what `make run` serves) ------------------------------------------------------------------------


def test_demo_makes_one_album_of_generated_photos_and_prints_a_working_share_link(tmp_path):
    """On a fresh database (no init-db first), then again: the same album and link, nothing duplicated."""
    instance = tmp_path / "instance"
    first, again = flask_cli(instance, "demo", "--photos", "3"), flask_cli(instance, "demo", "--photos", "3")

    assert first.returncode == 0 and again.returncode == 0, first.stderr + again.stderr
    link = first.stdout.strip().splitlines()[-1].split()[-1]
    assert link.startswith("http://cli.test/s/") and again.stdout.strip().splitlines()[-1].endswith(link)
    app = create_app(base_config(instance))
    with app.app_context():
        assert db.session.query(Album).count() == 1 and db.session.query(ShareLink).count() == 1
        assert [p.original_filename for p in db.session.query(Album).one().photos] == [
            "IMG_0001.jpg", "IMG_0002.jpg", "IMG_0003.jpg",
        ]
    page = app.test_client().get(link.removeprefix("http://cli.test"))
    assert page.status_code == 200 and "Download all" in page.get_data(as_text=True)
    with app.app_context():
        db.engine.dispose()
    assert flask_cli(instance, "init-db").returncode == 0  # init-db after the demo finds the schema current
