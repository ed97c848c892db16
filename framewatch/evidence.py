"""The evidence store: frames and facts behind every block and review, content-addressed.

Two writers, one reader, so the write on a decision's path stays small:

* the scorer **stages** each frame scored above a floor (``stage``): the JPEG goes in as an
  object named by its SHA-256, plus a small entry (scores, hash matches, text) named by capture
  time, swept after ``staging_ttl_s`` unless pinned;
* the streams worker **pins** a decision (``pin``): it lists the stream's staging entries, takes
  the frames the decision cites plus ``frames_before`` before them, and writes one manifest
  object (also content-addressed) and a pin naming it with its retention or legal hold. The
  manifest's digest goes into the audit chain, so the evidence is chain-of-custody: anyone can
  recompute it from the store and compare;
* the console **reads** a pin's manifest and its frames (``manifest``, ``frame``) only for a
  tenant it is allowed to see, and every read is written to the access log.

Layout (any backend)::

    objects/ab/abcdef...            JPEGs and manifests, by SHA-256
    staging/TENANT/STREAM/CAPTURED_MS-FRAME_ID.json
    pins/TENANT/DECISION_ID.json    {"manifest": sha, "hold": bool, "expires_at": ...}
    access/TENANT/YYYY-MM-DD.jsonl  who read what, when
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from framewatch.errors import FramewatchError
from framewatch.records import Decision, Scores
from framewatch.settings import Settings
from framewatch.settings.evidence import EvidenceSettings

_SAFE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}$")
DAY = 86400.0


class EvidenceError(FramewatchError):
    """Evidence is missing, not this tenant's, or the store cannot be reached."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical(obj: Any) -> bytes:
    """The bytes a manifest is hashed as: sorted keys, no spaces (reproducible digests)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def seg(name: str) -> str:
    """A path segment for a tenant/stream/decision id: itself when plain, else a hash of it
    (ids come from tenants' clients and must never walk out of the store)."""
    return name if _SAFE.match(name) else "h-" + sha256(name.encode())[:40]


class Backend(Protocol):
    """Blob storage the store is written on: local files, or an S3-compatible bucket."""

    def put(self, key: str, data: bytes) -> None: ...
    def get(self, key: str) -> bytes | None: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...
    def list(self, prefix: str) -> Iterator[tuple[str, float]]: ...  # (key, modified epoch s)
    def names(self, folder: str) -> list[str]: ...  # keys directly under a folder (no stat)
    def append(self, key: str, line: bytes) -> None: ...


class LocalBackend:
    """Files under a folder; writes are atomic (temp file + rename), so a reader never sees
    half an object and a crash never leaves one."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / key

    def put(self, key: str, data: bytes) -> None:
        p = self._path(key)
        tmp = p.with_name(f".{p.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        except FileNotFoundError:
            p.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, p)

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def list(self, prefix: str) -> Iterator[tuple[str, float]]:
        base = self._path(prefix)
        if not base.is_dir():
            return
        for dirpath, _dirs, files in os.walk(base):
            for f in files:
                if f.startswith("."):
                    continue
                full = Path(dirpath) / f
                try:
                    mtime = full.stat().st_mtime
                except FileNotFoundError:
                    continue
                yield str(full.relative_to(self.root)), mtime

    def names(self, folder: str) -> list[str]:
        try:
            with os.scandir(self._path(folder)) as it:
                return [folder + e.name for e in it if not e.name.startswith(".")]
        except FileNotFoundError:
            return []

    def append(self, key: str, line: bytes) -> None:
        p = self._path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        with p.open("ab") as fh:
            fh.write(line.rstrip(b"\n") + b"\n")


class S3Backend:
    """An S3-compatible bucket through boto3 (installed separately: `pip install boto3`).

    Not tested against a real server: none installs from this project's package registries
    (see docs/console.md). Appends are one object per line under the log's key.
    """

    def __init__(self, cfg: EvidenceSettings) -> None:
        try:
            import boto3  # type: ignore[import-not-found]
        except ImportError:
            raise EvidenceError(
                "FRAMEWATCH_EVIDENCE__BACKEND=s3 needs boto3: `pip install boto3`, or use the "
                "local backend"
            ) from None
        self.bucket = cfg.s3_bucket
        self.s3 = boto3.client(
            "s3",
            endpoint_url=cfg.s3_endpoint,
            aws_access_key_id=cfg.s3_access_key.get_secret_value() if cfg.s3_access_key else None,
            aws_secret_access_key=(
                cfg.s3_secret_key.get_secret_value() if cfg.s3_secret_key else None
            ),
        )

    def put(self, key: str, data: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)

    def get(self, key: str) -> bytes | None:
        try:
            return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            return None

    def exists(self, key: str) -> bool:
        return self.get(key) is not None

    def delete(self, key: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=key)

    def list(self, prefix: str) -> Iterator[tuple[str, float]]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        for page in pages:
            for obj in page.get("Contents", []):
                yield obj["Key"], obj["LastModified"].timestamp()

    def names(self, folder: str) -> list[str]:
        return [k for k, _ in self.list(folder) if "/" not in k[len(folder) :]]

    def append(self, key: str, line: bytes) -> None:
        self.put(f"{key}/{time.time():.6f}-{uuid.uuid4().hex[:8]}", line)


def _obj_key(digest: str) -> str:
    return f"objects/{digest[:2]}/{digest}"


class EvidenceStore:
    """Stage, pin, read, sweep and forget evidence (see the module docstring)."""

    def __init__(self, cfg: EvidenceSettings, backend: Backend | None = None) -> None:
        self.cfg = cfg
        if backend is None:
            backend = S3Backend(cfg) if cfg.backend == "s3" else LocalBackend(cfg.dir)
        self.b = backend

    @classmethod
    def from_settings(cls, settings: Settings) -> EvidenceStore:
        return cls(settings.evidence)

    # ---------------------------------------------------------------- write: scorer, worker
    def should_stage(self, sc: Scores) -> bool:
        top = max(sc.scores.values(), default=0.0)
        return top >= self.cfg.floor or bool(sc.hash_matches) or bool(sc.text)

    def stage(self, sc: Scores, jpeg: bytes) -> str:
        """Keep a frame for a while (its JPEG and what was found in it); returns its digest."""
        digest = sha256(jpeg)
        if not self.b.exists(_obj_key(digest)):
            self.b.put(_obj_key(digest), jpeg)
        entry = {
            "frame_id": sc.frame_id,
            "sha256": digest,
            "seq": sc.seq,
            "captured_at": sc.captured_at,
            "scores": sc.scores,
            "models": sc.models,
            "hash_matches": [m.model_dump(mode="json") for m in sc.hash_matches],
            "text": [t.model_dump(mode="json") for t in sc.text],
        }
        ms = int(sc.captured_at * 1000)
        key = f"staging/{seg(sc.tenant)}/{seg(sc.stream_id)}/{ms:014d}-{seg(sc.frame_id)}.json"
        self.b.put(key, canonical(entry))
        return digest

    def retention(self, tenant: str, category: str | None) -> int:
        """Days to keep: 'tenant:category' > 'category' > 'tenant:*' > default; a category
        setting covers the categories under it (the longest prefix wins)."""
        table = self.cfg.retention
        cat = category or ""
        parts = cat.split(".") if cat else []
        for scope in (f"{tenant}:", ""):
            for n in range(len(parts), 0, -1):
                days = table.get(scope + ".".join(parts[:n]))
                if days is not None:
                    return days
        return table.get(f"{tenant}:*", self.cfg.retention_days)

    def pin(
        self, d: Decision, thresholds: dict[str, float] | None = None, now: float | None = None
    ) -> dict[str, Any]:
        """Pin a block/review decision's frames; returns the pin (manifest digest, frames).

        Deterministic for a decision and the same staged frames (the pin time is the
        decision's), so a replay after a crash writes the same manifest and digest.
        """
        prefix = f"staging/{seg(d.tenant)}/{seg(d.stream_id)}/"
        names = sorted(self.b.names(prefix))
        cited = {seg(f) for f in d.evidence_frame_ids} | {seg(d.first_frame_id)}
        limit = int(d.captured_at * 1000)
        chosen: list[str] = []
        before: list[str] = []
        for k in names:
            base = k.rsplit("/", 1)[1][:-5]  # CAPTURED_MS-FRAME_ID
            ms, _, fid = base.partition("-")
            if fid in cited:
                chosen.append(k)
            elif ms.isdigit() and int(ms) <= limit:
                before.append(k)
        if self.cfg.frames_before:
            chosen.extend(before[-self.cfg.frames_before :])
        frames = []
        for k in sorted(set(chosen)):
            raw = self.b.get(k)
            if raw is None:
                continue  # swept between listing and reading
            e = json.loads(raw)
            e["cited"] = seg(e["frame_id"]) in cited
            frames.append(e)
        top = d.reasons[0] if d.reasons else None
        manifest = {
            "decision_id": d.decision_id,
            "tenant": d.tenant,
            "stream_id": d.stream_id,
            "account_id": d.account_id,
            "channel": d.channel,
            "action": d.action,
            "red_line": d.red_line,
            "category": top.category if top else None,
            "rule": top.rule if top else None,
            "policy_version": d.policy_version,
            "reasons": [r.model_dump(mode="json") for r in d.reasons],
            "thresholds": thresholds or {},
            "captured_at": d.captured_at,
            "decided_at": d.decided_at,
            "frames": frames,
        }
        body = canonical(manifest)
        digest = sha256(body)
        self.b.put(_obj_key(digest), body)
        hold = d.red_line and self.cfg.legal_hold_red_lines
        days = self.retention(d.tenant, manifest["category"])
        pin = {
            "decision_id": d.decision_id,
            "tenant": d.tenant,
            "account_id": d.account_id,
            "stream_id": d.stream_id,
            "category": manifest["category"],
            "manifest": digest,
            "frames": [{"frame_id": f["frame_id"], "sha256": f["sha256"]} for f in frames],
            "hold": hold,
            "expires_at": None if hold else d.decided_at + days * DAY,
            "pinned_at": d.decided_at if now is None else now,
        }
        self.b.put(f"pins/{seg(d.tenant)}/{seg(d.decision_id)}.json", canonical(pin))
        return pin

    def hold(self, tenant: str, decision_id: str) -> dict[str, Any] | None:
        """Put a pinned decision's evidence under legal hold (a reviewer escalated it to a red
        line): never swept, no expiry. Returns the pin, None when the decision has none."""
        pin = self._pin(tenant, decision_id)
        if pin is None or pin.get("tenant") != tenant:
            return None
        if not pin["hold"]:
            pin.update(hold=True, expires_at=None)
            self.b.put(f"pins/{seg(tenant)}/{seg(decision_id)}.json", canonical(pin))
        return pin

    # ---------------------------------------------------------------- read: the console
    def _pin(self, tenant: str, decision_id: str) -> dict[str, Any] | None:
        raw = self.b.get(f"pins/{seg(tenant)}/{seg(decision_id)}.json")
        return json.loads(raw) if raw else None

    def manifest(self, tenant: str, decision_id: str, actor: str) -> dict[str, Any] | None:
        """The decision's manifest, checked against its digest; None when none was pinned."""
        pin = self._pin(tenant, decision_id)
        if pin is None or pin.get("tenant") != tenant:
            return None
        body = self.b.get(_obj_key(pin["manifest"]))
        if body is None or sha256(body) != pin["manifest"]:
            raise EvidenceError(
                f"evidence manifest {pin['manifest']} of decision {decision_id} is missing or "
                "does not match its digest: the store was altered; check its backups"
            )
        self.log_access(tenant, actor, "manifest", decision_id, pin["manifest"])
        return {**json.loads(body), "digest": pin["manifest"], "hold": pin["hold"],
                "expires_at": pin["expires_at"]}  # fmt: skip

    def frame(self, tenant: str, decision_id: str, digest: str, actor: str) -> bytes:
        """One evidence frame, only if this tenant's decision pinned it."""
        pin = self._pin(tenant, decision_id)
        if pin is None or digest not in {f["sha256"] for f in pin["frames"]}:
            raise EvidenceError(f"no frame {digest} in the evidence of decision {decision_id}")
        data = self.b.get(_obj_key(digest))
        if data is None or sha256(data) != digest:
            raise EvidenceError(f"evidence frame {digest} is missing or altered in the store")
        self.log_access(tenant, actor, "frame", decision_id, digest)
        return data

    def log_access(self, tenant: str, actor: str, what: str, decision_id: str, obj: str) -> None:
        at = time.time()
        day = time.strftime("%Y-%m-%d", time.gmtime(at))
        line = {"at": round(at, 3), "actor": actor, "what": what, "decision_id": decision_id,
                "object": obj}  # fmt: skip
        self.b.append(f"access/{seg(tenant)}/{day}.jsonl", canonical(line))

    def access_log(self, tenant: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for key, _ in sorted(self.b.list(f"access/{seg(tenant)}/")):
            raw = self.b.get(key) or b""
            out.extend(json.loads(ln) for ln in raw.splitlines() if ln.strip())
        return out

    # ---------------------------------------------------------------- retention and erasure
    def sweep(self, now: float | None = None) -> dict[str, int]:
        """Drop stale staging entries, expired pins (never a held one) and unreferenced
        objects older than the staging TTL (a frame staged just now has no pin yet)."""
        now = time.time() if now is None else now
        ttl = self.cfg.staging_ttl_s
        out = {"staging": 0, "pins": 0, "objects": 0}
        live: set[str] = set()
        for key, mtime in list(self.b.list("staging/")):
            if mtime < now - ttl:
                self.b.delete(key)
                out["staging"] += 1
            else:
                raw = self.b.get(key)
                if raw:
                    live.add(json.loads(raw)["sha256"])
        for key, _ in list(self.b.list("pins/")):
            raw = self.b.get(key)
            if raw is None:
                continue
            pin = json.loads(raw)
            exp = pin.get("expires_at")
            if not pin.get("hold") and exp is not None and exp < now:
                self.b.delete(key)
                out["pins"] += 1
                continue
            live.add(pin["manifest"])
            live.update(f["sha256"] for f in pin["frames"])
        for key, mtime in list(self.b.list("objects/")):
            if key.rsplit("/", 1)[1] not in live and mtime < now - ttl:
                self.b.delete(key)
                out["objects"] += 1
        return out

    def forget(self, tenant: str, account_id: str) -> int:
        """Erase an account's pins (held ones too: erasure is a legal decision made outside);
        their objects go at the next sweep. Returns the pins removed."""
        n = 0
        for key, _ in list(self.b.list(f"pins/{seg(tenant)}/")):
            raw = self.b.get(key)
            if raw and json.loads(raw).get("account_id") == account_id:
                self.b.delete(key)
                n += 1
        return n
