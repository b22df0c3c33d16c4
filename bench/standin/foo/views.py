from django.shortcuts import render
from django.utils.translation import gettext as _

from foo.models import Visit


def index(request):
    Visit.objects.create()
    return render(request, "foo/index.html", {"greeting": _("Hello"), "visits": Visit.objects.count()})
