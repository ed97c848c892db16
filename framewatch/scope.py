"""The one key builder for everything a tenant owns: state keys, Kafka record keys, Redis keys.

A tenant is a platform; its stream and account ids are its own names, so two tenants may both
have ``acct-42`` and ``stream-1``. Every key of state (stream state, account ledger, hot marks,
score cache, ingest positions, the pull registry, review lookups) and every Kafka key of a
record about a stream or an account is ``key(tenant, id)``: ``"tenant/id"`` with each part
percent-encoded (``quote(part, safe="")``), so no id can spell another tenant's key (``/``,
``:`` and ``%`` inside an id are escaped) and common ids stay readable (``alpha/acct-42``).
"""

from __future__ import annotations

from typing import Protocol
from urllib.parse import quote, unquote

SEP = "/"


def key(tenant: str, *ids: str) -> str:
    """``tenant/id[/id...]``, each part escaped: the same ids of two tenants never meet."""
    return SEP.join(quote(p, safe="") for p in (tenant, *ids))


def split(scoped: str) -> tuple[str, ...]:
    """The parts of a key built by :func:`key` (tenant first)."""
    return tuple(unquote(p) for p in scoped.split(SEP))


class _Streamed(Protocol):
    tenant: str
    stream_id: str


class _Accounted(Protocol):
    tenant: str
    account_id: str


def stream(rec: _Streamed) -> str:
    """The key of a record's stream (frames, scores, decisions, reviews, alerts)."""
    return key(rec.tenant, rec.stream_id)


def account(rec: _Accounted) -> str:
    """The key of a record's account (decisions re-keyed for the ledger, enforcement)."""
    return key(rec.tenant, rec.account_id)
