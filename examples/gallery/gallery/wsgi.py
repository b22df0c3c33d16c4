"""WSGI entry point: `gunicorn gallery.wsgi:application`."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gallery.settings")

application = get_wsgi_application()
