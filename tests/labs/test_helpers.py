"""The small shared helpers of labs.minichain: wait_until, the port picker, the JSON-RPC call."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from labs.minichain.jsonrpc import RpcError, call
from labs.minichain.ports import free_port, free_ports, port_free
from labs.minichain.waiting import wait_until

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


class _Node(BaseHTTPRequestHandler):
    """Answers eth_chainId, fails everything else with a JSON-RPC error, and says what it got."""

    seen: list[dict] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append(body)
        if body["method"] == "eth_chainId":
            reply = {"jsonrpc": "2.0", "id": body["id"], "result": "0x539"}
        elif body["method"] == "broken":
            reply = None
        else:
            error = {"code": -32601, "message": f"method not found: {body['method']}"}
            reply = {"jsonrpc": "2.0", "id": body["id"], "error": error}
        data = b"not json" if reply is None else json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def node_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Node)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("pooled", [True, False])
def test_call_returns_the_result(node_url: str, pooled: bool) -> None:
    _Node.seen.clear()
    assert call(node_url, "eth_chainId", pooled=pooled) == "0x539"
    assert _Node.seen == [{"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}]


@pytest.mark.parametrize("pooled", [True, False])
def test_call_raises_the_nodes_error(node_url: str, pooled: bool) -> None:
    with pytest.raises(RpcError, match="^method not found: eth_nope$") as caught:
        call(node_url, "eth_nope", ["0x1"], pooled=pooled)
    assert caught.value.code == -32601
    assert isinstance(caught.value, RuntimeError)


@pytest.mark.parametrize("pooled", [True, False])
def test_call_rejects_a_reply_that_is_not_json(node_url: str, pooled: bool) -> None:
    with pytest.raises(ValueError):
        call(node_url, "broken", pooled=pooled)


def test_call_to_a_closed_port_raises_the_transports_error() -> None:
    with socket.socket() as s:  # held bound but not listening: nothing can accept there
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/"
        with pytest.raises(httpx.ConnectError):
            call(url, "eth_chainId", timeout=2.0)
        with pytest.raises(OSError):
            call(url, "eth_chainId", timeout=2.0, pooled=False)
