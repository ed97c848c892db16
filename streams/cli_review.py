"""`framewatch review resolve|stats` and `framewatch audit verify`."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from typing import TYPE_CHECKING, Any

from framewatch import kafkaio, records, scope
from framewatch.errors import FramewatchError, RecordDecodeError
from framewatch.records import Decision, ReviewOutcome
from framewatch.settings import Settings

if TYPE_CHECKING:
    from aiokafka import ConsumerRecord

EXIT_BROKEN = 3  # audit verify: a broken link (1 is any other error)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "review",
        help="resolve reviews and appeals of decisions; reviewer precision per category",
    )
    rs = p.add_subparsers(dest="review_command", required=True)
    r = rs.add_parser(
        "resolve",
        help="record a reviewer's verdict on a block or review decision",
        description="Find DECISION_ID on the decisions topic and send the verdict to the "
        "reviews topic. The worker then acts on it: 'overturned' clears the stream (an allow "
        "decision with a corrected statement of reasons), removes the account's strike and "
        "steps the enforcement ladder down if it falls; 'upheld' changes nothing and is "
        "recorded; 'escalated' (a red line) blocks the stream and pages on-call. Re-running the same verdict is harmless (same review id).",
    )
    r.add_argument("decision_id", help="decision_id as printed by `framewatch tail decisions`")
    r.add_argument("--outcome", required=True, choices=["upheld", "overturned", "escalated"])
    r.add_argument("--note", default=None, help="the reviewer's reason (goes into the statement)")
    r.add_argument(
        "--reviewer", default=None, help="who reviewed it (default: the current user name)"
    )
    r.add_argument("--json", action="store_true", help="print the review record as JSON")
    r.set_defaults(func=_resolve)
    s = rs.add_parser(
        "stats",
        help="per-category precision from the reviews topic: upheld / (upheld + overturned)",
        description="Read every review outcome and print, per category, how many decisions "
        "reviewers upheld and overturned (latest verdict per decision) and the precision, "
        "split by the reviewed action (block, review), so thresholds can be tuned.",
    )
    s.add_argument(
        "--tenant", default=None, help="only this tenant's reviews (default: every tenant's)"
    )
    s.add_argument("--json", action="store_true", help="print machine-readable JSON")
    s.set_defaults(func=_stats)

    p = sub.add_parser("audit", help="the tamper-evident audit trail")
    aus = p.add_subparsers(dest="audit_command", required=True)
    v = aus.add_parser(
        "verify",
        help="walk every partition's hash chain; exit 3 at a broken link",
        description="Check every link of every partition of the audit topic: each entry's hash "
        "is sha256(prev_hash + canonical JSON of its body) and its prev_hash is the previous "
        "entry's hash. Prints the first broken link per partition (offset, seq, expected, "
        "found) and exits 3; exits 0 when every chain holds. Record the printed head hashes "
        "somewhere else to detect a truncated tail later.",
    )
    v.add_argument("--json", action="store_true", help="print machine-readable JSON")
    v.set_defaults(func=_verify)


def _say(args: argparse.Namespace, msg: str) -> None:
    if not args.json:
        print(msg, file=sys.stderr, flush=True)


async def find_decision(settings: Settings, decision_id: str) -> Decision | None:
    """The decision with this id on the decisions topic (the latest copy if re-sent)."""
    from streams.inspect import scan

    found: list[Decision] = []

    def look(m: ConsumerRecord) -> bool:
        if m.value is None or decision_id.encode() not in m.value:
            return False
        try:
            d = records.decode(m.value, expect=Decision)
        except RecordDecodeError:
            return False
        if d.decision_id == decision_id:
            found.append(d)
        return False

    await scan(settings, settings.topics.name("decisions"), look)
    return found[-1] if found else None


def _resolve(args: argparse.Namespace, settings: Settings) -> int:
    from streams.review import review_id

    _say(
        args, f"looking for decision {args.decision_id} on {settings.topics.name('decisions')} ..."
    )
    d = asyncio.run(find_decision(settings, args.decision_id))
    if d is None:
        raise FramewatchError(
            f"no decision {args.decision_id!r} on topic {settings.topics.name('decisions')!r}: "
            "copy the id from `framewatch tail decisions --from-start --json`, and check that "
            "FRAMEWATCH_TOPICS__PREFIX is the worker's"
        )
    if d.action == "allow":
        raise FramewatchError(
            f"decision {d.decision_id} is an allow (it cleared stream {d.stream_id}); "
            "resolve the block or review decision before it instead"
        )
    rv = ReviewOutcome(
        review_id=review_id(d.decision_id, args.outcome),
        decision_id=d.decision_id,
        stream_id=d.stream_id,
        account_id=d.account_id,
        tenant=d.tenant,
        outcome=args.outcome,
        action=d.action,
        category=d.reasons[0].category if d.reasons else None,
        reviewer=args.reviewer or _user(),
        note=args.note,
        resolved_at=records.now(),
    )
    asyncio.run(kafkaio.send_one(settings, "reviews", scope.stream(rv), records.encode(rv)))
    if args.json:
        print(json.dumps({"type": rv.TYPE, **rv.model_dump(mode="json")}))
    else:
        effect = {
            "overturned": "the worker clears the stream, removes the strike and issues a "
            "corrected statement",
            "escalated": "the worker blocks the stream as a red line and pages on-call",
        }.get(args.outcome, "the decision stands")
        print(
            f"review {rv.review_id}: {d.action} of stream {d.stream_id} (tenant {d.tenant}, "
            f"account {d.account_id}, {rv.category or 'no category'}) {args.outcome}; {effect}"
        )
    return 0


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def _stats(args: argparse.Namespace, settings: Settings) -> int:
    from streams.inspect import scan
    from streams.review import precision

    got: list[ReviewOutcome] = []
    bad = 0

    def take(m: ConsumerRecord) -> bool:
        nonlocal bad
        try:
            rv = records.decode(m.value, expect=ReviewOutcome)
        except RecordDecodeError:
            bad += 1
            return False
        if args.tenant is None or rv.tenant == args.tenant:
            got.append(rv)
        return False

    asyncio.run(scan(settings, settings.topics.name("reviews"), take))
    rows = precision(got)
    if args.json:
        body = {"tenant": args.tenant, "reviews": len(got), "unreadable": bad, "categories": rows}
        print(json.dumps(body))
        return 0
    print(
        f"{len(got)} review records"
        + (f" of tenant {args.tenant}" if args.tenant else " (every tenant)")
        + (f" ({bad} unreadable, skipped)" if bad else "")
    )
    print(
        f"{'category':<34}{'reviewed':>9}{'upheld':>8}{'overturn':>9}{'precision':>10}  by action"
    )
    for r in rows:
        acts = ", ".join(
            f"{a} {_pct(s['precision'])} of {s['upheld'] + s['overturned']}"
            for a, s in sorted(r["by_action"].items())
        )
        print(
            f"{r['category']:<34}{r['reviewed']:>9}{r['upheld']:>8}{r['overturned']:>9}"
            f"{_pct(r['precision']):>10}  {acts}"
        )
    return 0


def _pct(p: float | None) -> str:
    return "-" if p is None else f"{p:.2f}"


def _verify(args: argparse.Namespace, settings: Settings) -> int:
    report = asyncio.run(verify_topic(settings, progress=lambda m: _say(args, m)))
    ok = all(p["ok"] for p in report)
    if args.json:
        print(json.dumps({"ok": ok, "topic": settings.topics.name("audit"), "partitions": report}))
        return 0 if ok else EXIT_BROKEN
    for p in report:
        if p["ok"]:
            head = f"head seq {p['head_seq']} {p['head_hash']}" if p["entries"] else "empty"
            dup = f", {p['duplicates']} exact re-sends" if p["duplicates"] else ""
            print(f"partition {p['partition']}: ok, {p['entries']} links{dup}; {head}")
        else:
            b = p["break"]
            print(
                f"partition {p['partition']}: BROKEN at offset {b['offset']} seq {b['seq']}: "
                f"{b['reason']}\n  expected {b['expected']}\n  found    {b['found']}"
            )
    print("audit chain ok" if ok else "audit chain BROKEN")
    return 0 if ok else EXIT_BROKEN


async def verify_topic(settings: Settings, progress: Any = None) -> list[dict[str, Any]]:
    """Verify every partition of the audit topic; one report per partition."""
    from streams.audit import Verifier
    from streams.inspect import scan

    verifiers: dict[int, Verifier] = {}
    seen = 0

    def start(ranges: dict[int, tuple[int, int]]) -> None:
        # a chain whose oldest links expired (retention) is checked from its oldest link left
        for part, (first, _end) in ranges.items():
            verifiers[part] = Verifier(
                part, anchored=first == 0, window=settings.streams.audit_in_flight
            )

    def feed(m: ConsumerRecord) -> bool:
        nonlocal seen
        verifiers[m.partition].feed(m.offset, m.value)
        seen += 1
        if progress and seen % 10000 == 0:
            progress(f"{seen} audit entries checked ...")
        return False

    await scan(settings, settings.topics.name("audit"), feed, on_ranges=start)
    return [verifiers[p].to_json() for p in sorted(verifiers)]
