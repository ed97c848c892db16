"""framewatch ingest stage."""
