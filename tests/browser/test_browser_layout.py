"""Every main page at a phone (390×844) and a desktop (1440×900) viewport: no sideways scrolling, no controls
on top of each other, WCAG AA text contrast, alt text, sized lazy thumbnails, 44px tap targets on the phone.
Screenshots of each page go to test-artifacts/screenshots/ for a reviewer."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser import checks
from tests.browser.conftest import SHARE_PASSWORD, log_in, screenshot


def settle(page) -> None:
    """Wait until the page's images (thumbnails included) have arrived, so checks and pictures are final."""
    page.wait_for_load_state("load")
    page.wait_for_function("() => Array.from(document.images).every((img) => img.complete)")


def visit_visitor_pages(page, site, viewport: str) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = {}

    def check(name: str) -> None:
        settle(page)
        problems[name] = checks.layout_problems(page, viewport)
        screenshot(page, f"{viewport}-{name}", full_page=name != "viewer")

    response = page.goto(site.share(site.protected_token))
    assert response.status == 401 or response.status == 403, response.status
    check("password")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="View photos").click()
    expect(page.get_by_role("alert")).to_be_visible()
    check("password-wrong")
    page.get_by_label("Password").fill(SHARE_PASSWORD)
    page.get_by_role("button", name="View photos").click()
    expect(page.locator(".tile")).to_have_count(len(site.photos))

    page.goto(site.share(site.open_token))
    expect(page.locator(".tile")).to_have_count(len(site.photos))
    check("gallery")
    page.locator(".tile-link").first.click()
    expect(page.locator("dialog[open]")).to_be_visible()
    page.wait_for_function("() => document.querySelector('[data-viewer-image]').naturalWidth > 0")
    check("viewer")
    page.keyboard.press("Escape")
    expect(page.locator("dialog[open]")).to_have_count(0)
    page.wait_for_function("() => location.hash === ''")  # the viewer's history entry is gone (history.back())

    for name, token, status in (
        ("expired", site.expired_token, 410),
        ("revoked", site.revoked_token, 410),
        ("not-found", "no-such-link-" + "x" * 20, 404),
    ):
        response = page.goto(site.share(token))
        assert response.status == status, (name, response.status)
        check(name)

    # The preparing screen (reached directly: this album is below the threshold), once its ZIP is ready.
    with page.expect_download():
        page.goto(site.share(site.open_token) + "/prepare")
    expect(page.locator("#prepare-ready")).to_be_visible()
    check("preparing-ready")
    response = page.goto(site.url + site.stale_download_path)
    assert response.status == 410
    expect(page.get_by_role("button", name="Prepare the download again")).to_be_visible()
    check("download-link-expired")

    # The rate-limit page: wrong passwords in the address until the limit answers 429 (10 a minute per client
    # and link, counted in each gunicorn worker). Without the access cookie, which would let the visitor in.
    page.context.clear_cookies()
    wrong = site.share(site.protected_token) + "?password=not-the-password"
    statuses: list[int] = []
    while len(statuses) < 30 and 429 not in statuses:
        statuses.append(page.goto(wrong).status)
    assert statuses[-1] == 429 and set(statuses[:-1]) == {403}, statuses
    expect(page.get_by_role("heading", name="Too many attempts")).to_be_visible()
    check("too-many-attempts")
    return problems


def visit_owner_pages(page, site, viewport: str) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = {}

    def check(name: str) -> None:
        settle(page)
        problems[name] = checks.layout_problems(page, viewport)
        screenshot(page, f"{viewport}-{name}")

    page.goto(f"{site.url}/login")
    check("owner-login")
    log_in(page, site.url)
    check("owner-albums")
    page.get_by_role("link", name="Anna & Tom, 12 July").first.click()
    expect(page.locator(".owner-photo")).to_have_count(len(site.photos))
    check("owner-album")
    page.goto(f"{site.url}/albums/{site.album_id}/shares")
    check("owner-shares")
    page.get_by_role("link", name="Account").click()
    check("owner-account")
    page.get_by_label("Current password").fill("not my password")
    page.get_by_label("New password", exact=True).fill("a long new password")
    page.get_by_label("New password again").fill("a long new password")
    page.get_by_role("button", name="Change password").click()
    expect(page.locator(".owner-field-error")).to_have_text("That is not your current password.")
    check("owner-account-error")
    return problems


@pytest.mark.parametrize("viewport", ["phone", "desktop"])
def test_main_pages_fit_the_screen_and_pass_accessibility_checks(site, new_context, csp_watch, viewport):
    context = new_context(viewport)
    requested: list[str] = []
    context.on("request", lambda request: requested.append(request.url))
    page = context.new_page()
    problems = visit_visitor_pages(page, site, viewport) | visit_owner_pages(page, site, viewport)
    report = "\n".join(f"{name}: {line}" for name, lines in problems.items() for line in lines)
    assert not report, f"layout/accessibility problems at {viewport}:\n{report}"
    # Scripts, styles, fonts and images all come from the app itself: it works on a closed network.
    elsewhere = [url for url in requested if not url.startswith((site.url + "/", "data:", "blob:"))]
    assert not elsewhere and len(requested) > 20, elsewhere
    # Every page above came with the Content-Security-Policy (new_context fails on a violation of it).
    assert len(csp_watch.pages_checked) >= 15 and not csp_watch.problems, csp_watch.problems
