"""What gunicorn serves: `gunicorn wsgi:app`. A configuration error stops start-up with one line."""

import sys

from photoshare import ConfigError, create_app

try:
    app = create_app()
except ConfigError as exc:
    print(f"photoshare: configuration error: {exc}", file=sys.stderr)
    raise SystemExit(2) from None
