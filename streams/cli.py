"""`framewatch` subcommands of the streams stage: worker, policy, account (review and audit:
streams/cli_review.py)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from framewatch import scope, taxonomy
from framewatch.errors import FramewatchError
from framewatch.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add this stage's commands to the `framewatch` command."""
    from streams import cli_forget, cli_replay, cli_review

    cli_review.register(sub)
    cli_replay.register(sub)
    p = sub.add_parser("streams", help="the decision worker (scores -> decisions, enforcement)")
    ss = p.add_subparsers(dest="streams_command", required=True)
    w = ss.add_parser(
        "worker",
        help="run the Faust worker: per-stream state, red-line fast lane, account strike ledger",
    )
    w.set_defaults(func=_worker)

    p = sub.add_parser("dsa", help="EU DSA statements of reasons and the Transparency Database")
    ds = p.add_subparsers(dest="dsa_command", required=True)
    d = ds.add_parser(
        "submit",
        help="submit the statements on the decisions/enforcement topics to the DSA "
        "Transparency Database",
        description="Read the statements of reasons the worker attached to decisions and "
        "enforcement steps and submit them with the database's batch endpoint (POST "
        "/api/v1/statements, up to dsa.batch_size a call). Resumable: offsets are committed "
        "(consumer group dsa.group_id) only after a batch is settled. A puid the database "
        "already has counts as delivered; a statement it refuses goes to the dead-letter topic "
        "with its reasons; 429/5xx are retried with backoff. Needs FRAMEWATCH_DSA__TOKEN and "
        "FRAMEWATCH_DSA__BASE_URL (production https://transparency.dsa.ec.europa.eu, or the "
        "sandbox URL from your onboarding). Each tenant is its own platform there: run one "
        "submitter per tenant with its token. Without --follow it stops once it has caught up.",
    )
    d.add_argument("--follow", action="store_true", help="keep running and submit new statements")
    d.add_argument(
        "--tenant", default=None, help="submit this tenant's statements (default: dsa.tenant)"
    )
    d.add_argument(
        "--max-batches",
        type=int,
        default=None,
        help="stop after this many batches (a careful first rollout)",
    )
    d.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    d.set_defaults(func=_dsa_submit)

    p = sub.add_parser("account", help="account strike ledger")
    acs = p.add_subparsers(dest="account_command", required=True)
    a = acs.add_parser("show", help="an account's strikes, window counts, ladder step and history")
    a.add_argument("account", help="account_id (as the tenant's platform names it)")
    a.add_argument(
        "--tenant",
        default="default",
        help="tenant the account belongs to (two tenants' accounts of the same id are two "
        "ledgers); default: %(default)s",
    )
    a.add_argument("--json", action="store_true", help="print machine-readable JSON")
    a.set_defaults(func=_account_show)
    cli_forget.add_forget(acs)

    p = sub.add_parser("policy", help="validate and explain moderation policies")
    ps = p.add_subparsers(dest="policy_command", required=True)
    c = ps.add_parser("check", help="validate policy files; exit 1 with file:line: reason")
    c.add_argument("files", nargs="*", type=Path, help="files (default: the policy_dir)")
    c.add_argument("--json", action="store_true", help="print machine-readable JSON")
    c.set_defaults(func=_check)
    e = ps.add_parser("explain", help="show which rule fires for a set of scores, and why")
    e.add_argument(
        "--scores",
        required=True,
        help='JSON: {"category": score, ...} or a scores record (uses its scores/tenant/channel)',
    )
    e.add_argument("--tenant", default=None)
    e.add_argument("--channel", default=None)
    e.add_argument("--json", action="store_true", help="print machine-readable JSON")
    e.set_defaults(func=_explain)


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from streams.app import run_worker

    return run_worker(settings)


def _dsa_submit(args: argparse.Namespace, settings: Settings) -> int:
    from streams.dsa_submit import main

    if args.tenant:
        settings = settings.model_copy(
            update={"dsa": settings.dsa.model_copy(update={"tenant": args.tenant})}
        )
    return main(settings, follow=args.follow, max_batches=args.max_batches, as_json=args.json)


def _check(args: argparse.Namespace, settings: Settings) -> int:
    from streams.policy import Policy, PolicyError, check_file, load_dir

    tax = taxonomy.load(settings.taxonomy_file)
    results = []
    ok = True
    targets = args.files or [settings.streams.policy_dir]
    for f in targets:
        try:
            if Path(f).is_dir():
                policy = load_dir(Path(f), tax)
                version, files = policy.version, policy.files
            else:
                one = check_file(Path(f), tax)
                base = load_dir(None, tax).files if one.rank else []
                policy, version, files = Policy([*base, one], tax, ""), None, [one]
            combined = [_combined_row(policy, pf, c) for pf in files for c in pf.combined.values()]
            results.append({"file": str(f), "ok": True, "version": version, "combined": combined})
        except PolicyError as exc:
            ok = False
            results.append({"file": exc.file, "ok": False, "line": exc.line, "error": exc.reason})
        except OSError as exc:
            ok = False
            results.append({"file": str(f), "ok": False, "line": None, "error": str(exc)})
    if args.json:
        print(json.dumps(results))
    else:
        for r in results:
            if r["ok"]:
                print(f"{r['file']}: ok" + (f" (version {r['version']})" if r["version"] else ""))
                for c in r["combined"]:
                    print(f"  {c['rule']}: {c['why']}")
            else:
                where = f"{r['file']}:{r['line']}" if r.get("line") else r["file"]
                print(f"{where}: {r['error']}", file=sys.stderr)
    return 0 if ok else 1


