"""Compile Solidity and Vyper contracts, and deploy the result onto any chain web3.py reaches.

Why this module exists: a lab compiles the same few contracts thousands of times (every learner,
every grading run). So Solidity goes through one solc-js process kept alive per Python process
(loading the compiler costs seconds, a warm compile a fraction of one), and every compile of either
language is cached by the sha256 of everything that decides its output: the sources, the settings
and the compiler version. The cache lives in memory and on disk, so a second process (a grader
worker, a restarted kernel) gets the answer without compiling at all.

Both compilers produce the same :class:`CompiledContract`, so one :func:`deploy` puts either onto a
minichain (or any EVM chain) through web3.py. Every failure a learner can cause is one
:class:`ContractError` whose message names the file, line and column and says what to do.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import functools
import hashlib
import importlib.metadata
import json
import os
import re
import select
import shutil
import subprocess
import tempfile
import threading
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from web3 import Web3
    from web3.contract import Contract

DEFAULT_EVM_VERSION = "cancun"
"""The hard fork the minichain's EVM (py-evm's CancunVM) runs: compile for it, not the newest."""

OPTIMIZER_RUNS = 200
COMPILE_TIMEOUT = 300.0
"""Seconds one Solidity compile may take before the compiler process is considered hung."""

_SERVER_SCRIPT = Path(__file__).with_name("js") / "solc_server.js"
_SETUP_HINT = "run `make setup`"


class ContractError(Exception):
    """Base of every error this module raises; its message is meant to be shown as it is."""


class CompileError(ContractError):
    """The source does not compile. ``str()`` has one line per error: ``file:line:col: message``.

    ``details`` keeps the compiler's full text (with the source excerpt and caret) for tools that
    want to show more than the headline.
    """

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details or message


class CompilerNotFound(ContractError):
    """The compiler itself is missing (solc-js, node or vyper): the environment needs setting up."""


class DeployError(ContractError):
    """A deployment transaction was rejected or reverted."""


@dataclasses.dataclass(frozen=True)
class CompiledContract:
    """What a deployment needs from a compiler, the same for Solidity and Vyper."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    """Creation code, 0x-prefixed hex (what a deployment transaction carries)."""
    deployed_bytecode: str
    """Runtime code, 0x-prefixed hex (what ``eth_getCode`` returns after deployment)."""
    compiler_version: str
    language: str
    """``"solidity"`` or ``"vyper"``."""
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """Plain data for the disk cache (and for anyone storing an artifact)."""
        data = dataclasses.asdict(self)
        data["warnings"] = list(self.warnings)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CompiledContract:
        """Inverse of :meth:`to_json`."""
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in fields}
        values["warnings"] = tuple(values.get("warnings", ()))
        return cls(**values)


# ---------------------------------------------------------------------------------------------------
# Cache: memory first, then one JSON file per key on disk
# ---------------------------------------------------------------------------------------------------

_memory_cache: dict[str, CompiledContract] = {}
_known_on_disk: set[tuple[Path, str]] = set()


def default_cache_dir() -> Path:
    """``$ACADEMY_CACHE_DIR/solc``, else ``~/.cache/chainacademy/solc`` (both compilers use it)."""
    root = os.environ.get("ACADEMY_CACHE_DIR")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "chainacademy"
    return base / "solc"


def _cache_key(material: Any) -> str:
    canonical = json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _cache_get(key: str, cache_dir: Path) -> CompiledContract | None:
    hit = _memory_cache.get(key)
    if hit is not None:
        if (cache_dir, key) not in _known_on_disk:  # compiled for another cache folder
            _cache_put(key, hit, cache_dir)
        return hit
    try:
        data = json.loads((cache_dir / f"{key}.json").read_text())
        hit = CompiledContract.from_json(data)
    except (OSError, ValueError, TypeError):
        return None  # absent or unreadable: compiling again is always safe
    _memory_cache[key] = hit
    _known_on_disk.add((cache_dir, key))
    return hit


def _cache_put(key: str, compiled: CompiledContract, cache_dir: Path) -> None:
    _memory_cache[key] = compiled
    _known_on_disk.add((cache_dir, key))
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=f".{key}.", suffix=".tmp")
        with os.fdopen(fd, "w") as out:
            json.dump(compiled.to_json(), out)
        os.replace(tmp, cache_dir / f"{key}.json")  # atomic: parallel workers never read halves
    except OSError:
        pass  # a read-only or full disk costs speed, never a failed compile


# ---------------------------------------------------------------------------------------------------
# The kept-alive solc-js process
# ---------------------------------------------------------------------------------------------------


def find_solc() -> Path:
    """The ``node_modules/solc`` directory: from ``$ACADEMY_NODE_MODULES``, else the nearest
    ``node_modules`` above this file (the repository's, installed by ``make setup``)."""
    configured = os.environ.get("ACADEMY_NODE_MODULES")
    if configured:
        solc = Path(configured).expanduser() / "solc"
        if (solc / "package.json").is_file():
            return solc
        raise CompilerNotFound(
            f"no solc-js in ACADEMY_NODE_MODULES={configured}: {_SETUP_HINT} or fix the variable"
        )
    for parent in Path(__file__).resolve().parents:
        solc = parent / "node_modules" / "solc"
        if (solc / "package.json").is_file():
            return solc
    raise CompilerNotFound(
        f"the Solidity compiler (npm package solc) is not installed: {_SETUP_HINT}"
    )


def solc_package_version() -> str:
    """The installed solc-js version (e.g. ``0.8.30``), read without starting the compiler."""
    return _package_version(find_solc() / "package.json")


@functools.cache
def _package_version(package_json: Path) -> str:
    # Read once per process: a running compiler keeps the version it loaded anyway.
    return json.loads(package_json.read_text())["version"]


def _node_flags() -> list[str]:
    """Under an address-space cap (a grading sandbox's RLIMIT_AS), V8's wasm trap handler cannot
    reserve its 8+ GB guard region and solc-js fails to load; bounds checks need no reservation."""
    import resource

    soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
    return [] if soft == resource.RLIM_INFINITY else ["--disable-wasm-trap-handler"]


class _SolcServer:
    """One node process running ``js/solc_server.js``: started on first use, restarted if it died,
    closed at interpreter exit. A forked child never shares its parent's process (it starts its own)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._owner_pid = 0
        self._stderr: Any = None
        self._buffer = b""
        self._next_id = 0
        self.version = ""

    def pid(self) -> int | None:
        """The node process id, or None when none is running for this Python process."""
        proc = self._proc
        if proc is None or self._owner_pid != os.getpid() or proc.poll() is not None:
            return None
        return proc.pid

    def compile(self, standard_input: dict[str, Any]) -> dict[str, Any]:
        """Run one standard-json compile; retries once on a fresh process if the old one died."""
        with self._lock:
            for attempt in range(2):
                if self.pid() is None:
                    self._start()
                self._next_id += 1
                request = {"id": self._next_id, "input": standard_input}
                try:
                    reply = self._exchange(request)
                except (BrokenPipeError, EOFError):
                    died = self._stderr_tail()
                    self._discard()
                    if attempt == 1:
                        raise CompileError(
                            f"the Solidity compiler process died while compiling ({died}): "
                            "retry, and report it if it happens again"
                        ) from None
                    continue
                if "error" in reply:
                    raise CompileError(str(reply["error"]))
                return reply["output"]
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Stop the node process (it also exits by itself when our end of its stdin closes)."""
        proc = self._proc
        if proc is None or self._owner_pid != os.getpid():
            self._discard()
            return
        if proc.stdin is not None:  # always a pipe: the node is started with stdin=PIPE
            with contextlib.suppress(OSError):
                proc.stdin.close()
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        self._discard()

    def _start(self) -> None:
        solc_dir = find_solc()
        node = shutil.which("node")
        if node is None:
            raise CompilerNotFound(f"Node.js (`node`) is not on PATH: {_SETUP_HINT}")
        self._discard()
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the process)
        self._proc = subprocess.Popen(
            [node, *_node_flags(), str(_SERVER_SCRIPT), str(solc_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            bufsize=0,
        )
        self._owner_pid = os.getpid()
        self._buffer = b""
        try:
            ready = self._read_reply(COMPILE_TIMEOUT)
        except EOFError:
            detail = self._stderr_tail()
            self._discard()
            raise CompilerNotFound(
                f"the Solidity compiler failed to start ({detail}): {_SETUP_HINT}"
            ) from None
        self.version = str(ready.get("version", ""))

    def _exchange(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self._proc is not None and self._proc.stdin is not None
        pending = memoryview(json.dumps(request).encode() + b"\n")
        while pending:  # an unbuffered pipe may take a large request in several writes
            pending = pending[os.write(self._proc.stdin.fileno(), pending) :]
        while True:
            reply = self._read_reply(COMPILE_TIMEOUT)
            if reply.get("id") == request["id"]:
                return reply

    def _read_reply(self, timeout: float) -> dict[str, Any]:
        """Next JSON line from the process; EOFError if it exited, CompileError if it hung."""
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                self.close()
                raise CompileError(
                    f"the Solidity compiler took over {timeout:.0f} s: simplify the contract or retry"
                )
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                raise EOFError
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return json.loads(line)

    def _stderr_tail(self) -> str:
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=1)
        if self._stderr is None:
            return "no output"
        self._stderr.seek(0)
        lines = self._stderr.read().decode(errors="replace").strip().splitlines()
        code = self._proc.returncode if self._proc is not None else None
        last = lines[-1].strip() if lines else "no output"
        return f"exit code {code}: {last}" if code is not None else last

    def _discard(self) -> None:
        """Forget the process. In a forked child only our copies of its pipes are closed: the
        process itself belongs to the parent."""
        if self._proc is not None:
            for stream in (self._proc.stdin, self._proc.stdout):
                if stream is not None:  # both are pipes
                    with contextlib.suppress(OSError):
                        stream.close()
        if self._proc is not None and self._owner_pid == os.getpid():
            if self._proc.poll() is None:
                self._proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=3)
        if self._stderr is not None:
            self._stderr.close()
        self._proc, self._stderr, self._buffer = None, None, b""


_solc = _SolcServer()
atexit.register(_solc.close)


def solc_server_pid() -> int | None:
    """PID of this process's kept-alive solc-js node process (None before the first compile)."""
    return _solc.pid()


def stop_solc_server() -> None:
    """Stop the solc-js process now (the next Solidity compile starts a new one)."""
    with _solc._lock:
        _solc.close()


# ---------------------------------------------------------------------------------------------------
# Solidity
# ---------------------------------------------------------------------------------------------------

_SOLC_LOCATION = re.compile(r"-->\s*(.+?):(\d+):(\d+):")


def _solc_headline(error: Mapping[str, Any]) -> str:
    """One line for one solc diagnostic: ``file:line:col: Type: message``."""
    kind = error.get("type") or error.get("severity", "Error")
    text = f"{kind}: {error.get('message', '').strip()}"
    match = _SOLC_LOCATION.search(error.get("formattedMessage", ""))
    if match:
        return f"{match[1]}:{match[2]}:{match[3]}: {text}"
    location = error.get("sourceLocation") or {}
    return f"{location['file']}: {text}" if location.get("file") else text


def compile_solidity(
    source: str | Mapping[str, str],
    *,
    contract: str | None = None,
    evm_version: str = DEFAULT_EVM_VERSION,
    optimize: bool = True,
    cache_dir: Path | None = None,
) -> CompiledContract:
    """Compile Solidity and return one contract.

    ``source`` is one file's text (compiled as ``Contract.sol``) or ``{file name: text}`` with every
    file the imports need. ``contract`` picks by name (``"Token"`` or ``"Token.sol:Token"``); it may
    be left out when the sources define exactly one deployable contract.
    """
    sources = {"Contract.sol": source} if isinstance(source, str) else dict(source)
    if not sources:
        raise CompileError("no Solidity source given: pass the source text or {file name: text}")
    standard_input = {
        "language": "Solidity",
        "sources": {name: {"content": text} for name, text in sources.items()},
        "settings": {
            "evmVersion": evm_version,
            "optimizer": {"enabled": optimize, "runs": OPTIMIZER_RUNS},
            "outputSelection": {
                "*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}
            },
        },
    }
    cache_dir = cache_dir or default_cache_dir()
    key = _cache_key(
        {"solc": solc_package_version(), "input": standard_input, "contract": contract}
    )
    cached = _cache_get(key, cache_dir)
    if cached is not None:
        return cached

    output = _solc.compile(standard_input)
    diagnostics = output.get("errors", [])
    errors = [e for e in diagnostics if e.get("severity") == "error"]
    if errors:
        raise CompileError(
            "\n".join(_solc_headline(e) for e in errors),
            "\n".join(e.get("formattedMessage", e.get("message", "")) for e in errors),
        )
    (_file, name), artifact = _pick_contract(output.get("contracts", {}), contract)
    compiled = CompiledContract(
        name=name,
        abi=artifact["abi"],
        bytecode="0x" + artifact["evm"]["bytecode"]["object"],
        deployed_bytecode="0x" + artifact["evm"]["deployedBytecode"]["object"],
        compiler_version=_solc.version,
        language="solidity",
        warnings=tuple(_solc_headline(e) for e in diagnostics if e.get("severity") == "warning"),
    )
    _cache_put(key, compiled, cache_dir)
    return compiled


def _pick_contract(
    contracts: Mapping[str, Mapping[str, Any]], wanted: str | None
) -> tuple[tuple[str, str], Mapping[str, Any]]:
    every = {(f, n): a for f, by_name in contracts.items() for n, a in by_name.items()}
    if wanted is not None:
        file_part, _, name_part = wanted.rpartition(":")
        matches = {k: a for k, a in every.items() if k[1] == name_part and file_part in ("", k[0])}
        if len(matches) == 1:
            return next(iter(matches.items()))
        names = ", ".join(f"{f}:{n}" for f, n in every) or "none"
        if not matches:
            raise CompileError(f"no contract named {wanted!r} (the sources define: {names})")
        raise CompileError(f"several contracts are named {wanted!r}: name one as 'file.sol:Name'")
    deployable = {k: a for k, a in every.items() if a["evm"]["bytecode"]["object"]}
    if len(deployable) == 1:
        return next(iter(deployable.items()))
    if not deployable:
        raise CompileError(
            "the sources define no deployable contract (only interfaces or abstract)"
        )
    names = ", ".join(n for _, n in deployable)
    raise CompileError(f"the sources define several contracts ({names}): pass contract='Name'")


# import "a.sol";  import {A} from "a.sol";  import * as A from "a.sol";  import "a.sol" as A;
_SOL_IMPORT = re.compile(r"""\bimport\s+(?:[^;"']*?\bfrom\s+)?["']([^"']+)["']""")
_SOL_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.DOTALL)


