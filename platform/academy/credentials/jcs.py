"""RFC 8785 JSON Canonicalization Scheme (JCS): the bytes a credential's signature covers.

eddsa-jcs-2022 signs the SHA-256 of the JCS form of a document, so issuer and verifier must
produce the very same bytes from equal JSON. The reference implementation here is the `rfc8785`
package (Trail of Bits, pure Python, every rule of the RFC). It costs about half a millisecond per
credential, which alone would cap issuing far below the platform's goal, so for the values our own
documents are made of (strings, safe integers, booleans, null, lists, objects) we let orjson write
the same bytes: sorted keys, no whitespace, the same string escapes. Whatever could
differ goes to `rfc8785`: any float (ECMAScript number formatting), integers outside
+/-(2**53 - 1) (rejected, as JCS demands), keys whose UTF-16 order may differ from code point
order (a key with a character at or above U+E000), strings orjson refuses (lone surrogates) and
non-JSON types. The tests hold the two to equal output on generated JSON.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
import rfc8785

MAX_SAFE_INTEGER = 2**53 - 1
MAX_DOCUMENT_BYTES = 1024 * 1024
"""The largest JSON document a verifier reads (a credential is a few KiB, a status list 20)."""
MAX_DEPTH = 64
"""The deepest nesting of arrays and objects a verifier reads (credentials nest about 6 deep).
Parsing, canonicalizing and schema checks recurse; this bound keeps them far from the
interpreter's recursion limit, whatever a library may have raised it to."""


class CanonicalizationError(ValueError):
    """The value has no JCS form (a float that is NaN or infinite, an unsafe integer, a non-JSON
    type); the message says which."""


_SCALARS = frozenset({str, bool, type(None)})


def _plain(value: Any) -> bool:
    """True when orjson's sorted output is exactly the JCS output for ``value``: only strings,
    safe integers, booleans, null, lists and objects, and no key where UTF-16 order and code point
    order may differ. Iterative with one C call per object for its keys: it runs for every
    credential issued and verified."""
    stack = [value]
    pop, push = stack.pop, stack.append
    scalars = _SCALARS
    while stack:
        v = pop()
        t = type(v)
        if t is dict:
            keys = "".join(v)  # TypeError for a non-str key: caught by the caller
            if not keys.isascii() and max(keys) >= "\ue000":
                return False
            items = v.values()
        elif t is list:
            items = v
        elif t is int:
            if not -MAX_SAFE_INTEGER <= v <= MAX_SAFE_INTEGER:
                return False
            continue
        else:
            return False
        for item in items:
            if type(item) not in scalars:
                push(item)
    return True


def canonicalize(value: Any) -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of a JSON value."""
    try:
        plain = type(value) in _SCALARS or _plain(value)
    except TypeError:
        plain = False
    if plain:
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except TypeError:  # lone surrogates: let the reference implementation decide
            pass
    try:
        return rfc8785.dumps(value)
    except rfc8785.CanonicalizationError as exc:
        raise CanonicalizationError(f"no canonical JSON form: {exc}") from exc
    except (TypeError, ValueError) as exc:
        raise CanonicalizationError(f"not a JSON value: {exc}") from exc


def reference_canonicalize(value: Any) -> bytes:
    """The `rfc8785` package alone (what :func:`canonicalize` must always agree with)."""
    return rfc8785.dumps(value)


class InputBoundError(CanonicalizationError):
    """A document larger or deeper than a verifier reads; the message says which bound."""


_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"')
_NOT_BRACKET = re.compile(rb"[^\[\]{}]++")
_OPENING = frozenset(b"[{")


def depth_of_text(data: bytes, limit: int = MAX_DEPTH) -> int:
    """The nesting depth of JSON text, counted without parsing (so without recursion): brackets
    outside strings. Stops counting past ``limit`` (and answers ``limit + 1``)."""
    brackets = _NOT_BRACKET.sub(b"", _STRING.sub(b"", data))
    depth = deepest = 0
    for byte in brackets:
        if byte in _OPENING:
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        else:
            depth -= 1
    return deepest


def depth_of(value: Any, limit: int = MAX_DEPTH) -> int:
    """The nesting depth of a parsed JSON value (a scalar is 0), walked without recursion; stops
    past ``limit``. It runs for every credential verified, so it looks at types only."""
    if not isinstance(value, (dict, list)):
        return 0
    leaves = _LEAVES
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        v, depth = pop()
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                break
        for item in v.values() if isinstance(v, dict) else v:
            if type(item) not in leaves and isinstance(item, (dict, list)):
                push((item, depth + 1))
    return deepest


_LEAVES = frozenset({str, int, float, bool, type(None)})


def bound_problem(value: Any, max_depth: int = MAX_DEPTH) -> str | None:
    """Why a parsed document is beyond what a verifier reads (too deep), or None."""
    if depth_of(value, max_depth) > max_depth:
        return f"JSON nested deeper than {max_depth} levels"
    return None


def loads(
    data: bytes | str, max_bytes: int = MAX_DOCUMENT_BYTES, max_depth: int = MAX_DEPTH
) -> Any:
    """Parse JSON text for verification: duplicate member names are refused, since JCS (and the
    signature over it) would silently keep only one of them. Text over ``max_bytes`` or nested
    deeper than ``max_depth`` is refused before any parsing (:class:`InputBoundError`): the
    parser recurses once per level."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    if len(raw) > max_bytes:
        raise InputBoundError(f"the document is larger than {max_bytes} bytes")
    if depth_of_text(raw, max_depth) > max_depth:
        raise InputBoundError(f"JSON nested deeper than {max_depth} levels")

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in pairs:
            if k in out:
                raise CanonicalizationError(f"duplicate member name {k!r} in JSON object")
            out[k] = v
        return out

    try:
        return json.loads(data, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as exc:
        raise CanonicalizationError(
            f"not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}"
        ) from exc
