from django.db import transaction
from django.db.models import F
from django.shortcuts import render

from .models import Visit


def index(request):
    """Count this visit in the database and show the total, translated per Accept-Language."""
    with transaction.atomic():
        visit, _ = Visit.objects.get_or_create(path=request.path)
        Visit.objects.filter(pk=visit.pk).update(count=F("count") + 1)
    visit.refresh_from_db()
    return render(request, "foo/index.html", {"visits": visit.count})
