"""``CHAIN_CONFIG`` updates: what each method does to the configuration, and who must endorse it.

Each update is a pure function from the configuration in force and the request's parameters to
the next configuration, so every validator computes the same one; :mod:`.configstate` keeps it in
the state. As in ChainMaker, an update names the sequence it produces (the current one plus one):
a payload signed against an older configuration, or replayed once it was applied, no longer fits
and is refused, whatever endorsements it carries. Policies are those of the configuration in
force, so a PERMISSION_UPDATE binds the requests after it, never itself.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from . import keys
from .chainconfig import (
    CERT_MODE,
    DEFAULT_POLICIES,
    BlockSettings,
    ChainMakerConfig,
    ConsensusOrg,
    Policy,
    ResourcePolicy,
    TrustRoot,
)
from .errors import RequestRefused

CHAIN_CONFIG = "CHAIN_CONFIG"
QUERIES = {"GET_CHAIN_CONFIG", "GET_CHAIN_CONFIG_AT", "PERMISSION_LIST"}
ROLES = {"admin", "client", "consensus", "common", "light"}
NAMED_RULES = {"ANY", "MAJORITY", "ALL", "SELF", "FORBIDDEN"}
MIN_TX_TIMEOUT = 600
MIN_BLOCK_INTERVAL_MS = 10

Params = dict[str, bytes]
Update = Callable[[ChainMakerConfig, Params], ChainMakerConfig]


def _refuse(message: str) -> RequestRefused:
    return RequestRefused("INVALID_PARAMETER", message)


def _text(params: Params, key: str) -> str:
    value = params.get(key, b"").decode(errors="replace").strip()
    if not value:
        raise _refuse(f"parameter {key!r} is missing")
    return value


def _list(params: Params, key: str) -> list[str]:
    items = [p.strip() for p in _text(params, key).split(",") if p.strip()]
    if len(set(items)) != len(items):
        raise _refuse(f"parameter {key!r} names one item twice")
    return items


def _int(params: Params, key: str, least: int) -> int | None:
    raw = params.get(key)
    if raw is None:
        return None
    try:
        value = int(raw.decode(errors="replace"))
    except ValueError:
        raise _refuse(f"{key} must be a whole number, got {raw[:20]!r}") from None
    if value < least:
        raise _refuse(f"{key} must be at least {least}, got {value}")
    return value


def target_org(method: str, params: Params) -> str | None:
    """The org a SELF policy refers to: the one whose trust root or node id changes."""
    if method in ("TRUST_ROOT_UPDATE", "NODE_ID_UPDATE"):
        return params.get("org_id", b"").decode(errors="replace") or None
    return None


# --- block -----------------------------------------------------------------------------------


def block_update(config: ChainMakerConfig, params: Params) -> ChainMakerConfig:
    block = config.block.model_dump()
    if "tx_timestamp_verify" in params:
        flag = params["tx_timestamp_verify"].decode(errors="replace").lower()
        if flag not in ("true", "false"):
            raise _refuse(f"tx_timestamp_verify must be true or false, got {flag!r}")
        block["tx_timestamp_verify"] = flag == "true"
    for key, least in (
        ("tx_timeout", MIN_TX_TIMEOUT),
        ("block_tx_capacity", 1),
        ("block_size", 1),
        ("block_interval", MIN_BLOCK_INTERVAL_MS),
    ):
        value = _int(params, key, least)
        if value is not None:
            block[key] = value
    if block == config.block.model_dump():
        raise _refuse(
            "BLOCK_UPDATE changes nothing: give tx_timestamp_verify, tx_timeout, "
            "block_tx_capacity, block_size or block_interval"
        )
    return config.model_copy(update={"block": BlockSettings(**block)})


# --- trust roots -----------------------------------------------------------------------------


def _split_pems(params: Params) -> list[str]:
    text = _text(params, "root")
    pems = ["-----BEGIN" + p for p in text.split("-----BEGIN") if p.strip().strip(",")]
    return [pem.strip().rstrip(",").strip() + "\n" for pem in pems]


def _roots(config: ChainMakerConfig, params: Params, org: str) -> list[str]:
    """The org's new trust roots: CA certificates on a permissionedWithCert chain, its admins'
    public keys where members are keys; either with keys of the chain's crypto profile."""
    if config.auth_type == CERT_MODE:
        return _ca_pems(config, params, org)
    return _admin_key_pems(config, params, org)


