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


def test_gallery_tiles_keep_their_photos_shapes_without_inline_styles(site, new_context):
    """The shapes come from classes in tile-ratios.css now that `style="--r: …"` is refused."""
    page = new_context("desktop").new_page()
    page.goto(site.share(site.open_token))
    page.wait_for_function("() => Array.from(document.images).every((img) => img.complete)")
    tiles = page.evaluate("""() => Array.from(document.querySelectorAll('.tile')).map((tile) => {
      const box = tile.querySelector('img').getBoundingClientRect();
      return [getComputedStyle(tile).getPropertyValue('--r').trim(), box.width / box.height];
    })""")
    # album_photos(): 160x120, 120x160, 140x140, 200x100, 150x100
    assert [ratio for ratio, _ in tiles] == ["1.33", "0.75", "1", "2", "1.5"]
    for ratio, shown in tiles:
        assert abs(shown - float(ratio)) < 0.02, tiles
