"""Photo names and album titles: kept as the owner gave them wherever they are shown or sent (database, gallery,
API, Content-Disposition), Windows-safe only inside ZIPs (test_archive.py), bidi controls nowhere. The flows run
over HTTP against a real gunicorn, as a browser uploads and a visitor downloads."""

from __future__ import annotations

import io
import re
import unicodedata
import zipfile
from urllib.parse import quote

import pytest
import requests
from hypothesis import given, settings
from markupsafe import escape

from photoshare.extensions import db
from photoshare.models import Album
from photoshare.names import album_title, photo_name
from tests.conftest import csrf_token, login, make_jpeg
from tests.test_archive import BIDI, NAMES
from tests.test_owner_uploads import http_owner_session

RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: `photo\u202egpj.exe` shows as `photoexe.jpg`


@pytest.mark.parametrize(
    ("given_name", "kept"),
    [
        ('quote"and;semi.jpg', 'quote"and;semi.jpg'),
        ("what?<a|b>*:c.jpg", "what?<a|b>*:c.jpg"),
        ("Été 😀 %20 à 東京.jpg", "Été 😀 %20 à 東京.jpg"),
        ("CON.jpg", "CON.jpg"),
        (".hidden.jpg", ".hidden.jpg"),
        ("trailing dot.", "trailing dot."),
        ("C:\\fakepath\\x.jpg", "x.jpg"),
        ("../../etc/x.jpg", "x.jpg"),
        ("  spaced out .jpg \t", "spaced out .jpg"),
        ("photo\u202egpj.exe", "photogpj.exe"),
        ("\u2066\u2067\u2068\u2069\u202a\u202b\u202c\u202d\u200e\u200f\u061cx.jpg", "x.jpg"),
        ("tab\there\x00nul\x7f\x85\u2028.jpg", "tab_here_nul___.jpg"),
        ("bad\udcffbyte.jpg", "bad\ufffdbyte.jpg"),  # undecodable bytes in a file system name (import-album)
        ("Cafe\u0301.jpg", "Café.jpg"),
        ("..", "photo"),
        ("/", "photo"),
        (RLO, "photo"),
        ("a" * 300 + ".jpeg", "a" * 195 + ".jpeg"),
    ],
)
def test_photo_names_are_kept_except_folders_controls_and_bidi(given_name: str, kept: str):
    assert photo_name(given_name) == kept


def test_album_titles_lose_bidi_and_control_characters_and_stay_on_one_line():
    assert album_title(f'Trip "2024"\t{RLO}evil\n\x00 night') == 'Trip "2024" evil _ night'


@settings(max_examples=500, deadline=None)
@given(NAMES)
def test_kept_names_never_carry_folders_controls_or_bidi_and_cleaning_is_idempotent(name: str):
    kept = photo_name(name)
    assert kept and len(kept) <= 200 and kept == kept.strip() and kept.strip(". ")
    assert not {"/", "\\"} & set(kept) and not BIDI & set(kept)
    assert not any(unicodedata.category(ch) in ("Cc", "Cs") or ch in "\u2028\u2029" for ch in kept)
    assert photo_name(kept) == kept


# ---- everywhere, over HTTP -----------------------------------------------------------------------------------

# As a browser sends them (the file picker's name) -> as the album keeps and shows them -> inside the ZIP.
UPLOADS = [
    ('quote"and;semi.jpg', 'quote"and;semi.jpg', "quote_and;semi.jpg"),
    ("Été 😀 à Zürich.jpg", "Été 😀 à Zürich.jpg", "Été 😀 à Zürich.jpg"),
    ("photo\u202egpj.exe", "photogpj.exe", "photogpj.exe"),
    ("../../etc/CON.jpg", "CON.jpg", "CON_.jpg"),  # Werkzeug unescapes `\\`: only `/` survives as a folder
    ("what?<a|b>*.jpg", "what?<a|b>*.jpg", "what__a_b__.jpg"),
]
TITLE = f'Trip "2024" {RLO}gpj.exe'


def disposition(name: str, fallback: str) -> str:
    """RFC 6266 with RFC 5987's attr-chars left as they are: what a browser decodes back to `name`."""
    if fallback == name:
        return f'attachment; filename="{name}"'
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='!#$&+-.^_`|~')}"


@pytest.fixture
def uploaded(app, owner, make_album, make_share, live_server):
    """An album titled TITLE through the owner's rename form, with UPLOADS sent one per request as owner.js
    does, all over real HTTP; returns (album id, share token, server URL)."""
    album_id = make_album(files={}, title="Draft")
    session, base = http_owner_session(live_server.url), live_server.url
    token = csrf_token(session.get(f"{base}/albums/{album_id}", timeout=10).text)
    for sent, _, _ in UPLOADS:
        answer = session.post(f"{base}/albums/{album_id}/photos", files={"photos": (sent, make_jpeg(noise=1))},
                              headers={"Accept": "application/json", "X-CSRFToken": token}, timeout=30)
        assert answer.status_code == 200 and answer.json()["files"][0]["ok"], answer.text
    renamed = session.post(f"{base}/albums/{album_id}/rename", data={"title": TITLE, "csrf_token": token}, timeout=10)
    assert renamed.status_code == 200
    return album_id, make_share(album_id), base


