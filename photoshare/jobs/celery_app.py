"""What the Celery worker and beat load: `celery -A photoshare.jobs.celery_app worker` (and `beat`).

Builds the Flask app from the same environment as gunicorn (REDIS_URL or CELERY_BROKER_URL must be set) and
exposes its Celery app as `app`, the name Celery looks for.
"""

from __future__ import annotations

import sys

from photoshare import ConfigError, create_app

try:
    flask_app = create_app()
except ConfigError as exc:
    print(f"photoshare: configuration error: {exc}", file=sys.stderr)
    raise SystemExit(2) from None

if "celery" not in flask_app.extensions:
    print("photoshare: set REDIS_URL or CELERY_BROKER_URL to run Celery workers", file=sys.stderr)
    raise SystemExit(2)

app = flask_app.extensions["celery"]
