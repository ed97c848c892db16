"""Hash-list files in the formats trust-and-safety teams exchange: read (auto-detected) and write.

Formats (read at the source, github.com/facebook/ThreatExchange):

``vpdq``
    Meta's vPDQ hash file, one frame a line: ``frame_number,quality,pdq_hex,timestamp_s``
    (what vpdq's hashers write; ``devkit/data/vpdq/*.txt``). One video entry; frames under the
    quality floor (vPDQ's own is 50) are skipped and counted.
``te``
    A python-threatexchange signal file (``exchanges/impl/file_api.py``; HMA's file exchange
    reads the same): ``<signal_type> <signal>`` a line. ``pdq`` signals are 64 hex characters;
    ``vpdq`` signals are a JSON list of ``"pdq_hex,quality,timestamp"`` strings
    (``extensions/vpdq/vpdq_util.py``). Other signal types are counted and left out.
``te-csv``
    ``threatexchange dataset -P --csv`` (``cli/dataset_cmd.py``), which HMA deployments exchange
    too: a header ``signal_type,signal_str,collab,category,tags``; rows whose category is
    ``NEGATIVE_CLASS`` (someone's "not a match" opinion) are counted and left out.
``hma``
    the PDQ rows HMA and the threatexchange CLI keep (``simple.HASH_PDQ.te``,
    ``cli/dataset/simple_serialization.py``): ``indicator,indicator_id,first_descriptor_id,
    added_on,labels`` (HMA) or ``indicator,first_descriptor_id,added_on,labels`` (the CLI), no
    header; labels are space-separated.
``hex``
    one PDQ hash (64 hex characters) a line; ``#`` starts a comment.
``csv``
    framewatch's own ``id,hash[,note]`` (a header line is optional).
"""

from __future__ import annotations

import collections
import csv
import hashlib
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from scoring.errors import BankError

FORMATS = ("vpdq", "te", "te-csv", "hma", "hex", "csv")
Format = Literal["vpdq", "te", "te-csv", "hma", "hex", "csv"]
TE_CSV_COLUMNS = ["signal_type", "signal_str", "collab", "category", "tags"]
_HEX = re.compile(r"^[0-9a-fA-F]{64}$")
_VPDQ_LINE = re.compile(r"^\d+,\d+,[0-9a-fA-F]{64},[0-9.]+$")
_TE_LINE = re.compile(r"^[a-z][a-z0-9_]* \S")
MAX_ERRORS_SHOWN = 10


@dataclass
class Entry:
    """One bank entry: a single hash, or the frames of one video."""

    entry_id: str
    hexes: list[str]
    kind: Literal["hash", "video"]
    note: str = ""
    # vPDQ frames (frame_number, quality, timestamp_s), one per hash, when the file had them
    frames: list[tuple[int, int, float]] | None = None


@dataclass
class Parsed:
    format: str
    entries: list[Entry] = field(default_factory=list)
    low_quality: int = 0
    skipped: collections.Counter[str] = field(default_factory=collections.Counter)

    @property
    def hashes(self) -> int:
        return sum(len(e.hexes) for e in self.entries)


class HashFileError(BankError):
    """Lines of a hash file that cannot be read; nothing was added. Each names file:line."""


def detect(path: Path, lines: list[str]) -> Format:
    """The format of a hash file from its first meaningful line."""
    for n, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if _VPDQ_LINE.match(line):
            return "vpdq"
        if line.lower().startswith("signal_type,signal_str"):
            return "te-csv"
        if _HEX.match(line):
            return "hex"
        if _TE_LINE.match(line):
            return "te"
        row = next(csv.reader([line]))
        if len(row) in (4, 5) and _HEX.match(row[0]) and row[-3].strip().isdigit():
            return "hma"
        if "," in line:
            return "csv"
        raise HashFileError(
            f"{path}:{n}: cannot tell the format from {line[:60]!r}: pass --format "
            f"({', '.join(FORMATS)})"
        )
    raise HashFileError(f"{path}: no hashes in the file (empty, or only comments)")


