"""Management commands of the ingestion app."""
