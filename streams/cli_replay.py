"""`framewatch replay`: what a new policy, or the model set in shadow, would have decided on
the retained scores."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from datetime import datetime
from pathlib import Path

from aiokafka import ConsumerRecord

from framewatch import records, taxonomy
from framewatch.errors import FramewatchError, RecordDecodeError
from framewatch.records import Scores
from framewatch.settings import Settings

SCORES_TOPICS = ("scores", "scores_shadow")  # topic keys that carry Scores records
_AGO = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    r = sub.add_parser(
        "replay",
        help="re-decide the retained scores with a new policy, or the shadow model set's "
        "scores; blocks and reviews that change",
        description="Read the scores topic (what its retention still holds), keep the records "
        "captured at or after --from, and decide each stream's records in order twice, from an "
        "empty state: with the running policy (streams.policy_dir) and with the new one. "
        "With --scores-topic scores_shadow, the second side is the shadow model set's scores "
        "(scoring.shadow_models) of the same frames, decided with --policy or the running "
        "policy: what that model set would change. Nothing is written or sent. Prints, per "
        "category (each decision's top reason), the blocks and reviews now and new, and the "
        "streams whose state differs at the end. Streams are decided from --from on, so "
        "smoothing windows and blocks that began earlier start again.",
    )
    r.add_argument(
        "--policy",
        type=Path,
        default=None,
        help="a policy file (added to the running folder, replacing a file of the same name) "
        "or a folder (the whole new policy set); with --scores-topic scores_shadow the default "
        "is the running policy",
    )
    r.add_argument(
        "--scores-topic",
        default="scores",
        type=lambda v: v.replace("-", "_"),
        choices=SCORES_TOPICS,
        help="scores: the live scores (needs --policy); scores_shadow: the shadow model set's "
        "scores, compared with the live scores of the same frames",
    )
    r.add_argument(
        "--from",
        dest="since",
        default=None,
        help="capture time to start from: ISO 8601 (2026-12-01T20:00:00+00:00), epoch "
        "seconds, or an age such as 90m, 6h, 2d (default: everything retained)",
    )
    r.add_argument("--tenant", default=None, help="only this tenant's streams")
    r.add_argument("--json", action="store_true", help="print the report as JSON")
    r.set_defaults(func=_replay)


def parse_when(text: str | None, now: float) -> float:
    """--from as epoch seconds (None: the beginning of time)."""
    if text is None:
        return 0.0
    m = _AGO.match(text.strip())
    if m:
        return now - float(m.group(1)) * _UNIT[m.group(2)]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise FramewatchError(
            f"--from {text!r}: give ISO 8601 (2026-12-01T20:00:00+00:00), epoch seconds, or an "
            "age such as 90m, 6h or 2d"
        ) from None
    if dt.tzinfo is None:
        raise FramewatchError(f"--from {text!r}: say the time zone, e.g. {text}+00:00")
    return dt.timestamp()


def _replay(args: argparse.Namespace, settings: Settings) -> int:
    from streams.policy import check_file, load_dir
    from streams.replay import candidate, compare, pair

    shadow = args.scores_topic != "scores"
    if args.policy is None and not shadow:
        raise FramewatchError(
            "give --policy NEW.yaml (or a folder) to try a policy, or --scores-topic "
            "scores_shadow to see what the shadow model set (scoring.shadow_models) would change"
        )
    tax = taxonomy.load(settings.taxonomy_file)
    if args.policy is not None and args.policy.is_file():
        check_file(args.policy, tax)  # its errors name the file itself
    running = settings.streams.policy_dir
    old = load_dir(running, tax)
    new = candidate(running, args.policy, tax) if args.policy is not None else old
    since = parse_when(args.since, time.time())
    bad = [0]
    got = _read(settings, "scores", since, args, bad)
    extra: dict[str, object] = {"scores_topic": args.scores_topic}
    if shadow:
        paired = pair(got, _read(settings, args.scores_topic, since, args, bad))
        rep = compare(paired.now, old, new, paired.new)
        extra.update(live_only=paired.only_now, shadow_only=paired.only_new)
    else:
        rep = compare(got, old, new)
    body = {"policy_now": old.version, "policy_new": new.version, "unreadable": bad[0],
            **extra, **rep.to_json()}  # fmt: skip
    if args.json:
        print(json.dumps(body))
        return 0
    what = f"policy {old.version} now, {new.version} new"
    if shadow:
        what = (f"live scores with policy {old.version} now, {args.scores_topic} with "
                f"{new.version} new; {paired.only_now} live frames without shadow scores "
                f"and {paired.only_new} shadow records without live ones left out")  # fmt: skip
    print(f"{rep.records} scores records of {rep.streams} streams; {what}"
          + (f" ({bad[0]} unreadable, skipped)" if bad[0] else ""))  # fmt: skip
    print(f"{'category':<36}{'blocks now':>11}{'new':>6}{'change':>8}"
          f"{'reviews now':>13}{'new':>6}{'change':>8}")  # fmt: skip
    for r in rep.rows():
        print(f"{r['category']:<36}{r['blocks_now']:>11}{r['blocks_new']:>6}"
              f"{r['blocks_change']:>+8}{r['reviews_now']:>13}{r['reviews_new']:>6}"
              f"{r['reviews_change']:>+8}")  # fmt: skip
    print(f"red lines: {rep.red_lines[0]} now, {rep.red_lines[1]} new; "
          f"{len(rep.changed_streams)} streams end in a different state")  # fmt: skip
    return 0


def _read(
    settings: Settings, key: str, since: float, args: argparse.Namespace, bad: list[int]
) -> list[Scores]:
    """The retained Scores of a topic captured at or after ``since`` (unreadable: counted)."""
    from streams.inspect import scan

    got: list[Scores] = []

    def take(m: ConsumerRecord) -> bool:
        try:
            sc = records.decode(m.value, expect=Scores)
        except RecordDecodeError:
            bad[0] += 1
            return False
        if sc.captured_at >= since and (args.tenant is None or sc.tenant == args.tenant):
            got.append(sc)
        if len(got) % 10_000 == 0 and got and not args.json:
            print(f"{len(got)} {key} records read ...", file=sys.stderr)
        return False

    asyncio.run(scan(settings, settings.topics.name(key), take))
    return got