def _combined_row(policy: Any, pf: Any, c: Any) -> dict[str, Any]:
    """A combined rule as `policy check` explains it: its signals, and what its category does."""
    r = policy.rule(c.then, pf.tenant, pf.channel)
    does = (
        f"red line: blocks at {r.block:.2f} on one frame"
        if r.red_line
        else "never acts (at_most: none)"
        if r.at_most == "none"
        else f"review at {r.review:.2f} when {r.smoothing.describe()}, never more (at_most: review)"
        if r.at_most == "review"
        else f"review at {r.review:.2f}, block at {r.block:.2f} when {r.smoothing.describe()}"
    )
    off = "" if c.enabled else " (disabled)"
    return {"rule": c.source, "enabled": c.enabled, "then": c.then, "then_rule": r.source,
            "review": r.review, "block": r.block, "red_line": r.red_line,
            "why": f"{c.describe()} ({r.source}: {does}){off}"}  # fmt: skip


def _explain(args: argparse.Namespace, settings: Settings) -> int:
    from streams.policy import explain, load_dir

    try:
        body = json.loads(args.scores)
    except ValueError as exc:
        raise FramewatchError(
            f"--scores is not JSON ({exc}); e.g. '{{\"hate.speech\": 0.7}}'"
        ) from None
    tenant, channel = args.tenant, args.channel
    if isinstance(body, dict) and isinstance(body.get("scores"), dict):
        tenant = tenant or body.get("tenant")
        channel = channel or body.get("channel")
        body = body["scores"]
    if not isinstance(body, dict) or not all(isinstance(v, int | float) for v in body.values()):
        raise FramewatchError('--scores must map categories to numbers, e.g. {"hate.speech": 0.7}')
    policy = load_dir(settings.streams.policy_dir, taxonomy.load(settings.taxonomy_file))
    rows = explain(policy, {k: float(v) for k, v in body.items()}, tenant, channel)
    if args.json:
        print(json.dumps({"policy_version": policy.version, "rules": rows}))
        return 0
    print(f"policy {policy.version} (tenant={tenant or '-'}, channel={channel or '-'})")
    for r in rows:
        sm = f", smoothing {r['smoothing']}" if "smoothing" in r else ""
        extra = f"  [{r['rule']}{sm}]" if "rule" in r else ""
        red = " RED-LINE" if r.get("red_line") else ""
        print(f"{r['category']:<36} {r['verdict'].upper():<7}{red} {r['why']}{extra}")
    return 0


def _account_show(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio
    import time

    from streams.inspect import table_snapshot
    from streams.ledger import Ledger
    from streams.policy import load_dir

    snap = asyncio.run(table_snapshot(settings, settings.topics.changelog("account-ledger")))
    body = snap.get(scope.key(args.tenant, args.account))
    if body is None:
        others = sorted(
            parts[0] for k in snap if len(parts := scope.split(k)) == 2 and parts[1] == args.account
        )
        hint = f"; tenants with an account of that id: {', '.join(others)} (give --tenant)"
        raise FramewatchError(
            f"no ledger for account {args.account!r} of tenant {args.tenant!r} (no block "
            "decisions yet, or a different FRAMEWATCH_TOPICS__PREFIX than the worker's)"
            + (hint if others else "")
        )
    led = Ledger.from_json(body)
    policy = load_dir(settings.streams.policy_dir, taxonomy.load(settings.taxonomy_file))
    now = time.time()
    totals = led.totals(now, policy.enforcement(led.tenant).half_life_days)
    ladder = policy.enforcement(led.tenant).ladder
    view = {
        "account_id": led.account_id,
        "tenant": led.tenant,
        "ladder_step": led.step,
        "action": ladder[led.step - 1].action if led.step else "none",
        "strikes_now": totals,
        "strike_total_now": round(sum(totals.values()), 3),
        "counts": led.counts(now),
        "strikes": led.strikes,
        "history": led.history,
    }
    if args.json:
        print(json.dumps(view))
        return 0
    print(f"account {led.account_id} (tenant {led.tenant}): {view['action']} (step {led.step})")
    print(f"  decayed strikes now: {view['strike_total_now']} " + json.dumps(totals))
    print("  strikes in windows: " + ", ".join(f"{k}={v}" for k, v in view["counts"].items()))
    for h in led.history:
        print(
            f"  step -> {h['action']} at {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(h['at']))}"
            f" after {', '.join(h['decision_ids'])}"
        )
    return 0
