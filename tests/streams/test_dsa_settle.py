"""How one batch is settled from the database's answers (no broker, no HTTP): the logic
`framewatch dsa submit` runs between a batch and its commit."""

from __future__ import annotations

from typing import Any

from streams.dsa_submit import Summary, _Item, _retry_after, settle


class Scripted:
    """A Client stand-in that answers from a script and records what it was sent."""

    def __init__(self, *answers: tuple[int, dict[str, Any]]) -> None:
        self.answers = list(answers)
        self.sent: list[list[str]] = []
        self.summary = Summary()

    async def post(self, statements: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
        self.sent.append([s["puid"] for s in statements])
        return self.answers.pop(0)


def items(*puids: str) -> list[_Item]:
    return [_Item(p, {"puid": p}, None) for p in puids]  # type: ignore[arg-type]


async def test_refused_and_duplicate_statements_are_taken_out_and_the_rest_resent() -> None:
    c = Scripted(
        (422, {"errors": {"statement_1": {"category": ["The selected category is invalid."]}}}),
        (422, {"errors": {"puid": ["not unique"], "existing_puids": ["c"]}}),
        (201, {"statements": []}),
    )
    out = await settle(c, items("a", "b", "c", "d"))  # type: ignore[arg-type]
    assert c.sent == [["a", "b", "c", "d"], ["a", "c", "d"], ["a", "d"]]
    assert [i.puid for i in out.accepted] == ["a", "d"]
    assert [i.puid for i in out.duplicates] == ["c"]
    [(item, why)] = out.rejected
    assert item.puid == "b" and "The selected category is invalid." in why


async def test_an_answer_that_names_no_statement_of_the_batch_ends_the_batch() -> None:
    # statement_7 does not exist in a batch of two: never loop, dead-letter both with the answer
    c = Scripted((422, {"errors": {"statement_7": {"x": ["?"]}}, "message": "odd"}))
    out = await settle(c, items("a", "b"))  # type: ignore[arg-type]
    assert len(c.sent) == 1 and [i.puid for i, _ in out.rejected] == ["a", "b"]
    assert "odd" in out.rejected[0][1]


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert _retry_after("3") == 3.0
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past: no wait
    assert _retry_after("soon") is None and _retry_after(None) is None
