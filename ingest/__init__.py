"""framewatch ingest stage."""

from framewatch.services import Service

# `framewatch ingest serve`: the push API and configured sources (it produces, consumes nothing)
SERVICE = Service("ingest", ("ingest", "serve"), "ingest_port", order=10)
