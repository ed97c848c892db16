"""`framewatch evidence sweep|forget|show`: retention, erasure and custody checks of the store."""

from __future__ import annotations

import argparse
import json
import sys

from framewatch.evidence import EvidenceError, EvidenceStore
from framewatch.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "evidence",
        help="the evidence store: retention sweep, erasure of an account, custody check",
        description="Evidence frames and manifests of block/review decisions "
        "(FRAMEWATCH_EVIDENCE__DIR, or an S3 bucket). Run `sweep` from cron (hourly) to apply "
        "retention; red-line evidence under legal hold is never swept.",
    )
    es = p.add_subparsers(dest="evidence_command", required=True)
    s = es.add_parser("sweep", help="drop expired pins, stale staged frames, unreferenced objects")
    s.add_argument("--json", action="store_true", help="print machine-readable JSON")
    s.set_defaults(func=_sweep)
    f = es.add_parser(
        "forget",
        help="erase one account's evidence (an erasure request), then sweep",
        description="Remove every pin of TENANT's ACCOUNT, including those under legal hold "
        "(erasure is decided outside framewatch), then sweep the objects no pin names. The "
        "audit chain keeps the manifests' digests, never their content, so it still verifies.",
    )
    f.add_argument("tenant")
    f.add_argument("account")
    f.add_argument("--json", action="store_true", help="print machine-readable JSON")
    f.set_defaults(func=_forget)
    sh = es.add_parser(
        "show",
        help="print a decision's manifest after checking its digest (the read is logged)",
    )
    sh.add_argument("tenant")
    sh.add_argument("decision_id")
    sh.add_argument("--actor", default="cli", help="who is reading (goes into the access log)")
    sh.set_defaults(func=_show)


def _sweep(args: argparse.Namespace, settings: Settings) -> int:
    out = EvidenceStore.from_settings(settings).sweep()
    print(json.dumps(out) if args.json else
          f"removed {out['pins']} expired pins, {out['staging']} stale staged frames, "
          f"{out['objects']} unreferenced objects")  # fmt: skip
    return 0


def _forget(args: argparse.Namespace, settings: Settings) -> int:
    store = EvidenceStore.from_settings(settings)
    pins = store.forget(args.tenant, args.account)
    swept = store.sweep()
    out = {"tenant": args.tenant, "account": args.account, "pins_removed": pins, **swept}
    print(json.dumps(out) if args.json else
          f"removed {pins} evidence pins of {args.tenant}/{args.account}; "
          f"{swept['objects']} objects freed")  # fmt: skip
    return 0


def _show(args: argparse.Namespace, settings: Settings) -> int:
    try:
        m = EvidenceStore.from_settings(settings).manifest(
            args.tenant, args.decision_id, args.actor
        )
    except EvidenceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    if m is None:
        print(f"error: no evidence pinned for decision {args.decision_id} of tenant {args.tenant}",
              file=sys.stderr)  # fmt: skip
        return 1
    print(json.dumps(m, indent=2))
    return 0
