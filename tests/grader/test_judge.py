"""Hidden tests are judged outside the learner's interpreter, and the verdict is the supervisor's.

Each case is a hostile learner run through real sandboxes: the learner cells run in one jailed
interpreter, the hidden test in a separate judge that never runs learner code and reaches the
learner's names only as plain data or remote handles. Every hidden test here holds a marker that
must never show up in anything the learner's process could see or the results carry, and a wrong
answer must score 0 however the learner's interpreter was rigged.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

from grader.executor import CellOutcome, CellSpec, Limits, execute, leftover_pids, uids_taken
from grader.scoring import PreparedCell, score_cell

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the grading sandbox needs root")

FAST = Limits(cell_timeout=15.0, submission_timeout=60.0, cpu_seconds=30)
MARK = "HIDDEN-MARK-7c41e9"
HIDDEN = f"_expected = '{MARK}'[:0] + 'e3b0c442'\nassert h(b'')[:8] == _expected, 'h is wrong'\n"
RIGHT = "import hashlib\ndef h(d):\n    return hashlib.sha256(d).hexdigest()"
WRONG = "def h(d):\n    return 'nope'"


@pytest.fixture(autouse=True)
def no_leftovers() -> Iterator[None]:
    yield
    assert leftover_pids(uids_taken()) == [], "a sandbox process survived its submission"


def graded_cell(hidden: bool) -> PreparedCell:
    return PreparedCell(
        cell_type="code",
        source="",
        grade_id="t",
        points=2.0,
        kind="tests",
        hidden=hidden,
        grade=True,
        locked=True,
    )


def run(*cells: CellSpec) -> list[CellOutcome]:
    return execute(list(cells), limits=FAST)


def points(outcome: CellOutcome, hidden: bool = True) -> float | None:
    return score_cell(graded_cell(hidden), outcome.outputs, outcome.status, outcome.reason).points


def leaked(outcomes: list[CellOutcome], secret: str = MARK) -> bool:
    return secret in json.dumps([o.__dict__ for o in outcomes], default=str)


# ------------------------------------------------------------- the verdict is the supervisor's


@pytest.mark.parametrize(
    "answer",
    [
        "import bdb\ndef h(d):\n    raise bdb.BdbQuit()",
        "class E(Exception):\n    def __str__(self):\n        raise RuntimeError()\n"
        "def h(d):\n    raise E()",
        "get_ipython().set_custom_exc((BaseException,), lambda *a, **k: [])\n" + WRONG,
    ],
    ids=["bdbquit", "unprintable", "custom-exc"],
)
@pytest.mark.parametrize("hidden", [False, True], ids=["visible", "hidden"])
def test_a_failing_test_cell_scores_zero_even_without_error_output(
    answer: str, hidden: bool
) -> None:
    outcomes = run(CellSpec(answer), CellSpec(HIDDEN, hidden=hidden))
    assert outcomes[1].status == "error"
    assert points(outcomes[1], hidden) == 0


def test_status_error_scores_zero_whatever_was_printed() -> None:
    cell = graded_cell(False)
    assert score_cell(cell, [], "error", "BdbQuit").points == 0
    assert (
        score_cell(cell, [{"output_type": "stream", "name": "stdout", "text": "1"}], "error").points
        == 0
    )
    assert score_cell(cell, [], "ok").points == 2.0


# ------------------------------------------------------------- learner state cannot reach it

RIGGED = {
    "ast-transformer": "import ast\nclass T(ast.NodeTransformer):\n"
    "    def visit_Assert(self, node):\n        return ast.Pass()\n"
    "get_ipython().ast_transformers.append(T())",
    "input-transformer": "get_ipython().input_transformers_post.append(lambda lines: ['pass\\n'])",
    "pre-run-event": "import builtins\n"
    "get_ipython().events.register('pre_run_cell', lambda *a: setattr(builtins, 'AssertionError', KeyError))",
    "settrace": "import sys\n"
    "def tr(frame, event, arg):\n"
    "    if event == 'exception':\n        frame.f_locals.clear()\n    return tr\n"
    "sys.settrace(tr)",
    "displayhook": "import sys\nsys.displayhook = lambda v: None",
    "run-cell-patch": "ip = get_ipython()\ntype(ip).run_cell = lambda *a, **k: None",
    "builtins": "import builtins\nbuiltins.AssertionError = type('X', (Exception,), {})",
    "setprofile": "import sys, threading\n"
    "def prof(frame, event, arg):\n    frame.f_globals.setdefault('seen', []).append(event)\n"
    "sys.setprofile(prof)\nthreading.setprofile(prof)",
    "gc-callbacks": "import gc, builtins\n"
    "gc.callbacks.append(lambda phase, info: setattr(builtins, 'AssertionError', Warning))",
    "showtraceback": "ip = get_ipython()\nip.showtraceback = lambda *a, **k: None\n"
    "ip._showtraceback = lambda *a, **k: None",
    "custom-exc": "get_ipython().set_custom_exc((BaseException,), lambda *a, **k: None)",
    "audit-hook": "import sys\n"
    "sys.addaudithook(lambda e, a: (_ for _ in ()).throw(SystemExit) if e == 'exec' else None)",
}


@pytest.mark.parametrize("rig", list(RIGGED.values()), ids=list(RIGGED))
def test_learner_interpreter_state_cannot_pass_a_wrong_answer(rig: str) -> None:
    outcomes = run(CellSpec(WRONG), CellSpec(rig), CellSpec(HIDDEN, hidden=True))
    assert points(outcomes[2]) == 0, outcomes[2]
    assert not leaked(outcomes)


def test_right_answer_passes_beside_learner_hooks() -> None:
    """The hooks are the learner's own business: they neither pass nor fail the hidden test."""
    outcomes = run(CellSpec(RIGHT), CellSpec(RIGGED["settrace"]), CellSpec(HIDDEN, hidden=True))
    assert outcomes[2].status == "ok", outcomes[2]
    assert points(outcomes[2]) == 2.0


