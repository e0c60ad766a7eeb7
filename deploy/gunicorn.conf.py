"""gunicorn settings for Photoshare: `gunicorn -c deploy/gunicorn.conf.py wsgi:app`, behind nginx (deploy/nginx.conf).

Worker class: gthread. A download held open by a slow phone for ten minutes occupies one thread, not a whole
worker process, and the worker keeps its heartbeat to the arbiter while requests run: a sync worker is killed
after `timeout` seconds without a heartbeat, i.e. in the middle of any download or archive build longer than
that. Threads of a worker also share its archive builds. With SENDFILE_BACKEND=x-accel, nginx sends the bytes
and a download costs a thread only for the checks (milliseconds); without it, a thread per running download.

Every value can be changed with an environment variable (GUNICORN_*), e.g. in photoshare.env.
"""

import multiprocessing
import os
import sys
from typing import Any

# gunicorn's arbiter stops (rather than starting another worker) when a worker exits with this code.
WORKER_BOOT_ERROR = 3


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


proc_name = "photoshare"
wsgi_app = "wsgi:app"
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
worker_class = "gthread"
# Processes: one per core (at least 2, so that one busy with a big archive build never stops the site).
workers = _int("GUNICORN_WORKERS", max(2, multiprocessing.cpu_count()))
# Threads per process: requests served at once by each. Downloads the app streams itself (no X-Accel) each
# hold one for their whole length; raise it when many visitors download at once without nginx's X-Accel.
threads = _int("GUNICORN_THREADS", 16)
# With gthread, `timeout` bounds a worker that stopped answering its arbiter (deadlock), not a long request.
timeout = _int("GUNICORN_TIMEOUT", 120)
# On `systemctl reload` (HUP) or stop (TERM), running requests get this long to finish before the worker is
# killed. X-Accel downloads are nginx's and never notice a restart; downloads the app streams may be cut
# after it, and resume from where they stopped.
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 60)
# Idle keep-alive connections from nginx: longer than nginx's upstream keepalive_timeout (4 s), so gunicorn
# never closes a connection nginx is about to reuse.
keepalive = 5
# No recycling after N requests by default: a recycled worker cuts its running downloads after
# graceful_timeout. Set GUNICORN_MAX_REQUESTS to bound a leak should one ever appear (bench/load_test.py
# checks worker memory and file descriptors before and after load).
max_requests = _int("GUNICORN_MAX_REQUESTS", 0)
max_requests_jitter = max_requests // 10
# The heartbeat file on tmpfs: a slow or busy disk must not make the arbiter think a worker hangs.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = os.environ.get("GUNICORN_ERROR_LOG", "-")
# %(h)s is nginx; X-Real-IP is the visitor nginx saw. %(B)s: bytes of the body, also when sent with sendfile.
# %(M)s: milliseconds the app spent on the request. Last, the request id the app's own lines carry.
access_log_format = '%({x-real-ip}i)s %(h)s "%(r)s" %(s)s %(B)s %(M)sms "%(f)s" "%(a)s" %({x-request-id}o)s'
# Redacts ?password= and X-Share-Password from every line, counts sendfile's bytes, one line per record, and
# JSON lines with LOG_FORMAT=json (photoshare/gunicorn_logger.py).
logger_class = "photoshare.gunicorn_logger.Logger"
# No control socket for `gunicornc`: gunicorn would otherwise create ~/.gunicorn/gunicorn.ctl in the home of
# whoever runs it. Reload and stop go through systemd's signals (photoshare.service).
control_socket_disable = True
# Which proxy to believe is the app's decision alone (PROXY_FIX_HOPS: werkzeug's ProxyFix sets the client
# address, scheme and host from nginx's X-Forwarded-* headers). gunicorn itself takes no scheme from headers,
# on a TCP or a unix socket alike.
forwarded_allow_ips = ""
secure_scheme_headers: dict[str, str] = {}


def on_starting(server: Any) -> None:
    """Build the app once in the master before any worker exists: a configuration error (a missing bucket,
    no SECRET_KEY in production) then stops gunicorn with one line, instead of every worker failing to boot
    and being replaced, for ever, while requests hang. Workers build their own app (nothing is preloaded)."""
    from photoshare import ConfigError, create_app

    try:
        create_app()
    except ConfigError as exc:
        print(f"photoshare: configuration error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(WORKER_BOOT_ERROR) from None


def worker_exit(server: Any, worker: Any) -> None:
    """Write the activity events this worker still queues (photoshare/activity/recorder.py) before it exits after
    SIGTERM, a reload or a restart; the interpreter's atexit does the same, this hook makes it explicit."""
    try:
        from photoshare.activity import flush_all

        flush_all()
    except Exception as exc:  # noqa: BLE001 (an exiting worker must still exit)
        print(f"photoshare: could not flush activity at worker exit: {exc}", file=sys.stderr, flush=True)