def _solidity_sources(entry: Path) -> dict[str, str]:
    """The entry file and every file it imports (transitively) that exists on disk, named the way
    solc resolves imports: relative to the entry file's folder."""
    root = entry.parent.resolve()
    sources: dict[str, str] = {}
    pending = [entry.name]
    while pending:
        unit = pending.pop()
        if unit in sources:
            continue
        path = root / unit
        if not path.is_file():
            continue  # the compiler reports it, with the line of the import
        sources[unit] = path.read_text()
        for target in _SOL_IMPORT.findall(_SOL_COMMENT.sub("", sources[unit])):
            if target.startswith("."):
                target = os.path.normpath(os.path.join(os.path.dirname(unit), target))
            pending.append(Path(target).as_posix())
    return sources


# ---------------------------------------------------------------------------------------------------
# Vyper
# ---------------------------------------------------------------------------------------------------

_VYPER_LOCATION = re.compile(r'contract "(.+?):\d+".*?line (\d+):(\d+)')
_VYPER_IMPORT = re.compile(r"^\s*(?:from\s+([\w.]+)\s+)?import\s+([\w.]+)", re.MULTILINE)


@functools.cache
def _vyper_version() -> str:
    """The installed vyper version, read from package metadata (importing vyper costs ~1 s, which
    a cache hit should not pay)."""
    try:
        return importlib.metadata.version("vyper")
    except importlib.metadata.PackageNotFoundError:
        raise CompilerNotFound(f"the Vyper compiler is not installed: {_SETUP_HINT}") from None