SPIES = {
    "caller-frames": "import sys\n"
    "def h(d):\n"
    "    f, seen = sys._getframe(1), []\n"
    "    while f is not None:\n"
    "        seen.append(repr(f.f_globals.get('_expected')) + repr(f.f_code.co_consts))\n"
    "        f = f.f_back\n"
    "    raise ValueError(' '.join(seen))",
    "linecache": "import linecache\n"
    "def h(d):\n"
    "    raise ValueError(repr(list(linecache.cache.values())))",
    "gc-scan": "import gc\n"
    "def h(d):\n"
    "    found = [o for o in gc.get_objects() if isinstance(o, str) and 'HIDDEN' in o]\n"
    "    found += [repr(o.co_consts) for o in gc.get_objects() if type(o).__name__ == 'code']\n"
    "    raise ValueError(repr(found)[:100000])",
    "traceback-in-eq": "import sys\n"
    "class Spy(str):\n"
    "    def __eq__(self, other):\n"
    "        raise AssertionError(repr(other) + repr(sys._getframe(1).f_locals))\n"
    "    __hash__ = str.__hash__\n"
    "def h(d):\n    return Spy('x')",
}


@pytest.mark.parametrize("spy", list(SPIES.values()), ids=list(SPIES))
def test_hidden_source_and_expected_values_never_reach_learner_code(spy: str) -> None:
    keep = "import sys\n_log = []\n"
    outcomes = run(
        CellSpec(keep + spy),
        CellSpec(HIDDEN, hidden=True),
        CellSpec(
            "import gc\nprint([o for o in gc.get_objects() if isinstance(o, str) and 'HIDDEN' in o])"
        ),
    )
    assert points(outcomes[1]) == 0
    assert not leaked(outcomes), [o.reason for o in outcomes]
    assert "Traceback" not in outcomes[1].reason


