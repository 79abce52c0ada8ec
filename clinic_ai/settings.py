"""Settings for clinic_ai, read from the environment.

Every helper fails loudly on a bad value: a typo in a deployment must stop the
process at start, not surface as odd behaviour later.
"""

import os
import warnings
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value in (None, "") else value


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {value!r}")


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from None
    if number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {number}")
    return number


def env_size(name: str, default: str) -> int:
    """A size in bytes, with an optional K/M/G suffix (powers of 1024)."""
    raw = (env_str(name, default) or "").strip().upper()
    multipliers = {"K": 1024, "M": 1024**2, "G": 1024**3}
    factor = 1
    if raw[-1:] in multipliers:
        factor = multipliers[raw[-1]]
        raw = raw[:-1]
    try:
        number = int(raw) * factor
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a size like 512M or 2G, got {os.environ.get(name)!r}") from None
    if number <= 0:
        raise ImproperlyConfigured(f"{name} must be positive")
    return number


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
_SECRET_KEY_FILE = Path(env_str("SECRET_KEY_FILE", str(BASE_DIR / "var" / "secret_key")) or "")
if not SECRET_KEY and _SECRET_KEY_FILE.is_file():
    # `make run` keeps its key there, so `manage.py` commands use the same key (and DEID_SECRET).
    SECRET_KEY = _SECRET_KEY_FILE.read_text().strip()
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is required when DEBUG is off (set it, or SECRET_KEY_FILE; `make run` creates var/secret_key)"
        )
    SECRET_KEY = "insecure-development-key-only-for-debug"

ALLOWED_HOSTS = [
    h.strip() for h in (env_str("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]") or "").split(",") if h.strip()
]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in (env_str("CSRF_TRUSTED_ORIGINS", "") or "").split(",") if o.strip()]
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "crispy_forms",
    "crispy_bootstrap5",
    "clinic_ai.core",
    "clinic_ai.accounts",
    "clinic_ai.studies",
    "clinic_ai.deidentification",
    "clinic_ai.inference",
    "clinic_ai.labelling",
    "clinic_ai.review",
    "clinic_ai.performance",
    "clinic_ai.pipeline",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "clinic_ai.core.middleware.ContentSecurityPolicyMiddleware",
    # Static files (vendored Bootstrap and our JS) are served by the app itself: no CDN, no extra server.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "clinic_ai.urls"
WSGI_APPLICATION = "clinic_ai.wsgi.application"

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

DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'var' / 'clinic_ai.sqlite3'}")
try:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
except Exception as exc:  # dj_database_url raises several types for a bad URL
    raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from None
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # Web and worker write to one file. IMMEDIATE transactions take the write lock up front, so a
    # writer waits (up to the timeout) instead of failing with "database is locked" when it would
    # have to upgrade a read lock; WAL lets readers go on while one process writes.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "var" / "static")))
# Without collectstatic (make run, tests) WhiteNoise serves straight from STATICFILES_DIRS.
WHITENOISE_USE_FINDERS = True
STATIC_ROOT.mkdir(parents=True, exist_ok=True)

# Released files and previews. Never served as static files: every file goes
# through a view that checks the user's role in the file's project.
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / "var" / "media")))
# Originals with patient data: kept apart from MEDIA_ROOT so a misconfigured
# web server that serves the media folder still cannot reach them.
QUARANTINE_ROOT = Path(env_str("QUARANTINE_ROOT", str(BASE_DIR / "var" / "quarantine")))
if QUARANTINE_ROOT.resolve() == MEDIA_ROOT.resolve() or MEDIA_ROOT.resolve() in QUARANTINE_ROOT.resolve().parents:
    raise ImproperlyConfigured("QUARANTINE_ROOT must not be inside MEDIA_ROOT")

