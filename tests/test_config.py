"""Configuration: defaults that run anywhere, instance/config.py, environment variables, test config, in that order."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from photoshare import create_app
from photoshare.config import ConfigError
from tests.conftest import ROOT, free_port


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("SECRET_KEY", "PHOTOSHARE_ENV", "BASE_URL", "UPLOAD_DIR", "DATABASE_URL", "MAX_UPLOAD_MB"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_defaults_keep_everything_in_the_instance_folder(instance, clean_env):
    app = create_app({"INSTANCE_PATH": str(instance)})
    assert app.config["UPLOAD_DIR"] == str(instance / "uploads")
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{instance / 'photoshare.sqlite3'}"
    assert app.config["MAX_CONTENT_LENGTH"] == 200 * 1024 * 1024


def test_development_secret_key_is_generated_once_and_kept(instance, clean_env):
    first = create_app({"INSTANCE_PATH": str(instance)}).config["SECRET_KEY"]
    second = create_app({"INSTANCE_PATH": str(instance)}).config["SECRET_KEY"]
    assert first == second and len(first) >= 64
    assert (instance / "secret_key").stat().st_mode & 0o077 == 0  # readable by its owner only


def test_production_without_secret_key_refuses_to_start(instance, clean_env):
    clean_env.setenv("PHOTOSHARE_ENV", "production")
    with pytest.raises(ConfigError, match="SECRET_KEY must be set"):
        create_app({"INSTANCE_PATH": str(instance)})
    assert not (instance / "secret_key").exists()


def test_gunicorn_entry_point_explains_a_missing_production_key_in_one_line(instance):
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    env |= {"PHOTOSHARE_ENV": "production", "PHOTOSHARE_INSTANCE": str(instance)}
    result = subprocess.run([sys.executable, "-c", "import wsgi"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 3  # gunicorn's WORKER_BOOT_ERROR: the arbiter halts
    assert result.stderr.strip().count("\n") == 0 and "SECRET_KEY must be set" in result.stderr
    assert "Traceback" not in result.stderr


def test_environment_overrides_instance_config_and_test_config_overrides_both(instance, clean_env):
    (instance / "config.py").write_text('BASE_URL = "https://from-file.example"\nMAX_UPLOAD_MB = 5\n')
    assert create_app({"INSTANCE_PATH": str(instance)}).config["BASE_URL"] == "https://from-file.example"
    clean_env.setenv("BASE_URL", "https://from-env.example/")
    clean_env.setenv("MAX_UPLOAD_MB", "7")
    app = create_app({"INSTANCE_PATH": str(instance)})
    assert app.config["BASE_URL"] == "https://from-env.example"  # trailing slash dropped
    assert app.config["MAX_CONTENT_LENGTH"] == 7 * 1024 * 1024
    assert create_app({"INSTANCE_PATH": str(instance), "MAX_UPLOAD_MB": 9}).config["MAX_UPLOAD_MB"] == 9


def test_a_malformed_number_is_a_one_line_config_error(instance, clean_env):
    clean_env.setenv("MAX_UPLOAD_MB", "lots")
    with pytest.raises(ConfigError, match="MAX_UPLOAD_MB='lots' is not a valid value"):
        create_app({"INSTANCE_PATH": str(instance)})


def test_postgres_urls_use_psycopg_3(instance, clean_env):
    clean_env.setenv("DATABASE_URL", "postgres://u:p@db.example/photos")
    app = create_app({"INSTANCE_PATH": str(instance)})
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u:p@db.example/photos"


def test_upload_dir_secret_key_and_database_url_come_from_the_environment(instance, tmp_path, clean_env):
    clean_env.setenv("UPLOAD_DIR", str(tmp_path / "photos"))
    clean_env.setenv("SECRET_KEY", "from-the-environment")
    clean_env.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'elsewhere.sqlite3'}")
    app = create_app({"INSTANCE_PATH": str(instance)})
    assert app.config["UPLOAD_DIR"] == str(tmp_path / "photos") and (tmp_path / "photos").is_dir()
    assert app.config["SECRET_KEY"] == "from-the-environment" and not (instance / "secret_key").exists()
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'elsewhere.sqlite3'}"


def run_gunicorn(instance, settings: dict[str, str], *flags: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """gunicorn on a free port with `settings` in its environment; (the finished process, seconds it ran).
    The timeout fails the test when gunicorn keeps replacing workers that cannot boot instead of stopping."""
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "PHOTOSHARE_ENV")}
    env |= {"PHOTOSHARE_INSTANCE": str(instance), **settings}
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{free_port()}", *flags,
                             "wsgi:app"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    return result, time.monotonic() - started


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if "configuration error" in line]


def test_gunicorn_with_the_deploy_config_stops_on_a_missing_bucket_with_one_line(instance, s3_config):
    settings = {**s3_config, "S3_BUCKET": "no-such-bucket", "SECRET_KEY": "x", "GUNICORN_WORKERS": "2"}
    result, seconds = run_gunicorn(instance, settings, "-c", str(ROOT / "deploy" / "gunicorn.conf.py"))
    output = result.stdout + result.stderr
    assert result.returncode != 0 and seconds < 20
    assert error_lines(output) == ["photoshare: configuration error: S3 bucket 'no-such-bucket' at "
                                   f"{s3_config['S3_ENDPOINT_URL']} does not exist (create it or fix S3_BUCKET)"]
    assert "Booting worker" not in output and "Traceback" not in output  # checked in the master, once


def test_plain_gunicorn_halts_instead_of_restarting_workers_that_cannot_boot(instance):
    result, seconds = run_gunicorn(instance, {"PHOTOSHARE_ENV": "production"}, "--workers", "2")
    output = result.stdout + result.stderr
    # gunicorn's own "Worker failed to boot." halt: exit 3. When both workers fail at the same moment, gunicorn's
    # halt reaps the second one while stopping and raises its HaltServer again (its traceback, exit 1): a race in
    # gunicorn's arbiter, not a restart loop. The deploy config never gets there: it checks in the master first.
    assert result.returncode in (1, 3) and seconds < 20
    assert 1 <= output.count("Booting worker") <= 2  # the first workers only: no restart loop
    assert error_lines(output) and all("SECRET_KEY must be set" in line for line in error_lines(output))
    tracebacks = output.split("Traceback")[1:]
    assert all("HaltServer" in trace for trace in tracebacks) and (result.returncode == 3) == (not tracebacks)
