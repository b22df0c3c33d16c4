"""URLs of `foo`: the visit counter, and the collected static files.

gunicorn serves no files and the example has no front proxy, so Django's static `serve` view
answers /static/ from STATIC_ROOT: this shows that collectstatic's output made it into the image.
"""
from django.conf import settings
from django.urls import path, re_path
from django.views.static import serve

from . import views

urlpatterns = [
    path("", views.index, name="index"),
    re_path(r"^static/(?P<path>.*)$", serve, {"document_root": settings.STATIC_ROOT}),
]
