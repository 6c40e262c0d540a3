"""Decode calls and events of the contracts a lab preloaded, with the ABI the sandbox recorded.

Only contracts whose ABI we hold are decoded (``LabEnv.contracts``); anything else stays raw hex,
and a payload that does not fit its ABI is shown raw rather than failing the page.
"""

from __future__ import annotations

from typing import Any

from eth_abi import decode
from eth_utils import event_abi_to_log_topic, function_abi_to_4byte_selector


def _types(inputs: list[dict[str, Any]]) -> list[str]:
    return [i["type"] for i in inputs]


def _by_address(contracts: dict[str, Any], address: str | None) -> tuple[str, list] | None:
    for name, item in contracts.items():
        if address and str(item.get("address", "")).lower() == address.lower():
            return name, item.get("abi") or []
    return None


def _show(value: Any) -> str:
    return "0x" + value.hex() if isinstance(value, bytes) else str(value)


def decode_call(contracts: dict[str, Any], to: str | None, data: str) -> str | None:
    """``Name.fn(arg=value, ...)`` for a call to a known contract, else None."""
    found = _by_address(contracts, to)
    raw = bytes.fromhex((data or "0x").removeprefix("0x"))
    if found is None or len(raw) < 4:
        return None
    name, abi = found
    for fn in (e for e in abi if e.get("type") == "function"):
        if function_abi_to_4byte_selector(fn) == raw[:4]:
            try:
                values = decode(_types(fn["inputs"]), raw[4:])
            except Exception:  # noqa: BLE001 - a payload that does not fit stays raw
                return None
            args = ", ".join(
                f"{i['name']}={_show(v)}" for i, v in zip(fn["inputs"], values, strict=True)
            )
            return f"{name}.{fn['name']}({args})"
    return None


def decode_log(contracts: dict[str, Any], log: dict[str, Any]) -> str | None:
    """``Name.Event(arg=value, ...)`` for an event of a known contract, else None."""
    found = _by_address(contracts, log.get("address"))
    topics = log.get("topics") or []
    if found is None or not topics:
        return None
    name, abi = found
    topic0 = bytes.fromhex(topics[0].removeprefix("0x"))
    for ev in (e for e in abi if e.get("type") == "event" and not e.get("anonymous")):
        if event_abi_to_log_topic(ev) != topic0:
            continue
        indexed = [i for i in ev["inputs"] if i.get("indexed")]
        plain = [i for i in ev["inputs"] if not i.get("indexed")]
        try:
            values: dict[str, Any] = {}
            for i, topic in zip(indexed, topics[1:], strict=True):
                values[i["name"]] = decode([i["type"]], bytes.fromhex(topic.removeprefix("0x")))[0]
            data = bytes.fromhex((log.get("data") or "0x").removeprefix("0x"))
            for i, v in zip(plain, decode(_types(plain), data), strict=True):
                values[i["name"]] = v
        except Exception:  # noqa: BLE001 - a log that does not fit stays raw
            return None
        args = ", ".join(f"{i['name']}={_show(values[i['name']])}" for i in ev["inputs"])
        return f"{name}.{ev['name']}({args})"
    return None