def read(path: Path, fmt: str | None = None, *, min_quality: int = 50,
         entry_id: str | None = None) -> Parsed:  # fmt: skip
    """Every entry of a hash file; all lines are checked before anything is returned."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise BankError(f"cannot read hash file {path}: {exc}") from None
    lines = text.splitlines()
    fmt = fmt or detect(path, lines)
    if fmt not in FORMATS:
        raise BankError(f"unknown hash file format {fmt!r}: use one of {', '.join(FORMATS)}")
    out = Parsed(fmt)
    errors: list[str] = []
    reader = {"vpdq": _read_vpdq, "te": _read_te, "te-csv": _read_te_csv, "hma": _read_hma,
              "hex": _read_hex, "csv": _read_csv}[fmt]  # fmt: skip
    reader(path, lines, out, errors, min_quality, entry_id)
    if errors:
        shown = "\n  ".join(errors[:MAX_ERRORS_SHOWN])
        more = f"\n  ... and {len(errors) - MAX_ERRORS_SHOWN} more" if len(errors) > 10 else ""
        raise HashFileError(
            f"{len(errors)} bad line(s) in {path} (read as {fmt}); nothing was added:\n  "
            f"{shown}{more}\nfix or delete those lines, or pass --format if {fmt} is wrong"
        )
    if not out.entries:
        raise HashFileError(f"{path}: no usable hashes ({_skips(out) or 'the file is empty'})")
    return out


def _skips(p: Parsed) -> str:
    parts = [f"{n} {why}" for why, n in sorted(p.skipped.items())]
    if p.low_quality:
        parts.insert(0, f"{p.low_quality} vPDQ frame(s) under the quality floor")
    return "; ".join(parts)


def summary(p: Parsed) -> str:
    """What was read and what was left out, for the user."""
    skipped = _skips(p)
    return f"{p.hashes} hash(es) in {len(p.entries)} entr(y/ies) ({p.format})" + (
        f"; skipped {skipped}" if skipped else ""
    )


def _hex(h: str, where: str, errors: list[str]) -> str | None:
    h = h.strip()
    if not _HEX.match(h):
        errors.append(f"{where}: {h[:70]!r} is not a PDQ hash (64 hex characters)")
        return None
    return h.lower()


def _frame(parts: list[str], where: str, errors: list[str]) -> tuple[int, int, float] | None:
    """(frame_number or -1, quality, timestamp) from vPDQ fields, with a message if bad."""
    try:
        n = int(parts[0]) if len(parts) == 4 else -1
        q, ts = int(parts[1]), float(parts[-1])
    except ValueError:
        errors.append(f"{where}: quality must be an integer and timestamp a number")
        return None
    if not 0 <= q <= 100 or ts < 0:
        errors.append(f"{where}: quality must be 0..100 and timestamp >= 0 (got {q}, {ts})")
        return None
    return n, q, ts


def _read_vpdq(path: Path, lines: list[str], out: Parsed, errors: list[str], min_q: int,
               entry_id: str | None) -> None:  # fmt: skip
    hexes, frames = [], []
    for n, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path}:{n}"
        parts = line.split(",")
        if len(parts) != 4:
            errors.append(f"{where}: a vPDQ line is frame_number,quality,pdq_hex,timestamp_s")
            continue
        h = _hex(parts[2], where, errors)
        f = _frame(parts, where, errors)
        if h is None or f is None:
            continue
        if f[1] < min_q:
            out.low_quality += 1
            continue
        hexes.append(h)
        frames.append(f)
    if hexes:
        out.entries.append(Entry(entry_id or path.stem, hexes, "video", "vpdq", frames))


def _vpdq_signal(signal: str, where: str, errors: list[str], out: Parsed,
                 min_q: int) -> Entry | None:  # fmt: skip
    try:
        feats = json.loads(signal)
        assert isinstance(feats, list) and all(isinstance(f, str) for f in feats)
    except (ValueError, AssertionError):
        errors.append(f'{where}: a vpdq signal is a JSON list of "pdq_hex,quality,timestamp"')
        return None
    hexes, frames = [], []
    for i, feat in enumerate(feats):
        parts = feat.split(",")
        if len(parts) != 3:
            errors.append(f"{where}: vpdq feature {i} is not pdq_hex,quality,timestamp")
            continue
        h, f = _hex(parts[0], where, errors), _frame(parts, where, errors)
        if h is None or f is None:
            continue
        if f[1] < min_q:
            out.low_quality += 1
            continue
        hexes.append(h)
        frames.append((i, f[1], f[2]))
    if not hexes:
        return None
    eid = "vpdq-" + hashlib.sha256(signal.encode()).hexdigest()[:16]
    return Entry(eid, hexes, "video", "vpdq signal", frames)


def _signal(stype: str, signal: str, where: str, out: Parsed, errors: list[str], min_q: int,
            note: str) -> None:  # fmt: skip
    if stype == "pdq":
        if (h := _hex(signal, where, errors)) is not None:
            out.entries.append(Entry(h, [h], "hash", note))
    elif stype == "vpdq":
        if (e := _vpdq_signal(signal, where, errors, out, min_q)) is not None:
            e.note = note or e.note
            out.entries.append(e)
    else:
        out.skipped[f"{stype} signal(s) (framewatch banks hold pdq and vpdq)"] += 1


def _read_te(path: Path, lines: list[str], out: Parsed, errors: list[str], min_q: int,
             entry_id: str | None) -> None:  # fmt: skip
    for n, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        stype, _, signal = line.partition(" ")
        if not signal and _HEX.match(stype):  # a file of one type lists bare signals
            stype, signal = "pdq", stype
        if not signal:
            errors.append(
                f"{path}:{n}: a signal line is '<signal_type> <signal>', e.g. 'pdq <hex>'"
            )
            continue
        _signal(stype.lower(), signal.strip(), f"{path}:{n}", out, errors, min_q, "")


def _read_te_csv(path: Path, lines: list[str], out: Parsed, errors: list[str], min_q: int,
                 entry_id: str | None) -> None:  # fmt: skip
    rows = csv.DictReader(io.StringIO("\n".join(lines)))
    missing = {"signal_type", "signal_str"} - set(rows.fieldnames or [])
    if missing:
        errors.append(f"{path}:1: the header needs {', '.join(TE_CSV_COLUMNS)}")
        return
    for row in rows:
        n = rows.line_num
        if (row.get("category") or "").strip().upper() == "NEGATIVE_CLASS":
            out.skipped["NEGATIVE_CLASS row(s) (opinions that it is not a match)"] += 1
            continue
        note = "; ".join(f"{k}={row[k]}" for k in ("collab", "category", "tags") if row.get(k))
        _signal((row["signal_type"] or "").strip().lower(), (row["signal_str"] or "").strip(),
                f"{path}:{n}", out, errors, min_q, note)  # fmt: skip


def _read_hma(path: Path, lines: list[str], out: Parsed, errors: list[str], min_q: int,
              entry_id: str | None) -> None:  # fmt: skip
    for n, row in enumerate(csv.reader(lines), 1):
        if not row:
            continue
        where = f"{path}:{n}"
        if len(row) not in (4, 5) or not row[-3].strip().isdigit():
            errors.append(f"{where}: an HMA row is indicator,indicator_id,first_descriptor_id,"
                          "added_on,labels (the threatexchange CLI's has no indicator_id)")  # fmt: skip
            continue
        if (h := _hex(row[0], where, errors)) is not None:
            eid = row[1].strip() if len(row) == 5 and row[1].strip() else h
            labels = row[-1].strip()
            out.entries.append(Entry(eid, [h], "hash", f"labels={labels}" if labels else ""))


def _read_hex(path: Path, lines: list[str], out: Parsed, errors: list[str], min_q: int,
              entry_id: str | None) -> None:  # fmt: skip
    for n, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if line and (h := _hex(line, f"{path}:{n}", errors)) is not None:
            out.entries.append(Entry(h, [h], "hash"))


def _read_csv(path: Path, lines: list[str], out: Parsed, errors: list[str], min_q: int,
              entry_id: str | None) -> None:  # fmt: skip
    for n, row in enumerate(csv.reader(lines), 1):
        if not row or row[0].startswith("#") or (n == 1 and row[0].strip().lower() == "id"):
            continue
        if len(row) < 2:
            errors.append(f"{path}:{n}: a CSV row is id,hash[,note]")
            continue
        if (h := _hex(row[1], f"{path}:{n}", errors)) is not None:
            out.entries.append(Entry(row[0].strip(), [h], "hash", ",".join(row[2:]).strip()))


# ------------------------------------------------------------------------------------- writing


def _frames_of(e: Entry, floor: int) -> list[tuple[int, int, float]]:
    """Per-frame data; an entry banked without it (``--video``, single hashes) gets frame
    numbers in order, the quality floor it passed, and no time (0.0)."""
    if e.frames and len(e.frames) == len(e.hexes):
        return e.frames
    return [(i, floor, 0.0) for i in range(len(e.hexes))]


def write(entries: Iterable[Entry], fmt: str, *, bank: str, category: str,
          floor: int = 50) -> str:  # fmt: skip
    """The text of a hash file of ``fmt`` holding ``entries``."""
    entries = list(entries)
    buf = io.StringIO()
    if fmt == "hex":
        for e in entries:
            buf.writelines(f"{h}\n" for h in e.hexes)
    elif fmt == "csv":
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["id", "hash", "note"])
        for e in entries:
            for i, h in enumerate(e.hexes):
                w.writerow([e.entry_id if len(e.hexes) == 1 else f"{e.entry_id}#{i}", h, e.note])
    elif fmt == "hma":  # single hashes; a video's frames become one row each
        w = csv.writer(buf, lineterminator="\n")
        for e in entries:
            for i, h in enumerate(e.hexes):
                eid = e.entry_id if len(e.hexes) == 1 else f"{e.entry_id}#{i}"
                w.writerow([h, eid, 0, "", category.replace(" ", "_")])
    elif fmt == "vpdq":
        videos = [e for e in entries if e.kind == "video"]
        if len(entries) != 1 or len(videos) != 1:
            raise BankError(
                f"a vPDQ file holds one video; bank {bank} has {len(videos)} video entr(y/ies) "
                f"among {len(entries)}: pass --entry ID (see `framewatch bank list`)"
            )
        for (n, q, ts), h in zip(_frames_of(videos[0], floor), videos[0].hexes, strict=True):
            buf.write(f"{n},{q},{h},{ts:.3f}\n")
    elif fmt in ("te", "te-csv"):
        w = csv.DictWriter(buf, TE_CSV_COLUMNS, lineterminator="\n")
        if fmt == "te-csv":
            w.writeheader()
        for e in entries:
            if e.kind == "video":
                feats = [f"{h},{q},{ts:.3f}" for (_, q, ts), h in
                         zip(_frames_of(e, floor), e.hexes, strict=True)]  # fmt: skip
                signals = [("vpdq", json.dumps(feats, separators=(",", ":")))]
            else:
                signals = [("pdq", h) for h in e.hexes]
            for stype, signal in signals:
                if fmt == "te":
                    buf.write(f"{stype} {signal}\n")
                else:
                    w.writerow({"signal_type": stype, "signal_str": signal, "collab": bank,
                                "category": "POSITIVE_CLASS", "tags": category})  # fmt: skip
    else:
        raise BankError(f"unknown hash file format {fmt!r}: use one of {', '.join(FORMATS)}")
    return buf.getvalue()
