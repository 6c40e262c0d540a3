"""Hidden tests run in a judge process; learner objects reach it as plain data or remote handles.

Why: a hidden test that runs in the interpreter where learner code ran can be read (frames,
``linecache``, ``gc``) or bent (IPython transformers, trace hooks, a rigged ``__eq__``) by that
code. So the supervisor forks a second sandbox, the *judge*, that never runs learner code: it holds
the hidden test, and every name the test reads without defining it resolves in the learner's
sandbox, across the supervisor, as JSON:

* values of exact builtin types cross as copies (``bytes``/``str``/``int``/``float`` subclasses as
  their plain value, so a rigged ``__eq__`` or ``__hash__`` stays behind), and so do the
  ``datetime`` module's dates, times and durations (exact types, fixed-offset zones only): they
  are immutable values that tests compute with (``NOW + timedelta(days=2)``);
* anything else stays in the learner's process and the judge gets a :class:`Handle`: attribute and
  item access, calls, ``setattr`` and mutation go back to the learner's object; comparisons,
  hashing, ``len``, ``bool`` and arithmetic run in the judge on a plain copy (``copy.copy`` and
  ``copy.deepcopy`` give that copy); arithmetic on an object with no plain copy runs in the
  learner's sandbox and gives a handle, while comparing such objects is by identity only;
* what the judge sends (arguments, assigned values) is plain data or a handle the learner gave it;
  a judge-side function or object cannot cross and the test fails saying so (:class:`CannotCross`).
  A list, dict or set handed to a learner call crosses as a copy, and what the call did to it is
  copied back into the judge's container, so a function that fills the store it is given works;
* a learner exception arrives as the nearest builtin exception type, marked as the learner's, so
  ``except ValueError`` in a hidden test works and the feedback never repeats learner text.

The learner's side (:class:`LearnerObjects`) runs learner code and is trusted for nothing: what it
answers is data, checked by the judge like any return value.
"""

from __future__ import annotations

import ast
import base64
import builtins
import contextlib
import copy
import dataclasses
import datetime as dt
import io
import math
import operator
import os
import stat
import sys
from collections.abc import Callable, Mapping
from typing import Any

MAX_ITEMS = 1_000_000
_SCALARS = (type(None), bool, int, float, str)


class CannotCross(TypeError):  # noqa: N818 - reads as the reason a learner sees
    """A hidden test passed a judge-side object (a function, a checker's object) to learner code."""


# ---------------------------------------------------------------- encoding (both sides)


