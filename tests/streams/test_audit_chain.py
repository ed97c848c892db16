"""The audit hash chain without a broker: append, replay, verify, and every kind of tampering."""

from __future__ import annotations

import json

from framewatch import records
from framewatch.records import AuditEntry, ReviewOutcome
from streams import audit


def review(n: int) -> ReviewOutcome:
    return ReviewOutcome(
        review_id=f"r{n}",
        decision_id=f"d{n}",
        stream_id="s",
        account_id="a",
        outcome="upheld",
        resolved_at=1000.0 + n,
    )


def chain(n: int) -> list[bytes]:
    head = audit.Head()
    out = []
    for i in range(n):
        link = audit.append(head, review(i), src_offset=i, written_at=2000.0 + i)
        assert link is not None
        entry, head = link
        out.append(records.encode(entry))
    return out


def check(msgs: list[bytes], anchored: bool = True, window: int = 256) -> audit.Verifier:
    v = audit.Verifier(0, anchored=anchored, window=window)
    for off, raw in enumerate(msgs):
        if not v.feed(off, raw):
            break
    return v


def test_links_hash_the_previous_link_and_the_body() -> None:
    msgs = chain(3)
    e = [records.decode(m, expect=AuditEntry) for m in msgs]
    assert [x.seq for x in e] == [0, 1, 2]
    assert e[0].prev_hash == audit.GENESIS and e[1].prev_hash == e[0].hash
    body = {k: getattr(e[1], k) for k in audit.BODY_FIELDS}
    assert e[1].hash == audit.link_hash(e[0].hash, body)
    assert e[1].record_type == "review" and e[1].record["decision_id"] == "d1"
    v = check(msgs)
    assert v.broken is None and v.entries == 3 and v.head_seq == 2 and v.head_hash == e[2].hash


def test_replayed_inputs_are_skipped_and_a_rebuilt_link_is_identical() -> None:
    head = audit.Head()
    entry, head1 = audit.append(head, review(0), src_offset=7, written_at=5.0) or (None, None)
    assert audit.append(head1, review(0), src_offset=7, written_at=5.0) is None  # offset seen
    assert audit.append(head1, review(0), src_offset=3, written_at=5.0) is None
    # the head was lost in a crash before it was saved: the same input rebuilds the same link
    again, _ = audit.append(head, review(0), src_offset=7, written_at=5.0) or (None, None)
    assert again == entry and records.encode(again) == records.encode(entry)
    round_trip = audit.Head.from_json(json.loads(json.dumps(head1.to_json())))
    assert round_trip == head1


def test_exact_resend_is_accepted_and_counted() -> None:
    msgs = chain(3)
    v = check([msgs[0], msgs[1], msgs[1], msgs[2]])
    assert v.broken is None and v.entries == 3 and v.duplicates == 1


def test_a_resent_run_of_links_in_flight_is_accepted_and_counted() -> None:
    # links 3-7 were in the topic past the saved head (seq 2) when the worker died: the replay
    # rebuilds and re-sends them, then carries on with 8 and 9
    msgs = chain(10)
    v = check(msgs[:8] + msgs[3:8] + msgs[8:], window=8)
    assert v.broken is None and v.entries == 10 and v.duplicates == 5 and v.head_seq == 9
    # a producer retry of a batch (2-4) the broker had written, twice, and single re-sends
    v = check(msgs[:5] + msgs[2:5] + msgs[2:5] + [msgs[4]] + msgs[5:], window=8)
    assert v.broken is None and v.entries == 10 and v.duplicates == 7


def test_a_resend_beyond_the_window_breaks() -> None:
    # window 5: a worker with 5 links in flight past its saved head re-sends at most 3-7
    msgs = chain(10)
    v = check(msgs[:8] + msgs[3:8] + msgs[8:], window=5)
    assert v.broken is None and v.duplicates == 5
    v = check(msgs[:8] + msgs[3:8], window=4)  # seq 3 is 4 links behind the head (7)
    assert v.broken is not None and (v.broken.offset, v.broken.seq) == (8, 3)
    assert "more than 4 links back" in v.broken.reason


