"""framewatch scoring stage."""

from framewatch.services import Service

SERVICE = Service(
    "scoring",
    ("score",),
    "scoring_port",
    order=20,
    consumes="frames",
    group=lambda s: s.scoring.group_id,
)
