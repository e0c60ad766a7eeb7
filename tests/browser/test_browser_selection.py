"""Selecting photos and downloading them, and an album's parts, in Chromium on a phone and a desktop."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from photoshare import plans
from photoshare.extensions import db
from photoshare.models import Album
from tests.browser.conftest import screenshot
from tests.conftest import LiveServer
from tests.jobs_support import http


def zip_members(path: Path) -> list[tuple[str, bytes]]:
    """(name, bytes) of every member in archive order, after checking each member's CRC."""
    with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as archive:
        assert archive.testzip() is None
        return [(info.filename, archive.read(info)) for info in archive.infolist()]


def bar_text(page) -> str:
    return page.locator(".selection-summary").inner_text()


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_visitor_selects_photos_keeps_them_over_a_reload_and_downloads_exactly_those(site, new_context, viewport):
    page = new_context(viewport).new_page()
    page.goto(site.share(site.open_token))
    expect(page.locator(".tile")).to_have_count(len(site.photos))
    expect(page.locator("[data-selection-bar]")).to_be_hidden()
    page.get_by_label("Select IMG_0004.jpg").check()
    page.get_by_label("Select IMG_0002.jpg").check()
    expected_size = len(site.photos["IMG_0002.jpg"]) + len(site.photos["IMG_0004.jpg"])
    expect(page.locator("[data-selection-bar]")).to_be_visible()
    assert re.fullmatch(r"2 selected · [\d.]+ KB", bar_text(page)), bar_text(page)
    assert f"{expected_size / 1000:.1f} KB" in bar_text(page)
    expect(page.locator(".tile.is-selected")).to_have_count(2)
    screenshot(page, f"{viewport}-selection-bar", full_page=False)

    page.reload()  # kept in this browser for this share
    expect(page.get_by_label("Select IMG_0002.jpg")).to_be_checked()
    expect(page.get_by_label("Select IMG_0004.jpg")).to_be_checked()
    expect(page.get_by_label("Select IMG_0001.jpg")).not_to_be_checked()
    assert bar_text(page).startswith("2 selected")

    with page.expect_download() as download:
        page.get_by_role("button", name="Download selected").click()
    assert download.value.suggested_filename == "Anna & Tom, 12 July (2 photos).zip"
    assert zip_members(Path(download.value.path())) == [
        ("IMG_0002.jpg", site.photos["IMG_0002.jpg"]), ("IMG_0004.jpg", site.photos["IMG_0004.jpg"])]


def test_select_all_takes_every_photo_and_clear_empties_the_selection_on_a_phone(site, new_context):
    page = new_context("phone").new_page()
    page.goto(site.share(site.open_token))
    select_all = page.get_by_role("button", name="Select all")
    select_all.click()
    expect(page.locator("[data-select]:checked")).to_have_count(len(site.photos))
    expect(select_all).to_have_attribute("aria-pressed", "true")
    assert bar_text(page).startswith("5 selected")
    screenshot(page, "phone-selection-all", full_page=False)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download selected").click()
    assert download.value.suggested_filename == "Anna & Tom, 12 July (5 photos).zip"
    assert dict(zip_members(Path(download.value.path()))) == site.photos
    page.get_by_role("button", name="Clear").click()
    expect(page.locator("[data-selection-bar]")).to_be_hidden()
    expect(page.locator("[data-select]:checked")).to_have_count(0)
    expect(select_all).to_have_attribute("aria-pressed", "false")
    page.reload()
    expect(page.locator("[data-select]:checked")).to_have_count(0)


