"""What visitors did with an album's links: totals, a chart of downloads per day, the most downloaded photos,
the events (filtered, paged) and their CSV export; and the album's daily-digest e-mail switch.

Only the album's owner gets here (the blueprint's login check, then `owned_album`: another owner's album is a
404). The figures come from `activity.report`; this module parses the query and renders.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from flask import flash, redirect, render_template, request, stream_with_context, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from .. import activity
from ..activity import chart, report
from ..extensions import db
from ..models import Album, utcnow
from . import bp, service
from .album_views import owner_id
from .forms import ActionForm

FILTER_FIELDS = ("link", "kind", "from", "to")


def _filters() -> dict[str, str]:
    """The filter's fields that are set: kept in the CSV link and the pager's links."""
    return {name: request.args[name] for name in FILTER_FIELDS if request.args.get(name)}


def _scope(album: Album) -> report.Scope:
    query = {name: request.args.get(name, "") for name in FILTER_FIELDS}
    return report.scope_from_query(album.id, {link.id for link in album.share_links}, query)


@bp.get("/albums/<int:album_id>/activity")
def album_activity(album_id: int) -> str:
    """Totals, chart, top photos and one page of events, for the album or the link the filter names."""
    album = service.owned_album(owner_id(), album_id)
    scope = _scope(album)
    first, last = report.chart_window(scope, utcnow().date())
    return render_template(
        "owner/activity.html",
        album=album,
        scope=scope,
        filters=_filters(),
        kinds=activity.KINDS,
        totals=report.totals(scope),
        chart=chart.bar_chart(report.downloads_per_day(scope, first, last)),
        top_photos=report.top_photos(scope),
        events=report.event_page(scope, request.args.get("page", 1, type=int) or 1),
        link_numbers={link.id: number for number, link in enumerate(reversed(album.share_links), start=1)},
        digest_form=ActionForm(),
    )


@bp.get("/albums/<int:album_id>/activity.csv")
def album_activity_csv(album_id: int) -> Response:
    """Every event the filter selects, oldest first, as CSV (streamed: an export of any size)."""
    album = service.owned_album(owner_id(), album_id)
    scope = _scope(album)

    def rows() -> Iterator[str]:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(report.CSV_COLUMNS)
        for event in report.iter_events(scope):
            writer.writerow(report.csv_row(event))
            if out.tell() > 64 * 1024:
                yield out.getvalue()
                out.seek(0)
                out.truncate()
        yield out.getvalue()

    response = Response(stream_with_context(rows()), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="activity-album-{album.id}.csv"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.post("/albums/<int:album_id>/digest")
def album_digest(album_id: int) -> Response:
    """Switch the album's daily activity e-mail on or off (the checkbox on the album page)."""
    album = service.owned_album(owner_id(), album_id)
    form = ActionForm()
    if form.validate_on_submit():
        album.daily_digest = request.form.get("daily_digest") == "on"
        db.session.commit()
        flash(_("You will get a daily e-mail of this album's activity.") if album.daily_digest
              else _("Daily activity e-mails for this album are off."), "success")
    else:
        flash(_("The form expired. Please try again."), "error")
    return redirect(url_for(".album", album_id=album.id, _anchor="digest"))
