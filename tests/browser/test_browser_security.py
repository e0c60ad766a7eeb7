"""The Content-Security-Policy in Chromium: the watcher every browser test runs under does see a violation,
and another site cannot frame an owner page such as the one-button album delete."""

from __future__ import annotations

from tests.browser.conftest import log_in


def test_the_csp_watcher_reports_an_inline_style_the_policy_refuses(site, new_context, csp_watch):
    page = new_context("desktop").new_page()
    page.goto(f"{site.url}/login")
    assert csp_watch.pages_checked == [f"{site.url}/login"] and csp_watch.problems == []
    page.evaluate("document.body.setAttribute('style', 'outline: 3px solid red')")
    for _ in range(100):  # Playwright hands over the report while it waits
        if csp_watch.problems:
            break
        page.wait_for_timeout(50)
    assert [problem.split(" on ")[0] for problem in csp_watch.problems] == ["style-src-attr refused inline"]
    assert page.evaluate("getComputedStyle(document.body).outlineStyle") == "none"  # and it was refused
    csp_watch.problems.clear()  # the violation this test made on purpose


def test_another_site_cannot_frame_the_album_delete_page(site, new_context):
    page = new_context("desktop").new_page()
    log_in(page, site.url)
    target = f"{site.url}/albums/{site.album_id}/delete"
    assert page.goto(target).status == 200
    page.set_content(f'<h1>Win a prize</h1><iframe src="{target}" width="800" height="600"></iframe>')
    frame = page.frames[1]
    frame.wait_for_load_state("load")
    # Chromium shows its own error page in the frame instead of anything of the app's (the delete button,
    # or even the log-in page a frame without the owner's cookie would get).
    assert frame.locator(".site-header, form").count() == 0, frame.content()[:500]
    assert frame.url != target
