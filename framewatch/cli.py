"""The `framewatch` command. The core owns a few commands; stages add theirs via entry points.

A stage registers ``register(subparsers)`` under the ``framewatch.commands`` entry-point group;
each command it adds sets ``func(args, settings) -> int`` with ``set_defaults``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points

from framewatch import logs
from framewatch.errors import FramewatchError
from framewatch.redact import mask_url
from framewatch.settings import Settings, load_settings

log = logging.getLogger("framewatch")


def add_json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")


def _local(args: argparse.Namespace, settings: Settings) -> int:
    from framewatch.local import LocalStack

    stack = LocalStack(settings)
    say = (lambda _m: None) if args.json else (lambda m: print(m, file=sys.stderr))
    if args.action == "fetch":
        from framewatch.local import ensure_jars

        jars = ensure_jars(settings.local.cache_dir, settings.local.kafka_version)
        print(json.dumps({"jars": str(jars)}) if args.json else f"Kafka jars in {jars}")
        return 0
    if args.action == "start":
        status = stack.start(progress=say)
    elif args.action == "stop":
        stack.stop()
        status = stack.status()
    else:
        status = stack.status()
    if args.json:
        print(json.dumps(status))
    else:
        for name, st in status.items():
            where = st.get("bootstrap") or st.get("url")
            print(
                f"{name:<6} {'up  ' if st['up'] else 'down'} {where}"
                + (f"  (pid {st['pid']})" if st["up"] else "")
            )
        if args.action == "start":
            print(
                f"\nexport FRAMEWATCH_KAFKA_BOOTSTRAP={status['kafka']['bootstrap']}\n"
                f"export FRAMEWATCH_REDIS_URL={status['redis']['url']}"
            )
    if args.action == "status":
        return 0 if all(st["up"] for st in status.values()) else 3
    return 0


def _topics(args: argparse.Namespace, settings: Settings) -> int:
    from framewatch.kafkaio import create_topics

    result = asyncio.run(create_topics(settings))
    if args.json:
        print(json.dumps(result))
    else:
        for name, what in result.items():
            print(
                f"{name:<32} {what} ({settings.topics.partitions_of(_key_of(settings, name))}"
                " partitions)"
            )
    return 0


def _key_of(settings: Settings, name: str) -> str:
    return next(k for k, (n, _) in settings.topics.all().items() if n == name)


def _tail(args: argparse.Namespace, settings: Settings) -> int:
    from framewatch.tail import tail

    return asyncio.run(
        tail(
            settings,
            args.topic,
            as_json=args.json,
            from_start=args.from_start,
            limit=args.limit,
            timeout=args.timeout,
        )
    )


@contextlib.contextmanager
def local_stack(
    args: argparse.Namespace,
    settings: Settings,
    say: Callable[[str], None],
    *,
    enabled: bool,
    what: str,
    keep: bool = False,
    free_if_taken: bool = False,
) -> Iterator[tuple[Settings, dict[str, str]]]:
    """Start the local Kafka and Redis when enabled; yield settings (and env) pointing at them.

    What the user configured is kept. ``free_if_taken``: a throwaway stack takes free ports
    where the configured ones are held by another process. On exit, stop them only if this command started them
    (a Ctrl-C during start-up included) and `keep` is off.
    """
    from framewatch.local import LocalStack

    stack = LocalStack(settings)
    started = False
    try:
        if not enabled:
            yield settings, {}
            return
        started = not all(st["up"] for st in stack.status().values())
        status = stack.start(progress=say, free_if_taken=free_if_taken)
        found = {
            "kafka_bootstrap": str(status["kafka"]["bootstrap"]),
            "redis_url": str(status["redis"]["url"]),
        }
        mine = {k: v for k, v in found.items() if k not in settings.model_fields_set}
        env = {"FRAMEWATCH_" + k.upper(): v for k, v in mine.items()}
        yield load_settings(args.config, **mine), env
    finally:
        if started and not keep:
            say(f"stopping the local kafka and redis that {what} started")
            stack.stop()


def _up(args: argparse.Namespace, settings: Settings) -> int:
    """Local broker/Redis (unless configured), topics, then every service under one supervisor."""
    import os

    from framewatch import supervisor as sv
    from framewatch.services import select

    services = select(args.only)
    say = (lambda m: print(m, file=sys.stderr)) if not args.json else (lambda _m: None)
    # external = set in the environment or the config file, not just defaulted
    external = {"kafka_bootstrap", "redis_url"} <= settings.model_fields_set
    start_local = not external and not args.no_local
    plan = {
        "local": start_local,
        "services": [
            {
                "name": s.name,
                "argv": s.argv(args.config, args.log_json),
                "metrics": (
                    f"http://{settings.metrics.host}:{s.metrics_port(settings)}/metrics"
                    if settings.metrics.enabled and s.metrics_port(settings)
                    else None
                ),
            }
            for s in services
        ],
    }
    width = max(len(s.name) for s in services)  # the names line up, however long
    if args.dry_run:
        if args.json:
            print(json.dumps(plan))
        else:
            for svc in plan["services"]:
                print(f"{svc['name']:<{width}} {' '.join(svc['argv'])}  metrics {svc['metrics']}")
        return 0

    from framewatch.kafkaio import create_topics

    with local_stack(args, settings, say, enabled=start_local, what="up") as (settings, env):
        env = {**os.environ, **env}
        if args.json:
            print(json.dumps(plan), flush=True)
        say(
            f"kafka {settings.kafka_bootstrap}, redis {mask_url(settings.redis_url.get_secret_value())}"
        )
        created = asyncio.run(create_topics(settings))
        say(f"topics ready: {len(created)} ({sum(v == 'created' for v in created.values())} new)")
        for svc in plan["services"]:
            say(f"{svc['name']:<{width}} metrics {svc['metrics'] or 'disabled'}")
        say("Ctrl-C stops everything")
        policy = sv.Policy(grace_s=args.grace, max_restarts=args.max_restarts)
        children = [sv.Child(s.name, s.argv(args.config, args.log_json), env) for s in services]
        return sv.run(children, policy)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="framewatch",
        description="Real-time moderation of live video: ingest, score, decide, alert.",
        epilog="Settings come from FRAMEWATCH_* env vars and an optional YAML --config file. "
        "Run `framewatch COMMAND --help` for a command's options.",
    )
    parser.add_argument(
        "--config", metavar="FILE", help="YAML settings file (or FRAMEWATCH_CONFIG)"
    )
    parser.add_argument("--log-json", action="store_true", help="structured JSON logs on stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "local",
        help="run a real Kafka (KRaft) and Redis on 127.0.0.1",
        description="Start, stop or show the local single-node Kafka and Redis. "
        "The first start fetches the Kafka jars from Maven Central with mvn.",
    )
    p.add_argument(
        "action",
        choices=["start", "stop", "status", "fetch"],
        help="fetch only downloads the Kafka jars into the cache",
    )
    add_json_flag(p)
    p.set_defaults(func=_local)

    from framewatch import evidence_cli

    evidence_cli.register(sub)

    p = sub.add_parser("topics", help="create framewatch's Kafka topics (idempotent)")
    p.add_argument("action", choices=["create"])
    add_json_flag(p)
    p.set_defaults(func=_topics)

    p = sub.add_parser(
        "tail",
        help="print records of a topic as they arrive",
        description="Print decisions, enforcement, alerts (or any framewatch "
        "topic) as they arrive. Ctrl-C stops.",
    )
    p.add_argument(
        "topic",
        help="topic key: frames, scores, decisions, enforcement, alerts, "
        "reviews, audit, dead_letters",
    )
    p.add_argument("--from-start", action="store_true", help="start at the oldest record")
    p.add_argument("--limit", type=int, default=0, help="stop after N records (0: never)")
    p.add_argument("--timeout", type=float, default=0, help="stop after S seconds idle (0: never)")
    add_json_flag(p)
    p.set_defaults(func=_tail)

    p = sub.add_parser(
        "up",
        help="run the whole pipeline locally under one supervisor",
        description="Start the local Kafka and Redis (unless FRAMEWATCH_KAFKA_BOOTSTRAP and "
        "FRAMEWATCH_REDIS_URL point elsewhere, in the environment or --config), create the "
        "topics, then run ingest, scorer, streams worker and alert router as supervised child "
        "processes with one combined log. A crashed service is restarted with backoff; one that "
        "keeps crashing stops everything with exit code 1. Ctrl-C stops everything cleanly, "
        "including the local Kafka and Redis if up started them.",
    )
    p.add_argument(
        "--only",
        metavar="SERVICES",
        help="comma-separated subset: ingest,scorer,streams,alerts (default: all)",
    )
    p.add_argument(
        "--no-local",
        action="store_true",
        help="never start the local Kafka/Redis; use the configured ones",
    )
    p.add_argument(
        "--grace",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="on stop, wait this long before SIGKILL (default 10)",
    )
    p.add_argument(
        "--max-restarts",
        type=int,
        default=5,
        metavar="N",
        help="give up when a service crashes more than N times in 60 s (default 5)",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="print the services and metrics URLs, run nothing"
    )
    add_json_flag(p)
    p.set_defaults(func=_up)

    for ep in sorted(entry_points(group="framewatch.commands"), key=lambda e: e.name):
        try:
            ep.load()(sub)
        except Exception as exc:  # a broken plugin must not take the whole command down
            print(f"warning: commands of {ep.name!r} not loaded: {exc}", file=sys.stderr)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        settings = load_settings(args.config)
        logs.setup(
            args.command, settings.log_level, "json" if args.log_json else settings.log_format
        )
        return int(args.func(args, settings) or 0)
    except FramewatchError as exc:
        print(f"framewatch: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
