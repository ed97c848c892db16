"""framewatch streams stage."""

from framewatch.services import Service

SERVICE = Service(
    "streams",
    ("streams", "worker"),
    "streams_port",
    order=30,
    consumes="scores",
    group=lambda s: s.topics.app_id(),  # Faust's app id is its consumer group
)
