"""Settings of the example `blog`: a packaged Django project (pyproject.toml, PEP 621),
built by slipway's recipe with no Dockerfile. Everything a deployment changes comes from the
environment."""
import os

SECRET_KEY = os.environ.get("BLOG_SECRET_KEY", "example-only-not-secret-8d1e4c")
DEBUG = os.environ.get("BLOG_DEBUG", "") == "1"
ALLOWED_HOSTS = os.environ.get("BLOG_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",")

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.staticfiles",
    "blog",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
]

ROOT_URLCONF = "blog.urls"
WSGI_APPLICATION = "blog.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.i18n"]},
    },
]

# sqlite in the working directory (/app in the image), created by `migrate` at start. The
# package is installed in site-packages, so paths come from the environment, not __file__.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("BLOG_DB_PATH") or os.path.join(os.getcwd(), "db.sqlite3"),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("de", "Deutsch")]
USE_I18N = True
USE_TZ = True
TIME_ZONE = "UTC"

STATIC_URL = "/static/"
STATIC_ROOT = os.environ.get("BLOG_STATIC_ROOT", "/app/static")
