"""`framewatch alerts ...`: run the router, or send a test alert through a route."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal

from framewatch import metrics, records
from framewatch.settings import Settings


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from alerts.router import Router
    from alerts.routing import load

    routing = load(settings.alerts.routing_file)  # fails fast with file:line: field errors
    if settings.metrics.enabled:
        metrics.serve(
            "alerts", settings.metrics.host, settings.metrics.alerts_port, settings.metrics.port_dir
        )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await Router(settings, routing).run(stop)

    asyncio.run(main())
    return 0


def _test(args: argparse.Namespace, settings: Settings) -> int:
    from alerts.router import Router
    from alerts.routing import load

    routing = load(settings.alerts.routing_file)
    route = routing.route(args.route)
    now = records.now()
    alert = records.Alert(
        incident_id="test-" + records.new_id(),
        severity=args.severity,
        category=args.category,
        red_line=False,
        stream_id="framewatch-test-stream",
        account_id="framewatch-test-account",
        summary=f"TEST ALERT from `framewatch alerts test --route {route.name}`: no action needed",
        captured_at=now,
        raised_at=now,
        test=True,
    )

    async def main() -> list[dict[str, object]]:
        router = Router(settings, routing)
        try:
            async with router.deliverer:
                result = []
                for name in route.sinks:
                    out = await router.deliver(routing.sinks[name], alert, dedup=False)
                    result.append({"sink": name, "ok": out.ok, "attempts": out.attempts,
                                   "status": out.status, "error": out.error})  # fmt: skip
                return result
        finally:
            await router.redis.aclose()

    result = asyncio.run(main())
    if args.json:
        print(json.dumps({"route": route.name, "incident_id": alert.incident_id, "sinks": result}))
    else:
        for r in result:
            print(f"{r['sink']:<20} {'delivered' if r['ok'] else 'FAILED: ' + str(r['error'])}")
    return 0 if all(r["ok"] for r in result) else 1


def _oncall_key(args: argparse.Namespace, settings: Settings) -> int:
    """A new on-call key: the key for the on-call people, its digest for the settings."""
    import secrets
    import sys

    from framewatch import apikeys

    key = "fwo_" + secrets.token_urlsafe(32)
    h = apikeys.digest(key)
    if args.json:
        print(json.dumps({"oncall_key": key, "sha256": h}))
    else:
        print(key)
        print(
            f"(on-call key, shown only now; add {h} to alerts.oncall_keys_sha256, e.g. "
            f"FRAMEWATCH_ALERTS__ONCALL_KEYS_SHA256='[\"{h}\"]', and restart the router)",
            file=sys.stderr,
        )
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add this stage's commands to the `framewatch` command."""
    p = sub.add_parser(
        "alerts",
        help="route alerts/enforcement to PagerDuty, Slack and signed webhooks",
        description="Deliver alert, enforcement (and decision) records to the sinks of the "
        "routing file (settings alerts.routing_file, see docs/alerts.md).",
    )
    s = p.add_subparsers(dest="alerts_command", metavar="ACTION", required=True)
    q = s.add_parser(
        "serve",
        help="run the router and its ack endpoint (POST /v1/alerts/{id}/ack)",
        description="Consume the alerts/enforcement topics and deliver every record once per "
        "sink, with retries, a breaker per sink, dead-letters, escalation and rate limiting. "
        "SIGTERM stops it cleanly.",
    )
    q.set_defaults(func=_serve)
    q = s.add_parser(
        "test",
        help="send a clearly-marked test alert through a route",
        description="Sends a records.Alert with test=true (marked TEST in every sink) to each "
        "sink of the route, directly over HTTP; exit status 1 when a sink did not accept it.",
    )
    q.add_argument("--route", required=True, help="route name from the routing file")
    q.add_argument(
        "--severity", default="info", choices=["critical", "high", "medium", "low", "info"]
    )
    q.add_argument("--category", default="test", help="category path shown (default: test)")
    q.add_argument("--json", action="store_true", help="print machine-readable JSON")
    q.set_defaults(func=_test)
    q = s.add_parser(
        "oncall-key",
        help="make an on-call key: the only credential that acknowledges red-line incidents",
        description="Prints a new on-call key once (give it to on-call) and its SHA-256 (put it "
        "in alerts.oncall_keys_sha256; only the digest is configured). Keep the old digest in the "
        "list until on-call has the new key: every listed key works.",
    )
    q.add_argument("--json", action="store_true", help='print {"oncall_key", "sha256"}')
    q.set_defaults(func=_oncall_key)
