"""`framewatch bank ...` end to end against the real Redis."""

from __future__ import annotations

import json

import cv2
import pytest

from framewatch.cli import main
from framewatch.settings import Settings
from tests.scoring.conftest import frames


@pytest.fixture
def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FRAMEWATCH_REDIS_URL", settings.redis_url.get_secret_value())
    monkeypatch.setenv("FRAMEWATCH_REDIS_PREFIX", settings.redis_prefix)
    return main


def test_bank_add_list_match_remove(cli, capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    img = frames("chair-orig-22-sd-bar.mp4", count=1)[0]
    cv2.imwrite(str(tmp_path / "chair.png"), img)
    cv2.imwrite(str(tmp_path / "copy.jpg"), cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2)))
    assert cli(["bank", "add", "ncii", "--image", str(tmp_path / "chair.png"), "--role",
                "red_line", "--category", "known_bad.ncii_bank"]) == 0  # fmt: skip
    assert cli(["bank", "add", "ncii", "--hash", "ab" * 32]) == 0
    capsys.readouterr()
    assert cli(["bank", "list", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["name"], row["role"], row["entries"], row["threshold"]) == (
        "ncii",
        "red_line",
        2,
        31,
    )
    assert cli(["bank", "match", "--image", str(tmp_path / "copy.jpg"), "--json"]) == 0
    (hit,) = json.loads(capsys.readouterr().out)
    assert (hit["entry_id"], hit["category"]) == ("chair.png", "known_bad.ncii_bank")
    assert cli(["bank", "remove", "ncii", "--entry", "chair.png"]) == 0
    assert cli(["bank", "match", "--image", str(tmp_path / "copy.jpg"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.split("\n", 1)[1]) == []
    assert cli(["bank", "add", "new", "--hash", "00" * 32]) == 2  # a new bank needs --category