def test_names_are_kept_in_the_database_api_gallery_and_downloads(app, uploaded):
    album_id, token, base = uploaded
    kept = [name for _, name, _ in UPLOADS]
    with app.app_context():
        album = db.session.get(Album, album_id)
        assert [p.original_filename for p in album.photos] == kept
        assert album.title == 'Trip "2024" gpj.exe'

    api = requests.get(f"{base}/api/share/{token}", timeout=10)
    assert [p["filename"] for p in api.json()["photos"]] == kept and api.json()["title"] == 'Trip "2024" gpj.exe'
    assert RLO not in api.text

    gallery = requests.get(f"{base}/s/{token}", timeout=10).text
    assert RLO not in gallery and "\\u202e" not in gallery
    for name in kept:  # autoescaped exactly once, in the visible name and every attribute that carries it
        shown = str(escape(name))
        for attribute in (f'data-name="{shown}"', f'alt="{shown}"', f'title="{shown}"', f">{shown}</span>"):
            assert attribute in gallery, attribute

    for photo in api.json()["photos"]:
        header = requests.get(photo["download_url"], timeout=10).headers["Content-Disposition"]
        assert header.isascii() and RLO not in header
        fallback = re.fullmatch(r'attachment; filename="([^"]*)"(?:; filename\*=UTF-8\'\'(\S+))?', header)
        assert fallback is not None and not set(fallback.group(1)) & set('"\\%;'), header
        assert header == disposition(photo["filename"], fallback.group(1)), header
    exact = requests.get(api.json()["photos"][0]["download_url"], timeout=10).headers["Content-Disposition"]
    assert exact == "attachment; filename=\"quote_and_semi.jpg\"; filename*=UTF-8''quote%22and%3Bsemi.jpg"
    emoji = requests.get(api.json()["photos"][1]["download_url"], timeout=10).headers["Content-Disposition"]
    assert emoji == disposition("Été 😀 à Zürich.jpg", "Ete _ a Zurich.jpg")


def test_the_archive_has_windows_safe_entries_and_the_titles_name_without_bidi(uploaded):
    _, token, base = uploaded
    response = requests.get(f"{base}/api/share/{token}/download-all", timeout=60)
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == disposition('Trip "2024" gpj.exe.zip', "Trip _2024_ gpj.exe.zip")
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert archive.namelist() == [entry for _, _, entry in UPLOADS]
        assert archive.testzip() is None


def test_a_rename_keeps_the_name_as_typed_without_bidi(app, uploaded):
    album_id, token, base = uploaded
    with app.app_context():
        photo_id = db.session.get(Album, album_id).photos[0].id
    session = http_owner_session(base)
    form = csrf_token(session.get(f"{base}/albums/{album_id}", timeout=10).text)
    page = session.post(f"{base}/albums/{album_id}/photos/{photo_id}/rename",
                        data={"filename": f'say "cheese";{RLO}gpj.exe', "csrf_token": form}, timeout=10)
    assert page.status_code == 200 and RLO not in page.text
    assert str(escape('Renamed to “say "cheese";gpj.exe”.')) in page.text
    photo = requests.get(f"{base}/api/share/{token}", timeout=10).json()["photos"][0]
    assert photo["filename"] == 'say "cheese";gpj.exe'
    header = requests.get(photo["download_url"], timeout=10).headers["Content-Disposition"]
    assert header == "attachment; filename=\"say _cheese_gpj.exe\"; filename*=UTF-8''say%20%22cheese%22%3Bgpj.exe"


def test_a_failed_upload_names_the_file_without_bidi(app, owner, make_album, live_server):
    album_id = make_album(files={}, title="Uploads")
    session = http_owner_session(live_server.url)
    page = session.get(f"{live_server.url}/albums/{album_id}", timeout=10).text
    answer = session.post(f"{live_server.url}/albums/{album_id}/photos", data={"csrf_token": csrf_token(page)},
                          files={"photos": (f"notes{RLO}gpj.exe", b"not a photo")}, timeout=30)
    assert answer.status_code == 200 and RLO not in answer.text
    assert "notesgpj.exe: Not an image, or an image format we cannot read." in answer.text


def test_a_title_or_name_with_a_nul_is_refused_with_a_400_never_a_500(app, client, owner, make_album):
    """PostgreSQL refuses NUL in text: the forms answer 400 before anything is stored (`bad_input.py`), and the
    cleaners themselves turn a NUL into `_` for the paths that bypass forms (run with PHOTOSHARE_TEST_POSTGRES=1)."""
    album_id = make_album(count=1, title="Trip")
    login(client)
    token = csrf_token(client.get(f"/albums/{album_id}").get_data(as_text=True))
    with app.app_context():
        photo_id = db.session.get(Album, album_id).photos[0].id
        before = db.session.get(Album, album_id).photos[0].original_filename
    renamed = client.post(f"/albums/{album_id}/rename", data={"title": "Trip\x00 2024", "csrf_token": token})
    photo = client.post(f"/albums/{album_id}/photos/{photo_id}/rename",
                        data={"filename": "a\x00b.jpg", "csrf_token": token})
    assert (renamed.status_code, photo.status_code) == (400, 400)
    with app.app_context():
        album = db.session.get(Album, album_id)
        assert (album.title, album.photos[0].original_filename) == ("Trip", before)
    assert album_title("Trip\x00 2024") == "Trip_ 2024" and photo_name("a\x00b.jpg") == "a_b.jpg"
