from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
SECRET_KEY = "bench-stand-in-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["django.contrib.staticfiles", "foo"]
MIDDLEWARE = ["django.middleware.locale.LocaleMiddleware"]
ROOT_URLCONF = "foo.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
    }
]
WSGI_APPLICATION = "foo.wsgi.application"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "/app/db.sqlite3"}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_I18N = True
LANGUAGES = [("en", "English"), ("de", "German")]
LOCALE_PATHS = [BASE_DIR / "locale"]
STATIC_URL = "/static/"
STATIC_ROOT = "/app/static.dist"