@pytest.mark.parametrize(
    "answer",
    [
        "class Yes:\n    def __eq__(self, o):\n        return True\n"
        "    def __getitem__(self, k):\n        return self\n"
        "def h(d):\n    return Yes()",
        "class S(str):\n    def __eq__(self, o):\n        return True\n"
        "    def __getitem__(self, k):\n        return self\n"
        "    __hash__ = str.__hash__\n"
        "def h(d):\n    return S('nope')",
        "class I(int):\n    def __eq__(self, o):\n        return True\n"
        "    __hash__ = int.__hash__\n"
        "def h(d):\n    return I(0)",
    ],
    ids=["rigged-eq", "str-subclass", "int-subclass"],
)
def test_rigged_values_do_not_cross(answer: str) -> None:
    test = "assert h(b'') == 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'"
    outcomes = run(CellSpec(answer), CellSpec(test, hidden=True))
    assert points(outcomes[1]) == 0, outcomes[1]


def test_subclass_of_str_with_the_right_value_passes() -> None:
    """Values cross as their plain value: a str subclass holding the right text is right."""
    answer = RIGHT + "\nclass S(str):\n    pass\n_h = h\ndef h(d):\n    return S(_h(d))"
    outcomes = run(CellSpec(answer), CellSpec(HIDDEN, hidden=True))
    assert outcomes[1].status == "ok", outcomes[1]


# ------------------------------------------------------------- fair to honest code


def test_a_thread_left_running_costs_nothing() -> None:
    thread = (
        "import threading, time\n"
        "threading.Thread(target=lambda: time.sleep(60), daemon=True).start()"
    )
    outcomes = run(CellSpec(RIGHT), CellSpec(thread), CellSpec(HIDDEN, hidden=True))
    assert outcomes[2].status == "ok", outcomes[2]
    assert points(outcomes[2]) == 2.0


def test_hidden_tests_use_learner_objects_through_handles() -> None:
    """What real hidden tests do: call methods, set attributes, mutate learner containers, catch
    the learner's exceptions by their builtin type, and pass learner objects back."""
    learner = (
        "class Node:\n"
        "    def __init__(self):\n        self.log, self.term = {}, 0\n"
        "    def bump(self):\n        self.term += 1\n        return self.term\n"
        "    def check(self, v):\n"
        "        if v < 0:\n            raise ValueError('negative')\n        return [v, self]\n"
        "node = Node()\n"
        "items = [1, 2, 3]\n"
        "def size(xs):\n    return len(xs)\n"
        "def same(a, b):\n    return a is b\n"
    )
    hidden = (
        "### BEGIN HIDDEN TESTS\n"
        "node.term = 5\n"
        "assert node.bump() == 6 and node.term == 6\n"
        "node.log['k'] = (1, b'x')\n"
        "assert node.log == {'k': (1, b'x')}\n"
        "items.append(4)\n"
        "assert size(items) == 4 and list(items) == [1, 2, 3, 4]\n"
        "try:\n    node.check(-1)\nexcept ValueError:\n    pass\nelse:\n    raise AssertionError('no raise')\n"
        "v, me = node.check(3)\n"
        "assert v == 3 and same(me, node)\n"
        "assert isinstance(size([1, 2]), int) and sorted({3, 1}) == [1, 3]\n"
        "assert size(range(5)) == 5 and size(bytearray(b'ab')) == 2 and size((1, 2j)) == 2\n"
        "### END HIDDEN TESTS\n"
    )
    outcomes = run(
        CellSpec(learner), CellSpec(hidden, hidden=True), CellSpec("print(node.term, items)")
    )
    assert outcomes[1].status == "ok", outcomes[1]
    assert outcomes[2].outputs[0]["text"] == "6 [1, 2, 3, 4]\n"


