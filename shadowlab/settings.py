"""ShadowLab settings: every knob comes from the environment (see README, "Configuration")."""

import os
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from shadowlab import local_stack, oidc_config
from shadowlab.model_storage import bucket_storage

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

# Local state (SQLite database, uploaded models, the file broker) lives under one folder.
VAR_DIR = Path(env.str("SHADOWLAB_VAR_DIR", default=str(BASE_DIR / "var"))).resolve()

DEBUG = env.bool("DJANGO_DEBUG", default=True)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DJANGO_DEBUG is false.")
    SECRET_KEY = "insecure-development-key-never-used-with-debug-off"  # noqa: S105

ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "django_prometheus",
    "django_celery_beat",
    "csp",
    "axes",
    "shadowlab",
    "inspections",
    "deployments",
    "analytics",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "shadowlab.input_guard.NulCharacterGuardMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "shadowlab.request_actor.RequestActorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "shadowlab.http.HtmxLoginRedirectMiddleware",
    "shadowlab.database_interruption.DatabaseInterruptionMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
    # Last, as django-axes asks: it turns a lockout found while signing in into its answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "shadowlab.urls"

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
                "shadowlab.context_processors.shadowlab",
            ],
        },
    },
]

WSGI_APPLICATION = "shadowlab.wsgi.application"
ASGI_APPLICATION = "shadowlab.asgi.application"

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'shadowlab.sqlite3'}")
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # The web server, the worker and beat write to one file: WAL lets readers go on during a
    # write, IMMEDIATE transactions take the write lock up front instead of failing mid-way.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not memory, so that a worker process started by a test sees the same database;
    # one per test run, so that two runs side by side do not delete each other's.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-shadowlab-{os.getpid()}.sqlite3")}
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# django-axes counts failed sign-ins before the model backend checks the password.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# Optional sign-in through an OpenID Connect provider (shadowlab.oidc, README "Single
# sign-on"); username and password stay for everyone else.
SHADOWLAB_OIDC_ENABLED = env.bool("SHADOWLAB_OIDC_ENABLED", default=False)
SHADOWLAB_OIDC_PROVIDER_NAME = env.str("SHADOWLAB_OIDC_PROVIDER_NAME", default="single sign-on")
SHADOWLAB_OIDC_GROUPS_CLAIM = env.str("SHADOWLAB_OIDC_GROUPS_CLAIM", default="groups")
# The claim that names the account; "sub" where the provider lets people rename themselves.
SHADOWLAB_OIDC_USERNAME_CLAIM = env.str(
    "SHADOWLAB_OIDC_USERNAME_CLAIM", default="preferred_username"
)
SHADOWLAB_OIDC_GROUP_MAP = oidc_config.group_map_parse(
    env.str("SHADOWLAB_OIDC_GROUP_MAP", default="")
)
OIDC_RP_CLIENT_ID = env.str("OIDC_RP_CLIENT_ID", default="")
OIDC_RP_CLIENT_SECRET = env.str("OIDC_RP_CLIENT_SECRET", default="")
OIDC_RP_SIGN_ALGO = env.str("OIDC_RP_SIGN_ALGO", default="RS256")
OIDC_RP_SCOPES = env.str("OIDC_RP_SCOPES", default="openid email profile")
# The provider's issuer (or discovery document) URL; endpoints given one by one win over it.
OIDC_OP_DISCOVERY = env.str("OIDC_OP_DISCOVERY", default="")
OIDC_OP_AUTHORIZATION_ENDPOINT = env.str("OIDC_OP_AUTHORIZATION_ENDPOINT", default="")
OIDC_OP_TOKEN_ENDPOINT = env.str("OIDC_OP_TOKEN_ENDPOINT", default="")
OIDC_OP_USER_ENDPOINT = env.str("OIDC_OP_USER_ENDPOINT", default="")
OIDC_OP_JWKS_ENDPOINT = env.str("OIDC_OP_JWKS_ENDPOINT", default="")
OIDC_USE_PKCE = env.bool("OIDC_USE_PKCE", default=True)
# Seconds any one call to the provider may take, so that a sign-in never hangs.
OIDC_TIMEOUT = env.float("OIDC_TIMEOUT", default=10.0)
OIDC_AUTHENTICATION_CALLBACK_URL = "oidc_authentication_callback"
# Signing out of ShadowLab signs out at the provider too (its end-session endpoint, from
# discovery unless given), for whoever signed in through it: the ID token is kept in the
# session for that.
SHADOWLAB_OIDC_PROVIDER_LOGOUT = env.bool("SHADOWLAB_OIDC_PROVIDER_LOGOUT", default=True)
OIDC_OP_LOGOUT_ENDPOINT = env.str("OIDC_OP_LOGOUT_ENDPOINT", default="")
OIDC_STORE_ID_TOKEN = SHADOWLAB_OIDC_PROVIDER_LOGOUT
AXES_WHITELIST_CALLABLE = "shadowlab.oidc.axes_exempt"
if SHADOWLAB_OIDC_ENABLED:
    oidc_config.settings_check(
        client_id=OIDC_RP_CLIENT_ID,
        client_secret=OIDC_RP_CLIENT_SECRET,
        group_map=SHADOWLAB_OIDC_GROUP_MAP,
        discovery=OIDC_OP_DISCOVERY,
        endpoints=[
            OIDC_OP_AUTHORIZATION_ENDPOINT,
            OIDC_OP_TOKEN_ENDPOINT,
            OIDC_OP_USER_ENDPOINT,
            OIDC_OP_JWKS_ENDPOINT,
        ],
    )
    AUTHENTICATION_BACKENDS.append("shadowlab.oidc.ShadowLabOIDCBackend")

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

