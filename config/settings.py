"""Partner Panel settings, read from the environment (django-environ).

One module for every environment: ``DEBUG`` decides between the developer defaults and the
production hardening below. Production secrets (``SECRET_KEY``, ``EVENTS_SIGNING_SECRET``)
have no default when ``DEBUG`` is off.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from config.logs import logging_config
from config.program import read_program_rules

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

if DEBUG:
    SECRET_KEY = env("SECRET_KEY", default="dev-only-insecure-key-change-me-" + "x" * 32)
    EVENTS_SIGNING_SECRET = env("EVENTS_SIGNING_SECRET", default="whsec_demo_signing_secret")
else:
    SECRET_KEY = env("SECRET_KEY")
    EVENTS_SIGNING_SECRET = env("EVENTS_SIGNING_SECRET")
    # A short secret can be guessed offline from one signed value (a session cookie, an event).
    for _name, _secret in (("SECRET_KEY", SECRET_KEY), ("EVENTS_SIGNING_SECRET", EVENTS_SIGNING_SECRET)):
        if len(_secret) < 32:
            raise ImproperlyConfigured(
                f"{_name} must be at least 32 characters in production (it has {len(_secret)}); generate one with "
                "python -c 'import secrets; print(secrets.token_urlsafe(48))'."
            )

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "axes",
    "csp",
    # django-ninja's API docs page from its vendored static files, with no inline script (CSP).
    "ninja",
    # TOTP two-factor for staff who decide payouts (payouts/approval.py).
    "django_otp",
    "django_otp.plugins.otp_totp",
    "partners",
    "tracking",
    "commissions",
    "payouts",
    "commissions.stripe_billing",
    "commissions.fraud",
]
# Developer tools (devtools/: demo, simulator, loadbench, fake PayPal): with DEBUG, or where a
# production-like run needs them (make bench's loadbench); never in a production install.
DEVTOOLS = env.bool("DEVTOOLS", default=DEBUG)
if DEVTOOLS:
    INSTALLED_APPS.append("devtools")

MIDDLEWARE = [
    "config.middleware.BodySizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",  # request.user.is_verified() for the payout 2FA gate
    "config.middleware.AdminNulMiddleware",
    # Cache-Control: private, no-store for sessions and API credentials; staff session lifetime.
    "config.middleware.PrivateCacheMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.middleware.CSPMiddleware",  # django-csp's, with the policy built once
    # django-axes must come last: it turns a locked-out login into a 429 page.
    "axes.middleware.AxesMiddleware",
]
# The chain of /r/<code> (the affiliate link) and the events API (config/handlers.py): they read
# no session, user, CSRF token, message or static file, so only the body-size limit, the host
# check and the middleware that set response headers run; they answer exactly as through MIDDLEWARE.
LEAN_MIDDLEWARE = [
    name
    for name in MIDDLEWARE
    if name
    in {
        "config.middleware.BodySizeLimitMiddleware",
        "django.middleware.security.SecurityMiddleware",
        "django.middleware.common.CommonMiddleware",  # ALLOWED_HOSTS, Content-Length
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
        "config.middleware.CSPMiddleware",
    }
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "partners.context_processors.panel",
            ],
            # The money and date filters (commissions/display.py) in every template, admin's too.
            "builtins": ["commissions.templatetags.commissions_tags"],
        },
    },
]

# --- Database ---------------------------------------------------------------------------
# An embedded SQLite file by default, so `make demo` needs no server; PostgreSQL (psycopg 3)
# when DATABASE_URL says so, with persistent connections checked before reuse.
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
else:
    DATABASES["default"].setdefault("OPTIONS", {})
    # WAL + a busy timeout let the demo server, the simulator and in-process tasks share
    # the file without "database is locked" errors.
    DATABASES["default"]["OPTIONS"].update(
        {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}
    )
    # The rollups' covering indexes (INCLUDE columns) are a PostgreSQL feature; SQLite builds
    # them without the extra columns, which is all the demo and the tests need.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis, cache, Celery ---------------------------------------------------------------
REDIS_URL = env("REDIS_URL", default="")

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "config.cache.RedisCache",  # Django's, one client object per pool
            "LOCATION": REDIS_URL,
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# CACHE_URL (django-environ's form, e.g. dbcache://partner_panel_cache after
# `manage.py createcachetable`) replaces the cache REDIS_URL gives.
if env("CACHE_URL", default=""):
    CACHES = {"default": env.cache_url("CACHE_URL")}
# The throttles (password reset, sign-up, confirmation links) count in this cache: per process,
# a limit of 5 is 5 per worker. Production needs one every process shares.
_PER_PROCESS_CACHES = {
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
    "django.core.cache.backends.filebased.FileBasedCache",
}
if not DEBUG and CACHES["default"]["BACKEND"] in _PER_PROCESS_CACHES:
    raise ImproperlyConfigured(
        "Production (DEBUG off) needs a cache shared by every process for the rate limits: set REDIS_URL, "
        "or CACHE_URL=dbcache://<table> after `manage.py createcachetable`."
    )

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 300
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600, "socket_connect_timeout": 1}
CELERY_TIMEZONE = "UTC"
# Modules with tasks beyond the apps' tasks.py (autodiscovered).
CELERY_IMPORTS = ["tracking.rebuild"]
CELERY_BEAT_SCHEDULE = {
    "expire-trials": {
        "task": "commissions.tasks.expire_trials_task",
        "schedule": crontab(minute="*/15"),
    },
    "recalculate-all-balances": {
        "task": "commissions.tasks.recalculate_all_balances_task",
        "schedule": crontab(minute=7),
    },
    "poll-paypal-batches": {
        "task": "payouts.tasks.reconcile_payouts_task",
        "schedule": timedelta(seconds=env.int("PAYPAL_POLL_SECONDS", default=30)),
    },
    "flush-click-buffer": {
        "task": "tracking.tasks.flush_click_buffer_task",
        "schedule": timedelta(seconds=5),
    },
    "resolve-awaiting-clicks": {
        "task": "commissions.tasks.resolve_awaiting_clicks_task",
        "schedule": timedelta(seconds=60),
    },
    "stripe-refunds-waited": {
        "task": "commissions.stripe_billing.tasks.stripe_refunds_waited_task",
        "schedule": timedelta(minutes=5),
    },
    # Issue 22: partners' chosen emails.
    "notify-new-activity": {
        "task": "partners.tasks.notify_new_activity_task",
        "schedule": timedelta(minutes=5),
    },
    "fraud-rules": {
        "task": "fraud.tasks.fraud_rules_task",
        "schedule": crontab(minute=23),
    },
    "monthly-statement": {
        "task": "partners.tasks.monthly_statement_task",
        "schedule": crontab(day_of_month=1, hour=6, minute=0),
    },
}

# --- Auth ---------------------------------------------------------------------------------
AUTH_USER_MODEL = "partners.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "partners:login"
# Staff sessions (the admin moves money) last hours, not the partners' 14 days
# (config.middleware.PrivateCacheMiddleware shortens them).
STAFF_SESSION_SECONDS = env.int("STAFF_SESSION_HOURS", default=12) * 3600
LOGIN_REDIRECT_URL = "partners:dashboard"
LOGOUT_REDIRECT_URL = "partners:login"

AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_COOLOFF_MINUTES", default=15))
# Two rules (partners/lockout.py): an email from one address (AXES_FAILURE_LIMIT failures) and
# one address whatever the emails (LOGIN_ADDRESS_FAILURE_LIMIT), in this order.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address"]
LOGIN_ADDRESS_FAILURE_LIMIT = env.int("LOGIN_ADDRESS_FAILURE_LIMIT", default=30)
AXES_HANDLER = "partners.lockout.AccountAndAddressLockoutHandler"
AXES_RESET_ON_SUCCESS = True
# Our login form posts the email in the field Django calls "username".
AXES_USERNAME_FORM_FIELD = "username"
# The lockout key is the email as the login lookup sees it (NFKC + casefold): a case variant
# of a locked email is the same locked account (partners/emails.py).
AXES_USERNAME_CALLABLE = "partners.emails.axes_username"
AXES_LOCKOUT_TEMPLATE = "partners/locked_out.html"
AXES_VERBOSE = False
# Failed attempts are kept (that is the throttle) under a keyed pseudonym of the address
# (config.clientip.pseudonymous_ip); successful logins are not logged at all.
AXES_DISABLE_ACCESS_LOG = True
# Behind TRUSTED_PROXY_COUNT reverse proxies the client address comes from X-Forwarded-For.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
# A header a trusted proxy sets to the visitor's country (e.g. CF-IPCountry); empty: no country
# is recorded. Only set it when every request passes that proxy (a client could write it).
COUNTRY_HEADER = env("COUNTRY_HEADER", default="")
AXES_CLIENT_IP_CALLABLE = "config.clientip.pseudonymous_ip"
PASSWORD_RESET_LIMIT_PER_HOUR = env.int("PASSWORD_RESET_LIMIT_PER_HOUR", default=5)
# Sign-up answers per client address and hour (each costs a password hash and may send an email).
SIGNUP_LIMIT_PER_HOUR = env.int("SIGNUP_LIMIT_PER_HOUR", default=10)

# --- Email ----------------------------------------------------------------------------------
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
# Reset and confirmation links give access to an account: in production they must reach the
# mailbox, not the server log or a file (and users would receive nothing).
_UNDELIVERED_EMAIL = {
    "django.core.mail.backends.console.EmailBackend",
    "django.core.mail.backends.locmem.EmailBackend",
    "django.core.mail.backends.filebased.EmailBackend",
}
if not DEBUG and EMAIL_CONFIG["EMAIL_BACKEND"] in _UNDELIVERED_EMAIL:
    raise ImproperlyConfigured(
        "Production (DEBUG off) cannot send email to the console, memory or a file (password reset links would "
        "land in the log): set EMAIL_URL, e.g. smtp+tls://user:password@smtp.example.com:587."
    )
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Partner Panel <partners@example.com>")
STAFF_NOTIFICATION_EMAILS = env.list("STAFF_NOTIFICATION_EMAILS", default=[])

# --- I18N, static, media -----------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env("PROGRAM_TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(BASE_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Requests whose body is larger than this are refused with 413 before any view runs.
MAX_REQUEST_BODY_BYTES = env.int("MAX_REQUEST_BODY_BYTES", default=1_048_576)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_BYTES

# --- Security -----------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "strict-origin-when-cross-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    }
}
if not DEBUG:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    # X-Forwarded-Proto is the proxy's word only when there is a proxy: with none, the client
    # would write it and decide the scheme (of reset links, of the https redirect).
    if TRUSTED_PROXY_COUNT > 0:
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]  # probed and scraped inside the network

# --- Program rules (docs/reference.md "Program rules") -------------------------------------------
# Each rule is validated here, so a malformed value stops start-up naming the variable.
_rules = read_program_rules(env)
COMMISSION_RATE = _rules.commission_rate
ATTRIBUTION_WINDOW_DAYS = _rules.attribution_window_days
PAYOUT_MINIMUM = _rules.payout_minimum
PROGRAM_CURRENCY = _rules.currency
MERCHANT_ALLOWED_HOSTS = _rules.merchant_allowed_hosts
DEFAULT_LANDING_URL = _rules.default_landing_url
COMMISSION_HOLD_DAYS = _rules.commission_hold_days
TRACKING_COOKIE_DOMAIN = _rules.tracking_cookie_domain
TRIAL_LENGTHS = (14, 30)
MERCHANT_NAME = env("MERCHANT_NAME", default="CrazyCall")
EVENTS_SIGNATURE_TOLERANCE_SECONDS = 300

# --- Running the program (issue 22): applications, fraud review, staff safety ----------------
# manual: a new partner waits for staff approval; until then their links count nothing.
PARTNER_APPROVAL = env.str("PARTNER_APPROVAL", default="auto").strip().lower()
if PARTNER_APPROVAL not in ("auto", "manual"):
    raise ImproperlyConfigured(f"PARTNER_APPROVAL={PARTNER_APPROVAL!r} is invalid: expected auto or manual.")
# How long staff take to review an application, as the partner is told.
PARTNER_REVIEW_DAYS = env.int("PARTNER_REVIEW_DAYS", default=2)
# Four eyes: a payout above this needs the approval of a second, different staff member.
try:
    PAYOUT_SECOND_APPROVAL_ABOVE = Decimal(env.str("PAYOUT_SECOND_APPROVAL_ABOVE", default="1000.00").strip())
except ArithmeticError:
    PAYOUT_SECOND_APPROVAL_ABOVE = Decimal("NaN")
if not PAYOUT_SECOND_APPROVAL_ABOVE.is_finite() or PAYOUT_SECOND_APPROVAL_ABOVE < 0:
    raise ImproperlyConfigured("PAYOUT_SECOND_APPROVAL_ABOVE is invalid: expected an amount such as 1000.00.")
OTP_TOTP_ISSUER = env("OTP_TOTP_ISSUER", default="Partner Panel")
# Fraud rules (commissions/fraud/rules.py): what counts as suspicious.
FRAUD_LOOKBACK_DAYS = env.int("FRAUD_LOOKBACK_DAYS", default=30)
FRAUD_SIGNUPS_PER_VISITOR = env.int("FRAUD_SIGNUPS_PER_VISITOR", default=3)
FRAUD_CLICKS_PER_VISITOR_HOUR = env.int("FRAUD_CLICKS_PER_VISITOR_HOUR", default=30)
FRAUD_REFUNDS_PER_REFERRAL = env.int("FRAUD_REFUNDS_PER_REFERRAL", default=2)
FRAUD_CONVERSION_FACTOR = Decimal(env.str("FRAUD_CONVERSION_FACTOR", default="5"))
FRAUD_MIN_CLICKS = env.int("FRAUD_MIN_CLICKS", default=20)

PAYPAL_MODE = _rules.paypal_mode
PAYPAL_CLIENT_ID = env("PAYPAL_CLIENT_ID", default="")
PAYPAL_CLIENT_SECRET = env("PAYPAL_CLIENT_SECRET", default="")
PAYPAL_API_BASE = env("PAYPAL_API_BASE", default="")
PAYPAL_TIMEOUT_SECONDS = env.float("PAYPAL_TIMEOUT_SECONDS", default=10.0)

# Stripe Billing connector (commissions/stripe_billing/, docs/stripe.md). The webhook endpoint refuses every
# request while STRIPE_WEBHOOK_SECRET is empty; DEBUG has a demo secret for `simulate --via stripe`.
STRIPE_WEBHOOK_SECRET = env("STRIPE_WEBHOOK_SECRET", default="whsec_demo_stripe_secret" if DEBUG else "")
STRIPE_WEBHOOK_TOLERANCE_SECONDS = 300
STRIPE_API_KEY = env("STRIPE_API_KEY", default="")  # manage.py stripe_sync (a restricted read-only key)
STRIPE_API_BASE = env("STRIPE_API_BASE", default="")  # empty: Stripe's own; tests point it at a fake
# How long a charge.refunded waits for its refund events (refund.created) before it is applied by
# the growth of the charge's cumulative amount_refunded on its own day (docs/stripe.md).
STRIPE_REFUND_WAIT_SECONDS = env.int("STRIPE_REFUND_WAIT_SECONDS", default=3600)
# Where a price names its plan (A, B or C): its lookup_key, or metadata.plan.
STRIPE_PLAN_FROM = env("STRIPE_PLAN_FROM", default="lookup_key").strip().lower()
if STRIPE_PLAN_FROM not in ("lookup_key", "metadata"):
    raise ImproperlyConfigured(f"STRIPE_PLAN_FROM must be lookup_key or metadata, not {STRIPE_PLAN_FROM!r}.")

# Click recording (tracking/clicks.py): "spool" appends each click to a local file that
# `manage.py flush_clicks --loop` on the same host moves into the database (tracking/spool.py;
# the production choice, see BENCHMARKS.md); "redis" buffers in a Redis stream (true is the
# same); "off" (false) writes each click straight into the database. Both buffers fall back to
# a direct write whenever they cannot take a click.
_CLICK_BUFFERS = {"spool": "spool", "redis": "redis", "true": "redis", "on": "redis", "1": "redis"}
_click_buffer = env.str("CLICK_BUFFER", default="redis" if REDIS_URL else "off").strip().lower()
if _click_buffer not in {*_CLICK_BUFFERS, "off", "false", "0", ""}:
    raise ImproperlyConfigured(f"CLICK_BUFFER must be spool, redis or off, not {_click_buffer!r}.")
CLICK_BUFFER = _CLICK_BUFFERS.get(_click_buffer, False)
CLICK_SPOOL_DIR = env.path("CLICK_SPOOL_DIR", default=BASE_DIR / "var" / "click-spool")
# Celery beat's schedule file (`celery beat -s` overrides it), outside the tracked files.
CELERY_BEAT_SCHEDULE_FILENAME = str(
    env.path("CELERY_BEAT_SCHEDULE_FILENAME", default=BASE_DIR / "var" / "celerybeat-schedule")
)

# On PostgreSQL, the plain payment and sign-up events run as one prepared statement each
# (commissions/fastpath/). Off: every event takes the general ORM path; needed behind a
# connection pooler in transaction mode, which does not keep prepared statements.
EVENTS_SQL_FAST_PATH = env.bool("EVENTS_SQL_FAST_PATH", default=True)

# --- Operations: logs, error reports, health, metrics (docs/deploy.md) -------------------------
# LOG_FORMAT=json: one JSON object per line (python-json-logger); every line has its request id.
LOGGING = logging_config(
    log_format=env("LOG_FORMAT", default="plain").strip().lower(), level=env("LOG_LEVEL", default="INFO")
)
# One access-log line per response (logger partner_panel.access, config/logs.py).
ACCESS_LOG = env.bool("ACCESS_LOG", default=not DEBUG)  # runserver logs its own
# Celery keeps the handlers above (and their request ids) instead of installing its own.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Beat records a heartbeat that /healthz reads (config/beat.py).
CELERY_BEAT_SCHEDULER = "config.beat:HeartbeatScheduler"
# /metrics (Prometheus text format): staff sessions, or this bearer token for the scraper.
METRICS_TOKEN = env("METRICS_TOKEN", default="")
# Error reports to Sentry when SENTRY_DSN is set (sentry-sdk finds Django and Celery itself).
SENTRY_DSN = env("SENTRY_DSN", default="")
if SENTRY_DSN:
    import sentry_sdk

    sentry_sdk.init(
        dsn=SENTRY_DSN,
        environment=env("SENTRY_ENVIRONMENT", default="production"),
        traces_sample_rate=env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0),
        send_default_pii=False,
    )
