"""The activity page in Chromium: a visitor opens the gallery and downloads in a real browser, then the owner
sees it (totals, the SVG chart, the top photo, the events), filters it, and switches the daily digest on; at
phone and desktop size, with screenshots, and not one Content-Security-Policy violation (the chart is inline
SVG drawn by the server, no script)."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from photoshare.extensions import db
from photoshare.models import ActivityEvent, Album
from tests.browser.conftest import log_in, screenshot
from tests.jobs_support import wait_until


def test_owner_sees_a_visitors_gallery_visit_and_downloads_on_the_activity_page(app, owner, site, new_context):
    visitor = new_context("phone").new_page()
    visitor.goto(site.share(site.open_token))
    expect(visitor.locator(".tile")).to_have_count(5)
    for name in ("IMG_0002.jpg", "IMG_0002.jpg", "IMG_0004.jpg"):
        with visitor.expect_download() as download:
            visitor.get_by_role("link", name=re.compile(rf"Download {re.escape(name)}")).click()
        download.value.path()  # the whole file arrived

    # Each gunicorn worker's writer flushes every second (later on a loaded machine): wait for the visit and the
    # three downloads to be in the database before the owner looks, so the page shows them on its first load.
    assert wait_for_events(app, site.album_id, count=4) == ["photo", "photo", "photo", "visit"]

    for viewport in ("desktop", "phone"):
        page = new_context(viewport).new_page()
        log_in(page, site.url)
        page.goto(f"{site.url}/albums/{site.album_id}")
        page.get_by_role("link", name="Activity").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Activity")
        expect(page.locator('[data-total="visits"]')).to_have_text("1")
        expect(page.locator('[data-total="visitors"]')).to_have_text("1")
        expect(page.locator('[data-total="downloads"]')).to_have_text("3")
        expect(page.locator("#downloads-chart rect.activity-bar")).to_have_count(1)
        expect(page.locator("#downloads-chart rect.activity-bar")).to_have_attribute("data-count", "3")
        expect(page.locator("#top-photos li").first).to_contain_text("IMG_0002.jpg")
        expect(page.locator("#top-photos li").first).to_contain_text("2 downloads")
        expect(page.locator("#events-table tbody tr")).to_have_count(4)
        expect(page.locator('#events-table tr[data-kind="visit"]')).to_contain_text("127.0.0.0/24")
        screenshot(page, f"{viewport}-owner-activity")

    page.get_by_label("Kind").select_option("photo")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#events-table tbody tr")).to_have_count(3)
    expect(page.locator('#events-table tr[data-kind="visit"]')).to_have_count(0)
    assert "kind=photo" in page.get_by_role("link", name="Download CSV").get_attribute("href")
    screenshot(page, "phone-owner-activity-filtered")

    page.goto(f"{site.url}/albums/{site.album_id}")
    checkbox = page.get_by_label("E-mail me a daily summary of this album's activity")
    expect(checkbox).not_to_be_checked()
    checkbox.check()
    page.locator("#digest").get_by_role("button", name="Save").click()
    expect(page.get_by_label("E-mail me a daily summary of this album's activity")).to_be_checked()
    with app.app_context():
        assert db.session.get(Album, site.album_id).daily_digest is True



def wait_for_events(app, album_id: int, count: int) -> list[str]:
    """The kinds of the album's recorded events, sorted, once there are `count` of them (30 s at most)."""
    def kinds() -> list[str]:
        with app.app_context():
            return sorted(db.session.execute(
                db.select(ActivityEvent.kind).where(ActivityEvent.album_id == album_id)).scalars())

    return wait_until(lambda: len(found := kinds()) >= count and found, timeout=30, what=f"{count} activity events")
