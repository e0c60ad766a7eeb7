"""gunicorn settings for Photoshare: `gunicorn -c deploy/gunicorn.conf.py wsgi:app`.

gthread workers: a download held open by a slow phone for ten minutes occupies one thread, not a whole
worker, and the worker keeps its heartbeat while requests run (a sync worker would be killed after
`timeout` seconds of one long download). Threads also share the process's archive builds.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
worker_class = "gthread"
workers = int(os.environ.get("GUNICORN_WORKERS", max(2, multiprocessing.cpu_count())))
threads = int(os.environ.get("GUNICORN_THREADS", 16))
# With gthread, `timeout` bounds a silent worker (deadlock), not a long request.
timeout = 120
graceful_timeout = 60  # on reload/stop, running downloads get a minute to finish
keepalive = 5
max_requests = 2000
max_requests_jitter = 200
accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(B)s %(M)sms "%(f)s" "%(a)s"'
errorlog = "-"
