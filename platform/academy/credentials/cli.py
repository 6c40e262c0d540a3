"""``academy verify`` and ``academy credentials ...``: check a certificate from a shell.

``academy verify FILE`` prints every check with its outcome and exits 1 if any failed (2 for
input it cannot read). ``--offline`` reads only the cache folder: no network call is made.
``academy credentials cache FILE...`` fills that folder while online.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

DEFAULT_CACHE = Path(".state/credentials-cache")
RPC_ENV = "ACADEMY_LEDGER_RPC_URL"

credentials_app = typer.Typer(
    help="Certificates: fill the offline verification cache, make issuer keys.",
    no_args_is_help=True,
)
out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)

GenesisOpt = Annotated[
    str | None,
    typer.Option(
        "--genesis",
        envvar="ACADEMY_LEDGER_GENESIS",
        help="the academy ledger's genesis block hash, pinned: evidence from any other ledger "
        "fails (unpinned, the ledger is whatever the node or cache says)",
    ),
]

RegistryOpt = Annotated[
    str | None,
    typer.Option(
        "--registry",
        help="the issuer's registry address on the ledger, pinned: key records, anchors and "
        "status changes count only from it (unpinned, the issuer's DID document names it)",
    ),
]
DidWebHttpOpt = Annotated[
    bool,
    typer.Option(
        "--did-web-http",
        help="resolve a did:web whose host is loopback (127.0.0.1, ::1, localhost) over plain "
        "http, for academy run locally; every other host is resolved over https",
    ),
]

AllowPrivateOpt = Annotated[
    bool,
    typer.Option(
        "--allow-private-fetch",
        help="let status lists and DID documents be fetched from private, loopback and "
        "link-local addresses (refused by default: a credential chooses those addresses)",
    ),
]
DeadlineOpt = Annotated[
    float,
    typer.Option(
        "--fetch-deadline",
        min=0.1,
        help="seconds for each fetch of a status list or DID document, all reads and "
        "redirects included",
    ),
]


def _limits(deadline: float, allow_private: bool) -> Any:
    from .fetch import FetchLimits

    return FetchLimits(deadline=deadline, allow_private=allow_private)


STYLE = {"pass": "[green]PASS[/]", "fail": "[bold red]FAIL[/]", "n/a": "[dim]n/a [/]"}


def _fail(message: str) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(2)


def _read(path: Path) -> Any:
    from .jcs import CanonicalizationError, loads

    try:
        return loads(path.read_bytes())
    except FileNotFoundError:
        raise _fail(f"{path}: no such file") from None
    except OSError as exc:
        raise _fail(f"{path}: cannot read it: {exc.strerror}") from None
    except CanonicalizationError as exc:
        raise _fail(f"{path}: {exc}") from None


def verify_command(
    files: Annotated[list[Path], typer.Argument(help="the credential(s) (JSON)")],
    key: Annotated[
        str | None, typer.Option("--key", help="the issuer key you expect: Multikey or did:key")
    ] = None,
    offline: Annotated[
        bool, typer.Option("--offline", help="use only the cache folder: no network call at all")
    ] = False,
    cache: Annotated[
        Path | None, typer.Option("--cache", help=f"cache folder (default {DEFAULT_CACHE})")
    ] = None,
    rpc: Annotated[
        str | None,
        typer.Option("--rpc", help=f"a node of the academy ledger (default ${RPC_ENV})"),
    ] = None,
    genesis: GenesisOpt = None,
    registry: RegistryOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    allow_private: AllowPrivateOpt = False,
    fetch_deadline: DeadlineOpt = 10.0,
    did_web_http: DidWebHttpOpt = False,
) -> None:
    """Verify a certificate: print every check with its outcome; exit 1 if any check fails."""
    from .keys import KeyFormatError
    from .verify import CacheSources, OnlineSources, verify_credential

    documents = [_read(f) for f in files]
    if cache is not None and not offline:
        raise _fail("--cache goes with --offline (online checks ask the ledger directly)")
    if offline:
        sources: Any = CacheSources(cache or DEFAULT_CACHE, genesis=genesis, registry=registry)
    else:
        sources = OnlineSources(
            rpc or os.environ.get(RPC_ENV),
            genesis=genesis,
            limits=_limits(fetch_deadline, allow_private),
            registry=registry,
            did_web_http=did_web_http,
        )
    try:
        reports = [verify_credential(doc, sources, key=key) for doc in documents]
    except KeyFormatError as exc:
        raise _fail(f"--key: {exc}") from None
    if as_json:
        body = [r.to_json() for r in reports]
        print(json.dumps(body[0] if len(body) == 1 else body, indent=2))
    for path, report in zip(files, reports, strict=True):
        if as_json:
            break
        out.print(f"credential {report.credential_id or '(no id)'}  ({path})")
        for c in report.checks:
            out.print(f"  {STYLE[c.outcome]}  {c.name:<17} {c.detail}")
        colour = "green" if report.ok else "bold red"
        out.print(f"verdict: [{colour}]{report.verdict}[/]" + ("  (offline)" if offline else ""))
    raise typer.Exit(0 if all(r.ok for r in reports) else 1)


@credentials_app.command("cache")
def cache_command(
    files: Annotated[list[Path], typer.Argument(help="credentials to prepare offline checks for")],
    cache: Annotated[Path, typer.Option("--cache", help="cache folder")] = DEFAULT_CACHE,
    rpc: Annotated[
        str | None,
        typer.Option("--rpc", help=f"a node of the academy ledger (default ${RPC_ENV})"),
    ] = None,
    genesis: GenesisOpt = None,
    registry: RegistryOpt = None,
    allow_private: AllowPrivateOpt = False,
    fetch_deadline: DeadlineOpt = 10.0,
    did_web_http: DidWebHttpOpt = False,
) -> None:
    """Fetch (online) what `academy verify --offline` needs: each issuer's DID document, the
    ledger's signed commit evidence for the registry it names, and the signed status lists."""
    from .ledger import LedgerError
    from .verify import SourceError, fill_cache

    documents = [_read(f) for f in files]
    try:
        counts = fill_cache(
            cache,
            documents,
            rpc or os.environ.get(RPC_ENV),
            genesis,
            _limits(fetch_deadline, allow_private),
            registry,
            did_web_http,
        )
    except (LedgerError, SourceError) as exc:
        raise _fail(str(exc)) from None
    out.print(
        f"cached {counts['issuers']} issuer(s), evidence of {counts['registries']} ledger "
        f"registr{'y' if counts['registries'] == 1 else 'ies'} and {counts['status_lists']} "
        f"status list(s) in {cache}"
    )


@credentials_app.command("keygen")
def keygen_command() -> None:
    """Print a new Ed25519 key pair: the public Multikey, its did:key and the secret (keep it)."""
    from .keys import IssuerKey, did_key

    key = IssuerKey.generate()
    print(
        json.dumps(
            {
                "publicKeyMultibase": key.multikey,
                "did": did_key(key.multikey),
                "secretKeyMultibase": key.secret_multibase(),
            },
            indent=2,
        )
    )
