"""Course and lab specs: ``course.toml`` and ``lab.toml`` read into pydantic models.

A course folder is an nbgrader course root with two small TOML files beside the notebooks::

    courses/<course_id>/course.toml                         what the course is, how it is completed
    courses/<course_id>/source/<lab_id>/<lab_id>.ipynb      nbgrader source notebook
    courses/<course_id>/source/<lab_id>/lab.toml            the chain the lab needs
    courses/<course_id>/source/<lab_id>/README.md           a short summary
    courses/<course_id>/source/<lab_id>/<lab_id>.zh-CN.ipynb the lab in Chinese (optional; see
                                                            :mod:`academy.courses.languages`)

Loading never stops at the first problem: an instructor fixing a course wants every problem at
once, each on one line naming the file and the field (``CourseError.problems``). The platform's
course import and ``academy course check`` both read courses through :func:`load_course`.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import ErrorDetails

from grader.language import LANGUAGES, is_translation, translation_path

ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
"""Course and lab ids: lower-case words joined by hyphens (they become folder and URL names)."""

FAULTS = ("stopValidator", "partition", "setByzantine")
CONSENSUS = ("solo", "raft", "tbft")
IDENTITY = ("permissionedWithCert", "permissionedWithKey")


class CourseError(ValueError):
    """A course or lab spec is broken. ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Id = Annotated[str, Field(pattern=ID_PATTERN)]
Text = Annotated[str, Field(min_length=1)]


class CourseInfo(_Strict):
    id: Id
    title: Text
    title_zh: Text
    summary: Text
    summary_zh: Text
    level: Text
    """The national occupational standard level the course maps to."""
    order: int = Field(ge=0)
    kind: Literal["course", "capstone"] = "course"


class Completion(_Strict):
    rule: Literal["all_labs_at_least"] = "all_labs_at_least"
    """A learner completes the course when every lab scores at least ``threshold`` of its points."""
    threshold: float = Field(default=0.6, gt=0.0, le=1.0)


class LabRef(_Strict):
    id: Id
    title: Text
    title_zh: Text
    required: list[Annotated[str, Field(min_length=1)]] = []
    """Test cells (grade ids) a completion needs at full marks whatever the percentage: the lab's
    core skill, which a threshold alone would let a learner skip."""


class CourseSpec(_Strict):
    course: CourseInfo
    completion: Completion = Completion()
    labs: list[LabRef] = Field(min_length=1)


class LabInfo(_Strict):
    id: Id
    title: Text
    title_zh: str | None = None


class Preload(_Strict):
    contract: Text
    """Source file relative to the lab folder (``.sol`` or ``.vy``)."""
    name: Text
    args: list[Any] = Field(default_factory=list)


class ChainSpec(_Strict):
    validators: int = Field(default=4, ge=1, le=16)
    consensus: Literal["solo", "raft", "tbft"] = "tbft"
    identity: Literal["permissionedWithCert", "permissionedWithKey"] = "permissionedWithCert"
    faults: list[Literal["stopValidator", "partition", "setByzantine"]] = Field(
        default_factory=list
    )
    preload: list[Preload] = Field(default_factory=list)

    @field_validator("faults")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("lists a fault twice")
        return v


class LabSpec(_Strict):
    lab: LabInfo
    chain: ChainSpec | None = None


class Lab(BaseModel):
    """One lab as loaded: its spec and where its files are."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    ref: LabRef
    spec: LabSpec
    folder: Path

    @property
    def id(self) -> str:
        return self.ref.id

    @property
    def notebooks(self) -> list[Path]:
        """The lab's notebooks in English; a translation is another version of one of them
        (:meth:`version`), not another notebook."""
        return sorted(
            p
            for p in self.folder.glob("*.ipynb")
            if not p.name.startswith(".") and not is_translation(p)
        )

    def version(self, notebook: Path, language: str) -> Path | None:
        """The ``language`` version of one of :attr:`notebooks`, if the lab has it."""
        path = translation_path(notebook, language)
        return path if path.is_file() else None

    @property
    def languages(self) -> list[str]:
        """The languages every notebook of the lab is written in."""
        return [
            lang
            for lang in LANGUAGES
            if self.notebooks and all(self.version(nb, lang) for nb in self.notebooks)
        ]


class Course(BaseModel):
    """A loaded course: its spec, its folder, its labs in order."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    spec: CourseSpec
    root: Path
    labs: list[Lab]

    @property
    def id(self) -> str:
        return self.spec.course.id


def _field_path(loc: tuple[Any, ...], data: Any) -> str:
    """``labs[2] (merkle).title_zh`` from pydantic's location tuple, naming list items by id."""
    out = ""
    node = data
    for part in loc:
        if isinstance(part, int):
            item = node[part] if isinstance(node, list) and part < len(node) else None
            ident = item.get("id") if isinstance(item, dict) else None
            out += f"[{part}]" + (f" ({ident})" if ident else "")
            node = item
        else:
            out += ("." if out else "") + str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out or "(top level)"


def _describe(err: ErrorDetails) -> str:
    kind = err.get("type", "")
    if kind == "missing":
        return "missing: add it"
    if kind == "extra_forbidden":
        return "unknown field: remove it or check its spelling"
    if kind == "string_pattern_mismatch":
        return "must be lower-case letters, digits and hyphens (e.g. merkle-trees)"
    msg = str(err.get("msg", "invalid"))
    return msg[0].lower() + msg[1:] if msg else "invalid"


