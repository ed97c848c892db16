"""The long-running services, as each stage registers its own (entry point `framewatch.services`).

The core knows no stage by name: `framewatch up`, the deploy tests, the demo and the fault suite
all read this registry. A stage declares its `Service` in its package (``SERVICE`` in its
``__init__``; the scoring stage adds ``CHECK_API``) and names it in pyproject's
``[project.entry-points."framewatch.services"]``.
The service's name is the stage's name everywhere: the supervisor's log prefix, `up --only`,
the ``stage`` label of its metrics and the Prometheus job ``framewatch-<name>``.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points

from framewatch.errors import FramewatchError
from framewatch.settings import Settings

GROUP = "framewatch.services"


class ServiceError(FramewatchError):
    """A service name that no stage registered, or a broken registration."""


@dataclass(frozen=True)
class Service:
    """One long-running framewatch process, as its stage declares it."""

    name: str  # the stage's name: log prefix, metrics `stage` label, `up --only`
    args: tuple[str, ...]  # after `framewatch`
    metrics_port_setting: str  # field of MetricsSettings
    order: int  # pipeline position: `up` starts services in this order
    # the topic it consumes and its consumer group (None: it only produces, e.g. the push API);
    # the fault suite measures recovery as this group catching up on this topic
    consumes: str | None = None
    group: Callable[[Settings], str] | None = None
    health_path: str = "/metrics"  # what a liveness probe asks on the metrics port
    # what the service's /metrics says about how it copes: signal -> sample selector
    # ('name' or 'name{label="v"}'); the fault suite reads these, never a metric name
    signals: Mapping[str, str] = field(default_factory=dict)

    def argv(self, config: str | None = None, log_json: bool = False) -> list[str]:
        """The child's command line (:func:`cli_argv`)."""
        pre = (["--config", config] if config else []) + (["--log-json"] if log_json else [])
        return cli_argv(*pre, *self.args)

    def metrics_port(self, settings: Settings) -> int:
        return int(getattr(settings.metrics, self.metrics_port_setting))


def cli_argv(*args: str) -> list[str]:
    """``framewatch ARGS`` as a child process: this interpreter, so it works inside any venv,
    and ``-P``, so the child imports framewatch from where this process did. ``python -m``
    otherwise puts the working directory first on ``sys.path``, and a ``framewatch/`` or
    ``ingest/`` folder there (another checkout, or one planted) would run instead."""
    return [sys.executable, "-P", "-m", "framewatch.cli", *args]


@functools.cache
def services() -> tuple[Service, ...]:
    """Every registered service, in pipeline order."""
    found: list[Service] = []
    for ep in entry_points(group=GROUP):
        svc = ep.load()
        if not isinstance(svc, Service):
            raise ServiceError(f"entry point {ep.name} = {ep.value} is not a framewatch Service")
        found.append(svc)
    return tuple(sorted(found, key=lambda s: s.order))


def service(name: str) -> Service:
    """The service a stage registered under ``name``."""
    for s in services():
        if s.name == name:
            return s
    raise ServiceError(f"no service {name!r}; registered: {', '.join(s.name for s in services())}")


def consumers() -> list[Service]:
    """The services that consume a topic: the pipeline the demo and the fault suite run."""
    return [s for s in services() if s.consumes]


def select(only: str | None) -> list[Service]:
    """Services named in a comma list (all when empty), in pipeline order."""
    if not only:
        return list(services())
    wanted = [w.strip() for w in only.split(",") if w.strip()]
    known = [s.name for s in services()]
    unknown = [w for w in wanted if w not in known]
    if unknown:
        raise ServiceError(
            f"unknown service(s) {', '.join(unknown)} in --only; choose from {', '.join(known)}"
        )
    return [s for s in services() if s.name in wanted]
