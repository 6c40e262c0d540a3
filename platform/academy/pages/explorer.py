"""The chain explorer of a learner's own lab chain: blocks, transactions with receipts and logs,
validators, consensus state and the fault switches in effect.

Pages are rendered on the server from the chain's JSON-RPC (httpx), so the learner's browser never
needs to reach the chain itself. Academy uses the environment's recorded RPC URLs: loopback with the
process backend; with the docker backend those live inside the learner's network, which academy
must be able to reach (not arranged yet: the page then says the chain did not answer). A learner only ever sees the
environments ``labs.sandbox`` recorded for *their* username; any other id is "not found".
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from ..api.deps import StateDep
from ..services.errors import NotFound
from ..services.labchains import learner_envs
from ..settings import Settings
from .abi import decode_call, decode_log
from .i18n import text
from .layout import ViewerDep, esc, facts, lang_of, page, table

router = APIRouter(prefix="/explorer", include_in_schema=False)

LATEST = 10
TX_HASH = re.compile(r"^0x[0-9a-fA-F]{64}$")


class ChainUnavailable(Exception):
    """The learner's chain did not answer (stopped, or busy restarting)."""


async def _my_env(settings: Settings, learner: str, env_id: str) -> Any:
    for env in await run_in_threadpool(learner_envs, settings, learner):
        if env.env_id == env_id:
            return env
    raise NotFound(f"no lab chain {env_id!r} of yours: open {settings.base_path}/explorer/")


class Rpc:
    """A tiny JSON-RPC client over httpx (one per page render)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.client = httpx.AsyncClient(timeout=5.0)
        self.next_id = 0

    async def __aenter__(self) -> Rpc:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()

    async def call(self, method: str, *params: Any, url: str | None = None) -> Any:
        self.next_id += 1
        body = {"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": list(params)}
        try:
            reply = (await self.client.post(url or self.url, json=body)).json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ChainUnavailable(str(exc)) from None
        if "error" in reply:
            raise ChainUnavailable(str(reply["error"]))
        return reply.get("result")


# -- rendering -----------------------------------------------------------------------------------
def _int(value: Any) -> int:
    return int(value, 16) if isinstance(value, str) and value.startswith("0x") else int(value or 0)


def find_form(lang: str, link: str) -> str:
    return (
        f'<form method="get" action="{esc(link)}/find" role="search">'
        f'<label for="q">{esc(text(lang, "find_label"))}</label> '
        f'<input id="q" name="q" type="search" required autocomplete="off"> '
        f'<button type="submit">{esc(text(lang, "go"))}</button></form>'
    )


def _when(ts: Any) -> str:
    return datetime.fromtimestamp(_int(ts), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# -- pages ---------------------------------------------------------------------------------------
def _link(settings: Settings, env_id: str) -> str:
    return f"{settings.base_path}/explorer/{env_id}"


@router.get("/", response_class=HTMLResponse)
async def my_chains(request: Request, state: StateDep, principal: ViewerDep) -> HTMLResponse:
    """The learner's lab chains, each linking to its explorer."""
    lang, settings = lang_of(request), state.settings
    envs = await run_in_threadpool(learner_envs, settings, principal.user.username)
    if not envs:
        body = f"<p>{esc(text(lang, 'no_chains'))}</p>"
    else:
        rows = [
            [
                f'<a href="{esc(_link(settings, e.env_id))}">{esc(e.lab_id)}</a>',
                esc(text(lang, e.status) if e.status in ("running", "stopped") else e.status),
            ]
            for e in envs
        ]
        body = table([text(lang, "lab"), text(lang, "status")], rows, "chains")
    return page(lang, text(lang, "my_chains"), body, settings.base_path)


async def _chain_or_notice(
    request: Request, state: StateDep, principal: ViewerDep, env_id: str
) -> tuple[str, Any, str, str, HTMLResponse | None]:
    """What every page of one chain starts from: the language, the environment, the base path and
    the chain's own link; or, when the chain is not running, the page that says so."""
    lang, base = lang_of(request), state.settings.base_path
    env = await _my_env(state.settings, principal.user.username, env_id)
    if env.status != "running" or not env.rpc_urls:
        notice = f'<p role="status">{esc(text(lang, "not_running"))}</p>'
        return lang, env, base, "", page(lang, env.lab_id, notice, base)
    return lang, env, base, _link(state.settings, env_id), None


def _back(lang: str, link: str) -> str:
    return f'<p><a href="{esc(link)}">{esc(text(lang, "back"))}</a></p>' + find_form(lang, link)


def _unavailable(lang: str, title: str, base: str) -> HTMLResponse:
    body = f'<p role="alert" class="bad">{esc(text(lang, "rpc_error"))}</p>'
    return page(lang, title, body, base)


