"""What crosses between a hidden test's judge and the learner's objects, and what cannot.

Both ends run here in one process over a real JSON round trip (the sandboxes are exercised in
test_judge.py): the point is the encoding's rules, so no learner value is trusted beyond its data.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import pytest

from grader.remote import (
    LEARNER_RAISED,
    CannotCross,
    Channel,
    LearnerNamespace,
    LearnerObjects,
    learner_files,
    place_learner_files,
    run_hidden,
)


class Rigged(str):
    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = str.__hash__


class Box:
    def __init__(self) -> None:
        self.items = [1, 2]
        self.value = 7

    def get(self) -> Rigged:
        return Rigged("wrong")

    def fail(self) -> None:
        raise KeyError("learner text")


def judge_for(namespace: dict[str, Any]) -> LearnerNamespace:
    objects = LearnerObjects(namespace)

    def send(request: dict[str, Any]) -> dict[str, Any]:
        answer = objects.handle(json.loads(json.dumps(request)))
        return json.loads(json.dumps(answer))

    return LearnerNamespace(Channel(send))


def test_plain_values_cross_by_value_and_subclasses_lose_their_methods() -> None:
    ns = judge_for({"box": Box(), "n": 3, "data": {"k": (b"x", 1.5, None)}})
    ok, _outputs, error = run_hidden(
        "assert n == 3 and data == {'k': (b'x', 1.5, None)}\n"
        "got = box.get()\n"
        "assert type(got) is str and got == 'wrong' and got != 'right'\n"
        "box.items.append(3)\n"
        "assert box.items == [1, 2, 3] and len(box.items) == 3 and box.value + 1 == 8\n",
        ns,
    )
    assert ok, error


def test_learner_exception_arrives_as_its_builtin_type_without_its_text() -> None:
    ns = judge_for({"box": Box()})
    ok, outputs, error = run_hidden(
        "try:\n    box.fail()\nexcept LookupError as e:\n    caught = e\n", ns
    )
    assert ok, error
    assert type(ns["caught"]) is KeyError and ns["caught"].args == (LEARNER_RAISED,)
    ok, outputs, error = run_hidden("box.fail()", ns)
    assert not ok and error is not None
    assert error["ename"] == "KeyError" and "learner text" not in json.dumps(outputs)
    assert error["traceback"] == []


def test_judge_objects_cannot_cross() -> None:
    ns = judge_for({"call": lambda f: f()})
    ok, _outputs, error = run_hidden("call(lambda: 1)", ns)
    assert not ok and error is not None and error["ename"] == "CannotCross"
    with pytest.raises(CannotCross):
        ns.chan.encode(object())


def test_assert_message_is_the_only_text_kept() -> None:
    ns = judge_for({"x": 1})
    ok, _outputs, error = run_hidden("_secret = {'k': 1}\n_secret['missing']", ns)
    assert not ok and error == {"ename": "KeyError", "evalue": "", "traceback": []}
    ok, _outputs, error = run_hidden("assert x == 2, 'x should be 2'", ns)
    assert not ok and error is not None and error["evalue"] == "x should be 2"


class Money:
    """A learner value type with no plain form: arithmetic must run beside it, in the learner."""

    def __init__(self, cents: int) -> None:
        self.cents = cents

    def __add__(self, other: Money) -> Money:
        return Money(self.cents + other.cents)

    def __eq__(self, other: object) -> bool:  # rigged: must never decide a verdict
        return True

    __hash__ = object.__hash__


def test_dates_and_durations_cross_as_values() -> None:
    import datetime as dt

    now = dt.datetime(2026, 12, 8, 1, 2, 3, 456, tzinfo=dt.UTC)
    ns = judge_for({"NOW": now, "dt": dt, "echo": lambda v: v, "day": dt.date(2026, 1, 2)})
    ok, _outputs, error = run_hidden(
        "import datetime\n"
        "assert type(NOW) is datetime.datetime and NOW.tzinfo == datetime.timezone.utc\n"
        "later = NOW + dt.timedelta(days=2, microseconds=5)\n"
        "assert later - NOW == datetime.timedelta(days=2, microseconds=5)\n"
        "assert echo(later) == later and type(echo(later)) is datetime.datetime\n"
        "assert echo(datetime.timedelta(seconds=-1)).total_seconds() == -1\n"
        "assert day.isoformat() == '2026-01-02' and echo(datetime.time(1, 2)) == datetime.time(1, 2)\n",
        ns,
    )
    assert ok, error


def test_copies_of_learner_containers_are_the_judges_own() -> None:
    data = {"rows": [{"h": 1}, {"h": 2}]}
    ns = judge_for({"ROWS": data["rows"]})
    ok, _outputs, error = run_hidden(
        "import copy\n"
        "mine = copy.deepcopy(ROWS)\n"
        "mine[0]['h'] = 99\n"
        "shallow = copy.copy(ROWS)\n"
        "assert type(mine) is list and ROWS[0]['h'] == 1 and shallow == [{'h': 1}, {'h': 2}]\n",
        ns,
    )
    assert ok, error
    assert data["rows"][0]["h"] == 1


def test_arithmetic_on_learner_objects_runs_there_and_comparison_stays_in_the_judge() -> None:
    ns = judge_for({"a": Money(150), "b": Money(250)})
    ok, _outputs, error = run_hidden("total = a + b\nassert total.cents == 400\n", ns)
    assert ok, error
    # the rigged __eq__ answers True to everything in the learner; the judge compares identity
    ok, _outputs, error = run_hidden("assert a + b == a, 'rigged'", ns)
    assert not ok and error is not None and error["evalue"] == "rigged"


def test_containers_handed_to_learner_code_come_back_changed() -> None:
    def admit(store: dict[str, bytes], log: list[int], key: str) -> None:
        store[key] = b"record"
        log.append(len(store))
        if key == "bad":
            raise PermissionError("learner text")

    ns = judge_for({"admit": admit})
    ok, _outputs, error = run_hidden(
        "store, log = {}, []\n"
        "admit(store, log, 'a')\n"
        "admit(store, log=log, key='b')\n"
        "assert store == {'a': b'record', 'b': b'record'} and log == [1, 2]\n"
        "try:\n    admit(store, log, 'bad')\nexcept PermissionError:\n    pass\n"
        "assert 'bad' in store and log == [1, 2, 3]\n"
        "frozen = (1, 2)\nadmit({}, [], 'c')\n",
        ns,
    )
    assert ok, error


def test_a_lying_copy_back_changes_only_what_the_judge_handed_over() -> None:
    chan_answers = {"value": None, "after": {"a0": [9], "a5": [9], "kx": {"$d": []}, "zz": 1}}
    seen: list[Any] = []
    ns = LearnerNamespace(Channel(lambda msg: seen.append(msg) or dict(chan_answers)))
    mine, other = {"k": 1}, [1]
    handle = ns.chan.decode({"$r": 1, "type": "function"})
    handle(mine, other)
    # a list where a dict was handed over, an index out of range, a name never passed: ignored
    assert mine == {"k": 1} and other == [1]


def test_lab_value_objects_cross_rebuilt_from_their_class() -> None:
    ns = judge_for({"kind_of": lambda c: (type(c).__name__, c.name, c.abi)})
    ok, _outputs, error = run_hidden(
        "from labs.minichain.contracts import CompiledContract\n"
        "c = CompiledContract('Club', [{'type': 'constructor'}], '0x60', '0x61', 'v', 'vyper')\n"
        "assert kind_of(c) == ('CompiledContract', 'Club', [{'type': 'constructor'}])",
        ns,
    )
    assert ok, error

    @dataclasses.dataclass(frozen=True)
    class Elsewhere:
        x: int

    with pytest.raises(CannotCross):
        ns.chan.encode(Elsewhere(1))
    # the learner's side never gets to hand the judge a value object of its choosing
    with pytest.raises(ValueError, match="value object"):
        ns.chan.decode({"$v": ["labs.minichain.contracts", "CompiledContract", {"$d": []}]})


def test_learner_files_are_regular_files_only(tmp_path: Path) -> None:
    (tmp_path / "Token.sol").write_text("contract T {}")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.vy").write_bytes(b"\x00\x01")
    (tmp_path / "link").symlink_to("/etc/hostname")
    os.mkfifo(tmp_path / "pipe")
    sent = learner_files(str(tmp_path))
    assert sorted(sent) == ["Token.sol", "sub/a.vy"]
    assert base64.b64decode(sent["sub/a.vy"]) == b"\x00\x01"


def test_placed_learner_files_never_replace_the_source_or_leave_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "expected.json").write_text("source")
    (tmp_path / "outside").mkdir()
    enc = {
        k: base64.b64encode(v).decode()
        for k, v in {
            "expected.json": b"learner",
            "../escape": b"x",
            "/etc/evil": b"x",
            "Token.sol": b"contract T {}",
            "dir/x.vy": b"# x",
        }.items()
    }
    placed: set[str] = set()
    place_learner_files(enc, {"expected.json"}, placed)
    assert (tmp_path / "expected.json").read_text() == "source"
    assert not (tmp_path.parent / "escape").exists()
    assert (tmp_path / "Token.sol").read_bytes() == b"contract T {}"
    assert placed == {"Token.sol", "dir/x.vy"}
    # a link planted where a file goes is replaced, never written through
    (tmp_path / "Token.sol").unlink()
    (tmp_path / "Token.sol").symlink_to(tmp_path / "outside" / "target")
    place_learner_files({"Token.sol": enc["Token.sol"]}, {"expected.json"}, placed)
    assert not (tmp_path / "outside" / "target").exists()
    assert (tmp_path / "Token.sol").read_bytes() == b"contract T {}"
    assert not (tmp_path / "dir" / "x.vy").exists(), "removed by the learner: gone here too"
