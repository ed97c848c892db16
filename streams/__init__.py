"""framewatch streams stage."""

from framewatch.services import Service

SERVICE = Service(
    "streams",
    ("streams", "worker"),
    "streams_port",
    order=30,
    consumes="scores",
    group=lambda s: s.topics.app_id(),  # Faust's app id is its consumer group
    signals={
        "policy_refused": "framewatch_streams_policy_refused_total",
        "policy_ok": "framewatch_streams_policy_ok",
    },
)
