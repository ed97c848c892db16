"""`framewatch account forget TENANT ACCOUNT`: an erasure request, as far as Kafka allows.

What is erased: the account's evidence (frames, manifests; the store), its strike ledger (the
worker deletes the row: a tombstone on the ledger's compacted changelog, which compaction then
removes), and, in the console, its appeals and the notes of the verdicts on its decisions. What
is not: records already on the non-compacted topics (decisions, enforcement, reviews with their
notes, alerts) stay until their retention deletes them, and the audit chain keeps every link
(removing content would break the hashes); see docs/console.md, "Erasure".
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json

from framewatch import kafkaio, records, scope
from framewatch.evidence import EvidenceStore
from framewatch.records import AccountForget
from framewatch.settings import Settings

NOT_ERASED = (
    "decisions, enforcement, reviews (with their notes) and alerts already on their topics stay "
    "until topic retention deletes them; the audit chain keeps its links (the erasure request "
    "is chained with the account id replaced by its digest)"
)


def add_forget(acs: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    f = acs.add_parser(
        "forget",
        help="erase an account: evidence, strike ledger, console notes and appeals",
        description="An erasure request for TENANT's ACCOUNT. Removes its evidence now, and "
        "sends a forget record on the reviews topic: the streams worker deletes the account's "
        "strike ledger (a tombstone on the compacted changelog), the console drops its appeals "
        "and the notes of verdicts on its decisions. Records already on the other topics stay "
        "until their retention deletes them (Kafka cannot delete single records); the command "
        "says so. Give --yes: it cannot be undone.",
    )
    f.add_argument("tenant")
    f.add_argument("account", help="account_id (as the tenant's platform names it)")
    f.add_argument("--yes", action="store_true", help="confirm: the erasure cannot be undone")
    f.add_argument("--by", default=None, help="who asked (default: the current user name)")
    f.add_argument("--json", action="store_true", help="print machine-readable JSON")
    f.set_defaults(func=_forget)


def _forget(args: argparse.Namespace, settings: Settings) -> int:
    if not args.yes:
        print(
            f"this erases account {args.account!r} of tenant {args.tenant!r} (evidence, strike "
            "ledger, console notes and appeals) and cannot be undone: run again with --yes"
        )
        return 2
    now = records.now()
    rec = AccountForget(
        forget_id=records.stable_id("forget", args.tenant, args.account, now),
        tenant=args.tenant,
        account_id=args.account,
        requested_by=args.by or getpass.getuser(),
        requested_at=now,
    )
    pins = EvidenceStore.from_settings(settings).forget(args.tenant, args.account)
    asyncio.run(kafkaio.send_one(settings, "reviews", scope.account(rec), records.encode(rec)))
    out = {"forget_id": rec.forget_id, "tenant": rec.tenant, "account_id": rec.account_id,
           "evidence_pins_removed": pins, "sent_to": settings.topics.name("reviews"),
           "not_erased": NOT_ERASED}  # fmt: skip
    if args.json:
        print(json.dumps(out))
    else:
        print(f"erasure {rec.forget_id}: {pins} evidence pin(s) removed; the worker deletes the "
              f"strike ledger and the console the appeals and review notes when they read "
              f"{out['sent_to']}")  # fmt: skip
        print(f"not erased: {NOT_ERASED}")
    return 0