def _plain_scalar(value: Any) -> Any:
    """The exact builtin value of a str/int/float/bytes (subclass) instance, else ``_NO``."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is bytes:
        return value
    if isinstance(value, bool):
        return bool(int.__int__(value))
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, bytes):
        return bytes.__bytes__(value)
    return _NO


_NO = object()


def encode(value: Any, ref: Callable[[Any], Any], deep: bool, depth: int = 0) -> Any:
    """JSON for ``value``: scalars and (``deep``) exact containers as data, the rest as ``ref``."""
    plain = _plain_scalar(value)
    if plain is not _NO:
        if type(plain) is bytes:
            return {"$b": base64.b64encode(plain).decode()}
        if type(plain) is float and not math.isfinite(plain):
            return {"$x": repr(plain)}
        return plain
    if depth > 50:
        return ref(value)
    kind = type(value)
    if kind is tuple:
        return {"$t": [encode(v, ref, deep, depth + 1) for v in value]}
    if kind is frozenset:
        return {"$f": [encode(v, ref, deep, depth + 1) for v in value]}
    if kind is range:
        return {"$rg": [value.start, value.stop, value.step]}
    if kind is bytearray:
        return {"$ba": base64.b64encode(bytes(value)).decode()}
    if kind is complex:
        return {"$c": [encode(value.real, ref, deep), encode(value.imag, ref, deep)]}
    if kind is slice:
        return {
            "$sl": [encode(v, ref, deep, depth + 1) for v in (value.start, value.stop, value.step)]
        }
    when = _encode_time(value)
    if when is not None:
        return when
    if deep and kind is list:
        return [encode(v, ref, deep, depth + 1) for v in value]
    if deep and kind is set:
        return {"$s": [encode(v, ref, deep, depth + 1) for v in value]}
    if deep and kind is dict:
        return {
            "$d": [
                [encode(k, ref, deep, depth + 1), encode(v, ref, deep, depth + 1)]
                for k, v in value.items()
            ]
        }
    return ref(value)


def _fixed_zone(tz: Any) -> bool:
    return tz is None or type(tz) is dt.timezone


def _encode_time(value: Any) -> dict[str, Any] | None:
    """The datetime module's values as data (exact types; a zone other than a fixed offset has
    rules of its own, so such a value stays behind a handle)."""
    kind = type(value)
    if kind is dt.timedelta:
        return {"$td": [value.days, value.seconds, value.microseconds]}
    if kind is dt.date:
        return {"$da": value.isoformat()}
    if kind is dt.datetime and _fixed_zone(value.tzinfo):
        return {"$dt": [value.isoformat(), value.fold]}
    if kind is dt.time and _fixed_zone(value.tzinfo):
        return {"$tm": [value.isoformat(), value.fold]}
    if kind is dt.timezone:
        offset = value.utcoffset(None)
        return {"$tz": [offset.days, offset.seconds, offset.microseconds]}
    return None


def _decode_time(data: dict[str, Any]) -> Any:
    if "$td" in data:
        days, seconds, micros = (int(v) for v in data["$td"])
        return dt.timedelta(days=days, seconds=seconds, microseconds=micros)
    if "$da" in data:
        return dt.date.fromisoformat(str(data["$da"]))
    if "$dt" in data:
        text, fold = data["$dt"]
        return dt.datetime.fromisoformat(str(text)).replace(fold=int(fold))
    if "$tm" in data:
        text, fold = data["$tm"]
        return dt.time.fromisoformat(str(text)).replace(fold=int(fold))
    if "$tz" in data:
        days, seconds, micros = (int(v) for v in data["$tz"])
        return dt.timezone(dt.timedelta(days=days, seconds=seconds, microseconds=micros))
    return _NO


def decode(data: Any, handle: Callable[[dict[str, Any]], Any]) -> Any:
    """The value ``encode`` described; ``handle`` turns a ``{"$r": ...}`` into an object."""
    if isinstance(data, list):
        return [decode(v, handle) for v in data]
    if not isinstance(data, dict):
        return data
    if "$b" in data:
        return base64.b64decode(data["$b"])
    if "$rg" in data:
        start, stop, step = (int(v) for v in data["$rg"])
        return range(start, stop, step)
    if "$ba" in data:
        return bytearray(base64.b64decode(data["$ba"]))
    if "$c" in data:
        real, imag = (float(decode(v, handle)) for v in data["$c"])
        return complex(real, imag)
    if "$x" in data:
        return float(data["$x"])
    if "$t" in data:
        return tuple(decode(v, handle) for v in data["$t"])
    if "$f" in data:
        return frozenset(decode(v, handle) for v in data["$f"])
    if "$s" in data:
        return {decode(v, handle) for v in data["$s"]}
    if "$sl" in data:
        return slice(*(decode(v, handle) for v in data["$sl"]))
    if "$d" in data:
        return {decode(k, handle): decode(v, handle) for k, v in data["$d"]}
    if "$r" in data or "$v" in data:
        return handle(data)
    when = _decode_time(data)
    if when is not _NO:
        return when
    raise ValueError("not an encoded value")


VALUE_PACKAGES = ("labs.",)
"""Frozen dataclasses of these packages (a compiled contract, say) are values a hidden test may
hand to learner code: they cross as their fields and are rebuilt there from the same class."""


def _is_value_object(obj: Any) -> bool:
    kind = type(obj)
    params = getattr(kind, "__dataclass_params__", None)
    return (
        params is not None
        and bool(getattr(params, "frozen", False))
        and str(kind.__module__).startswith(VALUE_PACKAGES)
    )


def _value_object(data: dict[str, Any], handle: Callable[[dict[str, Any]], Any]) -> Any:
    """A value object the judge sent, rebuilt in the learner's sandbox."""
    module, qualname, fields = data["$v"]
    if not str(module).startswith(VALUE_PACKAGES):
        raise ValueError("not a value class")
    import importlib

    kind: Any = importlib.import_module(str(module))
    for part in str(qualname).split("."):
        kind = getattr(kind, part)
    if not isinstance(kind, type) or not dataclasses.is_dataclass(kind):
        raise ValueError("not a value class")
    values = decode(fields, handle)
    if not isinstance(values, dict):
        raise ValueError("not a value class")
    return kind(**values)


