"""The language a learner works in: the pages, the lab notebooks they are given, and so the
grader's messages on what they hand in.

A person may choose it (``user.language``); until they do it follows the browser's
``Accept-Language``, as the pages always have. A released lab holds every version of each file
(``sha256.ipynb`` beside ``sha256.zh-CN.ipynb``, ``README.md`` beside ``README.zh-CN.md``), and
a learner is given the versions in their language, the English one where there is no other.
"""

from __future__ import annotations

import re
from pathlib import Path

from sqlmodel import Session

from grader.language import CHINESE, ENGLISH, LANGUAGES, TRANSLATIONS, normalise

from ..models import User
from .errors import Invalid

_VERSION = re.compile(
    r"^(?P<stem>.+)\.(?P<lang>[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})+)(?P<ext>\.[^.]+)$"
)


def page_language(language: str) -> str:
    """The pages' code for a language (``zh`` for ``zh-CN``, see :mod:`academy.pages.i18n`)."""
    return "zh" if language == CHINESE else "en"


def chosen_language(user: User | None, accept_language: str | None) -> str:
    """``en`` or ``zh-CN``: the user's choice, else the browser's preference, else English."""
    from ..pages.i18n import pick_language

    chosen = normalise(user.language) if user is not None else None
    if chosen is not None:
        return chosen
    return CHINESE if pick_language(accept_language) == "zh" else ENGLISH


def set_language(session: Session, user: User, language: str | None) -> str | None:
    """Store ``language`` as the user's choice (None: follow the browser again); Invalid for a
    language no lab is written in."""
    if language is None or language == "":
        user.language = None
    else:
        chosen = normalise(language)
        if chosen is None:
            raise Invalid(
                f"language {language!r} is not offered: choose one of {', '.join(LANGUAGES)}, "
                "or null to follow the browser"
            )
        user.language = chosen
    session.add(user)
    session.flush()
    return user.language


def version_of(path: Path) -> tuple[Path, str]:
    """``(the English file it is a version of, its language)``: ``README.zh-CN.md`` is
    ``(README.md, zh-CN)``; a file that names no language of ours is its own English version."""
    m = _VERSION.match(path.name)
    if m and m["lang"] in TRANSLATIONS:
        return path.with_name(m["stem"] + m["ext"]), m["lang"]
    return path, ENGLISH


def files_in(files: list[Path], language: str) -> list[Path]:
    """The files a learner working in ``language`` is given: each file's version in that
    language where the release has it, else the English one; other languages left out."""
    have = {version_of(p) for p in files}
    chosen: list[Path] = []
    for path in files:
        english, lang = version_of(path)
        if lang == language or (lang == ENGLISH and (english, language) not in have):
            chosen.append(path)
    return chosen
