from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Never ships: gallery/management/commands has no __init__.py (see setup.py)."

    def handle(self, *args, **options):
        self.stdout.write("hello")
