"""Bounded image work: the decode budget, one maker per photo for an older photo's missing view (threads and
gunicorn workers alike), and names of thumbnails and views that tell nothing of their original's."""

from __future__ import annotations

import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath

import requests
from PIL import Image

from photoshare import albums, renditions, sizes
from photoshare.decoding import DecodeBudget
from photoshare.extensions import db
from photoshare.images import Rendition, render
from photoshare.models import Album, Photo, User
from photoshare.storage import get_storage
from tests.conftest import LiveServer, make_jpeg


def gradient_png(width: int, height: int) -> bytes:
    """Many pixels in few bytes, like the 343 KB PNG of 88 megapixels from the issue."""
    image = Image.linear_gradient("L").resize((width, height))
    rgb = Image.merge("RGB", (image, image.transpose(Image.Transpose.FLIP_LEFT_RIGHT), image))
    out = io.BytesIO()
    rgb.save(out, "PNG")
    return out.getvalue()


class Holder:
    """A thread holding `nbytes` of `budget` until `release()`: admission is read from the budget's state."""

    def __init__(self, budget: DecodeBudget, nbytes: int) -> None:
        self.admitted, self._release = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._run, args=(budget, nbytes), daemon=True)
        self.thread.start()

    def _run(self, budget: DecodeBudget, nbytes: int) -> None:
        with budget.reserve(nbytes):
            self.admitted.set()
            self._release.wait(30)

    def release(self) -> None:
        self._release.set()
        self.thread.join(10)


def waiting(budget: DecodeBudget, count: int) -> None:
    """Return once `count` reservations wait in the budget's queue (its own state, not a guess in time)."""
    deadline = time.monotonic() + 10
    while budget._next_ticket - budget._serving != count:
        assert time.monotonic() < deadline, "the budget never queued them"
        time.sleep(0.01)


def test_decodes_that_fit_the_budget_run_together():
    budget = DecodeBudget(100)
    first, second = Holder(budget, 40), Holder(budget, 60)
    assert first.admitted.wait(5) and second.admitted.wait(5)
    assert budget.in_use == 100
    first.release(), second.release()
    assert budget.in_use == 0 and budget.peak == 100


def test_a_decode_that_does_not_fit_waits_for_one_to_finish():
    budget = DecodeBudget(100)
    first = Holder(budget, 60)
    assert first.admitted.wait(5)
    second = Holder(budget, 60)
    waiting(budget, 1)
    assert not second.admitted.is_set() and budget.in_use == 60
    first.release()
    assert second.admitted.wait(5) and budget.in_use == 60
    second.release()
    assert budget.peak == 60


def test_an_image_bigger_than_the_budget_decodes_alone_and_small_ones_queue_behind_it():
    budget = DecodeBudget(100)
    small = Holder(budget, 10)
    assert small.admitted.wait(5)
    huge = Holder(budget, 250)
    waiting(budget, 1)
    later = Holder(budget, 10)  # would fit beside `small`, but comes after `huge`: never starves it
    waiting(budget, 2)
    assert not huge.admitted.is_set() and not later.admitted.is_set()
    small.release()
    assert huge.admitted.wait(5) and budget.in_use == 250
    waiting(budget, 1)
    assert not later.admitted.is_set()
    huge.release()
    assert later.admitted.wait(5)
    later.release()
    assert budget.peak == 250 and budget.in_use == 0


class CountingBudget(DecodeBudget):
    """A budget that also records every reservation it admits."""

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self.sizes: list[int] = []

    def reserve(self, nbytes: int):
        self.sizes.append(nbytes)
        return super().reserve(nbytes)


def test_parallel_renders_never_hold_more_than_the_budget():
    data = [make_jpeg(3000, 2000), gradient_png(2400, 1800), gradient_png(1500, 1000)]
    budget = CountingBudget(30 * 1024 * 1024)
    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(lambda i: render(io.BytesIO(data[i % 3]), [Rendition(600)], budget=budget), range(36)))
    assert len(results) == 36 and all(jpeg[:2] == b"\xff\xd8" for _info, (jpeg,) in results)
    assert len(budget.sizes) == 36 and 2 * max(budget.sizes) > budget.capacity  # two of them never fit at once
    assert max(budget.sizes) <= budget.peak <= budget.capacity and budget.in_use == 0


def test_big_png_is_rendered_without_decoding_it_whole():
    budget = DecodeBudget(2**40)
    info, (view,) = render(io.BytesIO(gradient_png(6000, 4000)), [Rendition(1600)], budget=budget)
    assert (info.width, info.height) == (6000, 4000)
    assert Image.open(io.BytesIO(view)).size == (1600, 1067)
    assert budget.peak < 6000 * 4000 * 3 // 2  # a full decode would hold 72 MB; strips hold a third