def _vyper_imported_files(source: str, search_paths: list[Path]) -> dict[str, str]:
    """Texts of the modules ``source`` imports from ``search_paths`` (transitively), for the cache
    key: an edited imported module must never be answered from the cache."""
    found: dict[str, str] = {}
    pending = [source]
    while pending:
        for package, module in _VYPER_IMPORT.findall(pending.pop()):
            dotted = f"{package}.{module}" if package else module
            relative = dotted.lstrip(".").replace(".", "/")
            for base in search_paths:
                for suffix in (".vy", ".vyi", ".json"):
                    path = base / f"{relative}{suffix}"
                    key = str(path)
                    if key not in found and path.is_file():
                        found[key] = path.read_text()
                        pending.append(found[key])
    return found


def compile_vyper(
    source: str,
    *,
    name: str = "Contract",
    evm_version: str = DEFAULT_EVM_VERSION,
    cache_dir: Path | None = None,
    search_paths: list[Path] | None = None,
) -> CompiledContract:
    """Compile one Vyper module (errors and warnings name it ``<name>.vy``).

    ``search_paths`` are folders its ``import`` statements may load modules from.
    """
    version = _vyper_version()
    paths = [Path(p).resolve() for p in search_paths or []]
    key = _cache_key(
        {
            "vyper": version,
            "source": source,
            "name": name,
            "evm_version": evm_version,
            "imports": _vyper_imported_files(source, paths),
        }
    )
    cache_dir = cache_dir or default_cache_dir()
    cached = _cache_get(key, cache_dir)
    if cached is not None:
        return cached

    import vyper
    from vyper.compiler.input_bundle import FilesystemInputBundle
    from vyper.compiler.settings import Settings
    from vyper.exceptions import _BaseVyperException
    from vyper.warnings import VyperWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            output = vyper.compile_code(
                source,
                contract_path=f"{name}.vy",
                input_bundle=FilesystemInputBundle(paths) if paths else None,
                output_formats=["abi", "bytecode", "bytecode_runtime"],
                settings=Settings(evm_version=evm_version),
            )
        except _BaseVyperException as exc:
            raise CompileError(_vyper_headline(exc, name), str(exc)) from None
    compiled = CompiledContract(
        name=name,
        abi=output["abi"],
        bytecode=output["bytecode"],
        deployed_bytecode=output["bytecode_runtime"],
        compiler_version=version,
        language="vyper",
        warnings=tuple(
            _vyper_headline(w.message, name)
            for w in caught
            if isinstance(w.message, VyperWarning)  # a recorded warning's message is the instance
        ),
    )
    _cache_put(key, compiled, cache_dir)
    return compiled


