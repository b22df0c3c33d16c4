from django.db import models


class Visit(models.Model):
    """How many times a path was requested: the view reads and writes it on every request."""

    path = models.CharField(max_length=200, unique=True)
    count = models.PositiveIntegerField(default=0)

    def __str__(self):
        return f"{self.path}: {self.count}"
