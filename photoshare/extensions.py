"""Extensions created without an app and attached in `create_app`."""

from flask import request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[])


def client_and_share_key() -> str:
    """Rate-limit key for password attempts: one bucket per client address and share link."""
    token = (request.view_args or {}).get("token", "")
    return f"{get_remote_address()}:{token}"
