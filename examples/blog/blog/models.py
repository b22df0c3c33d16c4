from django.db import models


class Visit(models.Model):
    """One row per path, counting the visits: proves that `migrate` ran at start."""

    path = models.CharField(max_length=200, unique=True)
    count = models.IntegerField(default=0)
