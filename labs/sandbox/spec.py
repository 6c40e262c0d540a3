"""The ``[chain]`` table of a lab's ``lab.toml``: what mini-chain one learner gets for that lab.

A lab folder holds ``lab.toml`` next to its notebook; a lab that needs no chain omits the table and
gets ``LabSpec.chain is None``. Errors name the file and the field and say what to write there.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

FAULTS = ("stopValidator", "resumeValidator", "partition", "heal", "setByzantine")


class SpecError(ValueError):
    """A lab.toml that cannot be used; the message says what to fix."""


class Preload(BaseModel):
    """One contract deployed into every learner's chain before the learner sees it."""

    model_config = ConfigDict(extra="forbid")
    contract: str = Field(description="source file, relative to the lab folder (.sol or .vy)")
    name: str = Field(description="the contract's name (and the key learners look it up by)")
    args: list[Any] = Field(default_factory=list, description="constructor arguments")


class ChainSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    validators: int = Field(default=4, ge=1, le=16)
    consensus: str = "tbft"
    identity: Literal["permissionedWithCert", "permissionedWithKey"] = "permissionedWithCert"
    faults: list[str] = Field(default_factory=list)
    preload: list[Preload] = Field(default_factory=list)
    params: dict[str, float | int | str | bool] = Field(
        default_factory=dict,
        description="consensus parameters (e.g. tbft empty_block_interval: seconds between "
        "empty blocks; a larger value makes an idle chain cost less CPU)",
    )


class LabSpec(BaseModel):
    """A lab as the sandbox sees it: its id, its folder and its chain (or none)."""

    model_config = ConfigDict(extra="ignore")
    id: str
    title: str = ""
    folder: Path = Path(".")
    chain: ChainSpec | None = None

    @classmethod
    def from_toml(cls, path: str | Path) -> LabSpec:
        """Read ``lab.toml`` (``[lab]`` and the optional ``[chain]`` table)."""
        path = Path(path)
        try:
            raw = tomllib.loads(path.read_text())
        except OSError as exc:
            raise SpecError(f"{path}: cannot read it ({exc.strerror}): check the path") from None
        except tomllib.TOMLDecodeError as exc:
            raise SpecError(f"{path}: not valid TOML ({exc}): fix the syntax") from None
        lab = raw.get("lab", {})
        data = {
            "id": lab.get("id") or path.parent.name,
            "title": lab.get("title", ""),
            "folder": path.parent,
            "chain": raw.get("chain"),
        }
        try:
            spec = cls.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise SpecError(f"{path}: [{where}] {err['msg']}") from None
        spec.check()
        return spec

    def check(self) -> None:
        """Cross-field rules pydantic cannot say alone."""
        if self.chain is None:
            return
        c = self.chain
        if c.consensus == "solo" and c.validators != 1:
            raise SpecError(f"lab {self.id}: solo consensus runs exactly one validator")
        if c.consensus == "tbft" and c.validators < 4 and c.validators != 1:
            raise SpecError(f"lab {self.id}: tbft needs 3f+1 validators: use 1 or at least 4")
        unknown = [f for f in c.faults if f not in FAULTS]
        if unknown:
            raise SpecError(
                f"lab {self.id}: unknown fault switch(es) {unknown}: use {', '.join(FAULTS)}"
            )

    @classmethod
    def simple(
        cls, lab_id: str, validators: int = 4, consensus: str = "tbft", **chain: Any
    ) -> LabSpec:
        """A spec built in code (tests, the benchmark, a chain for the academy ledger)."""
        spec = cls(id=lab_id, chain=ChainSpec(validators=validators, consensus=consensus, **chain))
        spec.check()
        return spec
