"""framewatch scoring stage."""

from framewatch.services import Service

SERVICE = Service(
    "scoring",
    ("score",),
    "scoring_port",
    order=20,
    consumes="frames",
    group=lambda s: s.scoring.group_id,
    signals={"redis_errors": 'framewatch_scoring_cache_total{result="error"}'},
)
