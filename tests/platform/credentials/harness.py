"""Real parts for certificate tests: a 4-validator TBFT minichain as the academy ledger with the
registry deployed, and a loopback HTTP server publishing status lists."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from academy.credentials.ledger import Registry

from labs.minichain.netconfig import init_network
from labs.minichain.network import start_network, stop_network

LEDGER_PARAMS = {
    "timeout_propose": 1.5,
    "timeout_prevote": 0.5,
    "timeout_precommit": 0.5,
    "empty_block_interval": 5.0,
}


def send_json(handler: BaseHTTPRequestHandler, status: int, doc: Any) -> None:
    """Answer a test server's request with ``doc`` as JSON."""
    body = json.dumps(doc).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class AcademyLedger:
    """A running 4-node TBFT network with the AcademyRegistry deployed by account 0."""

    def __init__(self, root: Path) -> None:
        self.root = root
        init_network(root, nodes=4, consensus="tbft", params=LEDGER_PARAMS)
        self.cfg = start_network(root)
        try:
            self.rpc_url = self.cfg.rpc_url(0)
            self.private_key = self.cfg.accounts()[0]["private_key"]
            self.registry = Registry.deploy(self.rpc_url, self.private_key)
        except BaseException:
            stop_network(root)
            raise

    def stop(self) -> None:
        stop_network(self.root)


class StatusServer:
    """Serves JSON documents by path on 127.0.0.1 (a random free port)."""

    def __init__(self) -> None:
        self.docs: dict[str, Any] = {}
        docs = self.docs

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                doc = docs.get(self.path)
                send_json(self, 200 if doc is not None else 404, doc if doc is not None else {})

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def publish(self, url: str, doc: dict[str, Any]) -> None:
        self.docs[url.removeprefix(self.base_url)] = doc

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
