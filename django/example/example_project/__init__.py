"""A minimal Django project that publishes ingestion jobs; the tests run against it."""
