"""What gunicorn serves: `gunicorn wsgi:app`. A configuration error stops start-up with one line.

The exit code is gunicorn's WORKER_BOOT_ERROR (3): the arbiter then halts instead of starting another worker
that fails the same way. deploy/gunicorn.conf.py checks the configuration in the master before that.
"""

import sys

from photoshare import ConfigError, create_app

try:
    app = create_app()
except ConfigError as exc:
    print(f"photoshare: configuration error: {exc}", file=sys.stderr)
    raise SystemExit(3) from None
