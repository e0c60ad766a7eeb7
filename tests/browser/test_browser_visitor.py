"""A visitor in a real browser: password, gallery, viewer, downloads, keyboard only, the preparing screen."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

from playwright.sync_api import expect

from tests.browser.conftest import SHARE_PASSWORD, album_photos, screenshot


def zip_contents(path: Path) -> dict[str, bytes]:
    """Every member of a ZIP file by name, after checking each member's CRC (testzip)."""
    with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as archive:
        assert archive.testzip() is None
        return {name: archive.read(name) for name in archive.namelist()}


def viewer_position(page) -> str:
    return page.locator("[data-viewer-position]").inner_text()


def test_visitor_unlocks_the_album_views_photos_and_downloads_one_and_all(site, new_context):
    page = new_context("desktop").new_page()
    response = page.goto(site.share(site.protected_token))
    assert response.status in (401, 403)
    expect(page.get_by_role("heading", name="This album is protected")).to_be_visible()

    page.get_by_label("Password").fill("not the password")
    with page.expect_response(lambda r: r.request.method == "POST") as wrong:
        page.get_by_role("button", name="View photos").click()
    assert wrong.value.status == 403
    expect(page.get_by_role("alert")).to_contain_text("not correct")
    expect(page.locator(".tile")).to_have_count(0)

    page.get_by_label("Password").fill(SHARE_PASSWORD)
    page.get_by_role("button", name="View photos").click()
    expect(page.get_by_role("heading", name="Anna & Tom, 12 July")).to_be_visible()
    expect(page.locator(".tile")).to_have_count(len(site.photos))
    expect(page.get_by_role("link", name=re.compile(r"Download all \(5 photos, [\d.]+ KB\)"))).to_be_visible()

    # The viewer: opens on the photo clicked, steps with the arrow keys, closes with Escape.
    page.get_by_role("link", name="IMG_0002.jpg", exact=True).click()
    viewer = page.get_by_role("dialog")
    expect(viewer).to_be_visible()
    expect(page.locator("[data-viewer-title]")).to_have_text("IMG_0002.jpg")
    expect(page.locator("[data-viewer-position]")).to_have_text("Photo 2 of 5")
    page.wait_for_function("() => document.querySelector('[data-viewer-image]').naturalWidth > 0")
    page.keyboard.press("ArrowRight")
    expect(page.locator("[data-viewer-title]")).to_have_text("IMG_0003.jpg")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    expect(page.locator("[data-viewer-position]")).to_have_text("Photo 1 of 5")
    expect(page.locator("[data-viewer-image]")).to_have_attribute("alt", "IMG_0001.jpg")

    # One photo from the viewer: the original bytes under the original name.
    with page.expect_download() as download:
        viewer.get_by_role("link", name=re.compile("Download IMG_0001.jpg")).click()
    assert download.value.suggested_filename == "IMG_0001.jpg"
    assert Path(download.value.path()).read_bytes() == site.photos["IMG_0001.jpg"]
    page.keyboard.press("Escape")
    expect(viewer).to_be_hidden()
    page.wait_for_function("() => location.hash === ''")

    # One photo from its tile.
    with page.expect_download() as download:
        page.get_by_role("link", name=re.compile(r"Download IMG_0004\.jpg")).click()
    assert Path(download.value.path()).read_bytes() == site.photos["IMG_0004.jpg"]

    # Everything: a valid ZIP holding every photo, byte for byte.
    with page.expect_download() as download:
        page.get_by_role("link", name=re.compile("Download all")).click()
    assert download.value.suggested_filename.endswith(".zip")
    assert zip_contents(Path(download.value.path())) == site.photos