@router.get("/{env_id}", response_class=HTMLResponse)
async def chain_overview(
    env_id: str, request: Request, state: StateDep, principal: ViewerDep
) -> HTMLResponse:
    """Status, latest blocks, validators, fault switches and the consensus state of one chain."""
    lang, env, base, link, notice = await _chain_or_notice(request, state, principal, env_id)
    if notice is not None:
        return notice
    title = f"{text(lang, 'chain')} · {env.lab_id}"
    try:
        async with Rpc(env.rpc_url) as rpc:
            status = await rpc.call("minichain_status")
            validators = await rpc.call("minichain_validators")
            consensus = await rpc.call("minichain_consensusState")
            height = int(status["height"])
            blocks = []
            for n in range(height, max(height - LATEST, 0) - 1, -1):
                blocks.append(await rpc.call("eth_getBlockByNumber", hex(n), False))
            per_node = []
            for url in env.rpc_urls:
                try:
                    per_node.append(await rpc.call("minichain_status", url=url))
                except ChainUnavailable:
                    per_node.append(None)
    except ChainUnavailable:
        return _unavailable(lang, title, base)

    body = find_form(lang, link)
    body += facts(
        [
            (text(lang, "chain_id"), esc(status["chain_id"])),
            (text(lang, "height"), esc(height)),
            (text(lang, "consensus"), esc(status["consensus"])),
        ],
        "status",
    )
    rows = [
        [
            f'<a href="{esc(link)}/block/{_int(b["number"])}">{_int(b["number"])}</a>',
            f"<code>{esc(b['hash'])}</code>",
            esc(len(b.get("transactions") or [])),
            esc(_when(b["timestamp"])),
        ]
        for b in blocks
        if b
    ]
    body += f'<h2 id="blocks-h">{esc(text(lang, "latest_blocks"))}</h2>'
    headers = [text(lang, k) for k in ("block", "hash", "transactions", "time")]
    body += table(headers, rows, "blocks")

    body += f"<h2>{esc(text(lang, 'validators'))}</h2>"
    yes, no = text(lang, "yes"), text(lang, "no")
    vrows = [
        [esc(v["id"]), f"<code>{esc(v['public_key'])}</code>", esc(yes if v["member"] else no)]
        for v in validators
    ]
    body += table(
        [text(lang, k) for k in ("validator", "public_key", "member")], vrows, "validators"
    )

    body += f"<h2>{esc(text(lang, 'faults'))}</h2>"
    body += _faults(lang, per_node)

    body += f"<h2>{esc(text(lang, 'consensus_state'))}</h2>"
    state_pairs = [(str(k), f"<code>{esc(v)}</code>") for k, v in consensus["state"].items()]
    state_pairs.append(("halted", esc(yes if consensus["halted"] else no)))
    body += facts(state_pairs, "consensus")
    events = consensus.get("recent_events") or []
    if events:
        items = "".join(f"<li><code>{esc(e)}</code></li>" for e in events[-10:])
        body += f'<ul id="events">{items}</ul>'
    return page(lang, title, body, base)


def _faults(lang: str, per_node: list[dict | None]) -> str:
    items = []
    for i, st in enumerate(per_node):
        if st is None:
            items.append(f"<li>v{i}: {esc(text(lang, 'unreachable'))}</li>")
            continue
        on = []
        if st.get("halted"):
            on.append(text(lang, "halted"))
        if st.get("byzantine"):
            on.append(f"{text(lang, 'byzantine')}: {st['byzantine']}")
        if st.get("partitioned_from"):
            on.append(f"{text(lang, 'partitioned')} {', '.join(map(str, st['partitioned_from']))}")
        if on:
            items.append(f"<li>{esc(st.get('id', f'v{i}'))}: {esc('; '.join(on))}</li>")
    if not items:
        return f'<p id="faults">{esc(text(lang, "no_faults"))}</p>'
    return f'<ul id="faults">{"".join(items)}</ul>'


@router.get("/{env_id}/find")
async def find(env_id: str, q: str, request: Request, state: StateDep, principal: ViewerDep) -> Any:
    """The search box: a block number or a transaction hash, else one line saying what to type."""
    q = q.strip()
    link = _link(state.settings, env_id)
    if q.isdigit():
        return RedirectResponse(f"{link}/block/{int(q)}", status_code=303)
    if TX_HASH.match(q):
        return RedirectResponse(f"{link}/tx/{q.lower()}", status_code=303)
    lang = lang_of(request)
    await _my_env(state.settings, principal.user.username, env_id)
    body = find_form(lang, link) + f'<p role="alert" class="bad">{esc(text(lang, "bad_query"))}</p>'
    return page(lang, text(lang, "find"), body, state.settings.base_path, 422)