def _vyper_headline(exc: Exception, name: str) -> str:
    """One line: ``Name.vy:line:col: ExceptionType: message`` (columns counted from 1, as solc)."""
    message = getattr(exc, "message", None) or str(exc).split("\n", 1)[0]
    text = f"{type(exc).__name__}: {' '.join(str(message).split())}"
    hint = getattr(exc, "hint", None)
    if hint:
        text += f" (hint: {hint})"
    match = _VYPER_LOCATION.search(str(exc))
    if match:
        return f"{match[1]}:{match[2]}:{int(match[3]) + 1}: {text}"
    return f"{name}.vy: {text}"


# ---------------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------------


def compile_file(
    path: str | Path, *, contract: str | None = None, cache_dir: Path | None = None
) -> CompiledContract:
    """Compile a ``.sol`` or ``.vy`` file; its imports are read from next to it."""
    path = Path(path)
    if not path.is_file():
        raise CompileError(f"{path}: no such file: check the path")
    suffix = path.suffix.lower()
    if suffix == ".sol":
        return compile_solidity(_solidity_sources(path), contract=contract, cache_dir=cache_dir)
    if suffix == ".vy":
        return compile_vyper(
            path.read_text(), name=path.stem, cache_dir=cache_dir, search_paths=[path.parent]
        )
    raise CompileError(f"{path}: cannot tell the language: name the file *.sol or *.vy")


