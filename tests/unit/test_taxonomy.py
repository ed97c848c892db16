from __future__ import annotations

from pathlib import Path

import pytest

from framewatch import taxonomy
from framewatch.errors import TaxonomyError


def test_builtin_tree_has_levels_and_red_lines() -> None:
    tax = taxonomy.load()
    assert "sexual.explicit.exposed_genitalia" in tax
    assert tax.get("sexual.explicit.exposed_genitalia").level == 3
    assert tax.is_red_line("child_safety.csam")  # inherited from L1
    assert tax.is_red_line("known_bad.csam_bank")
    assert not tax.is_red_line("known_bad.review_bank")
    assert not tax.is_red_line("sexual.explicit")
    assert tax.ancestors("violence.gore.blood") == [
        "violence.gore.blood",
        "violence.gore",
        "violence",
    ]
    assert tax.dsa_category("child_safety.grooming") == "STATEMENT_CATEGORY_PROTECTION_OF_MINORS"


def test_unknown_path_is_rejected_with_hint() -> None:
    with pytest.raises(TaxonomyError, match=r"unknown category 'sexual.explict'.*sexual.explicit"):
        taxonomy.load().validate("sexual.explict")


def test_extend_from_file(tmp_path: Path) -> None:
    f = tmp_path / "tax.yaml"
    f.write_text(
        "gambling:\n  dsa: STATEMENT_CATEGORY_SCAMS_AND_FRAUD\n  children: [casino]\n"
        "violence:\n  children:\n    weapons:\n      red_line: true\n"
    )
    tax = taxonomy.load(f)
    assert "gambling.casino" in tax
    # a new DSA category drops the node's built-in keywords (they belong to the old category)
    assert tax.dsa_category("gambling.casino") == "STATEMENT_CATEGORY_SCAMS_AND_FRAUD"
    assert tax.dsa_keywords("gambling.casino") == []
    assert tax.is_red_line("violence.weapons.firearm")
    assert not tax.is_red_line("violence.gore")


@pytest.mark.parametrize(
    "text",
    [
        "a: [B]",
        "x:\n  children:\n    y:\n      children:\n        z:\n          children: [w]",
        "a: 3",
        "a:\n  colour: red",
        "a: [b",
    ],
)
def test_bad_taxonomy_file_is_refused(tmp_path: Path, text: str) -> None:
    f = tmp_path / "tax.yaml"
    f.write_text(text)
    with pytest.raises(TaxonomyError):
        taxonomy.load(f)


def test_builtin_nodes_of_the_imagenet_detector_report_as_the_dsa_database_expects() -> None:
    tax = taxonomy.load()
    assert tax.dsa_category("alcohol.beverage") == "STATEMENT_CATEGORY_OTHER_VIOLATION_TC"
    assert tax.dsa_keywords("alcohol.beverage") == ["KEYWORD_AGE_SPECIFIC_RESTRICTIONS"]
    assert tax.dsa_keywords("gambling.casino") == [
        "KEYWORD_GOODS_SERVICES_NOT_PERMITTED",
        "KEYWORD_AGE_SPECIFIC_RESTRICTIONS",
    ]
    para = "drugs.paraphernalia"
    assert tax.dsa_category(para) == "STATEMENT_CATEGORY_UNSAFE_AND_PROHIBITED_PRODUCTS"
    assert tax.dsa_keywords(para) == ["KEYWORD_PROHIBITED_PRODUCTS"]
    assert tax.dsa_category("violence.weapons.blade") == "STATEMENT_CATEGORY_VIOLENCE"
    assert not any(tax.is_red_line(p) for p in ("alcohol", "gambling", para))