# ---------------------------------------------------------------- the learner's side


_BUILTIN_EXC = {
    name: obj
    for name, obj in vars(builtins).items()
    if isinstance(obj, type) and issubclass(obj, BaseException)
}


class LearnerObjects:
    """Answers a judge's requests in the learner's sandbox (runs learner code, decides nothing)."""

    def __init__(self, namespace: dict[str, Any]) -> None:
        self.namespace = namespace
        self.refs: dict[int, Any] = {}
        self.ids: dict[int, int] = {}

    def _ref(self, value: Any) -> dict[str, Any]:
        key = id(value)
        number = self.ids.get(key)
        if number is None:
            number = len(self.refs) + 1
            self.refs[number] = value
            self.ids[key] = number
        return {"$r": number, "type": type.__dict__["__name__"].__get__(type(value))}

    def _out(self, value: Any, deep: bool = False) -> Any:
        return encode(value, self._ref, deep)

    def _in(self, data: Any) -> Any:
        def handle(d: dict[str, Any]) -> Any:
            return self.refs[int(d["$r"])] if "$r" in d else _value_object(d, handle)

        return decode(data, handle)

    def handle(self, msg: dict[str, Any]) -> dict[str, Any]:
        """One request: ``{"value": ...}``, ``{"missing": true}`` or ``{"raise": [...]}``."""
        try:
            return self._handle(msg)
        except BaseException as exc:  # noqa: BLE001 - every learner failure goes back as data
            return {"raise": _exception_names(exc)}

    def _handle(self, msg: dict[str, Any]) -> dict[str, Any]:
        op = msg.get("op")
        if op == "names":
            return {"value": [k for k in list(self.namespace) if type(k) is str]}
        if op == "files":
            return {"value": learner_files(".")}
        if op == "module":
            import importlib

            return {"value": self._out(importlib.import_module(str(msg.get("name"))))}
        if op == "global":
            name = str(msg.get("name"))
            if name not in self.namespace:
                return {"missing": True}
            return {"value": self._out(self.namespace[name])}
        target: Any = self.refs[int(msg["ref"])] if "ref" in msg else None
        if op == "getattr":
            return {"value": self._out(getattr(target, str(msg["name"])))}
        if op == "setattr":
            setattr(target, str(msg["name"]), self._in(msg["value"]))
            return {"value": None}
        if op == "delattr":
            delattr(target, str(msg["name"]))
            return {"value": None}
        if op == "getitem":
            return {"value": self._out(target[self._in(msg["key"])])}
        if op == "setitem":
            target[self._in(msg["key"])] = self._in(msg["value"])
            return {"value": None}
        if op == "delitem":
            del target[self._in(msg["key"])]
            return {"value": None}
        if op == "call":
            args = self._in(msg.get("args", []))
            kwargs = self._in(msg.get("kwargs", {"$d": []}))
            try:
                result = target(*args, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - what it changed before raising counts too
                return {"raise": _exception_names(exc), "after": self._after(args, kwargs)}
            return {"value": self._out(result, deep=True), "after": self._after(args, kwargs)}
        if op == "iter":
            items = []
            for item in target:
                items.append(self._out(item))
                if len(items) > MAX_ITEMS:
                    raise OverflowError("too many items")
            return {"value": items}
        if op == "plain":
            return {"value": self._plain(target)}
        if op in ("len", "bool", "str", "repr", "contains"):
            fn: dict[str, Callable[..., Any]] = {
                "len": len,
                "bool": bool,
                "str": str,
                "repr": repr,
                "contains": operator.contains,
            }
            args = [target] + ([self._in(msg["key"])] if op == "contains" else [])
            return {"value": self._out(fn[op](*args))}
        raise ValueError(f"unknown request {op!r}")

    def _after(self, args: Any, kwargs: Any) -> dict[str, Any]:
        """The containers a call was given, as they are after it: the judge sent copies, and a
        function that fills the dict or list it is handed (a store, an accumulator) must be seen
        doing so, as it would be in one interpreter."""
        after: dict[str, Any] = {}
        if type(args) is list:
            for i, value in enumerate(args):
                if type(value) in (list, dict, set):
                    after[f"a{i}"] = self._out(value, deep=True)
        if type(kwargs) is dict:
            for name, value in kwargs.items():
                if type(name) is str and type(value) in (list, dict, set):
                    after[f"k{name}"] = self._out(value, deep=True)
        return after

    def _plain(self, value: Any) -> Any:
        """A plain copy: exact containers deep, mappings as dicts, sequences as lists."""
        if type(value) in (list, dict, set, tuple, frozenset):
            return self._out(value, deep=True)
        if isinstance(value, Mapping):
            return {"$d": [[self._out(k, True), self._out(v, True)] for k, v in value.items()]}
        if isinstance(value, list | tuple):
            return self._out(list(value), deep=True)
        if isinstance(value, set | frozenset):
            return self._out(set(value), deep=True)
        return self._out(value, deep=True)


def _exception_names(exc: BaseException) -> list[str]:
    """The builtin exception types ``exc`` is an instance of, nearest first (names only)."""
    try:
        mro = type.__dict__["__mro__"].__get__(type(exc))
    except Exception:  # noqa: BLE001
        return ["Exception"]
    names = [n for c in mro if _BUILTIN_EXC.get(n := str(getattr(c, "__name__", ""))) is c]
    return names or ["Exception"]


MAX_SYNC_FILES = 256
MAX_SYNC_BYTES = 16 * 1024**2


def learner_files(root: str) -> dict[str, str]:
    """The regular files of the learner's working folder (what ``%%writefile`` cells wrote), as
    data for the judge: links, FIFOs and devices are never opened, and the walk stops at a few
    levels, MAX_SYNC_FILES files and MAX_SYNC_BYTES bytes."""
    out: dict[str, str] = {}
    total = 0
    stack = [("", 0)]
    while stack and len(out) < MAX_SYNC_FILES:
        rel, depth = stack.pop()
        try:
            entries = sorted(
                os.scandir(os.path.join(root, rel) if rel else root), key=lambda e: e.name
            )
        except OSError:
            continue
        for entry in entries:
            name = f"{rel}/{entry.name}" if rel else entry.name
            if entry.is_dir(follow_symlinks=False):
                if depth < 4 and not entry.name.startswith("."):
                    stack.append((name, depth + 1))
                continue
            if not entry.is_file(follow_symlinks=False):
                continue
            try:
                fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            except OSError:
                continue
            with os.fdopen(fd, "rb") as fh:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    continue
                data = fh.read(MAX_SYNC_BYTES - total + 1)
            if total + len(data) > MAX_SYNC_BYTES or len(out) >= MAX_SYNC_FILES:
                return out
            total += len(data)
            out[name] = base64.b64encode(data).decode()
    return out


def place_learner_files(sent: Any, pristine: set[str], placed: set[str]) -> None:
    """Write the learner's files into the judge's working folder, where a hidden test opens
    them by name, as in one interpreter. The source's side files (``pristine``) are never
    replaced, paths stay inside the folder, and files placed by an earlier hidden test that the
    learner has since removed go too. The judge never imports from this folder (see
    judge_sys_path)."""
    wanted: dict[str, bytes] = {}
    if isinstance(sent, dict):
        for name, data in list(sent.items())[:MAX_SYNC_FILES]:
            parts = str(name).split("/")
            if not isinstance(data, str) or any(p in ("", ".", "..") for p in parts):
                continue
            if str(name) in pristine or parts[0] in pristine:
                continue
            try:
                wanted["/".join(parts)] = base64.b64decode(data, validate=True)
            except ValueError:
                continue
    for name in sorted(placed - set(wanted)):
        with contextlib.suppress(OSError):
            os.unlink(name)
        placed.discard(name)
    for name, data in wanted.items():
        with contextlib.suppress(OSError):
            if os.path.dirname(name):
                os.makedirs(os.path.dirname(name), exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)  # never write through a link left by anyone
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            placed.add(name)


def judge_sys_path() -> None:
    """No import in the judge may come from its working folder, which holds learner files."""
    here = os.getcwd()
    sys.path[:] = [p for p in sys.path if p not in ("", ".", here)]


# ---------------------------------------------------------------- the judge's side


class Channel:
    """Sends one request to the learner's sandbox (through the supervisor) and reads the answer."""

    def __init__(self, send: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        self.send = send

    def ask(
        self, msg: dict[str, Any], given: tuple[list[Any], dict[str, Any]] | None = None
    ) -> Any:
        """The answer's value; ``given`` (a call's arguments) get the learner's changes back."""
        answer = self.send(msg)
        if not isinstance(answer, dict):
            raise RuntimeError("the learner's sandbox did not answer")
        if given is not None and isinstance(answer.get("after"), dict):
            self._copy_back(given, answer["after"])
        if "raise" in answer:
            raise _learner_exception(answer["raise"])
        if answer.get("missing"):
            raise KeyError(msg.get("name"))
        return self.decode(answer.get("value"))

    def decode(self, data: Any) -> Any:
        def handle(d: dict[str, Any]) -> Any:
            if "$r" not in d:
                raise ValueError("the learner's sandbox sent a value object")
            return Handle(self, int(d["$r"]), str(d.get("type", "object")))

        return decode(data, handle)

    def _copy_back(self, given: tuple[list[Any], dict[str, Any]], after: dict[str, Any]) -> None:
        """Put what the learner's call did to the containers it was handed into the judge's own,
        in place and only where the kind matches: the judge's containers hold learner data from
        then on, as they would after such a call in one interpreter."""
        args, kwargs = given
        for key, data in after.items():
            original: Any = None
            if key.startswith("a") and key[1:].isdigit() and int(key[1:]) < len(args):
                original = args[int(key[1:])]
            elif key.startswith("k"):
                original = kwargs.get(key[1:])
            kind = type(original)
            if kind not in (list, dict, set):
                continue
            new = self.decode(data)
            if type(new) is not kind:
                continue
            original.clear()
            if kind is list:
                original.extend(new)
            else:
                original.update(new)

    def encode(self, value: Any) -> Any:
        def ref(obj: Any) -> Any:
            if isinstance(obj, Handle):
                return {"$r": object.__getattribute__(obj, "_ref")}
            if type(obj) in (list, dict, set):
                return encode(obj, ref, deep=True)
            if _is_value_object(obj):
                fields = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
                kind = type(obj)
                return {"$v": [kind.__module__, kind.__qualname__, encode(fields, ref, deep=True)]}
            raise CannotCross(
                f"the hidden test passed a {type(obj).__name__} to the learner's code; only "
                "plain data and the learner's own objects can cross"
            )

        return encode(value, ref, deep=True)


class _LearnerText(str):
    """The one message every exception from learner code carries in the judge: the hidden test
    can catch it by its builtin type, and the feedback knows it by this object."""


LEARNER_RAISED = _LearnerText("raised in the learner's code")


def _learner_exception(names: Any) -> BaseException:
    """An instance of the builtin exception type nearest to the learner's."""
    for name in names if isinstance(names, list) else []:
        found = _BUILTIN_EXC.get(str(name))
        if found is None:
            continue
        try:
            return found(LEARNER_RAISED)
        except Exception:  # noqa: BLE001 - a builtin that wants other arguments
            continue
    return Exception(LEARNER_RAISED)


def _local(op: Callable[..., Any]) -> Callable[..., Any]:
    """A comparison, always judged on plain copies (an object with none equals only itself)."""

    def method(self: Handle, *others: Any) -> Any:
        return op(self._plain_value(), *(_unwrap(o) for o in others))

    return method


def _arith(op: Callable[..., Any], reflected: bool = False) -> Callable[..., Any]:
    """Arithmetic on plain copies, or, where either side has none (a learner's own class), in
    the learner's sandbox: the result is then a learner object, which the test still has to
    compare, and comparisons never leave the judge."""

    def method(self: Handle, *others: Any) -> Any:
        values = [self._plain_value(), *(_unwrap(o) for o in others)]
        if reflected:
            values.reverse()
        if not any(isinstance(v, _Opaque) for v in values):
            return op(*values)
        operands = [self, *others]
        if reflected:
            operands.reverse()
        return getattr(learner_module(self, "operator"), op.__name__)(*operands)

    return method


def _unwrap(value: Any) -> Any:
    return value._plain_value() if isinstance(value, Handle) else value


class Handle:
    """A learner object seen from the judge; see the module docstring for what runs where."""

    __slots__ = ("_chan", "_ref", "_type")

    def __init__(self, chan: Channel, ref: int, type_name: str) -> None:
        object.__setattr__(self, "_chan", chan)
        object.__setattr__(self, "_ref", ref)
        object.__setattr__(self, "_type", type_name)

    def _ask(self, op: str, **fields: Any) -> Any:
        chan: Channel = object.__getattribute__(self, "_chan")
        return chan.ask({"op": op, "ref": object.__getattribute__(self, "_ref"), **fields})

    def _enc(self, value: Any) -> Any:
        chan: Channel = object.__getattribute__(self, "_chan")
        return chan.encode(value)

    def _plain_value(self) -> Any:
        value = self._ask("plain")
        if isinstance(value, Handle) and object.__getattribute__(
            value, "_ref"
        ) == object.__getattribute__(self, "_ref"):
            return _Opaque(
                object.__getattribute__(self, "_ref"), object.__getattribute__(self, "_type")
            )
        return value

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self._ask("getattr", name=name)

    def __setattr__(self, name: str, value: Any) -> None:
        self._ask("setattr", name=name, value=self._enc(value))

    def __delattr__(self, name: str) -> None:
        self._ask("delattr", name=name)

    def __getitem__(self, key: Any) -> Any:
        return self._ask("getitem", key=self._enc(key))

    def __setitem__(self, key: Any, value: Any) -> None:
        self._ask("setitem", key=self._enc(key), value=self._enc(value))

    def __delitem__(self, key: Any) -> None:
        self._ask("delitem", key=self._enc(key))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        chan: Channel = object.__getattribute__(self, "_chan")
        msg = {
            "op": "call",
            "ref": object.__getattribute__(self, "_ref"),
            "args": self._enc(list(args)),
            "kwargs": self._enc(dict(kwargs)),
        }
        return chan.ask(msg, given=(list(args), dict(kwargs)))

    def __iter__(self) -> Any:
        return iter(self._ask("iter"))

    def __len__(self) -> int:
        return int(self._ask("len"))

    def __bool__(self) -> bool:
        return bool(self._ask("bool"))

    def __contains__(self, key: Any) -> bool:
        return bool(self._ask("contains", key=self._enc(key)))

    def __str__(self) -> str:
        return str(self._ask("str"))

    def __repr__(self) -> str:
        return str(self._ask("repr"))

    def __hash__(self) -> int:
        return hash(self._plain_value())

    def __format__(self, spec: str) -> str:
        value = self._plain_value()
        return format(str(self) if isinstance(value, _Opaque) else value, spec)

    def __int__(self) -> int:
        return int(self._plain_value())

    def __index__(self) -> int:
        return operator.index(self._plain_value())

    def __float__(self) -> float:
        return float(self._plain_value())

    def __bytes__(self) -> bytes:
        return bytes(self._plain_value())

    def __copy__(self) -> Any:
        value = self._plain_value()
        return learner_module(self, "copy").copy(self) if isinstance(value, _Opaque) else value

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        value = self._plain_value()
        if isinstance(value, _Opaque):
            return learner_module(self, "copy").deepcopy(self)
        return copy.deepcopy(value, memo)

    __eq__ = _local(operator.eq)
    __ne__ = _local(operator.ne)
    __lt__ = _local(operator.lt)
    __le__ = _local(operator.le)
    __gt__ = _local(operator.gt)
    __ge__ = _local(operator.ge)
    __add__ = _arith(operator.add)
    __sub__ = _arith(operator.sub)
    __mul__ = _arith(operator.mul)
    __truediv__ = _arith(operator.truediv)
    __floordiv__ = _arith(operator.floordiv)
    __mod__ = _arith(operator.mod)
    __pow__ = _arith(operator.pow)
    __and__ = _arith(operator.and_)
    __or__ = _arith(operator.or_)
    __xor__ = _arith(operator.xor)
    __lshift__ = _arith(operator.lshift)
    __rshift__ = _arith(operator.rshift)
    __neg__ = _arith(operator.neg)
    __abs__ = _arith(operator.abs)
    __radd__ = _arith(operator.add, reflected=True)
    __rsub__ = _arith(operator.sub, reflected=True)
    __rmul__ = _arith(operator.mul, reflected=True)
    __rtruediv__ = _arith(operator.truediv, reflected=True)
    __rfloordiv__ = _arith(operator.floordiv, reflected=True)
    __rmod__ = _arith(operator.mod, reflected=True)


def is_handle(value: Any) -> bool:
    """Whether ``value`` is a learner object seen from the judge."""
    return isinstance(value, Handle)


def type_name(value: Any) -> str:
    """The learner-side type name of a handle (data the learner's sandbox reported)."""
    return str(object.__getattribute__(value, "_type"))


def learner_module(beside: Handle, name: str) -> Any:
    """Module ``name`` as imported in the learner's sandbox that ``beside`` lives in: for a
    checker that must run library code next to a learner object that cannot cross."""
    chan: Channel = object.__getattribute__(beside, "_chan")
    return chan.ask({"op": "module", "name": name})


class _Opaque:
    """A learner object with no plain form: equal only to itself (by identity in the learner)."""

    def __init__(self, ref: int, type_name: str) -> None:
        self.ref, self.type_name = ref, type_name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Opaque) and other.ref == self.ref

    def __hash__(self) -> int:
        return hash(("learner object", self.ref))


class LearnerNamespace(dict[str, Any]):
    """The hidden test's globals: its own names first, then the learner's, then builtins."""

    def __init__(self, chan: Channel) -> None:
        super().__init__()
        self.chan = chan
        self.learner_names: set[str] = set()
        self.handles: dict[str, Handle] = {}
        """Learner objects looked up in this hidden block: a handle stays live (its calls and
        attributes go to the object), so only rebinding the name during the block goes unseen."""

    def __missing__(self, name: str) -> Any:
        known = self.handles.get(name)
        if known is not None:
            return known
        if name not in self.learner_names and hasattr(builtins, name):
            raise KeyError(name)
        value = self.chan.ask({"op": "global", "name": name})
        if isinstance(value, Handle):
            self.handles[name] = value
        return value


def run_hidden(
    source: str, namespace: LearnerNamespace
) -> tuple[bool, list[dict[str, Any]], dict[str, Any] | None]:
    """Run a hidden test in the judge: (ran to its end, nbformat outputs, error).

    The error's message is the instructor's (an ``assert``'s or a checker's) or none at all: a
    learner exception is named by its builtin type only, and no traceback is kept."""
    outputs: list[dict[str, Any]] = []
    out, err = io.StringIO(), io.StringIO()
    namespace.learner_names = set(namespace.chan.ask({"op": "names"}))
    namespace.handles.clear()
    namespace.setdefault("__builtins__", builtins)
    namespace.setdefault("__name__", "__main__")
    error: dict[str, Any] | None = None
    try:
        tree = ast.parse(source, "<hidden test>")
        last = tree.body[-1] if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        if last is not None:
            tree.body.pop()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            exec(compile(tree, "<hidden test>", "exec"), namespace)  # noqa: S102
            value = None
            if last is not None:
                expr = ast.Expression(last.value)
                value = eval(compile(expr, "<hidden test>", "eval"), namespace)  # noqa: S307
        if value is not None:
            outputs.append(
                {
                    "output_type": "execute_result",
                    "execution_count": None,
                    "metadata": {},
                    "data": {"text/plain": repr(value)},
                }
            )
    except BaseException as exc:  # noqa: BLE001 - the verdict: any exception fails the test
        error = _judge_error(exc)
    streams = [
        {"output_type": "stream", "name": name, "text": buf.getvalue()}
        for name, buf in (("stdout", out), ("stderr", err))
        if buf.getvalue()
    ]
    outputs = streams + outputs
    if error is not None:
        outputs.append({"output_type": "error", **error})
    return error is None, outputs, error


def _judge_error(exc: BaseException) -> dict[str, Any]:
    name = type(exc).__name__
    if any(a is LEARNER_RAISED for a in getattr(exc, "args", ())):
        text = f"the learner's code raised {name}"
    elif isinstance(exc, AssertionError | CannotCross):
        try:
            text = str(exc)
        except Exception:  # noqa: BLE001 - a message built from a learner value that failed
            text = ""
    else:
        text = ""
    return {"ename": name, "evalue": text, "traceback": []}
