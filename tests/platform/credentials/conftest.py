"""One real academy ledger (4-validator TBFT minichain + registry) shared by the certificate
tests that need it, and a loopback server for status lists."""

from __future__ import annotations

import pytest

from .harness import AcademyLedger, StatusServer


@pytest.fixture(scope="session")
def academy_ledger(tmp_path_factory: pytest.TempPathFactory):
    ledger = AcademyLedger(tmp_path_factory.mktemp("certs_ledger") / "chain")
    try:
        yield ledger
    finally:
        ledger.stop()


@pytest.fixture(scope="session")
def status_server():
    server = StatusServer()
    try:
        yield server
    finally:
        server.close()
