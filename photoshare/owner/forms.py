"""Owner forms. Each carries a CSRF token (Flask-WTF); rules beyond field shapes live in `service`."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, HiddenField, IntegerField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length, NumberRange, Optional

from ..i18n import LANGUAGE_NAMES


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
    # Each language in its own name; empty: every visitor sees the site in their own language.
    language = SelectField(
        _l("Language of the link's pages"),
        choices=[SelectChoice("", _l("The visitor's language"))]
        + [SelectChoice(code, name, render_kw={"lang": code}) for code, name in LANGUAGE_NAMES.items()],
        default="",
    )

    def tz_offset_minutes(self) -> int:
        try:
            return int(self.tz_offset.data or 0)
        except ValueError:
            return 0
