"""The owner in a real browser: log in, make an album, upload (one file corrupt), share with a password, copy."""

from __future__ import annotations

import os
import re

from playwright.sync_api import expect

from tests.browser.conftest import album_photos, log_in, screenshot


def test_owner_uploads_with_one_corrupt_file_then_shares_with_a_password_and_copies_the_link(
    app, owner, live_server, new_context
):
    context = new_context("desktop", permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    log_in(page, live_server.url)

    page.get_by_label("New album").fill("Miller family, 3 May")
    page.get_by_role("button", name="Create album").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Miller family, 3 May")

    good = album_photos(3)
    corrupt = b"\xff\xd8\xff\xe0" + os.urandom(2000)  # starts like a JPEG, is not one
    files = [{"name": name, "mimeType": "image/jpeg", "buffer": data} for name, data in good.items()]
    files.insert(1, {"name": "broken.jpg", "mimeType": "image/jpeg", "buffer": corrupt})
    page.locator("input[type=file]").set_input_files(files)

    summary = page.locator("[data-owner-upload-summary]")
    expect(summary).to_contain_text("3 photos uploaded, 1 file not uploaded", timeout=20_000)
    expect(page.locator(".owner-upload-item")).to_have_count(4)
    expect(page.locator(".owner-upload-item[data-status=ok]")).to_have_count(3)
    failed = page.locator(".owner-upload-item[data-status=error]")
    expect(failed).to_have_count(1)
    expect(failed.locator(".owner-upload-name")).to_have_text("broken.jpg")
    expect(page.locator(".owner-upload-error")).to_have_count(1)
    message = page.locator(".owner-upload-error").inner_text()
    assert 10 < len(message) < 200 and "Traceback" not in message, message
    screenshot(page, "desktop-owner-upload-result")

    with app.app_context():
        from photoshare.extensions import db
        from photoshare.models import Album

        album = db.session.execute(db.select(Album).where(Album.title == "Miller family, 3 May")).scalar_one()
        assert sorted(photo.original_filename for photo in album.photos) == sorted(good)
        album_id = album.id

    page.get_by_role("link", name="Show the new photos").click()
    expect(page.locator(".owner-photo")).to_have_count(3)

    page.get_by_role("link", name=re.compile("^Share links")).click()
    page.get_by_label("Password (optional)").fill("sunflower-17")
    page.get_by_label("Expires after").fill("7")
    page.get_by_role("button", name="Create link").click()
    new_link = page.locator(".owner-link-new")
    expect(new_link).to_have_count(1)
    expect(new_link.locator(".owner-badges")).to_contain_text("Password protected")
    expect(new_link.locator(".owner-badges")).to_contain_text("Active")

    new_link.get_by_role("button", name="Copy link").click()
    expect(new_link.locator(".owner-copy-status")).to_have_text("Link copied to the clipboard.")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == new_link.locator("input[readonly]").input_value()
    assert re.fullmatch(re.escape(live_server.url) + r"/s/[A-Za-z0-9_-]{22,}", copied), copied

    with app.app_context():
        from photoshare.extensions import db
        from photoshare.models import ShareLink

        link = db.session.execute(db.select(ShareLink).where(ShareLink.token == copied.rsplit("/", 1)[1])).scalar_one()
        assert link.album_id == album_id and link.password_hash and link.expires_at is not None

    # The copied link works for a visitor: the password form first, then the three photos.
    visitor = new_context("phone").new_page()
    response = visitor.goto(copied)
    assert response.status in (401, 403)
    visitor.get_by_label("Password").fill("sunflower-17")
    visitor.get_by_role("button", name="View photos").click()
    expect(visitor.locator(".tile")).to_have_count(3)