def test_keyboard_alone_reaches_download_all_and_a_photo_and_drives_the_viewer(site, new_context):
    page = new_context("desktop").new_page()
    page.goto(site.share(site.open_token))
    expect(page.locator(".tile")).to_have_count(len(site.photos))

    def tab_to(selector: str, limit: int = 40) -> None:
        for _ in range(limit):
            page.keyboard.press("Tab")
            if page.evaluate("(s) => document.activeElement && document.activeElement.matches(s)", selector):
                return
        raise AssertionError(f"Tab never reached {selector}")

    def focus_ring() -> str:
        return page.evaluate("getComputedStyle(document.activeElement).outlineStyle")

    tab_to("a[data-download-all]")
    assert focus_ring() != "none", "the focused Download all link shows no focus ring"
    tab_to(".tile-link")
    assert focus_ring() != "none", "the focused photo shows no focus ring"
    first = page.evaluate("document.activeElement.dataset.name")

    page.keyboard.press("Enter")
    expect(page.get_by_role("dialog")).to_be_visible()
    expect(page.locator("[data-viewer-title]")).to_have_text(first)
    page.keyboard.press("ArrowRight")
    expect(page.locator("[data-viewer-position]")).to_have_text("Photo 2 of 5")
    # Tab stays inside the open viewer (a modal dialog).
    for _ in range(6):
        page.keyboard.press("Tab")
        assert page.evaluate("!!document.activeElement.closest('dialog') || document.activeElement === document.body")
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_be_hidden()
    # Focus comes back to the photo the visitor ended on.
    expect(page.locator(".tile-link:focus")).to_have_attribute("data-number", "2")


def test_expired_revoked_and_unknown_links_show_their_own_pages(site, new_context):
    page = new_context("phone").new_page()
    response = page.goto(site.share(site.expired_token))
    assert response.status == 410
    expect(page.get_by_role("heading", level=1)).to_have_text("This link has expired")
    expect(page.locator(".tile")).to_have_count(0)

    response = page.goto(site.share(site.revoked_token))
    assert response.status == 410
    expect(page.get_by_role("heading", level=1)).to_have_text("This link has been turned off")

    response = page.goto(site.share("x" * 43))
    assert response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Link not found")
    assert "Traceback" not in page.content()


def test_large_album_goes_through_the_preparing_screen_to_a_valid_zip(
    make_album, make_share, small_limits_server, new_context
):
    photos = album_photos(6)  # PREPARE_THRESHOLD=3 on this server
    token = make_share(make_album(photos, title="Wedding"))
    context = new_context("desktop")
    context.add_init_script(
        """
        window.__progress = [];
        document.addEventListener("DOMContentLoaded", () => {
          const bar = document.getElementById("prepare-bar");
          if (!bar) return;
          window.__progress.push(Number(bar.value));
          new MutationObserver(() => window.__progress.push(Number(bar.value)))
            .observe(bar, {attributes: true, attributeFilter: ["value"]});
        });
        """
    )
    page = context.new_page()
    page.goto(f"{small_limits_server.url}/s/{token}")
    with page.expect_download(timeout=30_000) as download:
        page.get_by_role("link", name=re.compile("Download all")).click()
        page.wait_for_url(re.compile(r"/s/[^/]+/prepare"))
        expect(page.get_by_role("progressbar")).to_be_visible()
        screenshot(page, "desktop-large-album-preparing")
    assert zip_contents(Path(download.value.path())) == photos

    expect(page.get_by_role("progressbar")).to_have_attribute("value", "100")
    expect(page.locator("#prepare-ready")).to_be_visible()
    assert re.search(r"/d/", page.locator("#prepare-link").get_attribute("href"))
    progress = page.evaluate("window.__progress")
    assert progress and progress[-1] == 100 and progress == sorted(progress), progress
    screenshot(page, "desktop-large-album-ready")

    # A phone opening the same album's preparing screen gets the ZIP already made.
    phone = new_context("phone").new_page()
    with phone.expect_download(timeout=30_000) as download:
        phone.goto(f"{small_limits_server.url}/s/{token}/prepare")
        expect(phone.get_by_role("progressbar")).to_be_visible()
    assert zip_contents(Path(download.value.path())) == photos
    expect(phone.locator("#prepare-ready")).to_be_visible()
    screenshot(phone, "phone-large-album-ready")


