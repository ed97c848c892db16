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
# the synchronous check API (/v1/check, /v1/moderations on scoring.http_port): a second service
# of the scoring stage, scaled apart from the frame scorer; it consumes no topic
CHECK_API = Service("check-api", ("check-api",), "check_api_port", order=60)
