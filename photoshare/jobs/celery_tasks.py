"""The Celery app of one Flask app: broker and result store on Redis, tasks that take ids and run in an app
context, and the beat schedule of the sweeper. Stored in `app.extensions["celery"]`.

Run the workers with `celery -A photoshare.jobs.celery_app worker` and the schedule with `... beat`
(or `worker -B` on a single machine).
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask

from ..extensions import db


def make_celery(app: Flask) -> Any:
    from celery import Celery, Task

    broker = app.config["BROKER_URL"]
    state = {"pid": os.getpid()}

    class AppTask(Task):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with app.app_context():
                if state["pid"] != os.getpid():  # a forked pool child must not share the parent's connections
                    db.engine.dispose(close=False)
                    state["pid"] = os.getpid()
                return self.run(*args, **kwargs)

    celery = Celery(app.import_name, task_cls=AppTask)
    celery.conf.update(
        broker_url=broker,
        result_backend=app.config["REDIS_URL"] or broker,
        task_ignore_result=True,  # job state lives in the database, where every web worker reads it
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=3,
        broker_transport_options={"visibility_timeout": 3600, "socket_connect_timeout": 3},
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1},
        worker_prefetch_multiplier=1,  # builds are long: a free worker should take the next one, not hoard
        worker_hijack_root_logger=False,  # the app's one-line (or JSON) handler stays (photoshare/logs.py)
        task_default_queue="photoshare",
        beat_schedule={
            "photoshare-sweep": {"task": "photoshare.sweep", "schedule": float(app.config["JOB_SWEEP_SECONDS"])},
            # Owners' daily activity e-mails: checked as often as the sweep, sent once per album and day.
            "photoshare-digest": {"task": "photoshare.digest", "schedule": float(app.config["JOB_SWEEP_SECONDS"])},
        },
    )

    @celery.task(name="photoshare.build_archive", shared=False)
    def build_archive(job_id: str) -> None:
        from .build import run_build

        run_build(job_id)

    @celery.task(name="photoshare.send_notices", shared=False)
    def send_notices(job_id: str) -> None:
        from .notify import send_for_job

        send_for_job(job_id)

    @celery.task(name="photoshare.first_download", shared=False)
    def first_download(share_id: int) -> None:
        from .owner_mail import send_first_download

        send_first_download(share_id)

    @celery.task(name="photoshare.digest", shared=False)
    def digest() -> None:
        from .owner_mail import send_due_digests

        send_due_digests()

    @celery.task(name="photoshare.sweep", shared=False)
    def sweep_task() -> None:
        from .sweep import sweep

        sweep(revive=True)

    app.extensions["celery"] = celery
    return celery
