"""Tests of the ingestion Django app."""