# ---------------------------------------------------------------------------------------------------
# Deployment (web3.py)
# ---------------------------------------------------------------------------------------------------


def deploy(
    w3: Web3,
    compiled: CompiledContract,
    *args: Any,
    account: LocalAccount | str | bytes,
    value: int = 0,
    gas: int | None = None,
    timeout: float = 120.0,
) -> Contract:
    """Deploy ``compiled`` with constructor ``args`` and return the contract at its new address.

    The transaction is signed here with ``account`` (a LocalAccount or a private key) and sent raw,
    so the node never needs to hold a key. Raises :class:`DeployError` if it reverts.
    """
    from eth_account import Account
    from web3.exceptions import ContractLogicError, TimeExhausted, Web3Exception

    if "__$" in compiled.bytecode:
        raise DeployError(
            f"{compiled.name} uses libraries that are not linked: make their functions internal"
        )
    try:
        signer = Account.from_key(account) if isinstance(account, str | bytes) else account
    except (TypeError, ValueError):
        raise DeployError("account must be a LocalAccount or a 32-byte private key") from None
    factory = w3.eth.contract(abi=compiled.abi, bytecode=compiled.bytecode)
    params: dict[str, Any] = {
        "from": signer.address,
        "value": value,
        "nonce": w3.eth.get_transaction_count(signer.address, "pending"),
        "chainId": w3.eth.chain_id,
    }
    if gas is not None:
        params["gas"] = gas
    try:
        tx = factory.constructor(*args).build_transaction(params)
    except Exception as exc:  # the gas estimate ran the constructor; providers differ in errors
        text = _revert_text(exc)
        if isinstance(exc, ContractLogicError) or "revert" in text.lower():
            raise DeployError(f"constructor of {compiled.name} reverts: {text}") from None
        raise DeployError(f"cannot build the deployment of {compiled.name}: {text}") from None
    signed = signer.sign_transaction(tx)
    try:
        tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    except (ValueError, Web3Exception) as exc:
        raise DeployError(f"the chain rejected the deployment of {compiled.name}: {exc}") from None
    try:
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout)
    except TimeExhausted:
        raise DeployError(
            f"no receipt for the deployment of {compiled.name} ({tx_hash.to_0x_hex()}) after "
            f"{timeout:.0f} s: check that the chain is producing blocks"
        ) from None
    if receipt["status"] != 1:
        raise DeployError(
            f"deployment of {compiled.name} reverted in transaction {tx_hash.to_0x_hex()} "
            f"(gas used {receipt['gasUsed']} of {tx['gas']}): check the constructor arguments"
        )
    address = receipt["contractAddress"]
    if address is None:  # a successful creation always has one; web3 types it optional
        raise DeployError(
            f"the receipt of the deployment of {compiled.name} ({tx_hash.to_0x_hex()}) has no "
            "contract address"
        )
    return w3.eth.contract(address=address, abi=compiled.abi)


def contract_at(w3: Web3, compiled: CompiledContract, address: str) -> Contract:
    """The already deployed ``compiled`` contract at ``address``, ready for calls and transactions."""
    from eth_utils import to_checksum_address

    return w3.eth.contract(address=to_checksum_address(address), abi=compiled.abi)


def _revert_text(exc: Exception) -> str:
    message = getattr(exc, "message", None) or str(exc)
    return " ".join(str(message).split()) or "no reason given"


__all__ = [
    "DEFAULT_EVM_VERSION",
    "CompileError",
    "CompiledContract",
    "CompilerNotFound",
    "ContractError",
    "DeployError",
    "compile_file",
    "compile_solidity",
    "compile_vyper",
    "contract_at",
    "default_cache_dir",
    "deploy",
    "find_solc",
    "solc_server_pid",
    "stop_solc_server",
]
