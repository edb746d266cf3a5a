"""Sections of a user's data export held by apps the exporter does not import (the legacy records).

`mailhelper.data_export` writes mail, tags, rules and settings itself. An app that keeps more of a
user's data and must stay unimported (legacy) registers a section here from its AppConfig.ready():
a file name in the zip and a function of the user that returns the JSON-able content, or None when
the user has nothing of that kind (then no file is written).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Section = Callable[[Any], Any]
_sections: dict[str, Section] = {}


def register(filename: str, section: Section) -> None:
    _sections[filename] = section


def sections() -> dict[str, Section]:
    return dict(_sections)