def _check_profile(config: ChainMakerConfig, key: keys.MemberKey, org: str) -> None:
    if key.kind != config.crypto_profile:
        raise _refuse(
            f"a root of {org} holds an {key.kind} key, but this chain's members hold "
            f"{config.crypto_profile} keys: generate the org with that profile"
        )


def _ca_pems(config: ChainMakerConfig, params: Params, org: str) -> list[str]:
    out = []
    for pem in _split_pems(params):
        try:
            cert = x509.load_pem_x509_certificate(pem.encode())
        except ValueError:
            raise _refuse(f"a root of {org} is not a PEM certificate") from None
        try:
            is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        if not is_ca:
            raise _refuse(f"a root of {org} is not a CA certificate")
        try:
            key = keys.from_certificate(cert)
        except ValueError:
            raise _refuse(f"a root of {org} holds neither an ECDSA nor an SM2 key") from None
        _check_profile(config, key, org)
        out.append(pem)
    if not out:
        raise _refuse(f"no root certificate given for {org}")
    return out


def _admin_key_pems(config: ChainMakerConfig, params: Params, org: str) -> list[str]:
    """Admin keys, each an admin of one org only: a key that is an admin elsewhere already
    would speak for two orgs."""
    taken = {
        keys.from_pem(p.encode()).id: t.org_id
        for t in config.trust_roots
        if t.org_id != org
        for p in t.root
    }
    out, seen = [], set()
    for pem in _split_pems(params):
        try:
            key = keys.from_pem(pem.encode())
        except ValueError:
            raise _refuse(
                f"a root of {org} is not a PEM public key: on a {config.auth_type} chain an "
                "org's trust roots are its admins' public keys"
            ) from None
        _check_profile(config, key, org)
        if key.id in taken:
            raise _refuse(f"a root of {org} is an admin key of {taken[key.id]} already")
        if key.id not in seen:
            seen.add(key.id)
            out.append(key.spki_pem().decode())
    if not out:
        raise _refuse(f"no admin public key given for {org}")
    return out


def _org_of(pem: str) -> str:
    names = x509.load_pem_x509_certificate(pem.encode()).subject
    orgs = names.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return str(orgs[0].value) if orgs else ""


def trust_root_add(config: ChainMakerConfig, params: Params) -> ChainMakerConfig:
    org = _text(params, "org_id")
    if org in config.orgs():
        raise _refuse(f"org {org} is in the trust roots already: use TRUST_ROOT_UPDATE")
    roots = _roots(config, params, org)
    return config.model_copy(
        update={"trust_roots": [*config.trust_roots, TrustRoot(org_id=org, root=roots)]}
    )


def trust_root_update(config: ChainMakerConfig, params: Params) -> ChainMakerConfig:
    org = _text(params, "org_id")
    if org not in config.orgs():
        raise _refuse(f"org {org} is not in the trust roots: use TRUST_ROOT_ADD")
    roots = _roots(config, params, org)
    return config.model_copy(
        update={
            "trust_roots": [
                TrustRoot(org_id=org, root=roots) if t.org_id == org else t
                for t in config.trust_roots
            ]
        }
    )


def trust_root_delete(config: ChainMakerConfig, params: Params) -> ChainMakerConfig:
    org = _text(params, "org_id")
    if org not in config.orgs():
        raise _refuse(f"org {org} is not in the trust roots")
    if any(n.org_id == org for n in config.consensus_nodes):
        raise _refuse(f"org {org} runs consensus nodes: remove them first (NODE_ORG_DELETE)")
    return config.model_copy(
        update={"trust_roots": [t for t in config.trust_roots if t.org_id != org]}
    )


# --- consensus nodes -------------------------------------------------------------------------


def _all_node_ids(config: ChainMakerConfig) -> set[str]:
    return {i for n in config.consensus_nodes for i in n.node_id}


def _with_nodes(config: ChainMakerConfig, nodes: list[ConsensusOrg]) -> ChainMakerConfig:
    nodes = [n for n in nodes if n.node_id]
    if not nodes:
        raise _refuse("the chain would be left without consensus nodes")
    return config.model_copy(update={"consensus_nodes": nodes})


