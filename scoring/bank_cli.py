"""`framewatch bank add|remove|list|match`: manage PDQ hash banks."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from framewatch.errors import FramewatchError
from framewatch.settings import Settings
from scoring import hashfiles, pdq
from scoring.banks import (
    BankIndex,
    BankStore,
    StreamMatcher,
    video_hashes,
    with_crops,
)


def _progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _read_image(path: str) -> np.ndarray:
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise FramewatchError(f"cannot read image {path}: is it a JPEG/PNG?")
    return img


def _image_hash(path: str) -> str:
    return pdq.compute(_read_image(path))[0]


def _add(args: argparse.Namespace, settings: Settings) -> int:
    store = BankStore(settings)
    sc = settings.scoring
    if store.get(args.name) is None and not args.category:
        print(
            f"bank {args.name} is new: give --category (e.g. known_bad.csam_bank)", file=sys.stderr
        )
        return 2
    old = store.get(args.name)
    store.create(args.name, args.role or (old.role if old else "review"),
                 args.category or (old.category if old else ""), args.threshold)  # fmt: skip
    total = 0
    for p in args.image or []:
        hashes = with_crops(_read_image(p), sc.bank_crop_variants)
        total += store.add(args.name, args.id or Path(p).name, hashes, "image", args.note)
    for p in args.video or []:
        hashes = []
        for t, h in video_hashes(Path(p), args.interval or sc.bank_video_interval_s,
                                 sc.bank_min_quality, sc.bank_crop_variants):  # fmt: skip
            hashes.append(h)
            if len(hashes) % 20 == 0:
                _progress(f"{p}: {len(hashes)} frames hashed ({t:.1f}s)")
        total += store.add(args.name, args.id or Path(p).name, hashes, "video", args.note)
    for i, h in enumerate(args.hash or []):
        total += store.add(args.name, args.id or h.lower() if i == 0 else h.lower(), [h], "hash",
                           args.note)  # fmt: skip
    for f in args.file or []:
        parsed = hashfiles.read(Path(f), args.format, min_quality=sc.bank_min_quality,
                                entry_id=args.id)  # fmt: skip
        total += store.add_entries(args.name, parsed.entries)
        _progress(f"{f}: {hashfiles.summary(parsed)}")
    store.notify()
    print(f"bank {args.name}: added {total} hashes")
    return 0


def _export(args: argparse.Namespace, settings: Settings) -> int:
    store = BankStore(settings)
    bank = store.get(args.name)
    if bank is None:
        print(f"no bank named {args.name!r}: see `framewatch bank list`", file=sys.stderr)
        return 1
    entries = store.entries(args.name, args.entry)
    text = hashfiles.write(entries, args.format, bank=bank.name, category=bank.category,
                           floor=settings.scoring.bank_min_quality)  # fmt: skip
    if args.out in (None, "-"):
        sys.stdout.write(text)
    else:
        Path(args.out).write_text(text)
        _progress(f"bank {args.name}: {len(entries)} entr(y/ies) written to {args.out} "
                  f"({args.format})")  # fmt: skip
    return 0


def _remove(args: argparse.Namespace, settings: Settings) -> int:
    store = BankStore(settings)
    n = store.remove(args.name, args.entry)
    store.notify()
    print(f"bank {args.name}: removed {n} entries")
    return 0 if n or args.entry is None else 1


def _list(args: argparse.Namespace, settings: Settings) -> int:
    rows = BankStore(settings).counts()
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            print(f"{r['name']:<20} {r['role']:<9} {r['category']:<28} thr={r['threshold']:<3} "
                  f"entries={r['entries']} hashes={r['hashes']}")  # fmt: skip
    return 0


def match_video(index: BankIndex, path: Path, interval_s: float, window: int,
                min_frames: int) -> list[dict[str, object]]:  # fmt: skip
    """Per bank entry: sampled frames that matched, best distance, whether it counted."""
    matcher = StreamMatcher(window, min_frames)
    per: dict[tuple[str, str], dict[str, object]] = {}
    sampled = 0
    for _, h in video_hashes(path, interval_s, 0):
        sampled += 1
        hits = index.match(h)
        counted = {(m.bank, m.entry_id) for m in matcher.observe("cli", hits)}
        for hit in hits:
            r = per.setdefault((hit.bank.name, hit.entry_id), {
                "bank": hit.bank.name, "entry_id": hit.entry_id, "role": hit.bank.role,
                "category": hit.bank.category, "frames_matched": 0, "best_distance": 256,
                "matched": False})  # fmt: skip
            r["frames_matched"] = int(r["frames_matched"]) + 1  # type: ignore[call-overload]
            r["best_distance"] = min(int(r["best_distance"]), hit.distance)  # type: ignore[call-overload]
            if (hit.bank.name, hit.entry_id) in counted:
                r["matched"] = True
    for r in per.values():
        r["frames_sampled"] = sampled
    return list(per.values())


def _match(args: argparse.Namespace, settings: Settings) -> int:
    sc = settings.scoring
    index = BankStore(settings).load()
    if args.video:
        rows = match_video(index, Path(args.video), args.interval or sc.bank_video_interval_s,
                           sc.video_window, sc.video_min_frames)  # fmt: skip
    else:
        hits = index.match(_image_hash(args.image) if args.image else args.hash)
        rows = [{"bank": h.bank.name, "entry_id": h.entry_id, "role": h.bank.role,
                 "category": h.bank.category, "best_distance": h.distance, "matched": True}
                for h in hits]  # fmt: skip
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            print(" ".join(f"{k}={v}" for k, v in r.items()))
        if not rows:
            print("no bank entry matched")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    bank = sub.add_parser("bank", help="manage PDQ hash banks (disallow lists)",
                          description="Named PDQ hash banks in Redis; scorers reload on change.")  # fmt: skip
    bs = bank.add_subparsers(dest="bank_command", required=True)
    p = bs.add_parser("add", help="add entries (creating the bank if new)")
    p.add_argument("name")
    p.add_argument("--image", action="append", help="an image to bank (repeatable)")
    p.add_argument(
        "--video", action="append", help="a video: frames every --interval s, quality >= 50"
    )
    p.add_argument("--hash", action="append", help="a PDQ hash as 64 hex chars (repeatable)")
    p.add_argument(
        "--file",
        action="append",
        help="a hash list (repeatable): Meta's vPDQ file (frame,quality,hash,timestamp), a "
        "python-threatexchange/HMA signal file ('pdq <hex>', 'vpdq [...]') or dataset CSV, one "
        "hex hash a line, or CSV id,hash,note; the format is detected (see --format)",
    )
    p.add_argument(
        "--format",
        choices=hashfiles.FORMATS,
        help="the --file format when detection guesses wrong: vpdq, te (signal file), te-csv "
        "(threatexchange dataset --csv), hma (HMA / threatexchange CLI simple.HASH_PDQ.te rows), "
        "hex, csv (id,hash,note)",
    )
    p.add_argument("--role", choices=["red_line", "review"])
    p.add_argument("--category", help="taxonomy path, e.g. known_bad.csam_bank")
    p.add_argument(
        "--threshold", type=int, help="PDQ distance (default settings.scoring.bank_threshold)"
    )
    p.add_argument("--interval", type=float, help="seconds between banked video frames")
    p.add_argument("--id", help="entry id (default: the file name or hash)")
    p.add_argument("--note", default="")
    p.set_defaults(func=_add)
    p = bs.add_parser(
        "export",
        help="write a bank as a hash list others can import",
        description="Write a bank's hashes in an exchange format: vpdq (one video entry: "
        "--entry), te (python-threatexchange / HMA signal file), te-csv (threatexchange "
        "dataset --csv columns), hma (HMA's simple.HASH_PDQ.te rows), hex, csv (id,hash,note).",
    )
    p.add_argument("name")
    p.add_argument("--format", choices=hashfiles.FORMATS, default="te")
    p.add_argument("--entry", help="only this entry (a vpdq file holds one video)")
    p.add_argument("--out", help="file to write (default: standard output)")
    p.set_defaults(func=_export)
    p = bs.add_parser("remove", help="remove an entry, or the whole bank")
    p.add_argument("name")
    p.add_argument("--entry", help="entry id; without it the whole bank goes")
    p.set_defaults(func=_remove)
    p = bs.add_parser("list", help="banks with entry and hash counts")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_list)
    p = bs.add_parser("match", help="which bank entries an image, hash or video matches")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--video")
    g.add_argument("--image")
    g.add_argument("--hash")
    p.add_argument("--interval", type=float, help="seconds between sampled video frames")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_match)
