"""RDF Dataset Canonicalization (RDFC-1.0) of credentials, through pyld, with no network at all.

eddsa-rdfc-2022 signs the canonical N-Quads of a document, not its JSON: what a signature covers
is then what the document *means* under its contexts. Three things make that safe here:

- contexts come only from the pinned copies shipped with this package
  (:data:`~.credential.PINNED_CONTEXT_FILES`); any other URL fails with
  :class:`ContextNotPinned`, so nobody can change a meaning by changing a web page, and a verifier
  never calls out to an address a document names;
- expansion is strict, as JSON-LD "safe mode" is: a term no context defines, or a type or id that
  expands to a relative IRI, is an error (:class:`StrictExpansionError`) rather than silently
  dropped, because a dropped term is a part of the document the signature would not cover;
- canonicalization is bounded: a document crafted as a "poison" graph (many blank nodes all
  alike) would make RDFC-1.0 try factorially many orderings, so the number of N-degree hashing
  steps is capped (:data:`MAX_N_DEGREE_STEPS`) and the document refused past it.
"""

from __future__ import annotations

import copy
import re
import threading
from typing import Any

from pyld import jsonld
from pyld.canon import URDNA2015

from .credential import PINNED_CONTEXT_FILES, pinned_context

MAX_N_DEGREE_STEPS = 1000
"""Hash N-Degree Quads calls allowed for one document. A credential with no blank node
identifiers of its own needs none; the W3C rdf-canon "poison" tests that must still compute need
a few hundred, the one that must be refused (a 10-clique) millions."""


_PYLD = threading.Lock()
"""pyld keeps its processed contexts in one process-wide LRU cache that is not safe to change
from two threads at once (academy verifies in a thread pool). Python runs one thread at a time
anyway, so holding a lock over a canonicalization costs no throughput."""


class RdfcError(ValueError):
    """The document has no canonical form we will sign or verify; the message says why."""


class ContextNotPinned(RdfcError):
    """A context URL that is not one of the pinned contexts (nothing is ever fetched)."""


class StrictExpansionError(RdfcError):
    """A term, type or id that no context defines: strict (safe mode) expansion refuses it."""


class CanonicalizationLimit(RdfcError):
    """Canonicalizing the document would take more work than :data:`MAX_N_DEGREE_STEPS`."""


