"""URLs: the page, and the collected static files (gunicorn serves none; no proxy here)."""
from django.conf import settings
from django.urls import path, re_path
from django.views.static import serve

from pages import views

urlpatterns = [
    path("", views.index, name="index"),
    re_path(r"^static/(?P<path>.*)$", serve, {"document_root": settings.STATIC_ROOT}),
]