MEDIA_ROOT = Path(env.str("SHADOWLAB_MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "media/"

# Model files (ONNX and reference data) live under SHADOWLAB_MEDIA_ROOT, a volume every web and
# worker process shares, unless SHADOWLAB_MODEL_BUCKET names an S3-compatible bucket
# (django-storages): then each process keeps checked copies in SHADOWLAB_MODEL_CACHE_DIR.
MODEL_BUCKET = env.str("SHADOWLAB_MODEL_BUCKET", default="")
MODEL_CACHE_DIR = Path(env.str("SHADOWLAB_MODEL_CACHE_DIR", default=str(VAR_DIR / "model-cache")))
# Size the copies there are kept within: the least recently used go first.
MODEL_CACHE_MAX_BYTES = env.int("SHADOWLAB_MODEL_CACHE_MAX_BYTES", default=1024**3)
if MODEL_BUCKET:
    STORAGES["default"] = bucket_storage(
        bucket=MODEL_BUCKET,
        prefix=env.str("SHADOWLAB_MODEL_BUCKET_PREFIX", default="shadowlab"),
        endpoint_url=env.str("AWS_S3_ENDPOINT_URL", default=""),
        region=env.str("AWS_S3_REGION_NAME", default=""),
        addressing_style=env.str("AWS_S3_ADDRESSING_STYLE", default=""),
    )

# A JSON body larger than this is refused with 413 before it is read.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=2 * 1024 * 1024)
# Files in a multipart body stop at SHADOWLAB["MODEL_MAX_BYTES"] each, whichever view or
# middleware parses it: past that nothing more is read, kept in memory or spooled to disk.
FILE_UPLOAD_HANDLERS = [
    "deployments.uploads.SizeCapUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]

# Security headers. Pages carry no inline scripts or styles, so the policy can be strict.
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
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# No script reads either cookie (forms carry the CSRF token, the API docs page a data
# attribute), so both are HttpOnly; SameSite=Lax keeps them off cross-site POSTs.
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^readyz/workers$", r"^metrics$"]
# Bearer token a Prometheus scraper sends to /metrics; unset, /metrics answers 404.
SHADOWLAB_METRICS_TOKEN = env.str("SHADOWLAB_METRICS_TOKEN", default="")

# Celery. Redis when REDIS_URL is given, otherwise kombu's file transport under VAR_DIR
# (one machine only; messages a killed worker had taken are lost, the sweeper recovers them).
# A command in a second terminal reaches the broker of the `run_local` stack that runs on the
# same var folder (shadowlab.local_stack), exactly as that stack's own processes do.
REDIS_URL = env.str("REDIS_URL", default="")
LOCAL_STACK_BROKER_URL = (
    None
    if REDIS_URL or env.str("CELERY_BROKER_URL", default="")
    else local_stack.stack_broker_url(VAR_DIR)
)
if LOCAL_STACK_BROKER_URL and LOCAL_STACK_BROKER_URL.startswith("redis"):
    REDIS_URL = LOCAL_STACK_BROKER_URL
CELERY_BROKER_URL = env.str(
    "CELERY_BROKER_URL",
    default=REDIS_URL or LOCAL_STACK_BROKER_URL or "filesystem://localhost/",
)
BROKER_DIR = Path(env.str("SHADOWLAB_BROKER_DIR", default=str(VAR_DIR / "broker")))
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    # kombu's file transport with messages written and claimed by atomic renames.
    CELERY_BROKER_TRANSPORT = "shadowlab.file_broker:Transport"
    for folder in ("messages", "control", "processed"):
        (BROKER_DIR / folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "messages"),
        "data_folder_out": str(BROKER_DIR / "messages"),
        "control_folder": str(BROKER_DIR / "control"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "store_processed": False,
        "polling_interval": 0.1,
    }
elif CELERY_BROKER_URL.startswith("redis"):
    if CELERY_BROKER_URL.startswith("redis://"):
        # kombu's Redis transport, kept from crashing a worker that loses Redis mid-task.
        CELERY_BROKER_TRANSPORT = "shadowlab.redis_broker:Transport"
    # Re-deliver a message a killed worker had taken after this long; the sweeper usually
    # recovers the work sooner. Workers look for such messages a tenth as often (at least once
    # a minute); kombu's default, every 100 s, would outlast a short timeout.
    visibility_timeout = env.int("SHADOWLAB_BROKER_VISIBILITY_TIMEOUT", default=3600)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": visibility_timeout,
        "unacked_restore_interval": min(60, max(1, visibility_timeout // 10)),
        "unacked_restore_throttle": 1,
        # A Redis that accepts connections but does not answer (stopped, failing over, behind a
        # dead NAT entry) would hold a publish, and the request that makes it, for ever.
        "socket_timeout": env.float("SHADOWLAB_BROKER_SOCKET_TIMEOUT", default=2.0),
    }
CELERY_BROKER_CONNECTION_TIMEOUT = 3
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {"deployments.tasks.score_items": {"queue": "inference"}}
CELERY_TASK_ACKS_LATE = True
# A task whose worker process died is sent again, up to its max_retries, and then fails: handed
# back to the broker each time (reject on worker lost, still the way when the retry cannot be
# sent), a task that kills its process would kill one process after another for ever.
CELERY_TASK_RETRY_ON_WORKER_LOST = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = env.int("CELERY_WORKER_PREFETCH_MULTIPLIER", default=4)
# How long a worker waits for the result of a pool process that died before it declares the
# task lost (and sends it again). On the file broker every task a dead process had taken waits
# this long; Redis workers learn of the death at once.
CELERY_WORKER_LOST_WAIT = env.float("SHADOWLAB_WORKER_LOST_WAIT_SECONDS", default=10.0)
CELERY_TASK_SOFT_TIME_LIMIT = 60
CELERY_TASK_TIME_LIMIT = 90
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# How often the rollback monitor looks at every canary and live version (whole seconds:
# the database scheduler stores intervals as integers).
MONITOR_SECONDS = max(1, env.int("SHADOWLAB_MONITOR_SECONDS", default=60))
CELERY_BEAT_SCHEDULE = {
    "sweep-unscored-items": {
        "task": "deployments.tasks.sweep_unscored",
        "schedule": env.float("SHADOWLAB_SWEEP_INTERVAL_SECONDS", default=30.0),
    },
    "refresh-analytics-rollups": {
        "task": "analytics.tasks.rollups_refresh",
        "schedule": env.float("SHADOWLAB_ROLLUP_INTERVAL_SECONDS", default=600.0),
    },
    "monitor-rollouts": {
        "task": "deployments.tasks.rollout_monitor",
        "schedule": float(MONITOR_SECONDS),
        # A look that waited a whole interval in the queue is stale: the next one is due.
        "options": {"expires": float(MONITOR_SECONDS)},
    },
    "watch-model-errors": {
        "task": "deployments.tasks.model_errors_watch",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
    "advance-canaries": {
        "task": "deployments.tasks.canaries_advance",
        "schedule": env.float("SHADOWLAB_CANARY_ADVANCE_INTERVAL_SECONDS", default=60.0),
        # A run still queued when the next is due is dropped, not stacked up.
        "options": {
            "expires": env.float("SHADOWLAB_CANARY_ADVANCE_INTERVAL_SECONDS", default=60.0)
        },
    },
}
CELERY_TIMEZONE = TIME_ZONE

# The cache: Redis when there is one, so that every web process counts sign-in failures and
# API requests together; otherwise this process's memory. Short timeouts: a Redis that does
# not answer must not hold a request for minutes.
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "shadowlab",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Sign-in throttling (django-axes, see shadowlab.login_throttle): this many failed sign-ins for
# one username from one address lock that pair out for the cool-off. Counted in the Redis cache
# when there is one; without Redis in the database, which every process of the embedded stack
# shares (a process's memory would count per process).
AXES_FAILURE_LIMIT = env.int("SHADOWLAB_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("SHADOWLAB_LOGIN_COOLOFF_MINUTES", default=15.0))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_HANDLER = (
    "shadowlab.login_throttle.ResilientCacheHandler"
    if REDIS_URL
    else "axes.handlers.database.AxesDatabaseHandler"
)
AXES_LOCKOUT_CALLABLE = "shadowlab.login_throttle.lockout_response"
# Behind this many reverse proxies the client's address is taken from X-Forwarded-For.
AXES_IPWARE_PROXY_COUNT = env.int("SHADOWLAB_PROXY_COUNT", default=0) or None
if AXES_IPWARE_PROXY_COUNT:
    AXES_IPWARE_META_PRECEDENCE_ORDER = ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR")

# Requests one API token may make per period (shadowlab.throttling), e.g. 6000/m or 100/s.
SHADOWLAB_API_RATE = env.str("SHADOWLAB_API_RATE", default="6000/m")

# Shadow scoring.
SHADOWLAB = {
    # Items per scoring task when items arrive in bulk.
    "SCORING_BATCH_SIZE": env.int("SHADOWLAB_SCORING_BATCH_SIZE", default=512),
    # Longest an item waits in a process's buffer for its batch to fill before it is sent.
    "SCORING_MAX_WAIT_MS": env.float("SHADOWLAB_SCORING_MAX_WAIT_MS", default=50.0),
    # An item still lacking a prediction this long after it was (re-)queued is queued again.
    "SWEEP_GRACE_SECONDS": env.float("SHADOWLAB_SWEEP_GRACE_SECONDS", default=120.0),
    # After a send to the broker fails, new items skip it this long (the sweeper has them).
    "BROKER_PAUSE_SECONDS": env.float("SHADOWLAB_BROKER_PAUSE_SECONDS", default=10.0),
    # Most items one sweep re-queues, so that a long outage drains in bounded steps.
    "SWEEP_LIMIT": env.int("SHADOWLAB_SWEEP_LIMIT", default=20000),
    # After this many queued attempts without a result, the item gets an error prediction.
    "SCORING_MAX_ATTEMPTS": env.int("SHADOWLAB_SCORING_MAX_ATTEMPTS", default=5),
    # A batch whose worker process died this many times running it (a model that crashes ONNX
    # Runtime, an out-of-memory kill) is not run again: its items get an error prediction.
    "SCORING_CRASH_ATTEMPTS": max(1, env.int("SHADOWLAB_SCORING_CRASH_ATTEMPTS", default=3)),
    # An INT8 variant agreeing with its FP32 parent on fewer top-1 decisions is refused.
    "INT8_MIN_AGREEMENT": env.float("SHADOWLAB_INT8_MIN_AGREEMENT", default=0.995),
    # Live path: time budget for one synchronous inference, and the circuit breaker that stops
    # calling a model after this many consecutive failures or timeouts, for this long.
    "LIVE_BUDGET_MS": env.float("SHADOWLAB_LIVE_BUDGET_MS", default=50.0),
    "BREAKER_FAILURES": env.int("SHADOWLAB_BREAKER_FAILURES", default=5),
    "BREAKER_OPEN_SECONDS": env.float("SHADOWLAB_BREAKER_OPEN_SECONDS", default=30.0),
    # Blue-green switch: reference rows and recorded predictions the health check scores.
    "HEALTH_CHECK_ROWS": env.int("SHADOWLAB_HEALTH_CHECK_ROWS", default=200),
    # Auto-advance: a canary whose audit sample did not pass is evaluated again after this.
    "CANARY_EVALUATION_INTERVAL_MINUTES": env.float(
        "SHADOWLAB_CANARY_EVALUATION_INTERVAL_MINUTES", default=10.0
    ),
    # Batch intake scores this many items per model call, each call within the budget above.
    "LIVE_BATCH_ROWS": env.int("SHADOWLAB_LIVE_BATCH_ROWS", default=64),
    # ONNX Runtime: one intra-op thread per worker process is fastest on small models.
    "ORT_INTRA_OP_THREADS": env.int("SHADOWLAB_ORT_INTRA_OP_THREADS", default=1),
    # In order of preference; those the installed onnxruntime does not offer are skipped, so
    # CUDA is used where an onnxruntime-gpu build and a GPU are present.
    "ORT_PROVIDERS": env.list(
        "SHADOWLAB_ORT_PROVIDERS", default=["CUDAExecutionProvider", "CPUExecutionProvider"]
    ),
    # No model decides an input with a feature outside its reference range widened by this
    # many times the feature's span on each side (deployments.input_range); such items get an
    # error prediction and go to inspectors.
    "INPUT_RANGE_MARGIN": env.float("SHADOWLAB_INPUT_RANGE_MARGIN", default=1.0),
    # Largest ONNX file or reference data file accepted by the registry.
    "MODEL_MAX_BYTES": env.int("SHADOWLAB_MODEL_MAX_BYTES", default=100 * 1024 * 1024),
    # Longest range of days one request may ask a report, export or list for: the work a
    # request does grows with its days, so a wider range is refused with 400.
    "MAX_RANGE_DAYS": env.int("SHADOWLAB_MAX_RANGE_DAYS", default=400),
    # How long an item shown to an inspector stays reserved for them.
    "ASSIGNMENT_SECONDS": env.int("SHADOWLAB_ASSIGNMENT_SECONDS", default=600),
    # How long after recording it an inspector may undo a judgment.
    "UNDO_SECONDS": env.int("SHADOWLAB_UNDO_SECONDS", default=30),
    # Lifetime of a new API token unless whoever issues it chooses another (or none).
    "API_TOKEN_DAYS": env.int("SHADOWLAB_API_TOKEN_DAYS", default=90),
    # Rollback monitor: seconds between looks, and the most rows of a version's window one
    # look reads (its latest decisions, audit items and inputs).
    "MONITOR_SECONDS": MONITOR_SECONDS,
    "MONITOR_MAX_ROWS": env.int("SHADOWLAB_MONITOR_MAX_ROWS", default=20000),
    # A deployed version whose predictions in the last ERROR_WINDOW_MINUTES are at least
    # ERROR_ALERT_RATE errors (of at least ERROR_ALERT_MIN_ITEMS) is stuck in error: admins
    # get one mail per such episode.
    "ERROR_WINDOW_MINUTES": env.int("SHADOWLAB_ERROR_WINDOW_MINUTES", default=15),
    "ERROR_ALERT_RATE": env.float("SHADOWLAB_ERROR_ALERT_RATE", default=0.5),
    "ERROR_ALERT_MIN_ITEMS": env.int("SHADOWLAB_ERROR_ALERT_MIN_ITEMS", default=20),
}

# Email: admins are told of every automatic rollback. EMAIL_URL in django-environ's form,
# e.g. smtp+tls://user:password@mail.example.com:587; the default prints mail to the log.
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="ShadowLab <shadowlab@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# The MLflow tracking server and registry that `register_model --from-mlflow` reads (and
# writes gate verdicts back to with --tag-back); empty: MLflow is not used.
MLFLOW_TRACKING_URI = env.str("MLFLOW_TRACKING_URI", default="")
# Where people reach the web app, for links in email.
SHADOWLAB_BASE_URL = env.str("SHADOWLAB_BASE_URL", default="http://localhost:8000").rstrip("/")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# Password of the demo users; when unset, `manage.py demo` generates one and keeps it under
# VAR_DIR so that a second run prints the same.
SHADOWLAB_DEMO_PASSWORD = env.str("SHADOWLAB_DEMO_PASSWORD", default="")

# Analytics reports (analytics.config.AnalyticsSettings documents every key).
ANALYTICS = {
    # Drift: PSI on 10 reference-quantile bins at or above these is "moderate" / "major"
    # (Siddiqi 2006); KS flags a feature when its Holm-adjusted p-value is below KS_ALPHA
    # and its statistic at least KS_MIN_STATISTIC (large samples make tiny shifts significant).
    "PSI_MODERATE": env.float("SHADOWLAB_PSI_MODERATE", default=0.1),
    "PSI_MAJOR": env.float("SHADOWLAB_PSI_MAJOR", default=0.25),
    "KS_ALPHA": env.float("SHADOWLAB_KS_ALPHA", default=0.05),
    "KS_MIN_STATISTIC": env.float("SHADOWLAB_KS_MIN_STATISTIC", default=0.05),
    "CORRECTION": env.str("SHADOWLAB_DRIFT_CORRECTION", default="holm"),
    # Reports cover this many days up to today when no range is given.
    "DEFAULT_DAYS": env.int("SHADOWLAB_REPORT_DEFAULT_DAYS", default=30),
    # Closed days recomputed on every rollup run (late judgments and predictions), and how
    # far back missing rollups are filled in.
    "ROLLUP_LOOKBACK_DAYS": env.int("SHADOWLAB_ROLLUP_LOOKBACK_DAYS", default=3),
    "ROLLUP_BACKFILL_DAYS": env.int("SHADOWLAB_ROLLUP_BACKFILL_DAYS", default=90),
    "TOP_DRIFTED_FEATURES": env.int("SHADOWLAB_TOP_DRIFTED_FEATURES", default=5),
    "DISAGREEMENTS_PAGE_SIZE": env.int("SHADOWLAB_DISAGREEMENTS_PAGE_SIZE", default=50),
}
