"""Sizes in a real browser: "Download all" and the viewer in both sizes, web-size-only links, and "Save to
Photos" through the Web Share API (a test script stands in for the phone's share sheet) or, without it, the
plain download."""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from pathlib import Path

from PIL import Image
from playwright.sync_api import expect

from photoshare.extensions import db
from photoshare.models import Album
from photoshare.sizes import large_key
from photoshare.storage import get_storage
from tests.browser.conftest import screenshot

# navigator.share and canShare as a phone has them: the shared File is read back (bytes digested) for the test.
FAKE_SHARE_SHEET = """
Object.defineProperty(Navigator.prototype, "canShare", {configurable: true, value: (data) =>
  Boolean(data && data.files && data.files.length && data.files.every((file) => file instanceof File))});
Object.defineProperty(Navigator.prototype, "share", {configurable: true, value: async (data) => {
  const file = data.files[0];
  const digest = await crypto.subtle.digest("SHA-256", await file.arrayBuffer());
  window.__shared = {name: file.name, type: file.type, size: file.size, count: data.files.length,
    sha256: Array.from(new Uint8Array(digest)).map((b) => b.toString(16).padStart(2, "0")).join("")};
}});
"""
NO_SHARE_SHEET = "delete Navigator.prototype.share; delete Navigator.prototype.canShare;"


def large_files(app, album_id: int) -> dict[str, bytes]:
    with app.app_context():
        result = {}
        for photo in db.session.get(Album, album_id).photos:
            with get_storage().open(large_key(photo)) as source:
                result[photo.original_filename] = source.read()
        return result


def test_download_all_and_the_viewer_offer_web_size_with_its_size(app, site, new_context):
    page = new_context("desktop").new_page()
    page.goto(site.share(site.open_token))
    original = page.get_by_role("link", name=re.compile(r"Download all \(5 photos, [\d.]+ KB\)"))
    web = page.get_by_role("link", name=re.compile(r"Web size of every photo \([\d.]+ (bytes|KB)\)"))
    expect(original).to_be_visible()
    expect(web).to_be_visible()
    expect(web).to_contain_text(re.compile(r"Web size \([\d.]+ KB\)"))
    expect(page.get_by_text("Location removed: downloaded photos carry no GPS position")).to_be_visible()
    screenshot(page, "sizes-gallery-desktop")

    with page.expect_download() as download:
        web.click()
    with zipfile.ZipFile(download.value.path()) as archive:
        assert archive.testzip() is None
        assert {name: archive.read(name) for name in archive.namelist()} == large_files(app, site.album_id)

    page.get_by_role("link", name="IMG_0002.jpg", exact=True).click()
    viewer = page.get_by_role("dialog")
    web_photo = viewer.get_by_role("link", name=re.compile(r"Web size of IMG_0002\.jpg \([\d.]+ (bytes|KB)\)"))
    expect(web_photo).to_be_visible()
    expect(viewer.get_by_role("link", name="Save to Photos")).to_be_hidden()  # for phones
    screenshot(page, "sizes-viewer-desktop", full_page=False)
    with page.expect_download() as download:
        web_photo.click()
    assert Path(download.value.path()).read_bytes() == large_files(app, site.album_id)["IMG_0002.jpg"]


def test_a_web_size_only_link_offers_web_size_alone(app, site, make_share, new_context):
    token = make_share(site.album_id, web_size_only=True)
    page = new_context("phone").new_page()
    page.goto(site.share(token))
    expect(page.get_by_role("link", name=re.compile(r"Download all \(5 photos, [\d.]+ KB, web size\)"))).to_be_visible()
    expect(page.locator("[data-size-choice]")).to_have_count(1)
    expect(page.get_by_text("Downloads are web size")).to_be_visible()
    screenshot(page, "sizes-web-size-only-phone")
    page.get_by_role("link", name="IMG_0001.jpg", exact=True).click()
    viewer = page.get_by_role("dialog")
    expect(viewer.locator("[data-viewer-download-large]")).to_have_count(0)
    with page.expect_download() as download:
        viewer.locator("[data-viewer-download]").click()
    data = Path(download.value.path()).read_bytes()
    assert data == large_files(app, site.album_id)["IMG_0001.jpg"]
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG"


def test_save_to_photos_hands_the_file_to_the_share_sheet_on_a_phone(site, new_context):
    context = new_context("phone")
    context.add_init_script(FAKE_SHARE_SHEET)
    page = context.new_page()
    page.goto(site.share(site.open_token))
    page.get_by_role("link", name="IMG_0003.jpg", exact=True).click()
    save = page.get_by_role("dialog").get_by_role("link", name="Save to Photos")
    expect(save).to_be_visible()
    screenshot(page, "sizes-viewer-save-phone", full_page=False)
    save.click()
    page.wait_for_function("() => window.__shared !== undefined")
    shared = page.evaluate("window.__shared")
    expected = site.photos["IMG_0003.jpg"]
    assert shared == {"name": "IMG_0003.jpg", "type": "image/jpeg", "size": len(expected), "count": 1,
                      "sha256": hashlib.sha256(expected).hexdigest()}


def test_save_to_photos_without_the_share_api_is_the_plain_download(site, new_context):
    context = new_context("phone")
    context.add_init_script(NO_SHARE_SHEET)
    page = context.new_page()
    page.goto(site.share(site.open_token))
    page.get_by_role("link", name="IMG_0004.jpg", exact=True).click()
    with page.expect_download() as download:
        page.get_by_role("dialog").get_by_role("link", name="Save to Photos").click()
    assert download.value.suggested_filename == "IMG_0004.jpg"
    assert Path(download.value.path()).read_bytes() == site.photos["IMG_0004.jpg"]
    assert page.evaluate("window.__shared === undefined")