def older_photo(app, album_id: int) -> Photo:
    """The album's first photo made to look as photos were kept before: no view, and its thumbnail under the
    old name (its original's)."""
    with app.app_context():
        photo = db.session.get(Album, album_id).photos[0]
        storage = get_storage()
        with storage.open(albums.thumbnail_key(photo)) as thumb:
            storage.save(albums.legacy_keys(photo)[0], thumb)
        storage.delete(albums.thumbnail_key(photo))
        storage.delete(albums.view_key(photo))
        db.session.expunge(photo)
        return photo


def worker_peaks(server: LiveServer) -> dict[int, int]:
    """Each gunicorn worker's peak resident memory (VmHWM), in MB."""
    master = server.process.pid
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    peaks = {}
    for pid in map(int, children):
        status = Path(f"/proc/{pid}/status").read_text()
        peaks[pid] = int(next(line for line in status.splitlines() if line.startswith("VmHWM")).split()[1]) // 1024
    return peaks


def test_sixteen_parallel_first_views_of_a_big_png_decode_it_once(app, make_album, make_share, live_server):
    album_id = make_album(files={"panorama.png": gradient_png(6000, 4000)})
    token = make_share(album_id)
    photo = older_photo(app, album_id)
    url = f"{live_server.url}/s/{token}/view/{photo.id}"

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda _: requests.get(url, timeout=120), range(16)))

    assert [a.status_code for a in answers] == [200] * 16
    assert len({a.content for a in answers}) == 1 and Image.open(io.BytesIO(answers[0].content)).size == (1600, 1067)
    log = live_server.log.read_text()
    made = f"made {albums.view_key(photo)}, {albums.thumbnail_key(photo)}, {sizes.large_key(photo)} from"
    assert log.count(made) == 1  # the large download comes from the same single decode
    peaks = worker_peaks(live_server)
    print("worker peak RSS (MB):", peaks)
    assert max(peaks.values()) < 250  # a full decode alone is 96 MB; 16 at once, GBs
    with app.app_context():
        storage = get_storage()
        assert storage.exists(albums.thumbnail_key(photo)) and storage.exists(albums.view_key(photo))
        assert not any(storage.exists(key) for key in albums.legacy_keys(photo))  # old names removed
    assert list(Path(app.config["LOCK_DIR"]).glob("rendition-*")) == []


def test_a_view_being_made_elsewhere_is_a_503_to_retry_after_the_wait(app, client, make_album, make_share, monkeypatch):
    album_id = make_album(count=1)
    token = make_share(album_id)
    photo = older_photo(app, album_id)
    monkeypatch.setattr(albums, "RENDITION_WAIT_SECONDS", 0.3)
    lock = Path(app.config["LOCK_DIR"]) / f"rendition-{photo.rendition_name}.lock"

    with renditions._one_maker(lock, wait=1):  # another worker is making it
        busy = client.get(f"/s/{token}/view/{photo.id}", headers={"Accept": "application/json"})
    made = client.get(f"/s/{token}/view/{photo.id}")

    assert busy.status_code == 503 and "Retry-After" in busy.headers
    assert busy.get_json()["error"] == "preview_busy"
    assert made.status_code == 200 and made.data[:2] == b"\xff\xd8"


def test_thumbnail_and_view_names_tell_nothing_of_the_original(app, make_album):
    album_id = make_album(count=2)
    with app.app_context():
        photos = db.session.get(Album, album_id).photos
        storage = get_storage()
        for photo in photos:
            original = PurePosixPath(albums.photo_key(photo)).stem
            for key in (albums.thumbnail_key(photo), albums.view_key(photo)):
                assert storage.exists(key)  # made with the original, before any visitor asks
                assert original not in key and photo.sha256 not in key
        assert len({p.rendition_name for p in photos}) == 2


def test_deleting_photos_and_albums_removes_every_key_old_names_too(app, make_album):
    album_id = make_album(count=2)
    first = older_photo(app, album_id)
    root = Path(app.config["UPLOAD_DIR"])
    with app.app_context():
        (root / albums.legacy_keys(first)[1]).write_bytes(b"an old view")
        album = db.session.get(Album, album_id)
        albums.delete_photo(album.photos[0])
        assert len([p for p in root.rglob("*") if p.is_file()]) == 4  # the other photo's four files (original, thumbnail, view, large)
        albums.delete_album(db.session.get(Album, album_id))
    assert [p for p in root.rglob("*") if p.is_file()] == []


def test_uploads_decode_in_the_process_budget_of_the_setting(app, owner):
    from photoshare.decoding import decode_budget

    app.config["IMAGE_DECODE_MB"] = 7  # a budget of this test's own
    with app.app_context():
        album = albums.create_album(db.session.get(User, owner), "Budget")
        albums.add_photo(album, "big.png", io.BytesIO(gradient_png(3000, 2000)))
    budget = decode_budget(7 * 1024 * 1024)
    assert budget.peak > 0 and budget.in_use == 0