def document_loader(url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """pyld's document loader: the pinned copy of a context, or :class:`ContextNotPinned`."""
    if url not in PINNED_CONTEXT_FILES:
        raise ContextNotPinned(
            f"the JSON-LD context {url!r} is not pinned; nothing is fetched, so a document "
            f"may only use {', '.join(sorted(PINNED_CONTEXT_FILES))}"
        )
    return {
        "contentType": "application/ld+json",
        "contextUrl": None,
        "documentUrl": url,
        "document": copy.deepcopy(pinned_context(url)),
        # "static": the copy never changes, so pyld may keep the context, and what it makes of
        # it, across documents (it caches a loaded context only when it carries a tag)
        "tag": "static",
    }


_PROCESSED_LIMIT = 4096
_processed: dict[tuple[Any, ...], tuple[Any, Any]] = {}
"""Active contexts made from (an active context, a local context), shared by every document.
pyld caches these too, but keys them by the active context's identity, and a type-scoped
context (the Open Badges context has one for nearly every node type) is applied to a fresh
copy every time, so its cache never hits and each node re-processes dozens of term
definitions. Processed contexts are never changed once made (pyld's own cache relies on
that), and every context comes from the pinned copies, so the same inputs give the same one."""


class _ContextReusingProcessor(jsonld.JsonLdProcessor):
    """pyld's processor with :data:`_processed` in front of its context processing."""

    def _process_context(
        self,
        active_ctx: Any,
        local_ctx: Any,
        options: dict[str, Any],
        override_protected: bool = False,
        propagate: bool = True,
        validate_scoped: bool = True,
        cycles: Any = None,
    ) -> Any:
        uid = active_ctx.get("_uuid") if hasattr(active_ctx, "get") else None
        urls = local_ctx if isinstance(local_ctx, list) else [local_ctx]
        if uid is None or cycles:
            local: Any = None
        elif all(isinstance(u, str) for u in urls):
            local = ("urls", *urls)
        elif hasattr(local_ctx, "items"):
            local = ("object", id(local_ctx))  # pinned contexts' objects live as long as the cache
        else:
            local = None
        if local is None:
            return super()._process_context(active_ctx, local_ctx, options, override_protected,
                                            propagate, validate_scoped, cycles)  # fmt: skip
        key = (uid, local, options.get("base"), override_protected, propagate, validate_scoped)
        hit = _processed.get(key)
        if hit is not None and (local[0] == "urls" or hit[0] is local_ctx):
            return hit[1]
        made = super()._process_context(active_ctx, local_ctx, options, override_protected,
                                        propagate, validate_scoped, cycles)  # fmt: skip
        if len(_processed) >= _PROCESSED_LIMIT:
            _processed.clear()
        _processed[key] = (local_ctx, made)
        return made


class _BoundedRdfc(URDNA2015):
    """RDFC-1.0 (URDNA2015 in pyld's words: same algorithm, same output) that stops after
    ``limit`` N-degree hashing steps."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.steps_left = limit

    def hash_n_degree_quads(self, id_: str, issuer: Any) -> Any:
        self.steps_left -= 1
        if self.steps_left < 0:
            raise CanonicalizationLimit(
                "the document's blank nodes would take too long to canonicalize "
                f"(more than {MAX_N_DEGREE_STEPS} steps): refused"
            )
        return super().hash_n_degree_quads(id_, issuer)


_ABSOLUTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
RELATIVE_BASE = "https://relative-iri.invalid/"
"""The base IRI strict expansion resolves against: pyld resolves a relative IRI against a
default base of its own, so a known, unroutable one lets us find and refuse them."""
ISSUER_DEPENDENT = "https://www.w3.org/ns/credentials/issuer-dependent#"
"""Where the VC 2.0 context's ``@vocab`` sends a term it does not define: such a term has no
agreed meaning, so strict expansion counts it as undefined."""


def _unwrap(cause: BaseException) -> RdfcError | None:
    """The first of our own errors in an exception's chain (pyld wraps what a loader raises)."""
    seen: BaseException | None = cause
    while seen is not None:
        if isinstance(seen, RdfcError):
            return seen
        seen = seen.__cause__ or seen.__context__
        if seen is cause:
            break
    return None


def _pyld_failure(cause: Exception) -> RdfcError:
    ours = _unwrap(cause)
    if ours is not None:
        return ours
    detail = getattr(cause, "message", None) or str(cause).splitlines()[0]
    return RdfcError(f"not valid JSON-LD: {detail}")


def _check_expanded(node: Any, where: str = "document") -> None:
    """Every ``@type`` and ``@id`` of expanded JSON-LD is an absolute IRI or a blank node:
    a relative one means a type or id no context maps (safe mode refuses it too)."""
    stack = [(node, where)]
    while stack:
        value, path = stack.pop()
        if isinstance(value, list):
            stack.extend((v, path) for v in value)
            continue
        if not isinstance(value, dict):
            continue
        if "@value" in value:
            continue  # a literal: its @type is a datatype IRI, checked by pyld
        for t in value.get("@type", []) if isinstance(value.get("@type"), list) else []:
            if (
                not isinstance(t, str)
                or not (_ABSOLUTE.match(t) or t.startswith("_:"))
                or (t.startswith(RELATIVE_BASE))
            ):
                raise StrictExpansionError(
                    f"type {t.removeprefix(RELATIVE_BASE)!r} in {path} is not defined by any of the document's contexts"
                )
            if t.startswith(ISSUER_DEPENDENT):
                raise StrictExpansionError(
                    f"type {t.removeprefix(ISSUER_DEPENDENT)!r} in {path} is not defined by any "
                    "of the document's contexts"
                )
        ident = value.get("@id")
        if ident is not None and (
            not (_ABSOLUTE.match(ident) or ident.startswith("_:"))
            or ident.startswith(RELATIVE_BASE)
        ):
            raise StrictExpansionError(
                f"id {ident.removeprefix(RELATIVE_BASE)!r} in {path} is not an absolute IRI"
            )
        for key, item in value.items():
            if key.startswith(ISSUER_DEPENDENT):
                raise StrictExpansionError(
                    f"term {key.removeprefix(ISSUER_DEPENDENT)!r} in {path} is not defined by any "
                    "of the document's contexts"
                )
            if key not in ("@id", "@type", "@value", "@language", "@direction", "@index"):
                stack.append((item, key if not key.startswith("@") else path))


def expand_strict(document: dict[str, Any]) -> list[Any]:
    """The document expanded with pinned contexts only, refusing what safe mode refuses."""
    dropped: list[str] = []

    def on_dropped(expanded_property: Any) -> None:
        dropped.append(str(expanded_property))

    processor = _ContextReusingProcessor(on_property_dropped=on_dropped)
    try:
        with _PYLD:
            expanded = processor.expand(
                document, {"documentLoader": document_loader, "base": RELATIVE_BASE}
            )
    except jsonld.JsonLdError as exc:
        raise _pyld_failure(exc) from exc
    if dropped:
        raise StrictExpansionError(
            f"term {dropped[0]!r} is not defined by any of the document's contexts "
            "(strict JSON-LD refuses undefined terms, which a signature would not cover)"
        )
    _check_expanded(expanded)
    return list(expanded)


_UNSERIALIZABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _control_character_problem(document: Any) -> str | None:
    """Why a document holds a string pyld would write differently from RDFC-1.0, or None.
    RDFC-1.0 writes control characters other than tab, newline and carriage return as escapes
    (``\\b``, ``\\u0000``...), pyld writes them raw: another verifier would hash other bytes.
    No credential needs them, so they are refused rather than signed ambiguously."""
    stack = [document]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, str) and _UNSERIALIZABLE.search(value):
            return (
                f"the string {value[:40]!r} holds a control character: refused (it has no "
                "canonical N-Quads form all verifiers agree on)"
            )
    return None


