"""The OpenAI moderation mapping and the one-image policy evaluation (pure, no server)."""

from __future__ import annotations

import pytest

from framewatch import taxonomy
from framewatch.policy import HashHit, evaluate, load_dir
from scoring.openai_compat import InputError, parse, result


@pytest.fixture(scope="module")
def policy():  # type: ignore[no-untyped-def]
    return load_dir(None, taxonomy.load())


def checked(scores: dict[str, float], hits: list[dict] | None = None) -> dict:
    return {"scores": scores, "hash_matches": hits or []}


def test_image_signals_feed_only_the_categories_openai_scores_on_images(policy) -> None:  # type: ignore[no-untyped-def]
    r = result([("image", checked({"child_safety.csam": 0.7, "hate.symbols": 0.9}))],
               policy, None, None, {})  # fmt: skip
    assert r["categories"]["sexual"] is True and r["category_scores"]["sexual"] == 0.7
    assert r["categories"]["sexual/minors"] is False  # text only at OpenAI
    assert r["categories"]["hate"] is False and r["category_applied_input_types"]["hate"] == []
    assert r["flagged"] is True


def test_a_bank_match_flags_its_category_and_flagged_follows_categories(policy) -> None:  # type: ignore[no-untyped-def]
    hit = {"bank": "b", "entry_id": "e", "category": "known_bad.terror_bank", "role": "red_line"}
    r = result([("image", checked({}, [hit]))], policy, None, None, {})
    assert r["categories"]["violence"] is True and r["flagged"] is True
    quiet = result([("text", checked({"spam.url": 0.9}))], policy, None, None, {})
    assert quiet["flagged"] is False and not any(quiet["categories"].values())


def test_evaluate_blocks_red_lines_and_follows_tenant_rules(policy) -> None:  # type: ignore[no-untyped-def]
    v = evaluate(policy, {"child_safety.csam": 0.6})
    assert (v.action, v.red_line) == ("block", True)
    assert evaluate(policy, {"sexual.explicit": 0.5}).action == "review"
    assert evaluate(policy, {"sexual.explicit": 0.85}).action == "block"
    hit = HashHit("b", "e", "known_bad.review_bank", "review")
    assert evaluate(policy, {}, [hit]).action == "review"
    assert evaluate(policy, {"not.in.taxonomy": 1.0}).action == "allow"


@pytest.mark.parametrize(
    ("body", "inputs"),
    [({"input": "hi"}, 1), ({"input": ["a", "b"]}, 2),
     ({"input": [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {"url": "x"}}]}, 1)],
)  # fmt: skip
def test_inputs_are_counted_as_openai_counts_them(body: dict, inputs: int) -> None:
    assert len(parse(body, 8, 100)) == inputs


@pytest.mark.parametrize(
    "body", [{}, {"input": []}, {"input": ["a", {"type": "text", "text": "b"}]}, {"input": 5},
             {"input": "x" * 101}, {"input": ["a"] * 9}, {"input": "a", "model": 3}],
)  # fmt: skip
def test_bad_inputs_are_refused_with_the_param(body: dict) -> None:
    with pytest.raises(InputError) as e:
        parse(body, 8, 100)
    assert e.value.param in ("input", "model")


def test_unknown_tenants_and_channels_do_not_grow_the_rule_cache() -> None:
    policy = load_dir(None, taxonomy.load())
    for i in range(500):  # the check API takes ?channel= from anyone with a key
        evaluate(policy, {"sexual.explicit": 0.5}, tenant=f"t{i}", channel=f"c{i}")
    assert len(policy._cache) == 1
