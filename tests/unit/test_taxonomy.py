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