def test_failed_preparation_says_why_and_try_again_downloads_the_zip(
    app, make_album, make_share, small_limits_server, new_context
):
    from photoshare import albums
    from photoshare.extensions import db
    from photoshare.models import Album

    photos = album_photos(5)  # above PREPARE_THRESHOLD=3: the preparing screen
    album_id = make_album(photos, title="Picnic")
    token = make_share(album_id)
    with app.app_context():
        photo = db.session.get(Album, album_id).photos[2]
        name, stored = photo.original_filename, Path(app.config["UPLOAD_DIR"], albums.photo_key(photo))
    original = stored.read_bytes()
    stored.unlink()  # the job cannot read it: it fails in words a visitor understands

    page = new_context("phone").new_page()
    page.goto(f"{small_limits_server.url}/s/{token}/prepare")
    expect(page.get_by_role("alert")).to_contain_text(name)
    retry = page.get_by_role("button", name="Try again")
    expect(retry).to_be_visible()
    assert "Traceback" not in page.content()
    screenshot(page, "phone-prepare-failed")

    stored.write_bytes(original)  # the owner fixed it: the retry button prepares a new ZIP
    with page.expect_download(timeout=30_000) as download:
        retry.click()
    assert zip_contents(Path(download.value.path())) == photos
    expect(page.locator("#prepare-ready")).to_be_visible()
    expect(page.get_by_role("alert")).to_be_hidden()
    expect(retry).to_be_hidden()


def test_large_album_gallery_loads_photos_a_page_at_a_time(make_album, make_share, small_limits_server, new_context):
    token = make_share(make_album(album_photos(10), title="Big day"))  # GALLERY_PAGE_SIZE=4 on this server
    page = new_context("phone").new_page()
    response = page.goto(f"{small_limits_server.url}/s/{token}")
    assert response.text().count('<li class="tile ') == 4  # the page itself ships one page of photos
    expect(page.get_by_role("link", name=re.compile(r"Download all \(10 photos"))).to_be_visible()

    # The viewer walks past the last loaded photo: the next page arrives on the way.
    page.locator(".tile-link").nth(3).click()
    expect(page.locator("[data-viewer-position]")).to_have_text("Photo 4 of 10")
    page.keyboard.press("ArrowRight")
    expect(page.locator("[data-viewer-position]")).to_have_text("Photo 5 of 10")
    page.keyboard.press("Escape")

    # Scrolling to the end loads the rest (near the end of the list it starts by itself); nothing twice.
    for _ in range(5):
        page.mouse.wheel(0, 5000)
        page.wait_for_timeout(100)
    expect(page.locator(".tile")).to_have_count(10)
    expect(page.locator("[data-pager-status]")).to_have_text("All 10 photos shown")
    numbers = page.eval_on_selector_all(".tile-link", "links => links.map((a) => Number(a.dataset.number))")
    assert numbers == list(range(1, 11))


def test_phone_viewer_follows_a_swipe(site, new_context):
    page = new_context("phone").new_page()
    page.goto(site.share(site.open_token))
    page.locator(".tile-link").first.click()
    expect(page.locator("[data-viewer-position]")).to_have_text("Photo 1 of 5")
    touch = page.context.new_cdp_session(page)

    def swipe(from_x: int, to_x: int, y: int = 420) -> None:
        touch.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": from_x, "y": y}]})
        for x in range(from_x, to_x, (to_x - from_x) // 5):
            touch.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
        touch.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})

    swipe(330, 60)
    expect(page.locator("[data-viewer-position]")).to_have_text("Photo 2 of 5")
    swipe(330, 60)
    expect(page.locator("[data-viewer-position]")).to_have_text("Photo 3 of 5")
    swipe(60, 330)
    expect(page.locator("[data-viewer-position]")).to_have_text("Photo 2 of 5")
