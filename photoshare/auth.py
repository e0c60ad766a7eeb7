"""Owner log in and out, and who is logged in (the owner blueprint checks it once for all its pages).

Sessions are Flask-Login's, keyed by the user's `session_token` rather than their id: logging out or changing
the password gives the user a new token, so every cookie issued before (another browser's, or a copy) names
nobody any more. Log-in guesses are counted per client address and per e-mail address before the password is
checked (`attempts`), and an unknown e-mail checks a dummy hash, so it answers as slowly as a wrong password.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Flask, current_app, flash, redirect, render_template, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_limiter.util import get_remote_address
from flask_login import current_user as login_session
from flask_login import login_user, logout_user
from flask_wtf import FlaskForm
from werkzeug.security import generate_password_hash
from werkzeug.wrappers import Response
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired

from .attempts import Bucket, counted_check
from .extensions import db, login_manager
from .models import User, new_session_token

bp = Blueprint("auth", __name__)

MIN_PASSWORD_LENGTH = 8
# Browsers (and urllib, under Werkzeug's redirect) drop tabs and newlines anywhere in a URL: "/\t/evil.com" is "//evil.com".
_DROPPED_FROM_URLS = re.compile(r"[\t\n\r]")


class LoginForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(_l("Enter your e-mail address."))])
    password = PasswordField(_l("Password"), validators=[DataRequired(_l("Enter your password."))])


class SessionCookies(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, marked Secure when the site is on HTTPS: BASE_URL says so
    (SESSION_COOKIE_SECURE), or this request came over HTTPS (directly, or through ProxyFix's X-Forwarded-Proto)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"] or request.is_secure)


def _check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")


def create_user(email: str, password: str) -> User:
    email = email.strip().lower()
    if "@" not in email or len(email) > 254:
        raise ValueError(f"{email!r} is not an e-mail address")
    _check_new_password(password)
    if find_user(email):
        raise ValueError(f"a user {email} already exists")
    user = User(email=email, password_hash=generate_password_hash(password))
    db.session.add(user)
    db.session.commit()
    return user


def find_user(email: str) -> User | None:
    return db.session.execute(db.select(User).where(User.email == email.strip().lower())).scalar_one_or_none()


def set_password(user: User, password: str) -> None:
    """A new password, and a new session token: every browser logged in as this user is logged out."""
    _check_new_password(password)
    user.password_hash = generate_password_hash(password)
    user.session_token = new_session_token()
    db.session.commit()


def end_sessions(user: User) -> None:
    """Log this user out everywhere: cookies name the old session token, which no longer finds them."""
    user.session_token = new_session_token()
    db.session.commit()


def change_password(user: User, current: str, new: str, *, client: str) -> bool:
    """Set `new` when `current` is the user's password (False otherwise); the current one is a guess like a
    log-in (a borrowed session must not become a way to find the password), counted the same way."""
    if authenticate(user.email, current, client=client) is None:
        return False
    set_password(user, new)
    return True


def authenticate(email: str, password: str, *, client: str) -> User | None:
    """The user these credentials belong to, or None. The guess is counted per client address and per e-mail
    address (known or not, so that the limit tells nothing about which exist) before anything is checked;
    raises TooManyAttempts (429) once either is over its limit."""
    email = email.strip().lower()
    user = find_user(email)
    config = current_app.config
    buckets = [
        Bucket("login-address", client, config["LOGIN_RATE_LIMIT"]),
        Bucket("login-account", hashlib.sha256(email.encode()).hexdigest(), config["LOGIN_ACCOUNT_RATE_LIMIT"]),
    ]
    right = counted_check(user.password_hash if user else None, password, buckets)
    return user if right else None


def same_site_path(target: str | None) -> str | None:
    """`target` when it is a path on this site, else None: never another site, a scheme or a script, however
    a browser would read it (tabs and newlines dropped, backslashes as slashes)."""
    if not target:
        return None
    cleaned = _DROPPED_FROM_URLS.sub("", target).replace("\\", "/")
    if not cleaned.startswith("/") or cleaned.startswith("//"):
        return None
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in cleaned):
        return None
    parts = urlsplit(cleaned)
    return cleaned if not (parts.scheme or parts.netloc) else None


@login_manager.user_loader
def load_user(session_token: str) -> User | None:
    user = db.session.execute(db.select(User).where(User.session_token == session_token)).scalar_one_or_none()
    return user if user is not None and hmac.compare_digest(user.session_token, session_token) else None


def current_user() -> User | None:
    """The logged-in owner, or None."""
    return login_session._get_current_object() if login_session.is_authenticated else None


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """Log an owner in; the same message (and the same time) for an unknown e-mail and a wrong password."""
    form = LoginForm()
    if not form.validate_on_submit():
        return render_template("auth/login.html", form=form)
    user = authenticate(form.email.data, form.password.data, client=get_remote_address())
    if user is None:
        flash(_("E-mail or password is not correct."), "error")
        return render_template("auth/login.html", form=form), 401
    session.clear()
    login_user(user)
    return redirect(same_site_path(request.args.get("next")) or url_for("owner.albums"))


@bp.post("/logout")
def logout() -> Response:
    """Log out this browser and every other one of this owner: the session token changes."""
    user = current_user()
    if user is not None:
        end_sessions(user)
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))
