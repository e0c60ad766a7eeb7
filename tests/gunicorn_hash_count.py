"""gunicorn settings for tests that count password hashes: every worker wraps `hashlib.scrypt` (the real one still
runs, with its 32 MiB) and appends one line per run to $HASH_LOG: "<pid> <runs at once in that process>".

Werkzeug's check_password_hash calls `hashlib.scrypt` by attribute at each check, so the count covers every hash a
worker computes, whichever module asked for it.
"""

import hashlib
import os
import threading

worker_class = "gthread"
workers = int(os.environ.get("TEST_GUNICORN_WORKERS", "2"))
threads = 16
timeout = 120


def post_worker_init(worker) -> None:
    real, lock, running = hashlib.scrypt, threading.Lock(), [0]
    log_path = os.environ["HASH_LOG"]

    def counted(*args, **kwargs):
        with lock:
            running[0] += 1
            at_once = running[0]
        with open(log_path, "a") as log:
            log.write(f"{os.getpid()} {at_once}\n")
        try:
            return real(*args, **kwargs)
        finally:
            with lock:
                running[0] -= 1

    hashlib.scrypt = counted
