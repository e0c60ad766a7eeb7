"""The visitor's language over real HTTP (gunicorn): Accept-Language, the footer menu's cookie, a share link's
fixed language, locale formats of dates, numbers and sizes, translated API errors and e-mails."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
import requests

from photoshare.i18n import (
    COOKIE_NAME,
    download_name_for_part,
    download_name_for_selection,
    filesize,
    time_left,
)
from photoshare.models import utcnow
from tests.conftest import csrf_token, login


def get(url: str, language: str | None = None, **kwargs) -> requests.Response:
    headers = {"Accept-Language": language} if language else {}
    return requests.get(url, headers=headers | kwargs.pop("headers", {}), timeout=30, **kwargs)


def html_lang(html: str) -> str:
    match = re.search(r'<html lang="([^"]+)"', html)
    assert match, "page has no <html lang>"
    return match.group(1)


@pytest.fixture
def album_id(make_album) -> int:
    return make_album(count=2, title="Anna & Tom")


def test_accept_language_picks_the_language_and_html_lang(live_server, album_id, make_share):
    url = f"{live_server.url}/s/{make_share(album_id)}"
    german = get(url, "de-CH, de;q=0.9, en;q=0.5").text
    assert html_lang(german) == "de" and "Alle herunterladen" in german and "2 Fotos" in german
    french = get(url, "fr-FR,fr;q=0.9").text
    assert html_lang(french) == "fr" and "Tout télécharger" in french
    # A language we do not have, or none at all: English.
    for language in ("ja, zh;q=0.8", None):
        english = get(url, language).text
        assert html_lang(english) == "en" and "Download all" in english and "2 photos" in english


def test_the_footer_menu_sets_a_cookie_that_beats_accept_language(live_server, album_id, make_share):
    url = f"{live_server.url}/s/{make_share(album_id)}"
    browser = requests.Session()
    browser.headers["Accept-Language"] = "de"
    page = browser.get(url, timeout=30).text
    assert 'class="language-menu"' in page and 'value="it" lang="it"' in page
    chosen = browser.post(
        f"{live_server.url}/language", data={"language": "it", "csrf_token": csrf_token(page)},
        headers={"Referer": f"{url}?page=1&password=secret"}, allow_redirects=False, timeout=30,
    )
    # Back to the page the menu was on, never with a password in the address.
    assert chosen.status_code == 303 and chosen.headers["Location"] == f"/s/{url.rsplit('/', 1)[1]}?page=1"
    cookie = next(c for c in browser.cookies if c.name == COOKIE_NAME)
    assert cookie.value == "it" and cookie.has_nonstandard_attr("HttpOnly")
    italian = browser.get(url, timeout=30).text
    assert html_lang(italian) == "it" and "Scarica tutto" in italian and 'aria-current="true">Italiano' in italian
    # A cookie naming no language of ours is ignored.
    assert html_lang(get(url, "nl", cookies={COOKIE_NAME: "xx"}).text) == "nl"


def test_the_footer_menu_refuses_what_it_cannot_honour(live_server, album_id, make_share):
    url = f"{live_server.url}/s/{make_share(album_id)}"
    browser = requests.Session()
    token = csrf_token(browser.get(url, timeout=30).text)
    unknown = browser.post(f"{live_server.url}/language", data={"language": "xx", "csrf_token": token}, timeout=30)
    assert unknown.status_code == 400 and "That language is not available here." in unknown.text
    assert COOKIE_NAME not in browser.cookies
    forged = requests.post(f"{live_server.url}/language", data={"language": "fr"}, timeout=30, allow_redirects=False)
    assert forged.status_code == 400 and COOKIE_NAME not in forged.cookies  # no CSRF token: nothing set
    elsewhere = browser.post(
        f"{live_server.url}/language", data={"language": "fr", "csrf_token": token},
        headers={"Referer": "https://evil.example/phish"}, allow_redirects=False, timeout=30,
    )
    assert elsewhere.status_code == 303 and elsewhere.headers["Location"] == "/"


def test_a_share_links_fixed_language_wins_over_cookie_and_browser(live_server, album_id, make_share):
    token = make_share(album_id, language="fr")
    page = get(f"{live_server.url}/s/{token}", "de", cookies={COOKIE_NAME: "it"})
    assert html_lang(page.text) == "fr" and "Tout télécharger" in page.text and "2 photos" in page.text
    assert 'class="language-menu"' not in page.text  # the visitor's choice has no say on this link
    # Its other pages and its API speak French too.
    assert html_lang(get(f"{live_server.url}/s/{token}/prepare", "de", cookies={COOKIE_NAME: "it"}).text) == "fr"
    missing = get(f"{live_server.url}/api/share/{token}/download/999999", "de")
    assert missing.status_code == 404 and missing.json()["message"] == "Cette photo ne fait pas partie de l’album partagé."
    # An open link of the same album keeps following the visitor.
    assert html_lang(get(f"{live_server.url}/s/{make_share(album_id)}", "de").text) == "de"


def test_error_pages_of_a_share_use_its_fixed_language(live_server, album_id, make_share):
    expired = make_share(album_id, language="nl", expires_at=utcnow() - timedelta(hours=1))
    page = get(f"{live_server.url}/s/{expired}", "en")
    assert page.status_code == 410 and html_lang(page.text) == "nl" and "Deze link is verlopen" in page.text
    api = get(f"{live_server.url}/api/share/{expired}", "en")
    assert api.status_code == 410 and api.json() == {
        "error": "expired", "message": "Deze link is verlopen. Vraag de eigenaar om een nieuwe."
    }
    protected = make_share(album_id, password="open sesame", language="es")
    gate = get(f"{live_server.url}/s/{protected}", "de")
    assert gate.status_code == 401 and html_lang(gate.text) == "es" and "Este álbum está protegido" in gate.text


def test_api_error_messages_follow_the_language_and_keep_their_codes(live_server, album_id, make_share):
    protected = make_share(album_id, password="open sesame")
    spanish = get(f"{live_server.url}/api/share/{protected}", "es")
    assert spanish.status_code == 401 and spanish.json() == {
        "error": "password_required", "message": "Este álbum está protegido con contraseña."
    }
    unknown = get(f"{live_server.url}/api/share/NoSuchToken", "de")
    assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"
    assert unknown.json()["message"] == "Diesen Freigabelink gibt es nicht. Prüfen Sie, ob Sie die ganze Adresse kopiert haben."
    # Werkzeug's own errors (English only there) get ours.
    nowhere = get(f"{live_server.url}/api/nothing-here", "it")
    assert nowhere.status_code == 404 and nowhere.json()["message"] == "Non c’è niente a questo indirizzo."
    page = get(f"{live_server.url}/nothing-here", "fr")
    assert page.status_code == 404 and "Il n’y a rien à cette adresse." in page.text and "Erreur 404" in page.text


def test_german_pages_write_dates_numbers_and_sizes_the_german_way(live_server, album_id, make_share):
    token = make_share(album_id, expires_at=datetime(2099, 12, 8, 14, 30))
    german = get(f"{live_server.url}/s/{token}", "de").text
    english = get(f"{live_server.url}/s/{token}", "en").text
    assert "8. Dezember 2099, 14:30 UTC" in german and "December 8, 2099, 2:30\u202fPM UTC" in english
    assert "Link läuft in " in german
    german_size = re.search(r"Fotos, (\d+),(\d) KB\)</span>", german)
    english_size = re.search(r"photos, (\d+)\.(\d) KB\)</span>", english)
    assert german_size and english_size and german_size.groups() == english_size.groups()


def test_owner_pages_are_translated_too(live_server, app, album_id):
    browser = requests.Session()
    browser.headers["Accept-Language"] = "de"
    token = csrf_token(browser.get(f"{live_server.url}/login", timeout=30).text)
    from tests.conftest import OWNER_EMAIL, OWNER_PASSWORD

    browser.post(f"{live_server.url}/login", data={"email": OWNER_EMAIL, "password": OWNER_PASSWORD, "csrf_token": token}, timeout=30)
    albums = browser.get(f"{live_server.url}/albums", timeout=30).text
    assert html_lang(albums) == "de" and "Ihre Alben" in albums and "2 Fotos" in albums
    shares = browser.get(f"{live_server.url}/albums/{album_id}/shares", timeout=30).text
    assert "Sprache der Seiten dieses Links" in shares and '<option lang="fr" value="fr">Français</option>' in shares


def test_the_owner_fixes_a_links_language_on_the_share_form(app, client, album_id):
    login(client)
    page = client.get(f"/albums/{album_id}/shares").get_data(as_text=True)
    client.post(f"/albums/{album_id}/shares", data={"csrf_token": csrf_token(page), "language": "fr", "downloads_allowed": "y"})
    client.post(f"/albums/{album_id}/shares", data={"csrf_token": csrf_token(page), "downloads_allowed": "y"})
    refused = client.post(f"/albums/{album_id}/shares", data={"csrf_token": csrf_token(page), "language": "klingon"})
    assert refused.status_code == 400
    with app.app_context():
        from photoshare.extensions import db
        from photoshare.models import ShareLink

        assert sorted(link.language or "-" for link in db.session.query(ShareLink)) == ["-", "fr"]


def test_create_share_takes_a_language(app, runner, album_id):
    result = runner.invoke(args=["create-share", str(album_id), "--language", "it", "--json"])
    assert result.exit_code == 0, result.output
    assert runner.invoke(args=["create-share", str(album_id), "--language", "xx"]).exit_code == 2
    with app.app_context():
        from photoshare.extensions import db
        from photoshare.models import ShareLink

        assert [link.language for link in db.session.query(ShareLink)] == ["it"]


@pytest.mark.parametrize(
    ("language", "selection", "part", "size", "left"),
    [
        ("en", ["Wedding (1 photo)", "Wedding (12 photos)"], "Wedding (part 2 of 3)", "1.2 GB", "in 3 days"),
        ("de", ["Wedding (1 Foto)", "Wedding (12 Fotos)"], "Wedding (Teil 2 von 3)", "1,2 GB", "in 3 Tagen"),
        ("fr", ["Wedding (1 photo)", "Wedding (12 photos)"], "Wedding (partie 2 sur 3)", "1,2 Go", "dans 3 jours"),
        ("es", ["Wedding (1 foto)", "Wedding (12 fotos)"], "Wedding (parte 2 de 3)", "1,2 GB", "dentro de 3 días"),
        ("it", ["Wedding (1 foto)", "Wedding (12 foto)"], "Wedding (parte 2 di 3)", "1,2 GB", "tra 3 giorni"),
        ("nl", ["Wedding (1 foto)", "Wedding (12 foto's)"], "Wedding (deel 2 van 3)", "1,2 GB", "over 3 dagen"),
    ],
)
def test_archive_names_sizes_and_time_left_in_each_language(app, language, selection, part, size, left):
    with app.test_request_context(headers={"Accept-Language": language}):
        assert [download_name_for_selection("Wedding", n) for n in (1, 12)] == selection
        assert download_name_for_part("Wedding", 2, 3) == part
        assert filesize(1_234_567_890) == size
        assert time_left(datetime(2026, 12, 4, 12), datetime(2026, 12, 1, 12)) == left
        # The title is the album's, never translated, even when it looks like a format.
        assert download_name_for_selection("100% Fotos (%(num)d)", 2).startswith("100% Fotos (%(num)d) (2 ")


def test_a_stored_job_error_is_shown_in_the_visitors_language(app):
    from photoshare.jobs import store

    with app.test_request_context(headers={"Accept-Language": "de"}):
        assert store.translated_error(store.BUSY).startswith("Der Server ist mit der Vorbereitung")
        unreadable = store.UNREADABLE_PHOTO % {"name": "IMG_1.jpg"}
        assert store.translated_error(unreadable).startswith("Das Foto „IMG_1.jpg“ konnte nicht gelesen werden")
        assert store.translated_error("something unknown") == "something unknown"


# ---- e-mail: a real SMTP server (aiosmtpd) receives what the background job sends ------------------------------

@pytest.fixture
def smtp(app):
    from tests.jobs_support import SmtpSink

    sink = SmtpSink()
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=sink.port, SMTP_FROM="photos@example.com")
    yield sink
    sink.stop()
    app.extensions["photoshare.jobs"].stop()


def ask_for_email(client, token: str, address: str, language: str) -> None:
    from tests.jobs_support import wait_until

    response = client.post(
        f"/api/share/{token}/prepare-download", json={"email": address}, headers={"Accept-Language": language}
    )
    assert response.status_code in (200, 202), response.get_json()
    job_id = response.get_json()["job_id"]
    wait_until(
        lambda: client.get(f"/api/share/{token}/download-status/{job_id}").get_json()["status"] == "ready",
        timeout=20, what="the job",
    )


def test_the_email_is_written_in_the_shares_fixed_language(client, make_album, make_share, smtp):
    from tests.jobs_support import wait_until

    token = make_share(make_album(count=2, title="Reunion"), language="fr")
    ask_for_email(client, token, "guest@example.com", "de")
    message = wait_until(lambda: smtp.messages, timeout=10, what="the e-mail")[0]
    assert message["Subject"] == "Votre téléchargement de «\u00a0Reunion\u00a0» est prêt"
    body = message.get_content().replace("\r\n", "\n")
    assert body.startswith("Bonjour,\n\n") and re.search(r"\(2 photos, \d+,\d Ko\)", body), body
    assert re.search(r"jusqu’au \d{1,2} \w+ \d{4}, \d\d:\d\d UTC \(24 heures\)", body), body


def test_the_email_follows_the_page_where_the_address_was_left(client, make_album, make_share, smtp):
    from tests.jobs_support import wait_until

    token = make_share(make_album(count=2, title="Reunion"))
    ask_for_email(client, token, "ospite@example.com", "it-IT,it;q=0.9")
    message = wait_until(lambda: smtp.messages, timeout=10, what="the e-mail")[0]
    assert message["Subject"] == "Il download di “Reunion” è pronto"
    assert message.get_content().replace("\r\n", "\n").startswith("Ciao,\n\nLo ZIP dell’album “Reunion” (2 foto, ")
