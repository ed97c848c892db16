"""The `framewatch` command. The core owns a few commands; stages add theirs via entry points.

A stage registers ``register(subparsers)`` under the ``framewatch.commands`` entry-point group;
each command it adds sets ``func(args, settings) -> int`` with ``set_defaults``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Callable
from importlib.metadata import entry_points

from framewatch import logs
from framewatch.errors import FramewatchError
from framewatch.settings import Settings, load_settings

log = logging.getLogger("framewatch")

Handler = Callable[[argparse.Namespace, Settings], int]


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
