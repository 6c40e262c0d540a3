"""Compare a learner's function with a reference on many generated inputs (hypothesis).

Why hypothesis: a hand-written list of inputs misses the empty message, the 55/56/64-byte padding
edges of SHA-256, unicode, huge integers... Hypothesis generates hundreds of inputs, and when one
fails it *shrinks* it to the smallest input that still fails, so the learner reads
``sha256_hex(b'') returned '00..' but the reference gives 'e3b0..'`` instead of a 4 kB blob.

Example (a hidden test cell)::

    from grader.checks.hashing import check_function, messages
    import hashlib
    check_function(
        sha256_hex,                                   # the learner's function
        lambda data: hashlib.sha256(data).hexdigest(),  # the reference
        messages(max_size=200),                       # one strategy per positional argument
        name="sha256_hex",
    )

``messages()`` spreads lengths evenly and always tries the padding edges (55, 56, 64, ...), which
``strategies.binary()`` rarely reaches. Several arguments: pass one strategy each
(``messages(), strategies.integers(0, 2**32)``). Fixed edge
cases that must always be tried go in ``examples=[(b"",), (b"a" * 64,)]``.

Trust: the learner's return value is copied into exact builtin types (bytes, str, int, bool,
float, None, and lists/tuples/dicts of them) before it is compared with ``==`` of those builtin
types, so an object with a rigged ``__eq__`` cannot pass. Runs are derandomized: the same
submission always meets the same inputs, so a grade never depends on luck.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as strategies

from grader.checks.messages import say
from grader.remote import LEARNER_RAISED, is_handle, type_name

__all__ = ["check_function", "messages", "plain", "strategies"]

_SCALARS = (bytes, str, int, bool, float, type(None))
_MAX_SHOWN = 120


class _Mismatch(Exception):
    """Raised inside the property so that hypothesis shrinks to the smallest failing input."""


def messages(max_size: int = 300) -> strategies.SearchStrategy[bytes]:
    """Byte strings whose *lengths* are spread evenly over 0..max_size, block edges included.

    ``strategies.binary()`` mostly draws short strings; hash padding bugs live at lengths 55, 56,
    63, 64, 119, 120 (SHA-256/Keccak block and length-field edges), which this always reaches.
    """
    edges = [n for n in (0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 135, 136, 137) if n <= max_size]
    lengths = strategies.one_of(strategies.sampled_from(edges), strategies.integers(0, max_size))
    return lengths.flatmap(lambda n: strategies.binary(min_size=n, max_size=n))


def plain(value: Any, what: str | None = None) -> Any:
    """A copy of ``value`` made only of exact builtin types; ``AssertionError`` if it has others.

    bytearray and memoryview become bytes (a learner may reasonably return them).
    """
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind in (bytearray, memoryview):
        return bytes(value)
    if kind in (list, tuple):
        return kind(plain(v, what) for v in list.__iter__(list(value)))
    if kind is dict:
        return {plain(k, what): plain(v, what) for k, v in dict.items(value)}
    name = type_name(value) if is_handle(value) else kind.__name__
    raise AssertionError(say("not_plain", what=what or say("the_result"), kind=name))


def _show(value: Any) -> str:
    if type(value) is bytes and len(value) > 16:
        if value == value[:1] * len(value):
            return f"{value[:1]!r} * {len(value)}"
        return f"{value[:16]!r}... ({len(value)} bytes)"
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def _call(fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[str, Any]:
    try:
        return "value", fn(*args)
    except Exception as exc:  # noqa: BLE001 - a learner's exception is a finding, not a crash
        return "raised", exc


def check_function(
    learner: Callable[..., Any],
    reference: Callable[..., Any],
    *arg_strategies: strategies.SearchStrategy[Any],
    name: str | None = None,
    examples: Iterable[Sequence[Any]] = (),
    max_examples: int = 200,
    compare: Callable[[Any, Any], bool] | None = None,
) -> None:
    """Assert ``learner(*args) == reference(*args)`` for generated ``args``.

    ``compare(got, want)`` replaces ``==`` (e.g. case-insensitive hex); it receives plain copies.
    When the reference raises for an input, the learner must raise the same exception type.
    The AssertionError names the smallest failing call, what it returned and what was expected.
    """
    if not callable(learner):
        shown = name or say("the_function")
        raise AssertionError(say("not_a_function", shown=shown, kind=type(learner).__name__))
    label = name or getattr(reference, "__name__", "function")
    if not arg_strategies:
        raise ValueError("check_function needs one strategy per argument of the function")
    found: list[str] = []

    def prop(args: tuple[Any, ...]) -> None:
        shown = f"{label}({', '.join(_show(a) for a in args)})"
        want_kind, want = _call(reference, tuple(args))
        got_kind, got = _call(learner, tuple(args))
        if want_kind == "raised":
            if got_kind == "raised" and type(got) is type(want):
                return
            said = say("returned", value=_show(got)) if got_kind == "value" else _raised(got)
            message = say("should_raise", call=shown, said=said, kind=type(want).__name__)
        elif got_kind == "raised":
            message = say("raised_expected", call=shown, said=_raised(got), want=_show(plain(want)))
        else:
            got_plain = plain(got, say("the_result_of", call=shown))
            want_plain = plain(want)
            same = compare(got_plain, want_plain) if compare else got_plain == want_plain
            if same is True:
                return
            message = say(
                "returned_expected", call=shown, got=_show(got_plain), want=_show(want_plain)
            )
        found.append(message)
        raise _Mismatch(message)

    test = given(strategies.tuples(*arg_strategies))(prop)
    for ex in examples:
        test = example(tuple(ex))(test)
    test = settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        derandomize=True,
        print_blob=False,
        phases=(Phase.explicit, Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck),
    )(test)
    try:
        test()
    except (_Mismatch, ExceptionGroup):
        if not found:
            raise
    except AssertionError as exc:  # a strategy or plain() complaint: already one clear line
        raise AssertionError(str(exc).splitlines()[0]) from None
    if found:
        # hypothesis re-raises the shrunk failure last: the final message is the smallest input
        raise AssertionError(found[-1]) from None


def _raised(exc: BaseException) -> str:
    if any(arg is LEARNER_RAISED for arg in exc.args):  # its text stays in the learner's sandbox
        return say("raised", kind=type(exc).__name__)
    detail = str(exc).splitlines()[0][:80] if str(exc) else ""
    if detail:
        return say("raised_detail", kind=type(exc).__name__, detail=detail)
    return say("raised", kind=type(exc).__name__)
