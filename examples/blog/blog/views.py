from django.db.models import F
from django.shortcuts import render

from .models import Visit

GREETING = "blog"


def index(request):
    """Count the visit and greet, in English or German per Accept-Language."""
    visit, _ = Visit.objects.get_or_create(path=request.path)
    Visit.objects.filter(pk=visit.pk).update(count=F("count") + 1)
    visit.refresh_from_db()
    return render(request, "blog/index.html", {"visits": visit.count, "name": GREETING})
