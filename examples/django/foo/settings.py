"""Settings of the example project `foo`.

Everything a deployment changes comes from the environment: the sqlite database lives where
FOO_DB_PATH says (a volume in production, see the article), the hosts come from FOO_ALLOWED_HOSTS.
"""
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent

SECRET_KEY = os.environ.get("FOO_SECRET_KEY", "example-only-not-secret-3f9c2b7e1a")
DEBUG = os.environ.get("FOO_DEBUG", "") == "1"
ALLOWED_HOSTS = os.environ.get("FOO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",")

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.staticfiles",
    "foo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
]

ROOT_URLCONF = "foo.urls"
WSGI_APPLICATION = "foo.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.i18n",
                "django.template.context_processors.request",
                "django.template.context_processors.static",
            ],
        },
    },
]

# The database is created by `migrate` when the container starts (docker-entrypoint.sh), in the
# working directory (/app) unless FOO_DB_PATH points into a volume.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("FOO_DB_PATH") or os.path.join(os.getcwd(), "db.sqlite3"),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("de", "Deutsch")]
USE_I18N = True
USE_L10N = True
USE_TZ = True
TIME_ZONE = "UTC"

STATIC_URL = "/static/"
# collectstatic writes here; the final image keeps only this directory of the static-builder.
STATIC_ROOT = "/app/static.dist"