def _read_toml(path: Path, problems: list[str]) -> dict[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        problems.append(f"{path}: missing file")
        return None
    except OSError as exc:
        problems.append(f"{path}: cannot read ({exc.strerror})")
        return None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        problems.append(f"{path}: not valid TOML ({exc})")
        return None


Model = TypeVar("Model", bound=_Strict)


def _validate(
    model: type[Model], data: dict[str, Any], path: Path, problems: list[str]
) -> Model | None:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        seen = set()
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
            line = f"{path}: {_field_path(loc, data)}: {_describe(err)}"
            if line not in seen:
                seen.add(line)
                problems.append(line)
        return None


def load_lab_spec(path: Path | str) -> LabSpec:
    """Read one ``lab.toml``; CourseError lists every problem."""
    path = Path(path)
    problems: list[str] = []
    data = _read_toml(path, problems)
    spec = _validate(LabSpec, data, path, problems) if data is not None else None
    if spec is not None:
        problems += _lab_problems(spec, path.parent, path)
    if problems:
        raise CourseError(problems)
    assert spec is not None  # each way to no spec added a problem
    return spec


def _lab_problems(spec: LabSpec, folder: Path, path: Path) -> list[str]:
    problems: list[str] = []
    chain = spec.chain
    if chain is None:
        return problems
    if chain.consensus == "solo" and chain.validators != 1:
        problems.append(f"{path}: chain.validators: solo consensus runs exactly 1 validator")
    if "partition" in chain.faults and chain.validators < 2:
        problems.append(f"{path}: chain.faults: a partition needs at least 2 validators")
    if chain.consensus == "tbft" and "setByzantine" in chain.faults and chain.validators < 4:
        problems.append(
            f"{path}: chain.validators: tolerating a byzantine validator takes 3f+1 >= 4"
        )
    for i, pre in enumerate(chain.preload):
        src = folder / pre.contract
        if Path(pre.contract).is_absolute() or ".." in Path(pre.contract).parts:
            problems.append(f"{path}: chain.preload[{i}].contract: give a path inside the lab")
        elif not src.is_file():
            problems.append(f"{path}: chain.preload[{i}].contract: {src} does not exist")
        elif src.suffix not in (".sol", ".vy"):
            problems.append(f"{path}: chain.preload[{i}].contract: use a .sol or .vy file")
    return problems


def load_course(root: Path | str) -> Course:
    """Read a course folder: ``course.toml``, then every lab it lists; CourseError lists every
    problem found (missing files, unknown or missing fields, ids that do not match folders)."""
    root = Path(root)
    problems: list[str] = []
    if not root.is_dir():
        raise CourseError([f"{root}: no such course folder"])
    path = root / "course.toml"
    data = _read_toml(path, problems)
    spec: CourseSpec | None = None
    if data is not None:
        spec = _validate(CourseSpec, data, path, problems)
    if spec is None:
        # Still look at every lab the file lists, so one run shows every problem.
        raw = data.get("labs") if isinstance(data, dict) else None
        for entry in raw if isinstance(raw, list) else []:
            lab_id = entry.get("id") if isinstance(entry, dict) else None
            if isinstance(lab_id, str) and slug_ok(lab_id):
                ref = LabRef.model_construct(id=lab_id, title=lab_id, title_zh=lab_id)
                _load_lab(root, ref, f"{path}: labs ({lab_id})", problems)
        raise CourseError(problems)
    if spec.course.id != root.name:
        problems.append(
            f"{path}: course.id: {spec.course.id!r} must equal the folder name {root.name!r}"
        )
    labs: list[Lab] = []
    seen: set[str] = set()
    for i, ref in enumerate(spec.labs):
        where = f"{path}: labs[{i}] ({ref.id})"
        if ref.id in seen:
            problems.append(f"{where}: id listed twice")
            continue
        seen.add(ref.id)
        lab = _load_lab(root, ref, where, problems)
        if lab is not None:
            labs.append(lab)
    listed = {ref.id for ref in spec.labs}
    source = root / "source"
    if source.is_dir():
        for extra in sorted(p for p in source.iterdir() if p.is_dir()):
            if extra.name not in listed and not extra.name.startswith("."):
                problems.append(f"{path}: labs: {extra.name} is in source/ but not listed")
    if problems:
        raise CourseError(problems)
    return Course(spec=spec, root=root, labs=labs)


def _load_lab(root: Path, ref: LabRef, where: str, problems: list[str]) -> Lab | None:
    folder = root / "source" / ref.id
    if not folder.is_dir():
        problems.append(f"{where}: no lab folder {folder}")
        return None
    nb = folder / f"{ref.id}.ipynb"
    if not nb.is_file():
        problems.append(f"{folder}: missing notebook {nb.name}")
    if not (folder / "README.md").is_file():
        problems.append(f"{folder}: missing README.md (a short summary of the lab)")
    try:
        lab_spec = load_lab_spec(folder / "lab.toml")
    except CourseError as exc:
        problems += exc.problems
        return None
    if lab_spec.lab.id != ref.id:
        problems.append(f"{folder / 'lab.toml'}: lab.id: {lab_spec.lab.id!r} must equal {ref.id!r}")
    return Lab(ref=ref, spec=lab_spec, folder=folder)


def find_courses(root: Path | str) -> list[Path]:
    """Course folders under ``root`` (or ``root`` itself when it holds a course.toml)."""
    root = Path(root)
    if (root / "course.toml").is_file():
        return [root]
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if (p / "course.toml").is_file())


def slug_ok(value: str) -> bool:
    return re.match(ID_PATTERN, value) is not None
