from django.core.management.base import BaseCommand

from pages.models import Visit


class Command(BaseCommand):
    help = "Print the visit counts (a management command, run in the image)."

    def handle(self, *args, **options):
        total = sum(v.count for v in Visit.objects.all())
        self.stdout.write(f"visits: {total}")
