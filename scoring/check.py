"""One image or text checked now: the live scorer's detectors, decided by the live policy.

`framewatch check` and the check API both use :class:`Checker`. It runs what `framewatch score`
runs on a frame (the models, PDQ against the hash banks, QR codes and, when the scorer reads
text at all (`scoring.text_every` > 0), OCR with the spam rules and the tenant's keywords), then
decides with the same policy files as the streams worker, for the request's tenant and channel
(:func:`framewatch.policy.evaluate`). An image the live worker blocks is blocked here too.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np

from framewatch import records, taxonomy
from framewatch.policy import HashHit, Policy, Verdict, evaluate, load_dir
from framewatch.settings import Settings
from scoring import pdq, text
from scoring.banks import BankIndex
from scoring.errors import ScoringError
from scoring.model import decode_image
from scoring.scorer import Scorer

log = logging.getLogger(__name__)


class CheckCancelled(ScoringError):
    """The client went away: the rest of this check was skipped."""


class Checker:
    """Scores images and texts and decides them; thread-safe (one OCR engine, locked)."""

    def __init__(self, settings: Settings, scorer: Scorer, policy: Policy | None = None) -> None:
        self.s = settings
        self.scorer = scorer
        self.index = BankIndex.empty()
        self.policy = policy or load_policy(settings)
        self._ocr: text.Ocr | None = None
        self._ocr_lock = threading.Lock()

    @property
    def ocr(self) -> text.Ocr | None:
        """The OCR engine, made on first use (it loads two ONNX models), or None when off."""
        if not self.s.scoring.text_every:
            return None
        with self._ocr_lock:
            if self._ocr is None:
                self._ocr = text.Ocr.from_settings(self.s.scoring)
        return self._ocr

    def keywords(self, tenant: str | None) -> list[str]:
        return self.s.scoring.tenant_keywords.get(tenant or "", [])

    def image(
        self, data: bytes, tenant: str | None = None, channel: str | None = None,
        cancel: threading.Event | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """Everything the live scorer finds in one image, and the policy's decision on it."""
        img = decode_image(data, self.s.scoring.max_image_pixels)
        _stop_if(cancel)
        h, q = pdq.compute_still(img)
        scored = self.scorer.score([img], [q])[0]  # quality-gated as live
        hits = self.index.match(h)
        _stop_if(cancel)
        found = self._text(img, tenant)
        scores = {**scored.scores, **text.spam_scores(found, self.s.scoring.text_score)}
        matches = [{"bank": x.bank.name, "entry_id": x.entry_id, "distance": x.distance,
                    "threshold": x.bank.threshold, "role": x.bank.role,
                    "category": x.bank.category} for x in hits]  # fmt: skip
        verdict = self.decide(scores, matches, tenant, channel)
        return {"scores": scores, "models": scored.models, "hash_matches": matches,
                "text": [f.model_dump() for f in found], "pdq": h, "pdq_quality": q,
                **_verdict(verdict, self.policy, tenant, channel),
                "detections": [d.model_dump() for d in scored.detections]}  # fmt: skip

    def text(
        self, line: str, tenant: str | None = None, channel: str | None = None
    ) -> dict[str, Any]:
        """The spam rules of the live OCR path on a text, and the policy's decision on it."""
        found = [f for f in text.rules(line, self.keywords(tenant)) if f.category]
        scores = text.spam_scores(found, self.s.scoring.text_score)
        verdict = self.decide(scores, [], tenant, channel)
        return {"scores": scores, "hash_matches": [], "text": [f.model_dump() for f in found],
                **_verdict(verdict, self.policy, tenant, channel)}  # fmt: skip

    def decide(
        self, scores: dict[str, float], matches: list[dict[str, Any]], tenant: str | None,
        channel: str | None,
    ) -> Verdict:  # fmt: skip
        hits = [HashHit(m["bank"], m["entry_id"], m["category"], m["role"]) for m in matches]
        return evaluate(self.policy, scores, hits, tenant, channel)

    def _text(self, img: np.ndarray, tenant: str | None) -> list[records.TextFinding]:
        if not self.s.scoring.text_every:
            return text.find_codes(img)  # the live scorer reads no text at all then
        sc = self.s.scoring
        return text.text_findings(img, self.ocr, self.keywords(tenant), sc.ocr_min_confidence)


def _stop_if(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise CheckCancelled("the client went away; check stopped")


def _verdict(v: Verdict, policy: Policy, tenant: str | None, channel: str | None) -> dict:
    return {"decision": v.action, "rationale": v.rationale, "red_line": v.red_line,
            "reasons": [{k: r[k] for k in ("category", "score", "verdict", "why", "rule")}
                        for r in v.reasons],
            "policy": {"version": policy.version, "tenant": tenant, "channel": channel}}  # fmt: skip


def load_policy(settings: Settings) -> Policy:
    """The policy files of the streams worker (`streams.policy_dir`, else the shipped default)."""
    tax = taxonomy.load(settings.taxonomy_file)
    return load_dir(Path(settings.streams.policy_dir), tax)
