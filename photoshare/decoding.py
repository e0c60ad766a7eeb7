"""Decoding images in bounded memory: a per-process budget of decoded bytes, and PNGs reduced strip by strip.

A 343 KB PNG can hold 88 megapixels: 264 MB once decoded (Pillow keeps RGB in 4 bytes a pixel: 352 MB), and
16 requests decoding it at once took a worker to 13.8 GB. Two rules keep every process small:

- `DecodeBudget`: decodes start only while the bytes they will hold fit the budget (IMAGE_DECODE_MB), first
  come first served; one image bigger than the whole budget waits until nothing else decodes, then runs alone;
- `reduce_png`: a non-interlaced 8-bit PNG is inflated a strip of rows at a time and each strip is box-reduced
  at once, so only the reduced picture and one strip are ever in memory, never the whole decoded image.

No Flask here: callers pass sizes in bytes.
"""

from __future__ import annotations

import math
import struct
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from PIL import Image

STRIP_BYTES = 4 * 1024 * 1024  # decoded bytes of one strip of rows
READ_CHUNK = 256 * 1024
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Pillow's raw modes whose bytes are exactly a PNG scanline's (8 bits a sample), by bytes per pixel.
_STRIP_RAWMODES = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}


class DecodeBudget:
    """Decoded bytes this process holds at once, shared by every thread; admission in arrival order, so a
    big image is never starved by a stream of small ones. `peak` is the most ever held (tests read it)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.in_use = 0
        self.peak = 0
        self._condition = threading.Condition()
        self._next_ticket = 0
        self._serving = 0

    @contextmanager
    def reserve(self, nbytes: int) -> Iterator[None]:
        """Wait until `nbytes` fit (or, bigger than the whole budget, until nothing else is held), hold them."""
        with self._condition:
            ticket = self._next_ticket
            self._next_ticket += 1
            self._condition.wait_for(lambda: ticket == self._serving and self._fits(nbytes))
            self._serving += 1
            self.in_use += nbytes
            self.peak = max(self.peak, self.in_use)
            self._condition.notify_all()  # the next in line may fit too
        try:
            yield
        finally:
            with self._condition:
                self.in_use -= nbytes
                self._condition.notify_all()

    def _fits(self, nbytes: int) -> bool:
        return self.in_use == 0 or self.in_use + nbytes <= self.capacity


_budgets: dict[int, DecodeBudget] = {}
_budgets_lock = threading.Lock()


def decode_budget(capacity: int) -> DecodeBudget:
    """The process-wide budget of `capacity` bytes (one per process in production: one app, one setting)."""
    with _budgets_lock:
        return _budgets.setdefault(capacity, DecodeBudget(capacity))


def decoded_size(image: Image.Image) -> int:
    """width x height x bands: the bytes a full decode of `image` (as opened, after any draft) holds."""
    width, height = image.size
    return width * height * len(image.getbands())


def png_strips_apply(image: Image.Image, factor: int) -> bool:
    """Whether `reduce_png` can reduce this opened (not loaded) image by `factor` strip by strip."""
    tile = image.tile[0] if len(image.tile) == 1 else None
    return (
        factor > 1
        and image.format == "PNG"
        and not image.info.get("interlace")
        and tile is not None
        and tile.codec_name == "zip"
        and tile.args in _STRIP_RAWMODES
        and image.mode == tile.args
    )


def reduced_png_size(image: Image.Image, factor: int) -> int:
    """The bytes `reduce_png` holds at most: the reduced picture, and one strip about four times over (its
    inflated rows, the copy handed to Pillow, Pillow's own, and its reduction)."""
    width, height = image.size
    bands = len(image.getbands())
    strip = _strip_rows(width, bands, factor) * width * bands
    return math.ceil(width / factor) * math.ceil(height / factor) * bands + 4 * strip


def reduce_png(source: BinaryIO, image: Image.Image, factor: int) -> Image.Image:
    """`image` (opened from `source`, `png_strips_apply`) box-reduced by `factor`, like `Image.reduce`, without
    ever decoding it whole. Raises OSError when the image data is damaged or ends early."""
    width, height = image.size
    mode = rawmode = image.mode
    stride = 1 + width * _STRIP_RAWMODES[rawmode]
    rows = _strip_rows(width, len(image.getbands()), factor)
    canvas = Image.new(mode, (math.ceil(width / factor), math.ceil(height / factor)))
    previous: bytes | None = None  # the last row of the strip before, unfiltered: the next strip's filters need it
    y = 0
    for block in _scanline_blocks(source, stride * rows, stride * height):
        count = len(block) // stride
        if count == 0:
            break
        head = b"\0" + previous if previous is not None else b""  # filter type 0: the row as it is
        strip = Image.frombytes(mode, (width, count + bool(head)), zlib.compress(head + block, 0), "zip", rawmode)
        if head:
            strip = strip.crop((0, 1, width, count + 1))
        previous = strip.crop((0, count - 1, width, count)).tobytes("raw", rawmode)
        canvas.paste(strip.reduce(factor), (0, y // factor))
        y += count
    if y != height:
        raise OSError("image file is truncated")
    return canvas


def _strip_rows(width: int, bands: int, factor: int) -> int:
    """Rows per strip: about STRIP_BYTES decoded, a multiple of `factor` so that reduced strips line up."""
    return max(factor, STRIP_BYTES // max(1, width * bands) // factor * factor)


def _scanline_blocks(source: BinaryIO, block: int, total: int) -> Iterator[bytes]:
    """The inflated IDAT stream in blocks of `block` bytes, `total` bytes in all; never inflates more."""
    inflate, pending, produced = zlib.decompressobj(), bytearray(), 0
    for data in _idat_chunks(source):
        while data and produced + len(pending) < total:
            want = min(block, total - produced) - len(pending)
            pending += inflate.decompress(data, max(want, 1))
            data = inflate.unconsumed_tail
            if len(pending) >= min(block, total - produced):
                produced += len(pending)
                yield bytes(pending)
                pending.clear()
        if produced >= total:
            return
    if pending:  # the data ended early: what there is, for the caller to find short
        yield bytes(pending)


def _idat_chunks(source: BinaryIO) -> Iterator[bytes]:
    """The data of every IDAT chunk, in pieces of at most READ_CHUNK bytes."""
    source.seek(0)
    if source.read(8) != PNG_SIGNATURE:
        raise OSError("not a PNG file")
    while header := source.read(8):
        if len(header) < 8:
            raise OSError("image file is truncated")
        length, kind = struct.unpack(">I4s", header)
        if kind == b"IEND":
            return
        if kind != b"IDAT":
            source.seek(length + 4, 1)
            continue
        left = length
        while left:
            piece = source.read(min(left, READ_CHUNK))
            if not piece:
                raise OSError("image file is truncated")
            left -= len(piece)
            yield piece
        source.seek(4, 1)  # CRC
