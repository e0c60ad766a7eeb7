"""The deployment files agree with the app: every setting documented with its default, nginx's internal
locations where the app sends X-Accel-Redirect, the site file rendered from the app's settings, and systemd
units and gunicorn's configuration that their tools accept. (tests/test_nginx.py runs them for real.)"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from photoshare.config import SETTINGS
from photoshare.delivery.accel import LOCATIONS
from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"
ENV_EXAMPLE = DEPLOY / "photoshare.env.example"


def render_module():
    spec = importlib.util.spec_from_file_location("render_nginx", DEPLOY / "render_nginx.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def example_values() -> dict[str, str]:
    """NAME -> value of every `NAME=value` line of the example, commented out or not."""
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.match(r"^#?([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            values[match.group(1)] = match.group(2)
    return values


def test_env_example_lists_every_setting_with_its_default():
    values = example_values()
    missing = sorted(set(SETTINGS) - set(values))
    assert not missing, f"add these settings to deploy/photoshare.env.example: {missing}"
    lines = ENV_EXAMPLE.read_text().splitlines()
    for name, (default, _parser) in SETTINGS.items():
        if default is None or f"{name}={values[name]}" in lines:  # set for production on purpose
            continue
        shown = str(default).lower() if isinstance(default, bool) else str(default)
        assert values[name] == shown, f"{name}: the example says {values[name]!r}, config.py {shown!r}"


def test_env_example_lists_every_variable_gunicorn_reads():
    read = set(re.findall(r"\b(GUNICORN_[A-Z_]+)\b", (DEPLOY / "gunicorn.conf.py").read_text()))
    assert read and read <= set(example_values())
    assert "CELERY_CONCURRENCY" in example_values()


def test_nginx_internal_locations_are_where_the_app_sends_files():
    site = (DEPLOY / "nginx.conf").read_text()
    found = dict(re.findall(r"location (/_accel/[a-z-]+/) \{\s*internal;\s*alias \$\{PHOTOSHARE_([A-Z_]+)\}/;", site))
    assert found == {prefix: setting for setting, prefix, _rebuilt in LOCATIONS}


def test_rendered_site_takes_paths_and_limits_from_the_env_file(tmp_path: Path):
    env = tmp_path / "photoshare.env"
    env.write_text("# comment\nPHOTOSHARE_INSTANCE=/srv/ps\nMAX_UPLOAD_MB=50\nZIP_CACHE_DIR=/cache/zips\n"
                   "GUNICORN_BIND=unix:/run/photoshare/gunicorn.sock\n")
    done = subprocess.run([sys.executable, str(DEPLOY / "render_nginx.py"), "--env-file", str(env),
                           "--server-name", "photos.example.com"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    site = done.stdout
    assert "${PHOTOSHARE_" not in site
    assert "client_max_body_size 50m;" in site
    assert "alias /srv/ps/uploads/;" in site and "alias /cache/zips/;" in site  # default under the instance, or set
    assert "server unix:/run/photoshare/gunicorn.sock;" in site
    assert "ssl_certificate /etc/letsencrypt/live/photos.example.com/fullchain.pem;" in site
    assert f"alias {ROOT / 'photoshare' / 'static'}/;" in site


def test_render_refuses_to_leave_a_placeholder_empty():
    module = render_module()
    values = {name: "x" for name in module.placeholders()}
    values["PHOTOSHARE_UPLOAD_DIR"] = " "
    with pytest.raises(KeyError, match="PHOTOSHARE_UPLOAD_DIR"):
        module.render(values)


def test_gunicorn_accepts_the_deploy_configuration():
    done = subprocess.run([sys.executable, "-m", "gunicorn", "--check-config", "-c", str(DEPLOY / "gunicorn.conf.py"),
                           "wsgi:app"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "SECRET_KEY": "x", "PHOTOSHARE_INSTANCE": "/tmp/ps-check"})
    assert done.returncode == 0, done.stderr


def test_systemd_units_are_valid(tmp_path: Path):
    units = sorted(DEPLOY.glob("*.service"))
    assert [u.name for u in units] == ["photoshare-beat.service", "photoshare-worker.service", "photoshare.service"]
    for unit in units:
        text = unit.read_text()
        assert "EnvironmentFile=/etc/photoshare/photoshare.env" in text
        # The programs live in the server's virtualenv; here any executable stands in for them.
        (tmp_path / unit.name).write_text(re.sub(r"/opt/photoshare/\.venv/bin/\w+", "/bin/true", text))
    assert "-c deploy/gunicorn.conf.py wsgi:app" in (DEPLOY / "photoshare.service").read_text()
    done = subprocess.run(["systemd-analyze", "verify", *map(str, sorted(tmp_path.glob("*.service")))],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


# ---- a lean install -------------------------------------------------------------------------------------------------

TEST_TOOLS = {"pytest", "pytest-timeout", "hypothesis", "ruff", "import-linter", "moto", "requests", "aiosmtpd",
              "playwright"}


def requirement_names(path: Path) -> list[str]:
    """Distribution names of `name==version` lines (extras dropped, lowercase)."""
    names = []
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)(\[[^\]]*\])?==", line.strip())
        if match:
            names.append(match.group(1).lower().replace("_", "-"))
    return names


def imported_distributions() -> set[str]:
    """Every installed distribution the app's code (photoshare/, wsgi.py, deploy/, migrations/) imports itself."""
    import ast
    from importlib.metadata import packages_distributions

    modules: set[str] = set()
    files = [*ROOT.joinpath("photoshare").rglob("*.py"), ROOT / "wsgi.py", *DEPLOY.glob("*.py"),
             *ROOT.joinpath("migrations").rglob("*.py")]
    for file in files:
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    distributions = packages_distributions()
    return {name.lower() for module in modules - set(sys.stdlib_module_names) - {"photoshare"}
            for name in distributions[module]}


def test_requirements_pin_what_the_app_imports_and_no_test_tool():
    runtime = requirement_names(ROOT / "requirements.txt")
    missing = imported_distributions() - set(runtime)
    assert not missing, f"the app imports these; pin them in requirements.txt: {sorted(missing)}"
    assert not TEST_TOOLS & set(runtime), "test and lint tools belong in requirements-dev.txt"
    dev = ROOT.joinpath("requirements-dev.txt").read_text().splitlines()
    assert "-r requirements.txt" in dev
    assert TEST_TOOLS <= set(requirement_names(ROOT / "requirements-dev.txt"))
    for line in [*ROOT.joinpath("requirements.txt").read_text().splitlines(), *dev]:
        assert not line.strip() or line.startswith(("#", "-r ")) or "==" in line, f"not pinned: {line}"


def test_make_run_installs_the_apps_requirements_only_and_make_test_adds_the_dev_ones(tmp_path: Path):
    """What make would run on a fresh clone (`make -n`: printed, not run)."""
    for name in ("Makefile", "requirements.txt", "requirements-dev.txt"):
        shutil.copy(ROOT / name, tmp_path / name)

    def planned(target: str) -> str:
        done = subprocess.run(["make", "-n", target], cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    run = planned("run")
    assert "pip install --quiet -r requirements.txt" in run and "requirements-dev" not in run
    test = planned("test")
    assert "pip install --quiet -r requirements.txt" in test and "pip install --quiet -r requirements-dev.txt" in test
    assert re.search(r"^TEST_DEBS := .*\bsystemd\b", (ROOT / "Makefile").read_text(), re.M)  # systemd-analyze
