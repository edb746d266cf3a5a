# Two commands: `make up` runs the product, `make test` runs the tests (see README.md).
PY := .venv/bin/python
STAMP := .venv/.installed-$(shell cat requirements.txt requirements-dev.txt | sha1sum | cut -c1-12)
PORT ?= 8000
export PORT

.PHONY: up demo test deps lint migrate check bench clean

# A developer's venv gets both files: production's (requirements.txt, all the image installs) and
# what tests, lint and the honcho runner of `make up` need (requirements-dev.txt).
$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	rm -f .venv/.installed-* && touch $@

# The interface's translations (locale/<lang>/LC_MESSAGES/django.po, committed) compiled for Django; needs gettext.
MO := $(patsubst %.po,%.mo,$(wildcard locale/*/LC_MESSAGES/django.po))
%.mo: %.po
	@command -v msgfmt >/dev/null || { echo "msgfmt is missing: apt-get install gettext (Debian/Ubuntu), brew install gettext (macOS)"; exit 1; }
	msgfmt --check -o $@ $<

deps: $(STAMP) $(MO)

# A developer's .env with fresh secrets; never committed (see deploy/env.example for every variable).
# Registration is open on a developer's machine; an installation without the setting is invite-only.
.env: | $(STAMP)
	@echo "Creating .env with a new SECRET_KEY and MAILHELPER_SYNC_KEY (keep a copy of the sync key)."
	@printf 'DEBUG=1\nMAILHELPER_REGISTRATION=open\nSECRET_KEY=%s\nMAILHELPER_SYNC_KEY=%s\n' \
		"$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(50))')" \
		"$$(DEBUG=1 $(PY) manage.py generate_sync_key)" > .env

migrate: deps .env
	$(PY) manage.py ensure_database
	$(PY) manage.py migrate --no-input

# Starts a project-local PostgreSQL/Redis in var/ when nothing answers on their loopback URLs (scripts/up.sh).
up: deps .env
	bash scripts/up.sh

# `make up` plus a local Dovecot with a sample mailbox and a demo user, synced and analysed (scripts/demo.sh).
demo: deps .env
	bash scripts/demo.sh

test: deps
	bash scripts/test.sh $(ARGS)

lint: deps
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	DEBUG=1 $(PY) manage.py makemigrations --check --dry-run

bench: deps
	@ls bench/*.py | xargs -n1 $(PY)

clean:
	rm -rf .venv staticfiles