def _fresh_ids(config: ChainMakerConfig, ids: list[str], keep: str | None = None) -> list[str]:
    taken = _all_node_ids(config) - ({keep} if keep else set())
    clash = sorted(set(ids) & taken)
    if clash:
        raise _refuse(f"node id {clash[0]} is a consensus node already")
    return ids


def node_org_add(config: ChainMakerConfig, params: Params) -> ChainMakerConfig:
    org = _text(params, "org_id")
    if org not in config.orgs():
        raise _refuse(f"org {org} is not in the trust roots: add its root first (TRUST_ROOT_ADD)")
    if any(n.org_id == org for n in config.consensus_nodes):
        raise _refuse(f"org {org} is a consensus org already: use NODE_ORG_UPDATE or NODE_ID_ADD")
    ids = _fresh_ids(config, _list(params, "node_ids"))
    return _with_nodes(config, [*config.consensus_nodes, ConsensusOrg(org_id=org, node_id=ids)])


def _consensus_org(config: ChainMakerConfig, org: str) -> ConsensusOrg:
    for n in config.consensus_nodes:
        if n.org_id == org:
            return n
    raise _refuse(f"org {org} is not a consensus org")


def _replace(config: ChainMakerConfig, org: str, ids: list[str]) -> ChainMakerConfig:
    return _with_nodes(
        config,
        [
            ConsensusOrg(org_id=org, node_id=ids) if n.org_id == org else n
            for n in config.consensus_nodes
        ],
    )


def node_org_update(config: ChainMakerConfig, params: Params) -> ChainMakerConfig:
    org = _text(params, "org_id")
    current = _consensus_org(config, org)
    ids = _list(params, "node_ids")
    others = config.model_copy(
        update={"consensus_nodes": [n for n in config.consensus_nodes if n is not current]}
    )
    return _replace(config, org, _fresh_ids(others, ids))


def node_org_delete(config: ChainMakerConfig, params: Params) -> ChainMakerConfig:
    org = _text(params, "org_id")
    _consensus_org(config, org)
    return _with_nodes(config, [n for n in config.consensus_nodes if n.org_id != org])


def node_id_add(config: ChainMakerConfig, params: Params) -> ChainMakerConfig:
    org = _text(params, "org_id")
    current = _consensus_org(config, org)
    ids = _fresh_ids(config, _list(params, "node_ids"))
    return _replace(config, org, [*current.node_id, *ids])


def node_id_update(config: ChainMakerConfig, params: Params) -> ChainMakerConfig:
    org = _text(params, "org_id")
    current = _consensus_org(config, org)
    old, new = _text(params, "node_id"), _text(params, "new_node_id")
    if old not in current.node_id:
        raise _refuse(f"node {old} is not a consensus node of {org}")
    _fresh_ids(config, [new], keep=old)
    return _replace(config, org, [new if i == old else i for i in current.node_id])


def node_id_delete(config: ChainMakerConfig, params: Params) -> ChainMakerConfig:
    org = _text(params, "org_id")
    current = _consensus_org(config, org)
    old = _text(params, "node_id")
    if old not in current.node_id:
        raise _refuse(f"node {old} is not a consensus node of {org}")
    return _replace(config, org, [i for i in current.node_id if i != old])


# --- permissions -----------------------------------------------------------------------------


def _policies(config: ChainMakerConfig, params: Params) -> list[tuple[str, Policy]]:
    from chainmaker.protos.accesscontrol.policy_pb2 import Policy as PolicyMessage

    out = []
    for name, raw in params.items():
        message = PolicyMessage()
        try:
            message.ParseFromString(raw)
        except Exception:  # protobuf raises DecodeError and friends on junk
            raise _refuse(f"the policy for {name} is not a Policy message") from None
        policy = Policy(
            rule=message.rule,
            org_list=list(message.org_list),
            role_list=[r.lower() for r in message.role_list],
        )
        check_policy(config, name, policy)
        out.append((name, policy))
    if not out:
        raise _refuse("name a resource and its policy")
    return out


