"""Django app configuration: validates the ingestion settings when Django starts."""

from __future__ import annotations

from django.apps import AppConfig


class IngestionConfig(AppConfig):
    """The ``ingestion`` app; add ``"ingestion"`` to ``INSTALLED_APPS``."""

    name = "ingestion"
    verbose_name = "Ingestion job publishing"

    def ready(self) -> None:
        """Fail at start-up, not at the first publish, when a setting is wrong."""
        from ingestion.conf import load_settings

        load_settings()
