"""The visitor's pages in every language at the narrowest common phone width (360×740): German and French
sentences are longer than English ones, and none may push the page sideways. Screenshots of each page in each
language go to test-artifacts/screenshots/ (`i18n-<page>-<language>.png`)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from photoshare.i18n import LANGUAGES
from tests.browser import checks
from tests.browser.conftest import screenshot

# "Download all" as each language says it: the page is really in that language, not English with a lang tag.
DOWNLOAD_ALL = {
    "en": "Download all", "de": "Alle herunterladen", "fr": "Tout télécharger", "es": "Descargar todo",
    "it": "Scarica tutto", "nl": "Alles downloaden",
}
PROTECTED = {
    "en": "This album is protected", "de": "Dieses Album ist geschützt", "fr": "Cet album est protégé",
    "es": "Este álbum está protegido", "it": "Questo album è protetto", "nl": "Dit album is beveiligd",
}

# Any element whose box reaches past the viewport's right edge (or is wider than it), by tag and class.
_TOO_WIDE = """() => Array.from(document.querySelectorAll("body *"))
  .filter((el) => { const box = el.getBoundingClientRect();
                    return box.width > window.innerWidth || box.right > window.innerWidth + 1; })
  .map((el) => el.tagName.toLowerCase() + "." + (el.getAttribute("class") || ""))"""


def fits(page, name: str) -> list[str]:
    """What is wrong with the page at this width: sideways scrolling, elements wider than the screen, and the
    shared layout checks (overlaps, contrast, 44px tap targets)."""
    page.wait_for_load_state("load")
    page.wait_for_function("() => Array.from(document.images).every((img) => img.complete)")
    problems = []
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    if width[0] > width[1]:
        problems.append(f"{name}: scrolls sideways ({width[0]} > {width[1]})")
    problems += [f"{name}: {element} is wider than the screen" for element in page.evaluate(_TOO_WIDE)]
    problems += [f"{name}: {line}" for line in checks.layout_problems(page, "phone")]
    screenshot(page, name)
    return problems


@pytest.mark.parametrize("language", LANGUAGES)
def test_visitor_pages_fit_a_narrow_phone_in_every_language(site, new_context, language):
    page = new_context("narrow-phone", locale=language).new_page()
    problems = []

    page.goto(site.share(site.open_token))
    expect(page.locator("html")).to_have_attribute("lang", language)
    expect(page.locator(".download-all")).to_contain_text(DOWNLOAD_ALL[language])
    problems += fits(page, f"i18n-gallery-{language}")

    page.goto(site.share(site.protected_token))
    expect(page.get_by_role("heading", level=1)).to_have_text(PROTECTED[language])
    problems += fits(page, f"i18n-password-{language}")

    with page.expect_download():
        page.goto(site.share(site.open_token) + "/prepare")
    expect(page.locator("#prepare-ready")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", language)
    problems += fits(page, f"i18n-preparing-{language}")

    assert not problems, "\n".join(problems)


def test_the_footer_menu_switches_the_language_without_javascript(site, new_context):
    """A plain form post: it works with scripts off, and the choice beats the browser's language from then on."""
    page = new_context("narrow-phone", locale="de-DE", java_script_enabled=False).new_page()
    page.set_default_timeout(30_000)  # a loaded machine: the first page of a fresh gunicorn can be slow
    page.goto(site.share(site.open_token))
    expect(page.locator(".download-all")).to_contain_text("Alle herunterladen")
    page.get_by_role("button", name="Français").click()
    expect(page).to_have_url(site.share(site.open_token))
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.locator(".download-all")).to_contain_text("Tout télécharger")
    expect(page.get_by_role("button", name="Français")).to_have_attribute("aria-current", "true")
    page.goto(site.share(site.protected_token))
    expect(page.get_by_role("heading", level=1)).to_have_text("Cet album est protégé")