def test_keyboard_alone_selects_a_photo_and_downloads_the_selection(site, new_context):
    page = new_context("desktop").new_page()
    page.goto(site.share(site.open_token))
    expect(page.locator(".tile")).to_have_count(len(site.photos))

    def tab_to(selector: str, *, back: bool = False, limit: int = 40) -> None:
        for _ in range(limit):
            page.keyboard.press("Shift+Tab" if back else "Tab")
            if page.evaluate("(s) => document.activeElement && document.activeElement.matches(s)", selector):
                return
        raise AssertionError(f"Tab never reached {selector}")

    tab_to("[data-select-all]")
    tab_to("[data-select]")  # the first tile's check, right after its photo link
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
    page.keyboard.press("Space")
    expect(page.get_by_label("Select IMG_0001.jpg")).to_be_checked()
    tab_to("[data-select-all]", back=True)
    tab_to("[data-selection-download]")  # the bar comes right after "Select all"
    with page.expect_download() as download:
        page.keyboard.press("Enter")
    assert zip_members(Path(download.value.path())) == [("IMG_0001.jpg", site.photos["IMG_0001.jpg"])]


def test_a_selection_of_photos_the_album_no_longer_has_says_so(site, new_context):
    context = new_context("desktop")
    context.add_init_script(
        f"localStorage.setItem('photoshare:selection:{site.open_token}', JSON.stringify({{'999999': 10}}))")
    page = context.new_page()
    page.goto(site.share(site.open_token))
    assert bar_text(page).startswith("1 selected")
    page.get_by_role("button", name="Download selected").click()
    expect(page.get_by_role("alert")).to_contain_text("not in this album")


@pytest.fixture
def parts_server(app, instance: Path):
    """gunicorn where ARCHIVE_PART_MB is 4 KB: the five small photos of `site` come in parts."""
    server = LiveServer(instance, env={"ARCHIVE_PART_MB": "0.004"}, database_url=app.config["SQLALCHEMY_DATABASE_URI"])
    http("GET", f"{server.url}/healthz", timeout=120)  # a worker booted (slow on a loaded machine), not just the port
    yield server
    server.stop()


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_the_gallery_lists_the_parts_beside_download_all_and_each_downloads(
        app, site, parts_server, new_context, viewport):
    with app.app_context():
        app.config["ARCHIVE_PART_MB"] = 0.004
        parts = plans.parts_of(plans.album_plan(db.session.get(Album, site.album_id)))
        expected = [[(e.name, site.photos[e.name]) for e in part.entries] for part in parts]
    assert len(expected) >= 2
    page = new_context(viewport).new_page()
    page.goto(f"{parts_server.url}/s/{site.open_token}")
    links = page.locator("[data-parts] a")
    expect(links).to_have_count(len(expected))
    expect(links.first).to_contain_text(f"Part 1 of {len(expected)}")
    screenshot(page, f"{viewport}-album-parts", full_page=False)
    with page.expect_download() as download:
        links.nth(1).click()
    assert download.value.suggested_filename == f"Anna & Tom, 12 July (part 2 of {len(expected)}).zip"
    assert zip_members(Path(download.value.path())) == expected[1]


def test_the_selection_bar_offers_web_size_with_its_size_and_sends_the_large_jpegs(site, new_context):
    page = new_context("phone").new_page()
    page.goto(site.share(site.open_token))
    page.get_by_label("Select IMG_0001.jpg").check()
    page.get_by_label("Select IMG_0003.jpg").check()
    album = http("GET", f"{site.url}/api/share/{site.open_token}").json()
    large = {photo["filename"]: photo["sizes"]["large"] | {"id": photo["id"]} for photo in album["photos"]}
    expected_size = large["IMG_0001.jpg"]["bytes"] + large["IMG_0003.jpg"]["bytes"]
    web_size = page.get_by_role("button", name=re.compile(r"^Web size \("))
    expect(web_size).to_be_visible()
    assert f"{expected_size / 1000:.1f} KB" in web_size.inner_text(), web_size.inner_text()
    screenshot(page, "phone-selection-web-size", full_page=False)
    with page.expect_download() as download:
        web_size.click()
    assert download.value.suggested_filename == "Anna & Tom, 12 July (2 photos).zip"
    members = zip_members(Path(download.value.path()))
    assert [name for name, _ in members] == ["IMG_0001.jpg", "IMG_0003.jpg"]
    for name, data in members:
        web = http("GET", f"{site.url}/api/share/{site.open_token}/download/{large[name]['id']}?size=large").body
        assert data == web  # the web-size JPEG, not the original
        assert data != site.photos[name]
