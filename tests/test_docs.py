"""docs/architecture.md names files and modules so a newcomer can open them; when code moves,
the page must move with it, so every name it gives is checked against the repository."""

from __future__ import annotations

import ast
import os
import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "architecture.md"

#: Made at run time or install time, never kept in git: a name under one of these is not checked.
RUNTIME = (".state", "node_modules", ".venv", "~")
#: Where each import package lives in the repository.
PACKAGES = {"academy": "platform/academy", "grader": "grader", "labs": "labs"}
MODULE = re.compile(r"^(academy|grader|labs)(\.[A-Za-z_]\w*)*(\(\))?$")


@cache
def tracked() -> frozenset[str]:
    """Every file in the repository and every folder above one ("a/b/" for a folder)."""
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO), "ls-files"], capture_output=True, text=True, check=True
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):  # an unpacked copy without git
        out = [
            str(Path(root, name).relative_to(REPO))
            for root, dirs, files in os.walk(REPO)
            if not {".git", ".venv", "node_modules"} & set(Path(root).relative_to(REPO).parts)
            for name in files
        ]
    names = set(out)
    for path in out:
        parts = path.split("/")
        names.update("/".join(parts[:i]) + "/" for i in range(1, len(parts)))
    return frozenset(names)


def quoted(text: str) -> list[str]:
    """The contents of every `inline code` span (a span may wrap onto the next line)."""
    prose = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return [" ".join(span.split()) for span in re.findall(r"`([^`]+)`", prose)]


def path_like(token: str) -> bool:
    if any(c.isspace() for c in token) or token.startswith(("/", "http")) or "://" in token:
        return False  # an endpoint, a URL or a command
    return "/" in token or token.endswith((".py", ".md", ".toml"))


def path_missing(token: str) -> bool:
    """Whether a path the page names is absent from the repository.

    A bare file name (``lab.toml``) names a kind of file: some file of that name must exist.
    A placeholder (``courses/<id>/``) is checked up to where it starts.
    """
    if token.startswith(RUNTIME):
        return False
    files = tracked()
    if "/" not in token:
        return not any(name.rsplit("/", 1)[-1] == token for name in files)
    cut = min((i for i in (token.find(c) for c in "<{*") if i >= 0), default=len(token))
    stem = token[:cut]
    if cut < len(token):
        return not any(name.startswith(stem) for name in files)
    return stem not in files and f"{stem.rstrip('/')}/" not in files


def _top_level_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def module_missing(token: str) -> bool:
    """Whether a dotted name the page gives (``grader.jobs.run_job``) does not resolve: the
    longest prefix that is a module must exist, and the next part be defined at its top level."""
    parts = token.removesuffix("()").split(".")
    files = tracked()
    for i in range(len(parts), 0, -1):
        base = "/".join([PACKAGES[parts[0]], *parts[1:i]])
        for candidate in (f"{base}.py", f"{base}/__init__.py"):
            if candidate in files:
                if i == len(parts):
                    return False
                return parts[i] not in _top_level_names(REPO / candidate)
        if i > 1 and f"{base}/" in files and i == len(parts):
            return False  # a namespace folder
    return True


def test_the_checks_catch_a_name_that_is_not_there() -> None:
    assert path_missing("grader/no_such_module.py")
    assert path_missing("no_such_file.toml")
    assert path_missing("labs/no_such_folder/")
    assert module_missing("grader.autograde.no_such_function")
    assert module_missing("labs.no_such_module")
    assert not path_missing("grader/autograde.py")
    assert not path_missing("lab.toml")
    assert not module_missing("grader.jobs.run_job")
    assert not module_missing("labs.client.connect()")


def test_every_path_in_the_architecture_page_exists() -> None:
    paths = [t for t in quoted(DOC.read_text(encoding="utf-8")) if path_like(t)]
    assert len(paths) > 50, "the page names files; the extraction found almost none"
    missing = sorted({p for p in paths if path_missing(p)})
    assert not missing, f"docs/architecture.md names paths the repository lacks: {missing}"


def test_every_module_in_the_architecture_page_resolves() -> None:
    modules = [t for t in quoted(DOC.read_text(encoding="utf-8")) if MODULE.match(t)]
    assert modules, "the page names modules; the extraction found none"
    missing = sorted({m for m in modules if module_missing(m)})
    assert not missing, f"docs/architecture.md names modules that do not resolve: {missing}"


@pytest.mark.parametrize("doc", ["README.md", "docs/architecture.md"])
def test_relative_links_resolve(doc: str) -> None:
    path = REPO / doc
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text(encoding="utf-8"))
    local = [link for link in links if "://" not in link]
    broken = [link for link in local if not (path.parent / link).exists()]
    assert not broken, f"{doc} links to files that do not exist: {broken}"


def test_the_readme_points_at_the_architecture_in_the_repository() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "docs/architecture.md" in readme.split("\n## ", 1)[0]
    assert "DESIGN.md" not in readme