def check_policy(config: ChainMakerConfig, name: str, policy: Policy) -> None:
    """A rule ChainMaker knows, roles it knows, orgs in the trust roots."""
    if not name or len(name) > 128:
        raise _refuse("a resource name is 1 to 128 characters")
    rule = policy.rule.upper()
    if rule not in NAMED_RULES:
        try:
            share = Fraction(rule[:-1]) / 100 if rule.endswith("%") else Fraction(rule)
        except (ValueError, ZeroDivisionError):
            share = Fraction(-1)
        if not 0 < share <= 1:
            raise _refuse(
                f"policy rule {policy.rule!r} is unknown: use ANY, MAJORITY, ALL, SELF, "
                "FORBIDDEN, a share like 2/3 or a percentage like 60%"
            )
    unknown = sorted(set(policy.role_list) - ROLES)
    if unknown:
        raise _refuse(f"role {unknown[0]!r} is unknown: use {', '.join(sorted(ROLES))}")
    strangers = sorted(set(policy.org_list) - set(config.orgs()))
    if strangers:
        raise _refuse(f"org {strangers[0]} is not in the trust roots")


def _set_policies(config: ChainMakerConfig, changes: dict[str, Policy | None]) -> ChainMakerConfig:
    kept = [rp for rp in config.resource_policies if rp.resource_name not in changes]
    added = [
        ResourcePolicy(resource_name=name, policy=policy)
        for name, policy in changes.items()
        if policy is not None
    ]
    return config.model_copy(update={"resource_policies": kept + added})


def _listed(config: ChainMakerConfig) -> set[str]:
    return {rp.resource_name for rp in config.resource_policies}


def permission_add(config: ChainMakerConfig, params: Params) -> ChainMakerConfig:
    changes = dict(_policies(config, params))
    present = sorted(set(changes) & _listed(config))
    if present:
        raise _refuse(f"{present[0]} has a policy already: use PERMISSION_UPDATE")
    return _set_policies(config, dict(changes))


def permission_update(config: ChainMakerConfig, params: Params) -> ChainMakerConfig:
    changes = dict(_policies(config, params))
    known = _listed(config) | set(DEFAULT_POLICIES)
    missing = sorted(set(changes) - known)
    if missing:
        raise _refuse(f"{missing[0]} has no policy to update: use PERMISSION_ADD")
    return _set_policies(config, dict(changes))


def permission_delete(config: ChainMakerConfig, params: Params) -> ChainMakerConfig:
    names = list(params)
    missing = sorted(set(names) - _listed(config))
    if not names or missing:
        raise _refuse(f"{missing[0] if missing else 'nothing'} has no policy to delete")
    return _set_policies(config, dict.fromkeys(names))


UPDATES: dict[str, Update] = {
    "BLOCK_UPDATE": block_update,
    "TRUST_ROOT_ADD": trust_root_add,
    "TRUST_ROOT_UPDATE": trust_root_update,
    "TRUST_ROOT_DELETE": trust_root_delete,
    "NODE_ORG_ADD": node_org_add,
    "NODE_ORG_UPDATE": node_org_update,
    "NODE_ORG_DELETE": node_org_delete,
    "NODE_ID_ADD": node_id_add,
    "NODE_ID_UPDATE": node_id_update,
    "NODE_ID_DELETE": node_id_delete,
    "PERMISSION_ADD": permission_add,
    "PERMISSION_UPDATE": permission_update,
    "PERMISSION_DELETE": permission_delete,
}


def check_sequence(config: ChainMakerConfig, payload: Any) -> None:
    """The payload must name the sequence the update produces: current + 1."""
    wanted = config.sequence + 1
    if payload.sequence != wanted:
        raise RequestRefused(
            "INVALID_PARAMETER",
            f"chain config sequence {payload.sequence} is not the next one: the configuration "
            f"is at {config.sequence}, so an update names {wanted}; build the payload again "
            "on the current configuration",
        )


def updated(config: ChainMakerConfig, payload: Any, params: Params) -> ChainMakerConfig:
    """The next configuration, or RequestRefused saying what is wrong with the request."""
    update = UPDATES.get(payload.method)
    if update is None:
        raise RequestRefused(
            "INVALID_CONTRACT_PARAMETER_METHOD",
            f"CHAIN_CONFIG method {payload.method!r} is not supported: use one of "
            + ", ".join(sorted(UPDATES)),
        )
    check_sequence(config, payload)
    result = update(config, params)
    return result.model_copy(update={"sequence": config.sequence + 1})
