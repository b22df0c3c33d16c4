"""Settings of the example `gallery` (see setup.py: packaged with mistakes on purpose)."""
import os

SECRET_KEY = os.environ.get("GALLERY_SECRET_KEY", "example-only-not-secret-5a0c")
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]"]
INSTALLED_APPS = ["django.contrib.staticfiles", "gallery"]
ROOT_URLCONF = "gallery.urls"
WSGI_APPLICATION = "gallery.wsgi.application"
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.path.join(os.getcwd(), "db.sqlite3")}}
STATIC_URL = "/static/"
STATIC_ROOT = "/app/static"
