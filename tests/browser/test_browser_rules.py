"""The owner's download rules in Chromium: the e-mail form, the PIN form, the limit notice and page.

Each page is also checked for layout (no overlap, contrast, tap targets) and saved as a screenshot."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

from playwright.sync_api import expect

from tests.browser import checks
from tests.browser.conftest import album_photos, screenshot


def settle_and_check(page, viewport: str, name: str) -> None:
    page.wait_for_load_state("load")
    page.wait_for_function("() => Array.from(document.images).every((img) => img.complete)")
    assert checks.layout_problems(page, viewport) == [], name
    screenshot(page, f"{viewport}-{name}")


def test_email_form_comes_before_the_first_download_and_then_the_download_follows(
        make_album, make_share, live_server, new_context):
    photos = album_photos(3)
    token = make_share(make_album(photos, title="Garden party"), ask_email=True)
    page = new_context("phone").new_page()
    page.goto(f"{live_server.url}/s/{token}")
    expect(page.get_by_role("heading", name="Before you download")).to_be_visible()
    expect(page.locator(".tile")).to_have_count(3)  # looking needs no e-mail
    settle_and_check(page, "phone", "gallery-email-asked")

    page.get_by_role("link", name=re.compile(r"Download IMG_0002\.jpg")).click()
    expect(page.get_by_role("heading", name="Before you download")).to_be_visible()
    settle_and_check(page, "phone", "email-form")
    page.get_by_label("Your e-mail address").fill("guest@example.com")
    with page.expect_download() as download:
        page.get_by_role("button", name="Continue").click()
    assert Path(download.value.path()).read_bytes() == photos["IMG_0002.jpg"]

    page.goto(f"{live_server.url}/s/{token}")  # asked once per share: the buttons now download at once
    expect(page.get_by_role("heading", name="Before you download")).to_have_count(0)
    with page.expect_download() as download:
        page.get_by_role("link", name=re.compile(r"Download IMG_0003\.jpg")).click()
    assert Path(download.value.path()).read_bytes() == photos["IMG_0003.jpg"]


def test_pin_form_refuses_a_wrong_pin_and_unlocks_downloads_with_the_right_one(
        make_album, make_share, live_server, new_context):
    photos = album_photos(2)
    token = make_share(make_album(photos, title="Studio session"), download_pin="4821")
    page = new_context("desktop").new_page()
    page.goto(f"{live_server.url}/s/{token}")
    expect(page.get_by_label("Download PIN")).to_be_visible()
    settle_and_check(page, "desktop", "gallery-pin-asked")

    page.get_by_label("Download PIN").fill("1111")
    with page.expect_response(lambda r: r.request.method == "POST") as wrong:
        page.get_by_role("button", name="Unlock downloads").click()
    assert wrong.value.status == 403
    expect(page.get_by_role("alert")).to_contain_text("not correct")
    settle_and_check(page, "desktop", "pin-form-wrong")

    page.get_by_label("Download PIN").fill("4821")
    page.get_by_role("button", name="Unlock downloads").click()
    expect(page.get_by_role("heading", name="Studio session")).to_be_visible()  # back in the album
    expect(page.get_by_label("Download PIN")).to_have_count(0)
    with page.expect_download() as download:
        page.get_by_role("link", name=re.compile(r"Download IMG_0001\.jpg")).click()
    assert Path(download.value.path()).read_bytes() == photos["IMG_0001.jpg"]


def test_reached_limit_shows_a_notice_in_the_gallery_and_a_page_for_the_download(
        make_album, make_share, live_server, new_context):
    token = make_share(make_album(album_photos(2), title="Wedding"), max_album_downloads=1, max_photo_downloads=1)
    page = new_context("desktop").new_page()
    page.goto(f"{live_server.url}/s/{token}")
    with page.expect_download():
        page.get_by_role("link", name=re.compile("Download all")).click()
    with page.expect_download():
        page.get_by_role("link", name=re.compile(r"Download IMG_0001\.jpg")).click()

    page.reload()
    expect(page.get_by_text("This link has reached its download limit")).to_be_visible()
    expect(page.get_by_role("link", name=re.compile("Download"))).to_have_count(0)
    expect(page.locator(".tile")).to_have_count(2)  # viewing still works
    settle_and_check(page, "desktop", "gallery-limit-reached")

    response = page.goto(f"{live_server.url}/s/{token}/prepare")
    assert response.status == 403
    expect(page.get_by_role("heading", name="Download limit reached")).to_be_visible()
    expect(page.get_by_text("contact the owner")).to_be_visible()
    settle_and_check(page, "desktop", "download-limit-reached")


def test_download_selected_asks_for_the_e_mail_first_then_sends_exactly_the_selection(
        make_album, make_share, live_server, new_context):
    """The selection bar's download passes the owner's e-mail question like every other download button."""
    photos = album_photos(3)
    token = make_share(make_album(photos, title="Garden party"), ask_email=True)
    page = new_context("phone").new_page()
    page.goto(f"{live_server.url}/s/{token}")
    page.get_by_label("Select IMG_0003.jpg").check()
    page.get_by_role("button", name="Download selected").click()
    # The gallery shows the same form inline: wait for the gate's own page, which names the selection next.
    page.wait_for_url(re.compile(r"/before-download\?next="))
    expect(page.get_by_label("Your e-mail address")).to_be_visible()
    settle_and_check(page, "phone", "selection-email-form")
    page.get_by_label("Your e-mail address").fill("guest@example.com")
    with page.expect_download() as download:
        page.get_by_role("button", name="Continue").click()
    assert download.value.suggested_filename == "Garden party (1 photo).zip"
    with zipfile.ZipFile(io.BytesIO(Path(download.value.path()).read_bytes())) as archive:
        assert [(info.filename, archive.read(info)) for info in archive.infolist()] == [
            ("IMG_0003.jpg", photos["IMG_0003.jpg"])]
