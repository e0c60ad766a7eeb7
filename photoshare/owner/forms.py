"""Owner forms. Each carries a CSRF token (Flask-WTF); rules beyond field shapes live in `service`."""

from __future__ import annotations

from flask_babel import lazy_gettext
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, HiddenField, IntegerField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, NumberRange, Optional


class ActionForm(FlaskForm):
    """A button that changes something (delete, revoke, log out): only the CSRF token."""


class AlbumForm(FlaskForm):
    title = StringField("Album title", validators=[DataRequired("Give the album a title."), Length(max=200)])


class PasswordChangeForm(FlaskForm):
    current_password = PasswordField(
        "Current password", validators=[DataRequired("Enter your current password.")],
        render_kw={"autocomplete": "current-password"},
    )
    new_password = PasswordField(
        "New password",
        validators=[DataRequired("Choose a new password."), Length(min=8, max=128, message="Use 8 to 128 characters.")],
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        "New password again", validators=[EqualTo("new_password", "The two new passwords differ.")],
        render_kw={"autocomplete": "new-password"},
    )


class PhotoRenameForm(FlaskForm):
    filename = StringField("File name", validators=[DataRequired("Give the photo a name."), Length(max=255)])


class ShareForm(FlaskForm):
    password = PasswordField(
        "Password (optional)",
        validators=[Optional(), Length(max=128)],
        render_kw={"autocomplete": "new-password"},
    )
    expires_in = IntegerField(
        "Expires after", validators=[Optional(), NumberRange(min=1, message="Enter 1 or more.")]
    )
    expires_unit = SelectField("Unit", choices=["hours", "days"], default="days")
    expires_on = DateField("or last day", validators=[Optional()])
    tz_offset = HiddenField(default="0")  # filled in by owner.js: the browser's offset from UTC, in minutes
    downloads_allowed = BooleanField("Visitors may download photos", default=True)
    web_size_only = BooleanField(lazy_gettext("Web-size downloads only"), default=False)
    strip_location = BooleanField(lazy_gettext("Remove location from downloads"), default=True)

    def tz_offset_minutes(self) -> int:
        try:
            return int(self.tz_offset.data or 0)
        except ValueError:
            return 0
