"""Browser fixtures: Debian's Chromium driven by Playwright against the app under a real gunicorn.

One browser for the whole run (starting Chromium is the slow part), a fresh context (cookies, storage,
permissions, downloads) for every test. `playwright install` cannot download browsers here, so the test
command installs `chromium` with apt-get and we launch it by its path.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from photoshare.models import utcnow
from tests.conftest import OWNER_EMAIL, OWNER_PASSWORD, ROOT, LiveServer, make_jpeg

CHROMIUM = os.environ.get("PHOTOSHARE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 390, "height": 844}
NARROW_PHONE = {"width": 360, "height": 740}  # the narrowest common phone: long German and French words must fit
DESKTOP = {"width": 1440, "height": 900}
VIEWPORTS = {"phone": PHONE, "narrow-phone": NARROW_PHONE, "desktop": DESKTOP}
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
SHARE_PASSWORD = "blue-harbour-42"


@pytest.fixture(scope="session")
def playwright_driver():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright_driver):
    """Chromium from Debian, headless, with a fresh temporary profile (Playwright's own per launch)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)", pytrace=False)
    browser = playwright_driver.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture(scope="session", autouse=True)
def screenshot_folder() -> Path:
    """test-artifacts/screenshots/, emptied once per run so a reviewer only sees this run's pictures."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):
        old.unlink()
    return SCREENSHOTS


# Reports every Content-Security-Policy violation in any frame to Python, from the first script on a page.
_REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => window.__cspViolation(
  `${event.effectiveDirective} refused ${event.blockedURI || "inline"} on ${event.documentURI}`
  + (event.sample ? ` (${event.sample})` : "")));
"""


class CspWatch:
    """What a browser context saw: documents from the app without the policy, and violations of it."""

    def __init__(self) -> None:
        self.pages_checked: list[str] = []
        self.problems: list[str] = []

    def attach(self, context) -> None:
        context.expose_binding("__cspViolation", lambda _source, text: self.problems.append(text))
        context.add_init_script(_REPORT_CSP_VIOLATIONS)
        context.on("response", self._check_document)

    def _check_document(self, response) -> None:
        if response.request.resource_type != "document" or not response.url.startswith("http://127.0.0.1:"):
            return
        self.pages_checked.append(response.url)
        policy = response.headers.get("content-security-policy") or ""
        if "default-src 'none'" not in policy or "frame-ancestors 'none'" not in policy:
            self.problems.append(f"{response.status} {response.url}: Content-Security-Policy {policy!r}")


@pytest.fixture
def csp_watch() -> CspWatch:
    return CspWatch()


@pytest.fixture
def new_context(browser, csp_watch: CspWatch) -> Iterator[Callable[..., Any]]:
    """new_context(viewport="phone"|"narrow-phone"|"desktop", **options): a fresh browser context, closed after
    the test (locale="de-DE" makes it a German browser).

    Every page the app serves in it must carry the Content-Security-Policy, and nothing may violate it: the
    test fails at teardown otherwise (`csp_watch` holds what was seen)."""
    contexts = []

    def factory(viewport: str = "desktop", **options: Any):
        phone = viewport.endswith("phone")
        context = browser.new_context(
            viewport=VIEWPORTS[viewport],
            accept_downloads=True,
            is_mobile=phone,
            has_touch=phone,
            device_scale_factor=2 if phone else 1,
            **{"locale": "en-GB", "timezone_id": "Europe/Berlin", **options},  # locale: the Accept-Language sent
        )
        context.set_default_timeout(10_000)
        csp_watch.attach(context)
        contexts.append(context)
        return context

    yield factory
    for context in contexts:
        context.close()
    assert not csp_watch.problems, "Content-Security-Policy problems:\n" + "\n".join(csp_watch.problems)


# Headless Chromium may leave a CSS transition (progress bars) half-way in a picture: show the end state.
_NO_TRANSITIONS = "*, *::before, *::after, progress::-webkit-progress-value { transition: none !important; }"


def screenshot(page, name: str, *, full_page: bool = True) -> Path:
    """Save the page as test-artifacts/screenshots/<name>.png for a reviewer (the viewport only for the
    viewer, a modal dialog that covers the screen and not the page behind it)."""
    path = SCREENSHOTS / f"{name}.png"
    # A constructed style sheet: the page's policy (style-src 'self') refuses an added <style> element.
    page.evaluate("""(css) => {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(css);
      document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
    }""", _NO_TRANSITIONS)
    page.screenshot(path=str(path), full_page=full_page, animations="disabled")
    return path


@dataclass
class Site:
    """Albums and share links for the browser tests, served by a real gunicorn at `url`."""

    url: str
    album_id: int
    photos: dict[str, bytes]
    open_token: str
    protected_token: str
    expired_token: str
    revoked_token: str
    stale_download_path: str  # a prepared download's signed link, issued two days ago: 410

    def share(self, token: str) -> str:
        return f"{self.url}/s/{token}"


def album_photos(count: int = 5) -> dict[str, bytes]:
    """Distinct real JPEGs in a few shapes (landscape, portrait, square) so the grid is not uniform."""
    shapes = [(160, 120), (120, 160), (140, 140), (200, 100), (150, 100)]
    photos = {}
    for i in range(count):
        width, height = shapes[i % len(shapes)]
        photos[f"IMG_{i + 1:04d}.jpg"] = make_jpeg(width, height, color=(40 + i * 35 % 200, 120, 200 - i * 20 % 150))
    return photos


@pytest.fixture
def site(app, make_album, make_share, live_server) -> Site:
    """One album of five photos with an open, a password-protected, an expired and a revoked link."""
    from photoshare.access import find_share, revoke_share_link
    from photoshare.delivery import links

    photos = album_photos()
    album_id = make_album(photos, title="Anna & Tom, 12 July")
    open_token = make_share(album_id, expires_at=utcnow() + timedelta(days=7))
    revoked = make_share(album_id)
    with app.app_context():
        revoke_share_link(find_share(revoked))
        link = find_share(open_token)
        grant = links.Grant(album_id=album_id, version=link.album.version, share_id=link.id)
        stale = links.PATH_PREFIX + links.sign(grant, issued_at=time.time() - 2 * 86400)
    return Site(
        url=live_server.url,
        album_id=album_id,
        photos=photos,
        open_token=open_token,
        protected_token=make_share(album_id, password=SHARE_PASSWORD),
        expired_token=make_share(album_id, expires_at=utcnow() - timedelta(hours=1)),
        revoked_token=revoked,
        stale_download_path=stale,
    )


SMALL_LIMITS = {"PREPARE_THRESHOLD": "3", "GALLERY_PAGE_SIZE": "4"}


@pytest.fixture
def small_limits_server(app, instance: Path) -> Iterator[LiveServer]:
    """gunicorn where a "large" album is a small one: "Download all" of more than 3 photos goes through the
    preparing page, and the gallery shows 4 photos a page."""
    server = LiveServer(instance, env=SMALL_LIMITS, database_url=app.config["SQLALCHEMY_DATABASE_URI"])
    yield server
    server.stop()


def log_in(page, base_url: str) -> None:
    """The owner logs in through the real form."""
    page.goto(f"{base_url}/login")
    page.get_by_label("E-mail").fill(OWNER_EMAIL)
    page.get_by_label("Password").fill(OWNER_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/albums")
