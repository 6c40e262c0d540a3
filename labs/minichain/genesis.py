"""The genesis file: everything every node of one chain must agree on before block 1.

Kept as JSON (``genesis.json``) because learners read and edit it. Validation errors name the field
and say what to put there, so a broken genesis costs one line of output, never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator

from .chainmaker.chainconfig import ChainMakerConfig

IdentityMode = Literal["permissionedWithCert", "permissionedWithKey"]


class GenesisError(ValueError):
    """The genesis file cannot be used; the message says what to fix."""


class Account(BaseModel):
    """A pre-funded account (and optionally pre-deployed code and storage)."""

    balance: int = 0
    nonce: int = 0
    code: str = "0x"
    storage: dict[str, str] = Field(default_factory=dict)

    @field_validator("balance", "nonce", mode="before")
    @classmethod
    def _int_or_hex(cls, v: Any) -> int:
        if isinstance(v, str):
            return int(v, 16) if v.startswith("0x") else int(v)
        return v


class Validator(BaseModel):
    """One consensus member: its id, Ed25519 public key and, in cert mode, its X.509 certificate."""

    id: str
    public_key: str = Field(description="hex of the raw 32-byte Ed25519 public key")
    cert: str | None = Field(default=None, description="PEM certificate from the consortium CA")


class ConsensusConfig(BaseModel):
    engine: str = "tbft"
    params: dict[str, Any] = Field(default_factory=dict)


class Genesis(BaseModel):
    chain_id: int = Field(default=1337, gt=0)
    chain_name: str = "minichain"
    timestamp: int = Field(default=1_700_000_000, ge=0)
    gas_limit: int = Field(default=30_000_000, ge=5000)
    base_fee_per_gas: int = Field(default=1_000_000_000, ge=0)
    consensus: ConsensusConfig = Field(default_factory=ConsensusConfig)
    identity_mode: IdentityMode = "permissionedWithCert"
    ca_cert: str | None = Field(default=None, description="PEM of the consortium CA (cert mode)")
    validators: list[Validator]
    alloc: dict[str, Account] = Field(default_factory=dict)
    chainmaker: ChainMakerConfig | None = Field(
        default=None, description="ChainMaker's chain configuration (orgs, trust roots, policies)"
    )

    @field_validator("alloc")
    @classmethod
    def _addresses(cls, alloc: dict[str, Account]) -> dict[str, Account]:
        for address in alloc:
            body = address[2:] if address.startswith("0x") else address
            if len(body) != 40 or any(c not in "0123456789abcdefABCDEF" for c in body):
                raise ValueError(f"alloc key {address!r} is not a 20-byte hex address")
        return alloc

    @field_validator("validators")
    @classmethod
    def _some_validators(cls, validators: list[Validator]) -> list[Validator]:
        if not validators:
            raise ValueError("list at least one validator")
        ids = [v.id for v in validators]
        if len(set(ids)) != len(ids):
            raise ValueError("validator ids must be unique")
        return validators

    def check_identity(self) -> None:
        """Cert mode needs the CA and a certificate per validator; say which is missing."""
        if self.identity_mode == "permissionedWithCert":
            if not self.ca_cert:
                raise GenesisError(
                    "genesis: identity_mode is permissionedWithCert but ca_cert is empty; "
                    "run `academy chain init` or set identity_mode to permissionedWithKey"
                )
            for v in self.validators:
                if not v.cert:
                    raise GenesisError(
                        f"genesis: validator {v.id} has no cert; issue one from the CA "
                        "(`academy chain init` does) or use identity_mode permissionedWithKey"
                    )

    def hash_input(self) -> bytes:
        """Canonical bytes of the genesis (all nodes must hash them equally)."""
        document = self.model_dump(mode="json")
        if document.get("chainmaker") is None:  # chains from before it keep their genesis hash
            document.pop("chainmaker", None)
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def load_genesis(path: Path) -> Genesis:
    """Read and validate ``genesis.json``; raise GenesisError with one line saying what to fix."""
    if not path.exists():
        raise GenesisError(f"no genesis file at {path}: run `academy chain init --data DIR` first")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise GenesisError(
            f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}"
        ) from exc
    try:
        genesis = Genesis.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise GenesisError(f"{path}: field {where}: {first['msg']}") from exc
    genesis.check_identity()
    return genesis


def save_genesis(genesis: Genesis, path: Path) -> None:
    path.write_text(json.dumps(genesis.model_dump(mode="json"), indent=2) + "\n")
