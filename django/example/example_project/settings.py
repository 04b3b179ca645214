"""Settings of the example project.

The ``INGESTION_*`` values come from the environment here so that tests can
run ``manage.py`` in a subprocess against a topology prefix of their own.
"""

import os
from datetime import timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "example-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "testserver"]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "ingestion",
]

MIDDLEWARE: list[str] = []
ROOT_URLCONF = "example_project.urls"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("EXAMPLE_DB", ":memory:"),
        # A request runs in one transaction, so a job enqueued with
        # enqueue_ingestion_on_commit goes out only if the request succeeds.
        "ATOMIC_REQUESTS": True,
    }
}

USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INGESTION_BROKER_URL = os.environ.get(
    "INGESTION_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2F"
)
INGESTION_PREFIX = os.environ.get("INGESTION_PREFIX", "")
INGESTION_WINDOW = timedelta(hours=1)
INGESTION_CONFIRM_TIMEOUT = 10
INGESTION_MANAGEMENT_URL = os.environ.get("INGESTION_MANAGEMENT_URL", "http://127.0.0.1:15672")
INGESTION_REQUESTED_BY = "django:example"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"ingestion": {"handlers": ["console"], "level": "WARNING"}},
}