class _AlreadyExpanded(jsonld.JsonLdProcessor):
    """pyld's ``to_rdf`` for a document :func:`expand_strict` has expanded. ``to_rdf`` expands
    its input first; for a document in expanded form that gives the same document back (it has
    no context left to apply), and it costs more than the conversion to RDF itself."""

    def expand(self, input_: Any, options: Any) -> Any:
        return input_


def _dataset_of(expanded: list[Any], processor: jsonld.JsonLdProcessor) -> Any:
    try:
        with _PYLD:
            return processor.to_rdf(
                expanded, {"documentLoader": document_loader, "produceGeneralizedRdf": False}
            )
    except jsonld.JsonLdError as exc:
        raise _pyld_failure(exc) from exc


def _checked_expansion(document: dict[str, Any]) -> list[Any]:
    problem = _control_character_problem(document)
    if problem:
        raise RdfcError(problem)
    return expand_strict(document)


def canonical_nquads(document: dict[str, Any]) -> str:
    """The RDFC-1.0 canonical N-Quads of a JSON-LD document (strictly expanded, pinned
    contexts only, bounded work)."""
    expanded = _checked_expansion(document)
    return canonical_dataset(_dataset_of(expanded, _AlreadyExpanded()))


def reference_canonical_nquads(document: dict[str, Any]) -> str:
    """:func:`canonical_nquads` as pyld's public ``to_rdf`` makes it, expanding the expanded
    document once more: what :func:`canonical_nquads` must always equal, byte for byte."""
    expanded = _checked_expansion(document)
    return canonical_dataset(_dataset_of(expanded, jsonld.JsonLdProcessor()))


def canonical_dataset(dataset: Any) -> str:
    """The canonical N-Quads of a dataset pyld holds (parsed N-Quads or converted JSON-LD)."""
    result = _BoundedRdfc(MAX_N_DEGREE_STEPS).main(dataset, {"format": "application/n-quads"})
    return str(result)


def canonical_from_nquads(nquads: str) -> str:
    """The canonical form of an N-Quads document (what the W3C rdf-canon tests feed in)."""
    return canonical_dataset(jsonld.JsonLdProcessor.parse_nquads(nquads))
