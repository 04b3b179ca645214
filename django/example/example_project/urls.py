"""URLs of the example project: one endpoint that enqueues jobs."""

from django.urls import path

from example_project.views import request_ingestion

urlpatterns = [
    path("ingest/", request_ingestion, name="request-ingestion"),
]
