"""The small shared helpers of labs.minichain: wait_until, the port picker, the JSON-RPC call."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from labs.minichain.jsonrpc import RpcReplyError, call
from labs.minichain.ports import free_port, free_ports, port_free
from labs.minichain.rpc import RpcDispatcher
from labs.minichain.waiting import wait_until

try:
    from ._devchain import CHAIN_ID, RpcServer, open_app
except ImportError:  # collected without a package (rootdir-relative imports)
    from _devchain import CHAIN_ID, RpcServer, open_app

# -- wait_until ------------------------------------------------------------------------------------


def test_wait_until_returns_the_first_true_value() -> None:
    answers = iter([None, 0, "", {"height": 3}])
    assert wait_until(lambda: next(answers), 60, interval=0) == {"height": 3}


def test_wait_until_times_out_with_the_message() -> None:
    calls = []
    with pytest.raises(TimeoutError, match="^node2 did not answer$"):
        wait_until(lambda: calls.append(1), 0, message="node2 did not answer")
    assert calls == [1]  # a timeout of 0 still tries once


def test_wait_until_asks_a_callable_message_only_at_the_timeout() -> None:
    pending = {"node1", "node3"}
    asked = []

    def message() -> str:
        asked.append(1)
        return f"{sorted(pending)} missing"

    with pytest.raises(TimeoutError, match=r"\['node1', 'node3'\] missing"):
        wait_until(lambda: False, 0, message=message)
    assert asked == [1]


def test_wait_until_has_a_default_message() -> None:
    with pytest.raises(TimeoutError, match="within 0 s"):
        wait_until(lambda: False, 0)


def test_wait_until_ignores_only_the_listed_exceptions() -> None:
    answers = iter([ConnectionRefusedError(), ConnectionRefusedError(), 7])

    def poll() -> int:
        value = next(answers)
        if isinstance(value, Exception):
            raise value
        return value

    assert wait_until(poll, 60, interval=0, ignore=(OSError,)) == 7

    def died() -> bool:
        raise ValueError("gone")

    with pytest.raises(ValueError, match="gone"):  # any other exception ends the wait at once
        wait_until(died, 60, ignore=(OSError,))


# -- ports -----------------------------------------------------------------------------------------


def test_free_port_can_be_bound() -> None:
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()
        assert not port_free(port)


def test_free_ports_are_distinct() -> None:
    ports = free_ports(5)
    assert len(set(ports)) == 5 and all(p > 0 for p in ports)


def test_port_zero_is_never_free() -> None:
    assert not port_free(0)


# -- JSON-RPC --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def node_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real minichain JSON-RPC server (one ExecutionApp, no consensus) on a loopback port."""
    app = open_app(tmp_path_factory.mktemp("jsonrpc"))
    with RpcServer(RpcDispatcher(app)) as server:
        yield server.url + "/"


@pytest.mark.parametrize("pooled", [True, False])
def test_call_returns_the_result(node_url: str, pooled: bool) -> None:
    assert call(node_url, "eth_chainId", pooled=pooled) == hex(CHAIN_ID)
    assert call(node_url, "eth_getBalance", ["0x" + "00" * 20, "latest"], pooled=pooled) == "0x0"


@pytest.mark.parametrize("pooled", [True, False])
def test_call_raises_the_nodes_error(node_url: str, pooled: bool) -> None:
    with pytest.raises(RpcReplyError, match="eth_nope") as caught:
        call(node_url, "eth_nope", ["0x1"], pooled=pooled)
    assert caught.value.code == -32601  # method not found
    assert isinstance(caught.value, RuntimeError)


@pytest.mark.parametrize("pooled", [True, False])
def test_call_rejects_a_reply_that_is_not_json(node_url: str, pooled: bool) -> None:
    with pytest.raises(ValueError):  # the server's plain-text 404 for a path it does not serve
        call(node_url + "elsewhere", "eth_chainId", pooled=pooled)


def test_call_to_a_closed_port_raises_the_transports_error() -> None:
    with socket.socket() as s:  # held bound but not listening: nothing can accept there
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/"
        with pytest.raises(httpx.ConnectError):
            call(url, "eth_chainId", timeout=2.0)
        with pytest.raises(OSError):
            call(url, "eth_chainId", timeout=2.0, pooled=False)
