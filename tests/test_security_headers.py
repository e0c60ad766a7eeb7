"""Security headers: every kind of response from a real gunicorn carries them; HSTS only when the site is
HTTPS; the pages themselves need nothing a strict policy refuses (the browser suite runs them under it)."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from photoshare import create_app
from photoshare.models import Photo
from photoshare.share import gallery
from tests.conftest import OWNER_EMAIL, OWNER_PASSWORD, ROOT, LiveServer, base_config, csrf_token

TEMPLATES = ROOT / "photoshare" / "templates"
TILE_RATIOS_CSS = ROOT / "photoshare" / "static" / "css" / "tile-ratios.css"


def csp_directives(value: str) -> dict[str, list[str]]:
    directives = {}
    for part in value.split(";"):
        name, *sources = part.split()
        directives[name] = sources
    return directives


def header_problems(response: requests.Response) -> list[str]:
    """What is missing or too weak in one response's security headers, as readable lines."""
    headers, problems = response.headers, []
    policy = headers.get("Content-Security-Policy")
    if not policy:
        return ["no Content-Security-Policy"]
    csp = csp_directives(policy)
    expected = {"default-src": ["'none'"], "script-src": ["'self'"], "style-src": ["'self'"],
                "frame-ancestors": ["'none'"], "base-uri": ["'none'"], "form-action": ["'self'"]}
    problems += [f"CSP {name} is {csp.get(name)}" for name, sources in expected.items() if csp.get(name) != sources]
    if "unsafe" in policy or re.search(r"https?:|\*", policy):
        problems.append(f"CSP allows inline code or another origin: {policy}")
    if headers.get("X-Frame-Options") != "DENY":
        problems.append(f"X-Frame-Options: {headers.get('X-Frame-Options')}")
    if headers.get("X-Content-Type-Options") != "nosniff":
        problems.append(f"X-Content-Type-Options: {headers.get('X-Content-Type-Options')}")
    if headers.get("Referrer-Policy") not in ("same-origin", "no-referrer"):
        problems.append(f"Referrer-Policy: {headers.get('Referrer-Policy')}")
    if "Strict-Transport-Security" in headers:
        problems.append("HSTS over plain HTTP")
    return problems


def owner_session(base_url: str) -> requests.Session:
    session = requests.Session()
    token = csrf_token(session.get(f"{base_url}/login").text)
    reply = session.post(f"{base_url}/login", data={"email": OWNER_EMAIL, "password": OWNER_PASSWORD,
                                                    "csrf_token": token}, allow_redirects=False)
    assert reply.status_code == 302
    return session


def test_every_kind_of_response_carries_the_security_headers(app, make_album, make_share, live_server):
    album_id = make_album(count=2)
    token = make_share(album_id)
    url = live_server.url
    visitor, owner = requests.Session(), owner_session(url)
    photo_id = visitor.get(f"{url}/api/share/{token}").json()["photos"][0]["id"]
    download = f"{url}/api/share/{token}/download/{photo_id}"
    etag = visitor.get(download).headers["ETag"]
    answers = {
        "gallery page": (visitor.get(f"{url}/s/{token}"), 200),
        "album JSON": (visitor.get(f"{url}/api/share/{token}"), 200),
        "photo download": (visitor.get(download), 200),
        "range": (visitor.get(download, headers={"Range": "bytes=0-9"}), 206),
        "not modified": (visitor.get(download, headers={"If-None-Match": etag}), 304),
        "range not satisfiable": (visitor.get(download, headers={"Range": "bytes=999999-"}), 416),
        "thumbnail": (visitor.get(f"{url}/s/{token}/thumb/{photo_id}"), 200),
        "download all": (visitor.get(f"{url}/api/share/{token}/download-all"), 200),
        "page not found": (visitor.get(f"{url}/s/no-such-link-{'x' * 20}"), 404),
        "JSON not found": (visitor.get(f"{url}/api/share/no-such-link-{'x' * 20}"), 404),
        "redirect": (visitor.get(f"{url}/", allow_redirects=False), 302),
        "owner redirect to log in": (visitor.get(f"{url}/albums", allow_redirects=False), 302),
        "log-in page": (visitor.get(f"{url}/login"), 200),
        "form without CSRF token": (owner.post(f"{url}/albums", data={"title": "x"}), 400),
        "method not allowed": (visitor.delete(f"{url}/s/{token}"), 405),
        "owner albums": (owner.get(f"{url}/albums"), 200),
        "owner album": (owner.get(f"{url}/albums/{album_id}"), 200),
        "one-button album delete": (owner.get(f"{url}/albums/{album_id}/delete"), 200),
        "health": (visitor.get(f"{url}/healthz"), 200),
        "static file": (visitor.get(f"{url}/static/css/app.css"), 200),
    }
    report = [f"{kind}: status {response.status_code}, expected {status}"
              for kind, (response, status) in answers.items() if response.status_code != status]
    report += [f"{kind}: {problem}" for kind, (response, _) in answers.items() for problem in header_problems(response)]
    assert not report, "\n".join(report)


