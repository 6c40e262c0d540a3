"""ChainMaker's endorsement rules, counted in orgs: ANY, MAJORITY, ALL, SELF, FORBIDDEN, ratios."""

from __future__ import annotations

from pathlib import Path

import pytest
from chainmaker.user import User

from labs.minichain.chainmaker import pb
from labs.minichain.chainmaker.auth import AuthError, Verifier
from labs.minichain.chainmaker.chainconfig import (
    ChainMakerConfig,
    Policy,
    ResourcePolicy,
    TrustRoot,
)
from labs.minichain.chainmaker.cryptogen import org_id, write_org


@pytest.fixture(scope="module")
def orgs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("crypto")
    for k in range(1, 6):
        write_org(root, org_id(k), 1)
    return root


def _config(orgs: Path, rule: str, role_list=("admin",)) -> ChainMakerConfig:
    return ChainMakerConfig(
        trust_roots=[
            TrustRoot(org_id=org_id(k), root=[(orgs / org_id(k) / "ca" / "ca.crt").read_text()])
            for k in range(1, 6)
        ],
        resource_policies=[
            ResourcePolicy(resource_name="R", policy=Policy(rule=rule, role_list=list(role_list)))
        ],
    )


def _user(orgs: Path, k: int, name: str = "admin1") -> User:
    folder = orgs / org_id(k) / "user" / name
    return User(
        org_id=org_id(k),
        sign_key_bytes=(folder / f"{name}.sign.key").read_bytes(),
        sign_cert_bytes=(folder / f"{name}.sign.crt").read_bytes(),
    )


def _request(orgs: Path, endorsing: list[int], name: str = "admin1"):
    payload = pb.Payload(chain_id="chain1", tx_id="a1", contract_name="X", method="m")
    raw = payload.SerializeToString()
    request = pb.TxRequest(
        payload=payload,
        sender=_user(orgs, 1, "client1").sign(raw),
        endorsers=[_user(orgs, k, name).sign(raw) for k in endorsing],
    )
    return request, raw


@pytest.mark.parametrize(
    ("rule", "enough", "short"),
    [
        ("ANY", [3], []),
        ("MAJORITY", [1, 2, 5], [1, 2]),  # 5 orgs: 3 make a majority
        ("ALL", [1, 2, 3, 4, 5], [1, 2, 3, 4]),
        ("SELF", [1], [2, 3, 4, 5]),  # the sender's own org
        ("2/3", [1, 2, 3, 4], [1, 2, 3]),  # ceil(5 * 2/3) = 4
        ("40%", [4, 5], [4]),
    ],
)
def test_rules_count_orgs(orgs: Path, rule: str, enough: list[int], short: list[int]) -> None:
    verifier = Verifier(_config(orgs, rule))
    request, raw = _request(orgs, enough)
    verifier.endorsed("R", request, raw, verifier.sender(request, raw))
    if short:
        request, raw = _request(orgs, short)
        with pytest.raises(AuthError, match="not enough participants"):
            verifier.endorsed("R", request, raw, verifier.sender(request, raw))


def test_one_org_signing_twice_is_one_org(orgs: Path) -> None:
    verifier = Verifier(_config(orgs, "MAJORITY"))
    request, raw = _request(orgs, [1, 1, 1, 2])
    with pytest.raises(AuthError, match="not enough participants"):
        verifier.endorsed("R", request, raw, verifier.sender(request, raw))


def test_roles_outside_the_list_do_not_count(orgs: Path) -> None:
    verifier = Verifier(_config(orgs, "ANY"))
    request, raw = _request(orgs, [1, 2, 3], name="client1")  # clients, not admins
    with pytest.raises(AuthError, match="not enough participants"):
        verifier.endorsed("R", request, raw, verifier.sender(request, raw))


def test_forbidden_refuses_everyone(orgs: Path) -> None:
    verifier = Verifier(_config(orgs, "FORBIDDEN"))
    request, raw = _request(orgs, [1, 2, 3, 4, 5])
    with pytest.raises(AuthError, match="forbidden"):
        verifier.endorsed("R", request, raw, verifier.sender(request, raw))


def test_an_endorsement_over_other_bytes_is_refused(orgs: Path) -> None:
    verifier = Verifier(_config(orgs, "ANY"))
    request, raw = _request(orgs, [2])
    with pytest.raises(AuthError, match="refine endorsements failed"):
        verifier.endorsed("R", request, raw + b"x", verifier.sender(request, raw))
