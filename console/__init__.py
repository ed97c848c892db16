"""framewatch console stage: the reviewer console (web app) and its reports."""

from framewatch.services import Service

SERVICE = Service(
    "console",
    ("console", "serve"),
    "console_port",
    order=50,
    # it reads decisions, reviews and enforcement from the start with no consumer group
    # (console/tail.py): nothing for the fault suite or the demo to wait on
)