@pytest.mark.parametrize(("hops", "proto", "hsts"), [(1, "https", True), (1, None, False), (0, "https", False)])
def test_hsts_only_when_a_trusted_proxy_says_https(app, instance: Path, hops: int, proto: str | None, hsts: bool):
    """Through the production gunicorn settings: X-Forwarded-Proto counts only with PROXY_FIX_HOPS."""
    server = LiveServer(instance, env={"PROXY_FIX_HOPS": str(hops), "GUNICORN_WORKERS": "1", "GUNICORN_THREADS": "2"},
                        database_url=app.config["SQLALCHEMY_DATABASE_URI"], config_file=ROOT / "deploy/gunicorn.conf.py")
    try:
        headers = {"X-Forwarded-Proto": proto} if proto else {}
        reply = requests.get(f"{server.url}/login", headers=headers)
    finally:
        server.stop()
    assert reply.status_code == 200
    assert reply.headers.get("Strict-Transport-Security") == ("max-age=31536000" if hsts else None)


@pytest.mark.parametrize(("settings", "hsts"), [
    ({"BASE_URL": "https://photos.example"}, "max-age=31536000"),
    ({"BASE_URL": "https://photos.example", "HSTS_MAX_AGE": 600}, "max-age=600"),
    ({"BASE_URL": "https://photos.example", "HSTS_MAX_AGE": 0}, None),
    ({"BASE_URL": "http://photos.example"}, None),
])
def test_an_https_base_url_sends_hsts_unless_turned_off(instance: Path, settings: dict, hsts: str | None):
    app = create_app(base_config(instance) | settings)
    assert app.test_client().get("/login").headers.get("Strict-Transport-Security") == hsts


def test_images_may_come_from_the_cdn_origin_only_when_one_is_configured(instance: Path):
    cdn = {"CDN_ENABLED": True, "CDN_BASE_URL": "https://cdn.example.com/photoshare/"}
    with_cdn = create_app(base_config(instance) | cdn).test_client().get("/login")
    without = create_app(base_config(instance)).test_client().get("/login")
    csp = csp_directives(with_cdn.headers["Content-Security-Policy"])
    assert csp["img-src"] == ["'self'", "https://cdn.example.com"]
    assert csp["script-src"] == ["'self'"] and csp["connect-src"] == ["'self'"]
    assert csp_directives(without.headers["Content-Security-Policy"])["img-src"] == ["'self'"]


def test_templates_have_no_inline_script_style_or_event_handler():
    """What `script-src 'self'; style-src 'self'` would refuse; the browser suite then proves it at runtime."""
    found = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        text = path.read_text()
        for pattern in (r"\sstyle\s*=", r"<style", r"<script(?![^>]*\ssrc=)[^>]*>", r"\son[a-z]+\s*=", r"javascript:"):
            found += [f"{path.relative_to(TEMPLATES)}: {match.group(0)!r}" for match in re.finditer(pattern, text)]
    assert not found, "\n".join(found)


@functools.cache
def tile_classes() -> dict[str, float]:
    rules = re.findall(r"\.(tile-r\d+)\{--r:([0-9.]+)\}", TILE_RATIOS_CSS.read_text())
    return {name: float(value) for name, value in rules}


@given(st.integers(1, 20_000), st.integers(1, 20_000))
def test_every_tile_shape_has_its_class_in_the_stylesheet(width: int, height: int):
    photo = Photo(width=width, height=height)
    assert tile_classes()[gallery.tile_ratio_class(photo)] == gallery.tile_ratio(photo)


def test_tile_stylesheet_holds_one_class_per_hundredth_between_the_bounds():
    classes = tile_classes()
    lowest, highest = round(gallery.MIN_TILE_RATIO * 100), round(gallery.MAX_TILE_RATIO * 100)
    assert classes == {f"tile-r{n}": n / 100 for n in range(lowest, highest + 1)}
