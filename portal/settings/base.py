"""Settings shared by every environment.

Everything an operator may change comes from :func:`portal.config.load_config`
(one TOML file plus ``BYZANTIUM_*`` environment variables); nothing here
should need editing on a node.
"""

from __future__ import annotations

from pathlib import Path

from django.utils.translation import gettext_lazy as _

from portal.config import REPO_DIR, load_config, read_or_create_secret

BASE_DIR: Path = REPO_DIR
PORTAL = load_config()
STATE_DIR: Path = PORTAL.state_dir
# The portal's own interpreter, by fixed absolute path: the only python the
# host layer starts as a daemon (the mDNS responder, see
# portal.host.allowlist.PORTAL_DAEMON_SCRIPTS). Never taken from input.
PORTAL_PYTHON: Path = BASE_DIR / ".venv" / "bin" / "python"

SECRET_KEY = read_or_create_secret(STATE_DIR / "secret_key")
DEBUG = False

# A captive portal answers for whatever host a phone asked for (that is how it
# catches the phone's first request), so every Host header is accepted; the
# admin side is guarded by login, CSRF and HTTPS instead.
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_rq",
    "axes",
    "portal",
    "meshnet",
    "services",
    "gateway",
    "captive",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # OS connectivity probes and held clients' HTTP (any host, any path):
    # answered before the HTTPS redirect, without a query or a template.
    "captive.middleware.CaptivePortalMiddleware",
    "portal.middleware.PublicSideMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "portal.middleware.SetupRequiredMiddleware",
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context_processors.node",
                "meshnet.context_processors.pending_change",
            ],
        },
    },
]

_db_dir = STATE_DIR / "db"
DATABASES = {
    "default": PORTAL.database
    or {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": _db_dir / "portal.sqlite3",
        "OPTIONS": {
            # The worker and the web process write the same file; WAL lets
            # pages read while a job writes its log, and the timeout rides
            # out the short write locks instead of failing a request.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
        },
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": (
            "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"
        )
    },
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = PORTAL.language
LANGUAGES = [
    ("en", _("English")),
    ("es", _("Spanish")),
    ("fr", _("French")),
    ("ar", _("Arabic")),
]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = "UTC"
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = STATE_DIR / "static"

LOGIN_URL = "portal:login"
LOGIN_REDIRECT_URL = "portal:dashboard"
LOGOUT_REDIRECT_URL = "portal:login"

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = 60 * 60 * 12
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# Login throttling (django-axes): five wrong passwords from one address lock
# that address out for fifteen minutes; a correct login resets the count.
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = 0.25
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_PARAMETERS = ["ip_address"]
AXES_LOCKOUT_TEMPLATE = "portal/locked_out.html"
AXES_VERBOSE = False
# Behind nginx the client is nginx's X-Real-IP, not the socket's peer (see
# portal.middleware.client_address); without this one guesser locks out all.
AXES_CLIENT_IP_CALLABLE = "portal.middleware.client_address"

# Paths that answer on the plain-HTTP side besides "/", /static/, /i18n/,
# /api/, /captive/ and /.well-known/ (portal.middleware); apps append theirs.
PUBLIC_PATH_PREFIXES: list[str] = []

# babeld's read-only local socket, read by the dashboard's status job: the
# managed lab node's in lab mode, babeld's usual one on a real node.
BABELD_SOCKET: Path = (
    PORTAL.lab_dir / PORTAL.lab_node / "root/run/byzantium/babeld.sock"
    if PORTAL.host_mode == "lab"
    else Path("/run/byzantium/babeld.sock")
)

# The job queue. Jobs are JSON, never pickle; the worker runs only functions
# from the project's job registry (portal.jobqueue).
REDIS_URL = PORTAL.effective_redis_url
RQ_QUEUES = {
    "privileged": {
        "URL": REDIS_URL,
        "DEFAULT_TIMEOUT": 600,
        "SERIALIZER": "rq.serializers.JSONSerializer",
    },
}
# The captive lane (captive.queue): its own worker, so a tap is not stuck
# behind a long host change on the privileged queue.
RQ_QUEUES["captive"] = {**RQ_QUEUES["privileged"], "DEFAULT_TIMEOUT": 120}

# The port the captive firewall redirects held clients' HTTP to; nginx
# listens there too (runnode), and only held clients' requests arrive on it
# (captive.probes). Where the portal's pages are announced when the node has
# no client subnet yet.
CAPTIVE_HELD_PORT = 8081
CAPTIVE_FALLBACK_HOST = "node.mesh"

RQ = {
    "JOB_CLASS": "portal.jobqueue.rq.RegisteredJob",
    "WORKER_CLASS": "portal.jobqueue.rq.PortalWorker",
}
JOB_RETENTION_DAYS = PORTAL.job_retention_days

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {
        "django": {"level": "WARNING"},
        # Every job note would otherwise reach the worker's console (the
        # directory sync's every 30 s), burying the banner of `make run`;
        # each job's log is on its page. (rq's own lines: `rqworker -v 0`.)
        "portal.jobqueue.log": {"level": "WARNING"},
    },
}
