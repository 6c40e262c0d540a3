"""The languages a lab is written in, and how a notebook and a grading run say which.

A lab is written once per language, cell for cell: beside ``<lab>.ipynb`` (English, the
reference every other version is checked against) lies ``<lab>.zh-CN.ipynb``. Both are the same
assignment (the same grade ids and points), so every place that lists an assignment's notebooks
lists the English ones and reaches a translation through :func:`translation_path`.

A translated notebook says its language in its metadata (``metadata.lang``, a BCP 47 tag, as
HTML's ``lang``): the released copy carries it to the learner and back in the submission, so the
platform grades a submission against the source in the same language. The checkers in
``grader.checks`` learn the language of a grading run from :data:`LANGUAGE_FILE` in the
sandbox's working directory (written by :func:`grader.jobs.grade_notebook`) or, in a learner's
own kernel, from the :data:`LANGUAGE_ENV` environment variable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ENGLISH = "en"
CHINESE = "zh-CN"
LANGUAGES = (ENGLISH, CHINESE)
"""Every language a lab may be written in; English first (it is the reference)."""
TRANSLATIONS = LANGUAGES[1:]

METADATA_KEY = "lang"
LANGUAGE_FILE = ".academy-language"
LANGUAGE_ENV = "ACADEMY_LANG"

_NAME = re.compile(r"^(?P<stem>.+?)\.(?P<lang>[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})+)$")


def normalise(tag: object) -> str | None:
    """The language of ``tag`` as one of :data:`LANGUAGES` (``zh``, ``zh_CN``, ``zh-Hans``,
    ``zh-cn`` are all ``zh-CN``; ``en-GB`` is ``en``), or None for anything else."""
    if not isinstance(tag, str):
        return None
    primary = tag.strip().replace("_", "-").split("-")[0].lower()
    if primary == "zh":
        return CHINESE
    if primary == "en":
        return ENGLISH
    return None


def split_name(path: Path | str) -> tuple[str, str]:
    """``(stem, language)`` of a notebook file: ``merkle.zh-CN.ipynb`` is ``("merkle", "zh-CN")``,
    ``merkle.ipynb`` is ``("merkle", "en")``. A suffix that is no language of ours is part of the
    stem."""
    stem = Path(path).name.removesuffix(".ipynb")
    m = _NAME.match(stem)
    if m and m["lang"] in TRANSLATIONS:
        return m["stem"], m["lang"]
    return stem, ENGLISH


def is_translation(path: Path | str) -> bool:
    """True for ``<stem>.<language>.ipynb`` with a language of :data:`TRANSLATIONS`."""
    return split_name(path)[1] != ENGLISH


def translation_path(path: Path, language: str) -> Path:
    """Where the ``language`` version of the English notebook ``path`` lies."""
    stem, _ = split_name(path)
    suffix = "" if language == ENGLISH else f".{language}"
    return path.with_name(f"{stem}{suffix}.ipynb")


def notebook_language(nb: Mapping[str, Any]) -> str:
    """The language a notebook says it is in (``metadata.lang``), English when it says nothing
    we know."""
    meta = nb.get("metadata") or {}
    return normalise(meta.get(METADATA_KEY) if isinstance(meta, Mapping) else None) or ENGLISH
