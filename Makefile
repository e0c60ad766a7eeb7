# Photoshare: `make run` serves a demo album, `make test` runs every test. Both set up what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8000
# Debian packages the tests drive for real: HTTP clients, unzip, Redis, nginx, Chromium, PostgreSQL, and
# systemd (systemd-analyze checks the unit files). No test skips for want of one: `make test` installs them all.
TEST_DEBS := curl wget zip unzip redis-server nginx-light openssl aria2 chromium postgresql systemd

.PHONY: run test bench load-test deps dev-deps catalogs messages system-deps clean

# The app's own packages only (`make run`); test and lint tools come on top with dev-deps (`make test`).
$(BIN)/.installed: requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Photoshare needs Python 3.11 or newer"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(BIN)/.installed-dev: $(BIN)/.installed requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

# The translations: each catalogue (.po, in git) compiled to the .mo the app reads (not in git), when it changed.
MO_FILES := $(patsubst %.po,%.mo,$(wildcard photoshare/translations/*/LC_MESSAGES/messages.po))

photoshare/translations/%/LC_MESSAGES/messages.mo: photoshare/translations/%/LC_MESSAGES/messages.po | $(BIN)/.installed
	$(BIN)/pybabel compile --statistics -l $* -i $< -o $@

catalogs: $(MO_FILES)

# After text was added or changed: extract every marked message into the template (messages.pot) and bring each
# catalogue up to date with it; then translate the new (empty) and fuzzy entries and `make catalogs`.
messages: | $(BIN)/.installed
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext --no-location --sort-output --width 120 \
	  --project Photoshare -o photoshare/translations/messages.pot .
	$(BIN)/pybabel update -i photoshare/translations/messages.pot -d photoshare/translations \
	  --width 120 --ignore-obsolete

deps: $(BIN)/.installed catalogs

dev-deps: $(BIN)/.installed-dev catalogs

run: deps
	$(BIN)/flask --app wsgi init-db
	BASE_URL=$${BASE_URL:-http://localhost:$(PORT)} $(BIN)/flask --app wsgi demo
	BASE_URL=$${BASE_URL:-http://localhost:$(PORT)} $(BIN)/gunicorn -c deploy/gunicorn.conf.py --bind 0.0.0.0:$(PORT) wsgi:app

system-deps:
	@missing=""; for pkg in $(TEST_DEBS); do dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# Run a second time against a real PostgreSQL server (started by the tests on a free port, in a temp folder):
# the schema and its migrations, albums and share links, every download path with its counters (in-process and
# through a real gunicorn), and job rows (files whose `app` fixture takes `database_config` or `postgres_server`).
PG_TESTS := tests/test_migrations.py tests/test_owner.py tests/test_owner_shares.py tests/test_share_pages.py \
	tests/test_downloads_photo.py tests/test_downloads_archive.py tests/test_downloads_http.py \
	tests/test_jobs_embedded.py tests/test_names.py tests/test_bad_input.py \
	tests/test_activity.py tests/test_activity_counters.py tests/test_activity_owner.py tests/test_activity_mail.py tests/test_download_rules.py

test: system-deps dev-deps
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -p no:cacheprovider --timeout=300 tests
	PHOTOSHARE_TEST_POSTGRES=1 $(BIN)/python -m pytest -q -p no:cacheprovider --timeout=300 $(PG_TESTS)

bench: dev-deps
	$(BIN)/python bench/bench_downloads.py
	$(BIN)/python bench/bench_prepare.py

# 50 clients through nginx + gunicorn (deploy/) for 20 s, against nginx serving the same bytes (needs root and wrk).
load-test: system-deps dev-deps
	@dpkg -s wrk >/dev/null 2>&1 || apt-get install -y -qq wrk >/dev/null
	$(BIN)/python bench/load_test.py --postgres

clean:
	rm -rf $(VENV) .pytest_cache
