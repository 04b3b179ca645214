"""``enqueue_ingestion`` and ``ingestion_status``."""
