"""The certificate itself: an Open Badges 3.0 ``OpenBadgeCredential`` on the VC Data Model 2.0.

What a course completion says, in the standard's own terms: the issuer ``Profile`` (the
institution), the ``AchievementSubject`` (the learner, identified by a salted hash of their login,
never the login itself) and its ``Achievement`` (the course: name, description, ``criteria``, and
an ``alignment`` to the national standard level it maps to), ``evidence`` summarising the learner's
lab grades, ``validFrom`` / ``validUntil`` and ``credentialStatus`` entries.

The JSON-LD contexts are pinned: the files ship with this package (``data/contexts``), byte for
byte as their publishers serve them (the W3C's VC 2.0 and examples contexts, 1EdTech's Open Badges
3.0.3 context, academy's own, which academy also serves at ``/api/credentials/contexts/v1``), and
nothing is ever fetched, so a context changing on the web cannot change what a signature means.
Two signatures cover each credential: eddsa-jcs-2022 over the JSON itself and eddsa-rdfc-2022
over its RDF graph under these contexts (:mod:`.proofs`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import secrets
import uuid
from importlib import resources
from typing import Any

import fastjsonschema

VC_V2_CONTEXT = "https://www.w3.org/ns/credentials/v2"
OB_V3_CONTEXT = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
ACADEMY_CONTEXT = "https://w3id.org/chainacademy/credentials/v1"
EXAMPLES_CONTEXT = "https://www.w3.org/ns/credentials/examples/v2"
CONTEXTS = [VC_V2_CONTEXT, OB_V3_CONTEXT, ACADEMY_CONTEXT]

PINNED_CONTEXT_FILES = {
    VC_V2_CONTEXT: "credentials-v2.jsonld",
    OB_V3_CONTEXT: "ob-v3p0-context-3.0.3.json",
    ACADEMY_CONTEXT: "academy-credentials-v1.jsonld",
    EXAMPLES_CONTEXT: "credentials-examples-v2.jsonld",
}


@functools.cache
def pinned_context_bytes(url: str) -> bytes:
    """The shipped copy of a JSON-LD context, as published (KeyError for a context we do not
    pin). The tests hold each file by its SHA-256."""
    name = PINNED_CONTEXT_FILES[url]
    return resources.files("academy.credentials").joinpath("data", "contexts", name).read_bytes()


@functools.cache
def pinned_context(url: str) -> dict[str, Any]:
    """The shipped copy of a JSON-LD context, parsed (KeyError for a context we do not pin)."""
    return json.loads(pinned_context_bytes(url))


def new_credential_id() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def hashed_identity(identity: str, salt: str | None = None) -> dict[str, Any]:
    """An OB 3.0 ``IdentityObject`` that proves "this login" to whoever knows it, and nothing to
    anyone else (sha256 of identity + salt)."""
    salt = salt or secrets.token_hex(8)
    digest = hashlib.sha256((identity + salt).encode()).hexdigest()
    return {
        "type": "IdentityObject",
        "identityHash": f"sha256${digest}",
        "identityType": "identifier",
        "hashed": True,
        "salt": salt,
    }


def build_credential(
    *,
    issuer: dict[str, Any],
    subject_id: str,
    identity: str,
    achievement: dict[str, Any],
    evidence: list[dict[str, Any]],
    valid_from: str,
    valid_until: str | None = None,
    status: list[dict[str, Any]] | None = None,
    credential_id: str | None = None,
    salt: str | None = None,
) -> dict[str, Any]:
    """An unsigned OpenBadgeCredential.

    ``issuer``: ``{"id", "name", "url"?}``. ``achievement``: ``{"id", "name", "description",
    "criteria", "level"?, "framework"?, "course"?}``. ``evidence``: ``[{"name", "score", "max"}]``
    per lab. Scores are written as text ("8.5 / 10"): JSON floats have no single canonical form
    across implementations, text has."""
    ach: dict[str, Any] = {
        "id": achievement["id"],
        "type": ["Achievement"],
        "achievementType": "Certificate",
        "name": achievement["name"],
        "description": achievement["description"],
        "criteria": {"narrative": achievement["criteria"]},
    }
    if achievement.get("course"):
        ach["humanCode"] = achievement["course"]
    if achievement.get("level"):
        ach["alignment"] = [
            {
                "type": ["Alignment"],
                "targetName": achievement["level"],
                "targetFramework": achievement.get(
                    "framework", "National occupational skill standard"
                ),
                "targetType": "ext:Level",
                "targetUrl": achievement["id"],
            }
        ]
    doc: dict[str, Any] = {
        "@context": list(CONTEXTS),
        "id": credential_id or new_credential_id(),
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "name": achievement["name"],
        "issuer": {"type": ["Profile"], **issuer},
        "validFrom": valid_from,
        "credentialSubject": {
            "id": subject_id,
            "type": ["AchievementSubject"],
            "identifier": [hashed_identity(identity, salt)],
            "achievement": ach,
        },
    }
    if evidence:
        doc["evidence"] = [
            {
                "type": ["Evidence"],
                "name": e["name"],
                "description": f"{e['name']}: {_points(e['score'])} / {_points(e['max'])}",
                "narrative": e.get("narrative") or "graded automatically by the academy",
            }
            for e in evidence
        ]
    if valid_until:
        doc["validUntil"] = valid_until
    if status:
        doc["credentialStatus"] = status[0] if len(status) == 1 else list(status)
    return doc


def _points(value: Any) -> str:
    number = float(value)
    return f"{number:g}"


def issuer_id_of(document: dict[str, Any]) -> str | None:
    issuer = document.get("issuer")
    if isinstance(issuer, str):
        return issuer
    if isinstance(issuer, dict) and isinstance(issuer.get("id"), str):
        return issuer["id"]
    return None


def status_entries(document: dict[str, Any]) -> list[dict[str, Any]]:
    status = document.get("credentialStatus")
    if status is None:
        return []
    return [status] if isinstance(status, dict) else list(status)


# -- schema ---------------------------------------------------------------------------------------


@functools.cache
def _validator() -> Any:
    text = resources.files("academy.credentials").joinpath("data", "credential-schema.json")
    return fastjsonschema.compile(_inline_refs(json.loads(text.read_text())))


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with each local ``#/definitions/NAME`` reference replaced by its definition.
    Same rules; but fastjsonschema validates a referenced item through a call that formats its
    error path from ``locals()`` every time, which doubled the cost of every verification."""
    definitions = schema.get("definitions", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if len(node) == 1 and ref.startswith("#/definitions/"):
                return inline(definitions[ref.removeprefix("#/definitions/")])
            return {k: inline(v) for k, v in node.items() if k != "definitions"}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    return inline(schema)


def schema_problem(document: Any) -> str | None:
    """Why ``document`` is not a VC 2.0 credential we can check (None when it is): required
    members, types, an OB 3.0 shape for OpenBadgeCredentials, only pinned contexts."""
    try:
        _validator()(document)
    except fastjsonschema.JsonSchemaValueException as exc:
        name, message = _closest(exc)
        where = name.replace("data.", "", 1) if name != "data" else "credential"
        return f"{where}: {message.replace(name + ' ', '', 1)}"
    for ctx in document["@context"]:
        if isinstance(ctx, str) and ctx not in PINNED_CONTEXT_FILES:
            return f"@context {ctx!r} is not one of the pinned contexts (no context is fetched)"
    if "OpenBadgeCredential" in document["type"] and OB_V3_CONTEXT not in document["@context"]:
        return f"an OpenBadgeCredential must use the Open Badges context {OB_V3_CONTEXT}"
    return None


def _closest(exc: fastjsonschema.JsonSchemaValueException) -> tuple[str, str]:
    """(path, message) of a schema failure. When no alternative of an ``anyOf`` fits, says what
    is wrong with the alternative of the value's own type ("credentialStatus[0].type must be
    ...") rather than only that no alternative fits."""
    name = exc.name or "data"  # fastjsonschema names the document's root "data"
    if exc.rule == "anyOf":
        for branch in exc.definition["anyOf"]:
            try:
                _branch_validator(json.dumps(branch))(exc.value)
            except fastjsonschema.JsonSchemaValueException as inner:
                if not (inner.name == "data" and inner.rule == "type"):
                    return _closest_in(name, inner)
        kinds = " or ".join(str(b.get("type")) for b in exc.definition["anyOf"])
        return name, f"{name} must be {kinds}"
    return name, exc.message


def _closest_in(prefix: str, inner: fastjsonschema.JsonSchemaValueException) -> tuple[str, str]:
    name, message = _closest(inner)
    full = prefix + name.removeprefix("data")
    return full, message.replace(name, full, 1)


@functools.cache
def _branch_validator(branch: str) -> Any:
    return fastjsonschema.compile(json.loads(branch))
