"""Owner forms. Each carries a CSRF token (Flask-WTF); rules beyond field shapes live in `service`."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, HiddenField, IntegerField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length, NumberRange, Optional, Regexp

from ..access import PIN_SHAPE
from ..i18n import LANGUAGE_NAMES

PIN_FIELD = PIN_SHAPE.pattern + r"\Z"  # wtforms' Regexp matches at the start only: 1234567 would pass
MAX_LIMIT = 1_000_000  # far beyond any real limit; keeps the number inside a database integer


def limit_field(label: object) -> IntegerField:
    """A download limit: empty for none, else 1 to MAX_LIMIT."""
    message = _l("Enter a number from 1 to 1,000,000, or leave it empty for no limit.")
    return IntegerField(label, validators=[Optional(), NumberRange(min=1, max=MAX_LIMIT, message=message)])



class ActionForm(FlaskForm):
    """A button that changes something (delete, revoke, log out): only the CSRF token."""


class AlbumForm(FlaskForm):
    title = StringField(_l("Album title"), validators=[DataRequired(_l("Give the album a title.")), Length(max=200)])


class PasswordChangeForm(FlaskForm):
    current_password = PasswordField(
        _l("Current password"), validators=[DataRequired(_l("Enter your current password."))],
        render_kw={"autocomplete": "current-password"},
    )
    new_password = PasswordField(
        _l("New password"),
        validators=[
            DataRequired(_l("Choose a new password.")),
            Length(min=8, max=128, message=_l("Use 8 to 128 characters.")),
        ],
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        _l("New password again"), validators=[EqualTo("new_password", _l("The two new passwords differ."))],
        render_kw={"autocomplete": "new-password"},
    )


class PhotoRenameForm(FlaskForm):
    filename = StringField(_l("File name"), validators=[DataRequired(_l("Give the photo a name.")), Length(max=255)])


class ShareForm(FlaskForm):
    password = PasswordField(
        _l("Password (optional)"),
        validators=[Optional(), Length(max=128)],
        render_kw={"autocomplete": "new-password"},
    )
    expires_in = IntegerField(
        _l("Expires after"), validators=[Optional(), NumberRange(min=1, message=_l("Enter 1 or more."))]
    )
    expires_unit = SelectField(_l("Unit"), choices=[SelectChoice("hours", _l("hours")), SelectChoice("days", _l("days"))], default="days")
    expires_on = DateField(_l("or last day"), validators=[Optional()])
    tz_offset = HiddenField(default="0")  # filled in by owner.js: the browser's offset from UTC, in minutes
    downloads_allowed = BooleanField(_l("Visitors may download photos"), default=True)
    web_size_only = BooleanField(_l("Web-size downloads only"), default=False)
    strip_location = BooleanField(_l("Remove location from downloads"), default=True)
    # Each language in its own name; empty: every visitor sees the site in their own language.
    language = SelectField(
        _l("Language of the link's pages"),
        choices=[SelectChoice("", _l("The visitor's language"))]
        + [SelectChoice(code, name, render_kw={"lang": code}) for code, name in LANGUAGE_NAMES.items()],
        default="",
    )
    ask_email = BooleanField(_l("Ask for an e-mail before downloads"))
    download_pin = PasswordField(
        _l("Download PIN (optional)"),
        validators=[Optional(), Regexp(PIN_FIELD, message=_l("A download PIN is 4 to 6 digits."))],
        render_kw={"autocomplete": "off", "inputmode": "numeric"},
    )
    max_album_downloads = limit_field(_l("Album downloads at most"))
    max_photo_downloads = limit_field(_l("Photo downloads at most"))

    def tz_offset_minutes(self) -> int:
        try:
            return int(self.tz_offset.data or 0)
        except ValueError:
            return 0


class ShareRulesForm(FlaskForm):
    """An existing link's download rules: the e-mail question, the limits (empty: none), a reset of the counts."""

    ask_email = BooleanField(_l("Ask for an e-mail before downloads"))
    max_album_downloads = limit_field(_l("Album downloads at most"))
    max_photo_downloads = limit_field(_l("Photo downloads at most"))
    reset_counts = BooleanField(_l("Start counting downloads from zero again"))


class DownloadPinForm(FlaskForm):
    """A new download PIN for a link, or none; either way visitors who gave the old one must give the new one."""

    download_pin = PasswordField(
        _l("New download PIN"),
        validators=[Optional(), Regexp(PIN_FIELD, message=_l("A download PIN is 4 to 6 digits."))],
        render_kw={"autocomplete": "off", "inputmode": "numeric"},
    )