@router.get("/{env_id}/block/{number}", response_class=HTMLResponse)
async def block_page(
    env_id: str, number: int, request: Request, state: StateDep, principal: ViewerDep
) -> HTMLResponse:
    """One block and its transactions."""
    lang, env, base, link, notice = await _chain_or_notice(request, state, principal, env_id)
    if notice is not None:
        return notice
    title = f"{text(lang, 'block')} {number}"
    try:
        async with Rpc(env.rpc_url) as rpc:
            block = await rpc.call("eth_getBlockByNumber", hex(number), True)
    except ChainUnavailable:
        return _unavailable(lang, title, base)
    back = _back(lang, link)
    if not block:
        return page(lang, title, back + f"<p>{esc(text(lang, 'not_found'))}</p>", base, 404)
    body = back + facts(
        [
            (text(lang, "hash"), f"<code>{esc(block['hash'])}</code>"),
            (text(lang, "parent"), f"<code>{esc(block['parentHash'])}</code>"),
            (text(lang, "time"), esc(_when(block["timestamp"]))),
            (text(lang, "gas_used"), esc(_int(block.get("gasUsed")))),
        ],
        "block",
    )
    body += f"<h2>{esc(text(lang, 'transactions'))}</h2>"
    txs = block.get("transactions") or []
    if not txs:
        body += f"<p>{esc(text(lang, 'no_transactions'))}</p>"
    else:
        rows = [
            [
                f'<a href="{esc(link)}/tx/{esc(t["hash"])}"><code>{esc(t["hash"])}</code></a>',
                f"<code>{esc(t['from'])}</code>",
                f"<code>{esc(t.get('to') or '—')}</code>",
                esc(_int(t.get("value"))),
            ]
            for t in txs
        ]
        headers = [text(lang, k) for k in ("hash", "from", "to", "value")]
        body += table(headers, rows, "txs")
    return page(lang, title, body, base)


@router.get("/{env_id}/tx/{tx_hash}", response_class=HTMLResponse)
async def tx_page(
    env_id: str, tx_hash: str, request: Request, state: StateDep, principal: ViewerDep
) -> HTMLResponse:
    """One transaction with its receipt and the logs (events) it emitted."""
    lang, env, base, link, notice = await _chain_or_notice(request, state, principal, env_id)
    if notice is not None:
        return notice
    title = f"{text(lang, 'transaction')} {tx_hash[:10]}…"
    if not TX_HASH.match(tx_hash):
        return page(lang, title, f'<p role="alert">{esc(text(lang, "bad_query"))}</p>', base, 422)
    try:
        async with Rpc(env.rpc_url) as rpc:
            tx = await rpc.call("eth_getTransactionByHash", tx_hash)
            receipt = await rpc.call("eth_getTransactionReceipt", tx_hash) if tx else None
    except ChainUnavailable:
        return _unavailable(lang, title, base)
    back = _back(lang, link)
    if not tx:
        return page(lang, title, back + f"<p>{esc(text(lang, 'not_found'))}</p>", base, 404)
    number = _int(tx.get("blockNumber"))
    pairs = [
        (text(lang, "hash"), f"<code>{esc(tx['hash'])}</code>"),
        (text(lang, "block"), f'<a href="{esc(link)}/block/{number}">{number}</a>'),
        (text(lang, "from"), f"<code>{esc(tx['from'])}</code>"),
        (text(lang, "to"), f"<code>{esc(tx.get('to') or '—')}</code>"),
        (text(lang, "value"), esc(_int(tx.get("value")))),
        (text(lang, "data"), f"<code>{esc(tx.get('input') or '0x')}</code>"),
    ]
    call = decode_call(env.contracts, tx.get("to"), tx.get("input") or "0x")
    if call:
        pairs.append((text(lang, "call"), f'<code id="call">{esc(call)}</code>'))
    body = back + facts(pairs, "tx")
    if receipt:
        ok = _int(receipt.get("status")) == 1
        rpairs = [
            (
                text(lang, "outcome"),
                f'<span class="{"ok" if ok else "bad"}">'
                f"{esc(text(lang, 'success' if ok else 'failure'))}</span>",
            ),
            (text(lang, "gas_used"), esc(_int(receipt.get("gasUsed")))),
        ]
        if receipt.get("contractAddress"):
            rpairs.append(
                (text(lang, "created"), f"<code>{esc(receipt['contractAddress'])}</code>")
            )
        body += f"<h2>{esc(text(lang, 'receipt'))}</h2>" + facts(rpairs, "receipt")
        body += f"<h2>{esc(text(lang, 'logs'))}</h2>"
        logs = receipt.get("logs") or []
        if not logs:
            body += f"<p>{esc(text(lang, 'no_logs'))}</p>"
        else:
            rows = [
                [
                    f"<code>{esc(decode_log(env.contracts, lg) or '')}</code>",
                    f"<code>{esc(lg['address'])}</code>",
                    "<br>".join(f"<code>{esc(t)}</code>" for t in lg.get("topics", [])),
                    f"<code>{esc(lg.get('data', '0x'))}</code>",
                ]
                for lg in logs
            ]
            headers = [text(lang, k) for k in ("event", "address", "topics", "data")]
            body += table(headers, rows, "logs")
    return page(lang, title, body, base)