def test_a_tampered_copy_of_an_earlier_link_breaks() -> None:
    msgs = chain(6)
    # modified and re-hashed over the same prev_hash: a valid link, but not the one at seq 2
    body = json.loads(msgs[2])
    body["record"]["outcome"] = "overturned"
    body["hash"] = audit.link_hash(body["prev_hash"], {k: body[k] for k in audit.BODY_FIELDS})
    v = check([*msgs[:5], msgs[3], json.dumps(body).encode(), *msgs[5:]])
    assert v.broken is not None and (v.broken.offset, v.broken.seq) == (6, 2)
    assert "forked" in v.broken.reason
    assert (v.broken.expected, v.broken.found) == (json.loads(msgs[2])["hash"], body["hash"])
    assert v.duplicates == 1  # the exact re-send of seq 3 before it was fine


def test_a_gap_or_reorder_after_a_resent_run_still_breaks() -> None:
    msgs = chain(8)
    v = check(msgs[:5] + msgs[2:5] + msgs[6:])  # seq 5 never written
    assert v.broken is not None and (v.broken.offset, v.broken.seq) == (8, 6)
    assert "prev_hash" in v.broken.reason
    v = check(msgs[:5] + msgs[3:5] + [msgs[6], msgs[5], msgs[7]])  # 6 before 5
    assert v.broken is not None and (v.broken.offset, v.broken.seq) == (7, 6)


def test_modified_body_is_the_broken_link() -> None:
    msgs = chain(4)
    body = json.loads(msgs[2])
    body["record"]["outcome"] = "overturned"
    v = check([msgs[0], msgs[1], json.dumps(body).encode(), msgs[3]])
    assert v.broken is not None
    assert (v.broken.offset, v.broken.seq) == (2, 2) and "modified" in v.broken.reason
    assert v.broken.found == json.loads(msgs[2])["hash"]
    assert v.entries == 2  # stops at the first break


def test_rehashed_body_still_breaks_the_next_link() -> None:
    msgs = chain(4)
    body = json.loads(msgs[1])
    body["record"]["outcome"] = "overturned"
    body["hash"] = audit.link_hash(body["prev_hash"], {k: body[k] for k in audit.BODY_FIELDS})
    v = check([msgs[0], json.dumps(body).encode(), msgs[2], msgs[3]])
    assert v.broken is not None and (v.broken.offset, v.broken.seq) == (2, 2)
    assert "prev_hash" in v.broken.reason and v.broken.expected == body["hash"]


def test_deleted_link_is_reported() -> None:
    msgs = chain(4)
    v = check([msgs[0], msgs[1], msgs[3]])
    assert v.broken is not None and (v.broken.offset, v.broken.seq) == (2, 3)
    assert v.broken.expected == json.loads(msgs[1])["hash"]
    assert v.broken.found == json.loads(msgs[2])["hash"]


def test_reordered_links_are_reported() -> None:
    msgs = chain(4)
    v = check([msgs[0], msgs[2], msgs[1], msgs[3]])
    assert v.broken is not None and (v.broken.offset, v.broken.seq) == (1, 2)


def test_fork_with_the_same_seq_is_not_a_duplicate() -> None:
    msgs = chain(2)
    head = audit.Head(0, json.loads(msgs[0])["hash"], 0)
    other, _ = audit.append(head, review(9), src_offset=1, written_at=1.0) or (None, None)
    v = check([msgs[0], msgs[1], records.encode(other)])
    assert v.broken is not None and v.broken.offset == 2 and v.broken.seq == 1


def test_start_and_garbage() -> None:
    msgs = chain(3)
    v = check(msgs[1:])  # the first link is missing but the partition starts at offset 0
    assert v.broken is not None and "genesis" in v.broken.reason
    v = check(msgs[1:], anchored=False)  # retention removed it: trust the oldest link left
    assert v.broken is None and v.first_seq == 1 and v.entries == 2
    v = check([msgs[0], b"not json"])
    assert v.broken is not None and v.broken.reason == "unreadable entry"
    v = check([records.encode(review(1))])
    assert v.broken is not None and "not an audit entry" in v.broken.found
