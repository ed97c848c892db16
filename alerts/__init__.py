"""framewatch alerts stage."""

from framewatch.services import Service

SERVICE = Service(
    "alerts",
    ("alerts", "serve"),
    "alerts_port",
    order=40,
    consumes="alerts",
    group=lambda s: s.alerts.group_id,
    signals={"redis_waits": "framewatch_alerts_redis_waits_total"},
)
