"""Settings, all driven by the environment (and an optional `.env` file).

Every variable read here is documented in deploy/env.example. Defaults suit a developer machine
with PostgreSQL and Redis on loopback; production sets DEBUG=0 and real secrets. Values go through
mailhelper.env: a malformed boolean or number stops the start, and each secret can come from X_FILE.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from dotenv import load_dotenv
from kombu import Queue

from mailhelper.env import env, env_bool, env_choice, env_float, env_int, env_list, env_secret

BASE_DIR = Path(__file__).resolve().parent.parent
load_dotenv(os.environ.get("MAILHELPER_ENV_FILE", BASE_DIR / ".env"))


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_secret("SECRET_KEY") or ""
if not SECRET_KEY:
    if DEBUG:
        SECRET_KEY = "insecure-development-key-set-SECRET_KEY-in-production"
    else:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set: put SECRET_KEY=... (or SECRET_KEY_FILE=path) in the environment or .env "
            "(see deploy/env.example)"
        )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_celery_beat",
    "django_celery_results",
    # Floors from the ground up (ARCHITECTURE.md): an app imports only from its own floor or below.
    "core",
    "accounts",
    "mail",
    "events",
    "tags",
    "analysis",
    "rules",
    "newsletters",
    "digest",
    "legacy",
    "mailhelper",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "core.security_headers.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "mailhelper.metrics.RequestMetricsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",  # the browser's language, until the user chose one
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.UserPreferencesMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "accounts.middleware.Require2FAMiddleware",
    "accounts.middleware.StrictModeKeyMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_ratelimit.middleware.RatelimitMiddleware",
]

ROOT_URLCONF = "mailhelper.urls"
WSGI_APPLICATION = "mailhelper.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASE_URL = env_secret("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mailhelper")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
# Server-side parameter binding: encrypted mail is mostly large bytea values, which client-side
# binding hex-escapes into the SQL (~20% of the sync's time). core.db batches bulk operations
# under PostgreSQL's 65,535-parameter limit, which Django only needed with client-side binding.
DATABASES["default"]["ENGINE"] = "core.db"
DATABASES["default"].setdefault("OPTIONS", {})["server_side_binding"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_secret("REDIS_URL", "redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "mailhelper",
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            "SOCKET_CONNECT_TIMEOUT": 2,
            "SOCKET_TIMEOUT": 2,
        },
    },
    # Rendered template fragments that are the same for everyone of a language (the main navigation,
    # the correction form's choices): `{% cache None name LANGUAGE_CODE using="fragments" %}`. Kept in
    # each web process, not in Redis, whose round trip costs more than rendering them (#15).
    "fragments": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "fragments"},
}

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Django's defaults, plus the legacy application's werkzeug hashes (verified once at an imported
# user's first login, then re-hashed with the first entry).
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
    "accounts.hashers.WerkzeugPasswordHasher",
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "accounts:login"

# Sessions live in Redis with a 30-minute idle timeout: every request pushes the expiry forward
# (accounts/sessions.py: Django's cache sessions, an unchanged one only has its expiry moved).
SESSION_ENGINE = "accounts.sessions"
SESSION_COOKIE_AGE = env_int("SESSION_IDLE_TIMEOUT", 30 * 60)
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SECURE_COOKIES = env_bool("SECURE_COOKIES", not DEBUG)
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env("SECURE_PROXY_SSL_HEADER"):
    SECURE_PROXY_SSL_HEADER = (env("SECURE_PROXY_SSL_HEADER"), "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
# Behind deploy/nginx.conf the proxy redirects http to https and sends HSTS itself (Django sending it too
# would duplicate the header). Saying so silences exactly the two `check --deploy` warnings about what
# Django then leaves to the proxy, so the check stays clean and meaningful for everything else.
PROXY_ENFORCES_HTTPS = env_bool("MAILHELPER_PROXY_ENFORCES_HTTPS", False)
SILENCED_SYSTEM_CHECKS = ["security.W004", "security.W008"] if PROXY_ENFORCES_HTTPS else []

LANGUAGE_CODE = "en"
# The interface's languages (locale/<code>/ holds the catalogues; `make deps` compiles them).
LANGUAGES = [("en", "English"), ("de", "Deutsch")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- Celery -------------------------------------------------------------------------------------
CELERY_BROKER_URL = env_secret("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
# Task results are pruned in small batches by core.prune (MAILHELPER_RETENTION_TASK_RESULTS_DAYS), not by
# Celery's own celery.backend_cleanup, which deletes a day's results in one transaction: with no expiry
# set, beat does not install that task (and an existing row of it does nothing).
CELERY_RESULT_EXPIRES = None
CELERY_CACHE_BACKEND = "default"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 30 * 60)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 25 * 60)
CELERY_TASK_TRACK_STARTED = True
# Celery's Django fixup closes every database connection before and after each task unless this is
# set: each of 10,000 accounts' syncs then paid a new PostgreSQL backend (fork, authentication, catalog
# caches) and lost its prepared statements. Workers keep their connection like web requests do instead:
# mailhelper/celery.py applies CONN_MAX_AGE and the health check around every task (close_old_connections),
# and Celery's own close then runs only every this many tasks (bench/fanout.py; docs/notes/fanout.md).
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 1000)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A task taken by a worker that then dies entirely (kill -9, power loss) is redelivered once
# visibility_timeout has passed; kombu looks for such tasks every interval x throttle seconds. A pool
# process that dies is requeued at once (reject_on_worker_lost). Keep the timeout longer than the
# hard time limit and the longest retry countdown: kombu cannot extend it for a task still running
# or an ETA retry, so anything shorter runs them twice. We do not wait for redelivery to learn of a
# dead sync: its run is settled as interrupted by the next sync of the account or the 5-minute sweep
# (heartbeat + advisory lock), and a late redelivery records a new run (docs/notes/sync-runs.md).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 60 * 60),
    "unacked_restore_interval": env_int("CELERY_UNACKED_RESTORE_INTERVAL", 10),
    "unacked_restore_throttle": env_int("CELERY_UNACKED_RESTORE_THROTTLE", 10),
    # A worker killed while it holds the sweep's mutex blocks every other sweep until this expires.
    "unacked_mutex_expire": env_int("CELERY_UNACKED_MUTEX_EXPIRE", 300),
}
# Queues by kind of work, so that a send never waits behind 500 syncs: deploy/ runs one worker for the
# background queues and one for the user's own writes (Procfile, systemd, compose name their -Q). A
# worker started without -Q consumes every queue listed here, so an old unit file still runs everything.
# The default queue keeps Celery's name "celery": tasks queued before the routing still run.
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = [Queue(name) for name in ("celery", "sync", "analysis", "send")]
CELERY_TASK_ROUTES = {
    # Background: every account's periodic sync and its sweep.
    "mail.sync_account": {"queue": "sync"},
    "mail.settle_stale_sync_runs": {"queue": "sync"},
    # Background: analysis and what follows it (rules, topics), re-analysis jobs.
    "mail.analyse_account": {"queue": "analysis"},
    "mail.analyse_stragglers": {"queue": "analysis"},
    "mail.reanalyse": {"queue": "analysis"},
    "mail.fit_topics": {"queue": "analysis"},
    "digest.send_digest": {"queue": "analysis"},
    "mail.translate_messages": {"queue": "analysis"},
    "rules.run_rules_job": {"queue": "analysis"},
    "tags.keywords_catch_up": {"queue": "analysis"},
    # The user waits: sending a draft, and their actions written back to the server (the outbox).
    "mail.send_draft": {"queue": "send"},
    "mail.write_back": {"queue": "send"},
}
CELERY_BEAT_SCHEDULER = "mail.beat:AccountSyncScheduler"
CELERY_TIMEZONE = TIME_ZONE
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_WORKER_SEND_TASK_EVENTS = True
CELERY_TASK_SEND_SENT_EVENT = True

# --- Keys and accounts ----------------------------------------------------------------------------
# The sync key is read here but validated at process start (wsgi, worker) and by `manage.py check`,
# so that `manage.py generate_sync_key` works before a key exists.
MAILHELPER_SYNC_KEY = env("MAILHELPER_SYNC_KEY", "") or ""
MAILHELPER_SYNC_KEY_FILE = env("MAILHELPER_SYNC_KEY_FILE", "") or ""
# Argon2id parameters for new password wraps; old wraps keep the parameters recorded with them.
MAILHELPER_KDF_ITERATIONS = env_int("MAILHELPER_KDF_ITERATIONS", 3)
MAILHELPER_KDF_MEMORY_KIB = env_int("MAILHELPER_KDF_MEMORY_KIB", 64 * 1024)
MAILHELPER_KDF_LANES = env_int("MAILHELPER_KDF_LANES", 1)
MAILHELPER_RECOVERY_CODE_COUNT = 10
MAILHELPER_LOCKOUT_THRESHOLD = env_int("MAILHELPER_LOCKOUT_THRESHOLD", 5)
MAILHELPER_LOCKOUT_MINUTES = env_int("MAILHELPER_LOCKOUT_MINUTES", 15)
MAILHELPER_RATE_LOGIN = env("MAILHELPER_RATE_LOGIN", "20/m")
MAILHELPER_RATE_LOGIN_USER = env("MAILHELPER_RATE_LOGIN_USER", "10/m")
MAILHELPER_RATE_REGISTER = env("MAILHELPER_RATE_REGISTER", "5/h")
# Who may create an account (accounts/invitations.py): anyone ("open"), people the operator invited
# ("invite": `manage.py invite EMAIL` or the admin), or nobody but the admin ("closed").
MAILHELPER_REGISTRATION = env_choice("MAILHELPER_REGISTRATION", ("open", "invite", "closed"), "invite")
# Days an invitation stays valid unless the operator chooses otherwise (`manage.py invite --days N`).
MAILHELPER_INVITATION_DAYS = env_int("MAILHELPER_INVITATION_DAYS", 14)
# Unsubscribe requests per user (each one may contact a sender's web or mail server).
MAILHELPER_RATE_UNSUBSCRIBE = env("MAILHELPER_RATE_UNSUBSCRIBE", "60/h")
# The address users reach this installation at, for links in mail it sends (the digest).
MAILHELPER_BASE_URL = env("MAILHELPER_BASE_URL", "http://localhost:8000") or "http://localhost:8000"
# Days a user's audit log events (logins, security changes) are kept; 0 keeps them forever.
MAILHELPER_AUDIT_DAYS = env_int("MAILHELPER_AUDIT_DAYS", 365)
# Days history rows are kept before the daily core.prune deletes them (core/retention.py); 0 keeps them.
# Sync runs: the newest per account and the failures of the last 30 days stay whatever their age.
MAILHELPER_RETENTION_SYNC_RUNS_DAYS = env_int("MAILHELPER_RETENTION_SYNC_RUNS_DAYS", 14)
MAILHELPER_RETENTION_OUTBOX_DAYS = env_int("MAILHELPER_RETENTION_OUTBOX_DAYS", 30)
MAILHELPER_RETENTION_JOBS_DAYS = env_int("MAILHELPER_RETENTION_JOBS_DAYS", 30)
MAILHELPER_RETENTION_TASK_RESULTS_DAYS = env_int("MAILHELPER_RETENTION_TASK_RESULTS_DAYS", 7)
MAILHELPER_METRICS_TOKEN = env_secret("MAILHELPER_METRICS_TOKEN", "") or ""

# --- Mail ---------------------------------------------------------------------------------------
# Megabytes of files a user may attach to one message they write (all files together; base64 makes the
# mail a third larger, and common SMTP servers take 25-35 MB).
MAILHELPER_ATTACHMENTS_MAX_MB = env_int("MAILHELPER_ATTACHMENTS_MAX_MB", 20)
# Days after which mail the user sent that expects an answer, and got none, is listed as "Awaiting reply".
MAILHELPER_AWAITING_REPLY_DAYS = env_int("MAILHELPER_AWAITING_REPLY_DAYS", 3)
# Uploads stay in memory and go into the database encrypted: never a plaintext temporary file on disk.
# A request larger than this keeps its form fields but not its files (the compose page says so).
FILE_UPLOAD_HANDLERS = ["django.core.files.uploadhandler.MemoryFileUploadHandler"]
FILE_UPLOAD_MAX_MEMORY_SIZE = (MAILHELPER_ATTACHMENTS_MAX_MB + 1) * 1024 * 1024
# Extra CA certificates to trust for IMAP/SMTP TLS (a self-hosted server with its own CA).
MAILHELPER_EXTRA_CA_FILE = env("MAILHELPER_EXTRA_CA_FILE", "") or ""
MAILHELPER_IMAP_TIMEOUT = env_float("MAILHELPER_IMAP_TIMEOUT", 30.0)
MAILHELPER_SMTP_TIMEOUT = env_float("MAILHELPER_SMTP_TIMEOUT", 30.0)
# Longest wait for an LLM writing a reply draft in a request (keep it below GUNICORN_TIMEOUT).
MAILHELPER_REPLY_LLM_TIMEOUT = env_float("MAILHELPER_REPLY_LLM_TIMEOUT", 45.0)
MAILHELPER_SYNC_BATCH = env_int("MAILHELPER_SYNC_BATCH", 200)
# Processes that parse and encrypt during a large sync (mail/sync_pool.py); 0: in the sync's own thread.
# Only where the worker may start processes (the sync queue's worker runs --pool threads, deploy/).
MAILHELPER_SYNC_PROCESSES = env_int("MAILHELPER_SYNC_PROCESSES", min(os.cpu_count() or 1, 4))
# ... and only for a fetch of at least this many messages (starting processes takes a moment).
MAILHELPER_SYNC_PROCESSES_FROM = env_int("MAILHELPER_SYNC_PROCESSES_FROM", 1000)
MAILHELPER_SYNC_MAX_RETRIES = env_int("MAILHELPER_SYNC_MAX_RETRIES", 5)
MAILHELPER_DEFAULT_SYNC_MINUTES = env_int("MAILHELPER_DEFAULT_SYNC_MINUTES", 5)
# "Sign in with Google / Microsoft / <your provider>" (mail/oauth.py): a provider is offered once it has a
# client id. Register the redirect URI that `manage.py check_deploy` prints with each (README, "OAuth2").
MAILHELPER_OAUTH_PROVIDERS = {
    "google": {
        "client_id": env("MAILHELPER_OAUTH_GOOGLE_CLIENT_ID", "") or "",
        "client_secret": env_secret("MAILHELPER_OAUTH_GOOGLE_CLIENT_SECRET") or "",
    },
    "microsoft": {
        "client_id": env("MAILHELPER_OAUTH_MICROSOFT_CLIENT_ID", "") or "",
        "client_secret": env_secret("MAILHELPER_OAUTH_MICROSOFT_CLIENT_SECRET") or "",
        "tenant": env("MAILHELPER_OAUTH_MICROSOFT_TENANT", "common") or "common",
    },
    "generic": {
        "name": env("MAILHELPER_OAUTH_GENERIC_NAME", "") or "",
        "client_id": env("MAILHELPER_OAUTH_GENERIC_CLIENT_ID", "") or "",
        "client_secret": env_secret("MAILHELPER_OAUTH_GENERIC_CLIENT_SECRET") or "",
        "authorize_url": env("MAILHELPER_OAUTH_GENERIC_AUTHORIZE_URL", "") or "",
        "token_url": env("MAILHELPER_OAUTH_GENERIC_TOKEN_URL", "") or "",
        "revoke_url": env("MAILHELPER_OAUTH_GENERIC_REVOKE_URL", "") or "",
        "scopes": env("MAILHELPER_OAUTH_GENERIC_SCOPES", "openid email") or "openid email",
        "imap_host": env("MAILHELPER_OAUTH_GENERIC_IMAP_HOST", "") or "",
        "imap_port": env_int("MAILHELPER_OAUTH_GENERIC_IMAP_PORT", 993),
        "smtp_host": env("MAILHELPER_OAUTH_GENERIC_SMTP_HOST", "") or "",
        "smtp_port": env_int("MAILHELPER_OAUTH_GENERIC_SMTP_PORT", 587),
    },
}
# Push (manage.py watch_mailboxes, mail/idle.py): IDLE connections one watcher process holds at most,
# how often it re-reads the accounts, and how long a sync waits to gather a burst of news.
MAILHELPER_IDLE_MAX_CONNECTIONS = env_int("MAILHELPER_IDLE_MAX_CONNECTIONS", 1000)
MAILHELPER_IDLE_RELOAD_SECONDS = env_float("MAILHELPER_IDLE_RELOAD_SECONDS", 30.0)
MAILHELPER_IDLE_DEBOUNCE_SECONDS = env_float("MAILHELPER_IDLE_DEBOUNCE_SECONDS", 1.0)

# --- After analysis ------------------------------------------------------------------------------
# What runs on mail once its analysis is committed, in THIS order (analysis/post_analysis.py runs
# them): topics first (the similarity projection), then tag suggestions (auto-applied tags), then the
# user's rules (which may test those tags). Each is a function (owner_id, messages) -> None; its
# dotted path is also its name in MessageAnalysis.stages_pending (the sweep drops names no longer
# listed here, so a renamed stage needs a data migration of that column to keep its pending work).
MAILHELPER_POST_ANALYSIS_STAGES = [
    "analysis.stages.learn_topics",
    "tags.stages.suggest_tags",
    "analysis.stages.show_category_keywords",
    "rules.stages.run_rules",
    "analysis.stages.queue_translations",
]

# --- Outbound connections (core/outbound.py) -------------------------------------------------------
# Users choose mail hosts and model URLs: loopback, link-local (cloud metadata) and the addresses of
# our own database, Redis and broker are refused; private ranges only when the operator says so.
MAILHELPER_ALLOW_PRIVATE_HOSTS = env_bool("MAILHELPER_ALLOW_PRIVATE_HOSTS", False)
# Exceptions: host names, IPs or CIDRs, each optionally with :port ([v6]:port), allowed whatever the rules.
MAILHELPER_OUTBOUND_ALLOW = env_list("MAILHELPER_OUTBOUND_ALLOW", "")

OTP_TOTP_ISSUER = env("OTP_TOTP_ISSUER", "Mailhelper")
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

RATELIMIT_USE_CACHE = "default"
RATELIMIT_VIEW = "accounts.views.auth.rate_limited"
if env("RATELIMIT_IP_META_KEY"):
    # Behind a reverse proxy, e.g. HTTP_X_REAL_IP (set by deploy/nginx.conf).
    RATELIMIT_IP_META_KEY = env("RATELIMIT_IP_META_KEY")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # imapclient logs the whole IMAP conversation (mail content) at DEBUG: never let it through.
        "imapclient": {"level": "WARNING"},
    },
}
