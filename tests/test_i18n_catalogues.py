"""The catalogues are complete and every template string is marked: checked on a fresh copy of the repository
(only what git tracks, so no compiled .mo file), through the same `make messages` / `make catalogs` an
engineer runs after changing text."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from babel.support import Translations
from jinja2 import Environment

from photoshare.i18n import LANGUAGES

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "photoshare" / "templates"
TRANSLATED = [code for code in LANGUAGES if code != "en"]
BIN = Path(sys.executable).parent
# Words that are the same in every language: the product's name.
UNTRANSLATED_WORDS = {"Photoshare"}
CHECKED_ATTRIBUTES = {"title", "placeholder", "aria-label", "alt"}


@pytest.fixture(scope="module")
def fresh_clone(tmp_path_factory) -> Path:
    """The tracked files (as a fresh clone has them), with the working tree's changes, and nothing compiled."""
    clone = tmp_path_factory.mktemp("clone")
    tracked = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT, check=True,
        capture_output=True,
    ).stdout.decode().split("\0")
    for name in filter(None, tracked):
        source = ROOT / name
        if source.is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, clone / name)
    assert not list(clone.rglob("*.mo")), ".mo files are built, never tracked"
    return clone


def make(clone: Path, target: str) -> str:
    """`make target` in the clone, with this venv's tools (the install step itself is marked done)."""
    result = subprocess.run(
        ["make", "-s", f"BIN={BIN}", "-o", f"{BIN}/.installed", target], cwd=clone, capture_output=True, text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def test_every_message_is_translated_in_every_catalogue(fresh_clone):
    """`make messages` extracts today's strings and updates each catalogue: any string added without a translation
    (or left fuzzy by the update) makes `pybabel compile --statistics` say less than 100 %."""
    make(fresh_clone, "messages")
    template = read_po((fresh_clone / "photoshare/translations/messages.pot").open("rb"))
    expected = len([message for message in template if message.id])
    assert expected > 250
    output = make(fresh_clone, "catalogs")
    for code in TRANSLATED:
        line = next((line for line in output.splitlines() if f"/{code}/LC_MESSAGES" in line and "translated" in line), "")
        assert f"{expected} of {expected} messages (100%) translated" in line, output
        catalogue = read_po((fresh_clone / f"photoshare/translations/{code}/LC_MESSAGES/messages.po").open("rb"))
        assert catalogue.num_plurals >= 2
        for message in catalogue:
            if not message.id:
                continue
            assert not message.fuzzy, f"{code}: fuzzy translation of {message.id!r}"
            forms = message.string if isinstance(message.string, tuple) else (message.string,)
            assert all(forms) and len(forms) == (catalogue.num_plurals if message.pluralizable else 1), (
                f"{code}: {message.id!r} lacks a form"
            )
        problems = [(message.id, [str(error) for error in errors]) for message, errors in catalogue.check()]
        assert problems == [], f"{code}: placeholders differ from the English: {problems}"


def test_a_fresh_clone_gets_compiled_catalogues_from_the_install_step(fresh_clone):
    make(fresh_clone, "catalogs")
    for code in TRANSLATED:
        compiled = fresh_clone / f"photoshare/translations/{code}/LC_MESSAGES/messages.mo"
        assert compiled.is_file(), f"make deps leaves no {compiled}"
        translations = Translations.load(str(fresh_clone / "photoshare/translations"), [code])
        assert translations.gettext("Download all") not in ("", "Download all")
    german = Translations.load(str(fresh_clone / "photoshare/translations"), ["de"])
    assert german.ngettext("%(num)s photo", "%(num)s photos", 5) % {"num": 5} == "5 Fotos"


def test_a_missing_translation_fails_the_check(tmp_path, fresh_clone):
    """The check above can fail: a catalogue with one message left empty is reported below 100 %."""
    broken = tmp_path / "translations"
    shutil.copytree(fresh_clone / "photoshare/translations", broken)
    po = broken / "de/LC_MESSAGES/messages.po"
    text = po.read_text()
    po.write_text(text.replace('msgstr "Alle herunterladen"', 'msgstr ""', 1))
    result = subprocess.run(
        [BIN / "pybabel", "compile", "--statistics", "-d", broken, "-l", "de"], capture_output=True, text=True
    )
    assert "(100%)" not in result.stdout + result.stderr


# ---- every template string is marked ---------------------------------------------------------------------------

class _TextFinder(HTMLParser):
    """Text nodes and the checked attributes of HTML in which each Jinja tag was replaced by a NUL."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        self.found += [value for name, value in attrs if name in CHECKED_ATTRIBUTES and value]

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.found.append(data)


def unmarked_text(source: str) -> list[str]:
    """Bits of user-visible text written straight into a template, outside `{{ }}` and `{% %}`: anything with a
    letter in it, once punctuation, symbols, numbers and the product's name are set aside."""
    pieces, names, class_block = [], [], False
    for _, kind, value in Environment().lex(source):
        if kind == "name":
            names.append(value)
        elif kind == "block_end":  # `{% block body_class %}owner-page{% endblock %}` holds a class, not text
            class_block = names[:1] == ["block"] and names[1].endswith("_class") if len(names) > 1 else False
            names = []
        pieces.append(value if kind == "data" and not class_block else "\0")
    html = "".join(pieces)
    finder = _TextFinder()
    finder.feed(html)
    leftovers = []
    for text in finder.found:
        for piece in text.split("\0"):
            words = [word for word in re.findall(r"[^\W\d_]+", piece) if word not in UNTRANSLATED_WORDS]
            if words:
                leftovers.append(piece.strip())
    return leftovers


@pytest.mark.parametrize("template", sorted(TEMPLATES.rglob("*.html")), ids=lambda path: str(path.relative_to(TEMPLATES)))
def test_template_text_is_marked_for_translation(template):
    assert unmarked_text(template.read_text()) == []


def test_the_template_check_finds_unmarked_text_and_attributes():
    source = """{% extends "base.html" %}{% block content %}
      <h1>{{ _("Fine") }}</h1> <p>Not marked</p> <img alt="A cover" src="{{ url }}"> <b>· 12 % — {{ n }}</b>
      <span title="{{ _('ok') }}">Photoshare</span> <input placeholder="you@example.com">
      <script>var x = "not text";</script>{# a comment #}{% endblock %}"""
    assert unmarked_text(source) == ["Not marked", "A cover", "you@example.com"]
