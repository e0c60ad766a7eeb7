"""Write Photoshare's nginx site file from the template `deploy/nginx.conf` and the app's own settings.

    .venv/bin/python deploy/render_nginx.py --env-file /etc/photoshare/photoshare.env \
        --server-name photos.example.com > /etc/nginx/sites-available/photoshare

Paths (UPLOAD_DIR, ZIP_CACHE_DIR), the upload limit (MAX_UPLOAD_MB) and gunicorn's address (GUNICORN_BIND)
come from the same environment file the app reads, so nginx and the app cannot disagree. Every placeholder
must get a value: a template left half-filled is refused, never written. The tests render the template with
`render()` too.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

DEPLOY = Path(__file__).resolve().parent
ROOT = DEPLOY.parent
TEMPLATE = DEPLOY / "nginx.conf"
PLACEHOLDER = re.compile(r"\$\{(PHOTOSHARE_[A-Z0-9_]+)\}")


def placeholders(template: str | None = None) -> set[str]:
    return set(PLACEHOLDER.findall(template if template is not None else TEMPLATE.read_text()))


def render(values: Mapping[str, str], template: str | None = None) -> str:
    """The template with every `${PHOTOSHARE_X}` replaced by values["PHOTOSHARE_X"]; KeyError names the
    missing ones. nginx's own `$variables` are left alone."""
    text = template if template is not None else TEMPLATE.read_text()
    missing = sorted(name for name in placeholders(text) if not str(values.get(name, "")).strip())
    if missing:
        raise KeyError(f"no value for {', '.join(missing)}")
    return PLACEHOLDER.sub(lambda match: str(values[match.group(1)]), text)


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as systemd's EnvironmentFile reads them (comments and blank lines skipped)."""
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        env[key.strip()] = value.strip().strip("'\"")
    return env


def values_from_env(env: Mapping[str, str], *, server_name: str, tls_cert: str | None = None,
                    tls_key: str | None = None, http_listen: str = "80", https_listen: str = "443",
                    access_log: str = "/var/log/nginx/access.log") -> dict[str, str]:
    """Placeholder values from the app's settings, with the app's own defaults where a setting is unset."""
    sys.path.insert(0, str(ROOT))
    from photoshare.config import SETTINGS

    def setting(name: str) -> str:
        return env.get(name) or str(SETTINGS[name][0] or "")

    instance = Path(env.get("PHOTOSHARE_INSTANCE") or ROOT / "instance").resolve()
    bind = env.get("GUNICORN_BIND") or "127.0.0.1:8000"
    return {
        "PHOTOSHARE_SERVER_NAME": server_name,
        "PHOTOSHARE_HTTP_LISTEN": http_listen,
        "PHOTOSHARE_HTTPS_LISTEN": https_listen,
        "PHOTOSHARE_TLS_CERT": tls_cert or f"/etc/letsencrypt/live/{server_name}/fullchain.pem",
        "PHOTOSHARE_TLS_KEY": tls_key or f"/etc/letsencrypt/live/{server_name}/privkey.pem",
        "PHOTOSHARE_ACCESS_LOG": access_log,  # in the site's own format (no passwords)
        "PHOTOSHARE_UPSTREAM": bind,  # gunicorn's "unix:/path" is nginx's spelling too
        "PHOTOSHARE_MAX_UPLOAD_MB": setting("MAX_UPLOAD_MB"),
        "PHOTOSHARE_STATIC_DIR": str(ROOT / "photoshare" / "static"),
        "PHOTOSHARE_UPLOAD_DIR": str(Path(setting("UPLOAD_DIR") or instance / "uploads").resolve()),
        "PHOTOSHARE_ZIP_CACHE_DIR": str(Path(setting("ZIP_CACHE_DIR") or instance / "zip-cache").resolve()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env-file", type=Path, help="the app's environment file (photoshare.env)")
    parser.add_argument("--server-name", required=True, help="the site's host name, e.g. photos.example.com")
    parser.add_argument("--tls-cert", help="default: Let's Encrypt's fullchain.pem for the server name")
    parser.add_argument("--tls-key", help="default: Let's Encrypt's privkey.pem for the server name")
    parser.add_argument("--http-listen", default="80")
    parser.add_argument("--https-listen", default="443")
    parser.add_argument("--access-log", default="/var/log/nginx/access.log", help="the site's access log file")
    args = parser.parse_args(argv)
    env = dict(os.environ)
    if args.env_file:
        env.update(read_env_file(args.env_file))
    values = values_from_env(env, server_name=args.server_name, tls_cert=args.tls_cert, tls_key=args.tls_key,
                             http_listen=args.http_listen, https_listen=args.https_listen, access_log=args.access_log)
    try:
        sys.stdout.write(render(values))
    except KeyError as exc:
        print(f"render_nginx: {exc.args[0]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
