"""Pick the storage backend named by STORAGE_BACKEND; the rest of the app only sees `Storage`."""

from __future__ import annotations

from flask import Flask, current_app

from .base import Storage, StorageError
from .local import LocalStorage

__all__ = ["Storage", "StorageError", "LocalStorage", "init_storage", "get_storage"]


def init_storage(app: Flask) -> None:
    backend = app.config["STORAGE_BACKEND"]
    if backend == "local":
        app.extensions["photoshare.storage"] = LocalStorage(app.config["UPLOAD_DIR"])
        return
    from ..config import ConfigError

    raise ConfigError(f"STORAGE_BACKEND={backend!r} is not supported (use 'local')")


def get_storage() -> Storage:
    return current_app.extensions["photoshare.storage"]
