"""Photo names and album titles as people see them: kept as the owner gave them, minus what is never safe.

A photo's name is the one it was uploaded (or renamed) with, everywhere it appears: database, gallery, API,
`Content-Disposition`. Only three things are taken out, because no screen, header or database should carry them:
folders a browser or an archive sends along (`C:\\fakepath\\x.jpg`, `../x`), control characters (a NUL breaks
PostgreSQL, a newline breaks headers and logs) and Unicode bidi controls (`photo`, U+202E, `gpj.exe` shows
as `photoexe.jpg`). Quotes, semicolons, `?`, `:` and friends stay: only a file system refuses them, so only the
ZIP entry names in archive.py change them. No Flask import.
"""

from __future__ import annotations

import posixpath
import re
import unicodedata
from urllib.parse import quote

MAX_NAME_CHARS = 200  # the database column holds 255: room to spare, and the ZIP entry limit is 200 too
MAX_EXTENSION_CHARS = 16  # a longer "extension" (`a.<300 characters>`) is part of the name, not kept whole

# Unicode's Bidi_Control characters: ALM, LRM, RLM, LRE..RLO and LRI..PDI. Removed, never replaced: they are
# invisible, and the only thing they do in a file name is to make it read as another.
BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# C0, DEL, C1, the line and paragraph separators: shown as `_`, so `a\tb.jpg` does not turn into `ab.jpg`.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# Lone surrogates: undecodable bytes in a file system name (import-album). They cannot be stored or encoded.
_SURROGATES = re.compile("[\ud800-\udfff]")
# What an old client's plain `filename="…"` must not carry: anything but printable ASCII, quotes, `\`, `%`, `;`.
_FALLBACK_UNSAFE = re.compile(r'[^\x20-\x7e]|["\\%;]')


def clean_text(text: str) -> str:
    """`text` without bidi controls, control characters as `_`, undecodable bytes as U+FFFD, in NFC
    (the same name typed on a Mac and on Windows is the same name). Nothing else changes."""
    text = _SURROGATES.sub("\ufffd", text)
    text = unicodedata.normalize("NFC", BIDI_CONTROLS.sub("", text))
    return _CONTROLS.sub("_", text)


def album_title(title: str) -> str:
    """The title as typed, on one line (any white space as one space), through `clean_text`; may be empty."""
    text = clean_text(" ".join(title.split()))  # white space first, so a tab is a space, not a `_`
    return " ".join(text.split())[:MAX_NAME_CHARS].strip()


def photo_name(name: str, fallback: str = "photo") -> str:
    """The name to keep for a photo: the last path component of `name`, through `clean_text`, without
    surrounding white space, at most 200 characters (a short extension kept whole); `fallback` when nothing
    is left but dots (`.` and `..` are folders, not names)."""
    name = clean_text(name.replace("\\", "/").split("/")[-1].strip())  # a trailing tab is no `_`
    name = fit(name.strip(), MAX_NAME_CHARS).strip()
    return name if name.strip(". ") else fallback


def fit(name: str, limit: int, *, in_bytes: bool = False) -> str:
    """`name` cut to `limit` characters (or UTF-8 bytes), keeping an extension of up to 16 characters whole;
    never cuts inside a character."""
    size = utf8_size if in_bytes else len
    if size(name) <= limit:
        return name
    stem, ext = posixpath.splitext(name)
    if len(ext) > MAX_EXTENSION_CHARS:
        stem, ext = name, ""
    room = limit - size(ext)
    stem = stem.encode("utf-8")[:room].decode("utf-8", "ignore") if in_bytes else stem[:room]
    return stem + ext


def utf8_size(text: str) -> int:
    return len(text.encode("utf-8"))


def content_disposition(name: str, as_attachment: bool = True) -> str:
    """`attachment; filename="ascii"; filename*=UTF-8''…` (RFC 6266): every browser gets a usable name.

    `filename*` carries the name exactly as photo_name keeps it (quotes, `;`, emoji and all), so no
    folder, control character (a header break) or bidi control ever reaches a header, whoever calls this.
    """
    kind = "attachment" if as_attachment else "inline"
    name = photo_name(name, fallback="download")
    fallback = ascii_filename(name)
    value = f'{kind}; filename="{fallback}"'
    if fallback != name:
        value += f"; filename*=UTF-8''{quote(name, safe='!#$&+-.^_`|~')}"
    return value


def ascii_filename(name: str) -> str:
    """A plain-ASCII stand-in for `name` for old clients: accents dropped, other characters as `_`."""
    decomposed = unicodedata.normalize("NFKD", name)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    simple = re.sub(r"_+", "_", _FALLBACK_UNSAFE.sub("_", stripped)).strip()
    stem, dot, ext = simple.rpartition(".")
    if not dot:
        stem, ext = simple, ""
    if not stem.strip("_. "):
        stem = "download"
    return f"{stem}.{ext}" if ext else stem