def test_visible_part_of_a_hidden_test_cell_runs_where_the_learner_sees_it() -> None:
    cell = (
        "result = h(b'')\nprint('visible ran')\n"
        "### BEGIN HIDDEN TESTS\n" + HIDDEN + "### END HIDDEN TESTS\n"
        "tail = 1\n"
    )
    outcomes = run(
        CellSpec(RIGHT), CellSpec(cell, hidden=True), CellSpec("print(result[:4], tail)")
    )
    assert outcomes[1].status == "ok", outcomes[1]
    assert outcomes[2].outputs[0]["text"] == "e3b0 1\n"
    assert not leaked(outcomes)


# ------------------------------------------------------------- feedback


def test_feedback_shows_only_the_instructors_message() -> None:
    learner = "def h(d):\n    raise ValueError('LEARNER-TEXT ' + repr(d))"
    outcomes = run(CellSpec(learner), CellSpec(HIDDEN, hidden=True))
    result = score_cell(
        graded_cell(True), outcomes[1].outputs, outcomes[1].status, outcomes[1].reason
    )
    assert result.points == 0
    assert "LEARNER-TEXT" not in json.dumps(outcomes[1].__dict__, default=str)
    assert "ValueError" in result.reason
    wrong = run(CellSpec(WRONG), CellSpec(HIDDEN, hidden=True))[1]
    assert "h is wrong" in wrong.reason
    assert all(not (o.get("traceback")) for o in wrong.outputs)


# ------------------------------------------------------------- endings inside a learner call


def test_a_learner_call_that_hangs_times_out_and_grading_goes_on() -> None:
    limits = Limits(cell_timeout=3.0, submission_timeout=60.0, cpu_seconds=30)
    hang = "def h(d):\n    while True:\n        pass"
    out = execute(
        [
            CellSpec(hang),
            CellSpec(HIDDEN, hidden=True),
            CellSpec(RIGHT),
            CellSpec(HIDDEN, hidden=True),
        ],
        limits=limits,
    )
    assert [o.status for o in out] == ["ok", "timeout", "ok", "ok"], out
    assert points(out[1]) == 0 and points(out[3]) == 2.0


def test_a_learner_call_that_ends_its_sandbox_is_killed_and_grading_goes_on() -> None:
    crash = "import os\ndef h(d):\n    os._exit(3)"
    out = run(CellSpec(crash), CellSpec(HIDDEN, hidden=True), CellSpec("print('after')"))
    assert [o.status for o in out] == ["ok", "killed", "ok"], out
    assert points(out[1]) == 0


def test_a_judge_object_cannot_be_handed_to_learner_code() -> None:
    learner = "def apply(f, x):\n    return f(x)"
    test = "assert apply(lambda v: v + 1, 1) == 2"
    out = run(CellSpec(learner), CellSpec(test, hidden=True))
    assert out[1].status == "error" and "CannotCross" in out[1].reason, out[1]
    assert "only plain data" in out[1].reason


def test_a_judges_stall_clock_counts_the_learner_sandbox_it_waits_on() -> None:
    """A hidden test's learner calls run in the learner's sandbox while the judge, blocked on
    their answers, is not runnable: the judge's deadline must move back by the learner's waits
    for a CPU as well as its own, or an honest checker times out on a busy host. The clocks only
    grow, so the judge's reading lies between the sums read before and after it."""
    from grader.executor import _Sandbox

    box, judge = _Sandbox(FAST), _Sandbox(FAST, judge=True)
    try:
        for sandbox in (box, judge):
            assert sandbox._joining is not None
            sandbox._joining.join()
        if box.cpu is None or judge.cpu is None:
            pytest.skip("this host gives the sandboxes no cgroup")
        judge.serving = box
        before = box.cpu.stalled() + judge.cpu.stalled()
        seen = judge.stalled()
        after = box.cpu.stalled() + judge.cpu.stalled()
        assert before <= seen <= after
        assert box.stalled() <= box.cpu.stalled()  # a learner's sandbox serves no one
    finally:
        judge.close()
        box.close()
