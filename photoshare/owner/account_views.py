"""The owner's account: a new password, given the current one. Every other browser of the owner is logged out
(the session token changes); this one stays logged in under the new token."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_limiter.util import get_remote_address
from flask_login import login_user
from werkzeug.wrappers import Response

from ..auth import change_password, current_user
from . import bp
from .forms import PasswordChangeForm


@bp.route("/account", methods=["GET", "POST"])
def account() -> Response | tuple[str, int]:
    form = PasswordChangeForm()
    if not form.validate_on_submit():
        return render_template("owner/account.html", form=form), 400 if form.errors else 200
    user = current_user()
    assert user is not None  # the blueprint's before_request guarantees it
    if not change_password(user, form.current_password.data, form.new_password.data, client=get_remote_address()):
        form.current_password.errors.append(_("That is not your current password."))
        return render_template("owner/account.html", form=form), 403
    login_user(user)
    flash(_("Password changed. Every other browser you were logged in on has been logged out."), "success")
    return redirect(url_for(".account"))
