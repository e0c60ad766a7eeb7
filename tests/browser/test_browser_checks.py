"""The page checks themselves: each one finds the problem it is for, and a clean page passes them all.

Without this, a check that silently measured nothing would make every layout test pass.
"""

from __future__ import annotations

from tests.browser import checks

STYLE = "<style>body{margin:0;font:16px sans-serif;background:#fff;color:#111} button{height:48px}</style>"
CLEAN = STYLE + """
<p>Readable text <a href="#">with an inline link</a>.</p>
<button>One</button> <button>Two</button>
<img src="data:," alt="A photo" width="10" height="10" loading="lazy">
"""
BROKEN = STYLE + """
<div style="width:2000px">too wide</div>
<button style="position:absolute;top:0;left:0;width:100px">Under</button>
<button style="position:absolute;top:10px;left:50px;width:100px">Over</button>
<p style="color:#aaa">pale grey text on white</p>
<div style="background:#1d4ed8"><span style="color:#2a4fc0">blue on blue</span></div>
<img src="data:," width="10" height="10">
<img src="data:," alt="lazy" loading="lazy">
<button style="height:30px">Small</button>
"""


def test_page_checks_find_each_problem_and_pass_a_clean_page(new_context):
    page = new_context("phone").new_page()
    page.set_content(CLEAN)
    assert checks.layout_problems(page, "phone") == []
    assert checks.contrast(page)["checked"] >= 3
    assert checks.overlapping_controls(page)["count"] == 3

    page.set_content(BROKEN)
    problems = "\n".join(checks.layout_problems(page, "phone"))
    assert "scrolls sideways" in problems
    assert '"Under" overlaps <button> "Over"' in problems
    assert '"pale grey text on white": 2.32:1 < 4.5:1' in problems
    assert '"blue on blue"' in problems
    assert "image without alt text" in problems
    assert "lazy image without width/height" in problems
    assert '"Small" is 30.0px tall' in problems


def test_a_modal_dialog_hides_the_page_behind_it_from_the_checks(new_context):
    page = new_context("desktop").new_page()
    page.set_content(
        STYLE + '<button style="position:absolute;top:0;left:0;width:200px">Behind</button>'
        '<dialog><button>Close</button></dialog>'
    )
    page.evaluate("document.querySelector('dialog').showModal()")
    assert checks.overlapping_controls(page) == {"count": 1, "problems": []}
