"""Pick the storage backend named by STORAGE_BACKEND; the rest of the app only sees `Storage`."""

from __future__ import annotations

from flask import Flask, current_app

from .base import Storage, StorageError, StoredObject
from .local import LocalStorage

__all__ = ["LocalStorage", "Storage", "StorageError", "StoredObject", "get_storage", "init_storage"]


def init_storage(app: Flask) -> None:
    """Attach the configured store; a remote one is checked now, so a bad setting fails start-up in one line."""
    backend = str(app.config["STORAGE_BACKEND"]).strip().lower()
    if backend == "local":
        app.extensions["photoshare.storage"] = LocalStorage(app.config["UPLOAD_DIR"])
        return
    if backend in ("s3", "r2"):
        from .s3 import S3Storage  # boto3 is imported only by deployments that use it

        storage = S3Storage.from_config(app.config, backend)
        storage.check()
        app.extensions["photoshare.storage"] = storage
        return
    from ..config import ConfigError

    raise ConfigError(f"STORAGE_BACKEND={backend!r} is not supported (use local, s3 or r2)")


def get_storage() -> Storage:
    return current_app.extensions["photoshare.storage"]
