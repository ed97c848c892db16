"""`framewatch console [serve]`, `console user add|list`, `report transparency`."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
import time

from framewatch.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "console",
        help="the reviewer console: queue, evidence, verdicts, appeals, numbers",
        description="Serve the reviewer console (default), or manage its users. Reviewers log "
        "in, claim items from their tenants' queue, look at the blurred evidence and send "
        "verdicts, which go to the reviews topic like `framewatch review resolve`.",
    )
    p.set_defaults(func=_serve)
    cs = p.add_subparsers(dest="console_command")
    s = cs.add_parser("serve", help="serve the console (FRAMEWATCH_CONSOLE__HOST/PORT)")
    s.add_argument("--port", type=int, default=None, help="override FRAMEWATCH_CONSOLE__PORT")
    s.set_defaults(func=_serve)
    u = cs.add_parser("user", help="reviewer accounts").add_subparsers(
        dest="user_command", required=True
    )
    a = u.add_parser(
        "add",
        help="create or replace a user (password from the prompt or --password-stdin)",
        description="Create a console user. Roles: reviewer (decides items), lead (also sees "
        "reviewers' numbers), admin (with --tenant '*': every tenant). The password is hashed "
        "with Argon2id; it is never stored or printed.",
    )
    a.add_argument("name")
    a.add_argument("--role", choices=["reviewer", "lead", "admin"], default="reviewer")
    a.add_argument("--tenant", action="append", default=[], help="a tenant this user sees "
                   "(repeat for more; '*' for all)")  # fmt: skip
    a.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    a.add_argument("--json", action="store_true", help="print the user (no hash) as JSON")
    a.set_defaults(func=_user_add)
    ls = u.add_parser("list", help="list users (names, roles, tenants)")
    ls.add_argument("--json", action="store_true", help="print machine-readable JSON")
    ls.set_defaults(func=_user_list)
    ul = u.add_parser(
        "unlock",
        help="lift the login throttle on a user name (after too many failed logins)",
        description="Forget the failed logins counted against NAME, so it can log in again "
        "before the window (FRAMEWATCH_CONSOLE__LOGIN_WINDOW_S) ends. Addresses stay counted.",
    )
    ul.add_argument("name")
    ul.set_defaults(func=_user_unlock)

    r = sub.add_parser("report", help="reports computed from the audit trail")
    rs = r.add_subparsers(dest="report_command", required=True)
    t = rs.add_parser(
        "transparency",
        help="DSA transparency counts for a period, from the audit chain",
        description="Count actions per category and restriction type, automated vs human "
        "decisions, appeals and their outcomes and median times to action over [--from, --to), "
        "from the audit topic (verify it first with `framewatch audit verify`).",
    )
    t.add_argument("--from", dest="start", required=True, help="start date (UTC), e.g. 2026-11-01")
    t.add_argument("--to", dest="end", required=True, help="end date, exclusive")
    t.add_argument("--tenant", default=None, help="one tenant (default: all)")
    t.add_argument("--format", choices=["json", "csv", "html"], default="json")
    t.set_defaults(func=_transparency)


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from aiohttp import web

    from console.web import build_app

    cfg = settings.console
    port = getattr(args, "port", None) or cfg.port
    print(f"framewatch console on http://{cfg.host}:{port}/", file=sys.stderr, flush=True)
    web.run_app(build_app(settings), host=cfg.host, port=port, print=None)
    return 0


def _user_add(args: argparse.Namespace, settings: Settings) -> int:
    from console.auth import Auth
    from framewatch import redisio

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            print("the passwords differ; nothing changed", file=sys.stderr)
            return 1

    async def go():  # type: ignore[no-untyped-def]
        r = redisio.async_client(settings)
        try:
            return await Auth(settings, r).add_user(args.name, args.role, args.tenant, password)
        finally:
            await r.aclose()

    u = asyncio.run(go())
    out = {"name": u.name, "role": u.role, "tenants": u.tenants}
    print(json.dumps(out) if args.json else f"user {u.name} ({u.role}) for {', '.join(u.tenants)}")
    return 0


def _user_list(args: argparse.Namespace, settings: Settings) -> int:
    from console.auth import Auth
    from framewatch import redisio

    async def go():  # type: ignore[no-untyped-def]
        r = redisio.async_client(settings)
        try:
            return await Auth(settings, r).users()
        finally:
            await r.aclose()

    users = asyncio.run(go())
    rows = [{"name": u.name, "role": u.role, "tenants": u.tenants} for u in users]
    if args.json:
        print(json.dumps(rows))
    for row in [] if args.json else rows:
        print(f"{row['name']:<20} {row['role']:<9} {', '.join(row['tenants'])}")
    return 0


def _transparency(args: argparse.Namespace, settings: Settings) -> int:
    from console.report import parse_time, read_audit, render, transparency

    start, end = parse_time(args.start), parse_time(args.end)
    t0 = time.monotonic()
    entries = asyncio.run(read_audit(settings))
    rep = transparency(entries, start, end, args.tenant)
    print(render(rep, args.format), end="" if args.format != "json" else "\n")
    print(f"{len(entries)} audit entries read in {time.monotonic() - t0:.1f} s", file=sys.stderr)
    return 0


def _user_unlock(args: argparse.Namespace, settings: Settings) -> int:
    from console.throttle import LoginThrottle
    from framewatch import redisio

    async def go() -> bool:
        r = redisio.async_client(settings)
        try:
            return await LoginThrottle(settings, r).unlock(args.name)
        finally:
            await r.aclose()

    had = asyncio.run(go())
    print(f"{args.name}: " + ("failed logins forgotten" if had else "no failed logins counted"))
    return 0