# Keys for de-identification: UIDs are mapped and patients pseudonymised with HMACs under this
# secret, so a study sent in two batches keeps one new UID. Changing it splits every later upload
# from everything before: set it once per deployment and keep it with the database backups.
DEID_SECRET = env_str("DEID_SECRET") or f"derived-from-secret-key:{SECRET_KEY}"
# Days to keep a quarantined original after release (0: purge at release).
QUARANTINE_RETENTION_DAYS = env_int("QUARANTINE_RETENTION_DAYS", 0)
# Hours to keep the browser's file names of an upload (shown on its progress page; they can name patients).
UPLOAD_NAME_RETENTION_HOURS = env_int("UPLOAD_NAME_RETENTION_HOURS", 24)
# A file whose chunks stopped arriving this many minutes ago is abandoned: rejected, its partial
# bytes (patient data) purged by housekeeping, which runs every HOUSEKEEPING_INTERVAL_MINUTES
# (celery beat, inside the worker of `make run`). Together they keep a partial under an hour.
UPLOAD_ABANDONED_MINUTES = env_int("UPLOAD_ABANDONED_MINUTES", 30, minimum=1)
HOUSEKEEPING_INTERVAL_MINUTES = env_int("HOUSEKEEPING_INTERVAL_MINUTES", 10, minimum=1)
# The upload page stops waiting for a file still unprocessed after this long, and says so.
UPLOAD_STUCK_MINUTES = env_int("UPLOAD_STUCK_MINUTES", 15, minimum=1)
OCR_TIMEOUT = env_int("OCR_TIMEOUT", 30, minimum=1)
# The ensemble `manage.py predict` uses without --ensemble when several are active.
DEFAULT_ENSEMBLE = env_str("DEFAULT_ENSEMBLE", "pneumonia-demo")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# Upload limits. Browsers send files in chunks, so no request holds a whole file.
UPLOAD_CHUNK_SIZE = env_size("UPLOAD_CHUNK_SIZE", "4M")
UPLOAD_MAX_FILE_SIZE = env_size("UPLOAD_MAX_FILE_SIZE", "1G")
UPLOAD_MAX_BATCH_SIZE = env_size("UPLOAD_MAX_BATCH_SIZE", "8G")
UPLOAD_MAX_BATCH_FILES = env_int("UPLOAD_MAX_BATCH_FILES", 5000, minimum=1)
# A CSV of file name -> label sent with an upload: one request (so under DATA_UPLOAD_MAX_MEMORY_SIZE).
UPLOAD_LABEL_CSV_MAX_SIZE = env_size("UPLOAD_LABEL_CSV_MAX_SIZE", "1M")
# Pillow's decompression-bomb guard, in pixels per image.
IMAGE_MAX_PIXELS = env_int("IMAGE_MAX_PIXELS", 120_000_000, minimum=1)
ZIP_MAX_MEMBERS = env_int("ZIP_MAX_MEMBERS", 5000, minimum=1)
ZIP_MAX_TOTAL_SIZE = env_size("ZIP_MAX_TOTAL_SIZE", "4G")
ZIP_MAX_RATIO = env_int("ZIP_MAX_RATIO", 200, minimum=1)
# Chunks must fit in one request body.
DATA_UPLOAD_MAX_MEMORY_SIZE = UPLOAD_CHUNK_SIZE + 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = UPLOAD_CHUNK_SIZE + 1024 * 1024
PREVIEW_MAX_SIZE = env_int("PREVIEW_MAX_SIZE", 1024, minimum=64)

# Celery on Redis. Tasks are acknowledged after they finish and re-queued if a
# worker dies, so every task must be safe to run twice.
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
if not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(f"REDIS_URL must start with redis://, rediss:// or unix://, got {REDIS_URL!r}")
# The cache holds the failed log-in counters. Redis is there already (the broker) and counts
# atomically across web processes; keys are prefixed, so it can share the broker's database.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "clinic_ai",
    }
}
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "cpu"
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 3600
# Read by celery beat: `make run` runs it inside its one worker (`-B`); with many workers run one
# `celery -A clinic_ai beat` (or `manage.py housekeeping` from cron at the same interval).
CELERY_BEAT_SCHEDULE = {
    "housekeeping": {
        "task": "clinic_ai.pipeline.tasks.housekeeping",
        "schedule": HOUSEKEEPING_INTERVAL_MINUTES * 60.0,
    }
}
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=60)}
# Tests and one-off scripts may run tasks in-process.
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)

# Failed log-ins per username and client IP within the window (seconds) before log-in pauses;
# per IP alone 4×, per username alone 10× (clinic_ai/accounts/throttle.py).
LOGIN_THROTTLE_FAILURES = env_int("LOGIN_THROTTLE_FAILURES", 5, minimum=1)
LOGIN_THROTTLE_WINDOW = env_int("LOGIN_THROTTLE_WINDOW", 900, minimum=1)
# Behind a reverse proxy (TLS ends there): trust the last X-Forwarded-For entry (the one our proxy
# appends) as the client's address, for the log-in throttle, and X-Forwarded-Proto for HTTPS.
BEHIND_PROXY = env_bool("BEHIND_PROXY", False)
if BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Served over HTTPS: secure cookies, HTTP redirected to HTTPS, HSTS. On by default when SITE_URL
# is https://; `make run` serves plain HTTP on localhost, so it is off there.
SECURE_SSL = env_bool("SECURE_SSL", SITE_URL.startswith("https://"))
SESSION_COOKIE_SECURE = SECURE_SSL
CSRF_COOKIE_SECURE = SECURE_SSL
SECURE_SSL_REDIRECT = SECURE_SSL
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600 if SECURE_SSL else 0)
# Subdomains of the app's own host only (clinic-ai.example.org, not example.org's other sites).
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
# Not preloaded (check --deploy's W021, kept): browsers' preload list is the domain owner's choice.
SECURE_HSTS_PRELOAD = False
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# No 'unsafe-inline' anywhere: page code is in static/js, styles in static/css. Images may be blob:
# (the mask page shows the server's PNGs through object URLs) and data: (Bootstrap's CSS icons).
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # pydicom's messages quote header values and file paths, which can be patient data.
        # What matters reaches the user as a rejection reason instead.
        "pydicom": {"handlers": [], "level": "CRITICAL", "propagate": False},
        # Pillow's debug messages print EXIF and PNG text values (names, IDs) of uploaded images.
        "PIL": {"level": "WARNING"},
    },
}
# For the same reason, pydicom's warnings (about odd header values) are not printed.
warnings.filterwarnings("ignore", module=r"pydicom(\.|$)")
