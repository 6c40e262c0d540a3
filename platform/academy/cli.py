"""The ``academy`` command line: one entry point for learners' chains, grading and the platform.

Every command fails with one line that says what to do (exit code 2 for bad input), never with a
traceback for something the user typed.
"""

from __future__ import annotations

import contextlib
import json
import signal
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from academy.credentials.cli import credentials_app, verify_command
from labs.minichain.consensus import BUILTIN, EngineNotFound, load_engine
from labs.minichain.genesis import GenesisError, load_genesis
from labs.minichain.identity import IdentityError
from labs.minichain.netconfig import NetworkConfig, NetworkError, ensure_network, init_network

app = typer.Typer(
    help="ChainAcademy: blockchain labs, autograding and certificates.",
    no_args_is_help=True,
    add_completion=False,
)
chain_app = typer.Typer(
    help="Run a minichain network (the learners' permissioned EVM chain).", no_args_is_help=True
)
app.add_typer(chain_app, name="chain")
grade_app = typer.Typer(
    help="Release and autograde nbgrader-format assignments (sandboxed, no kernels).",
    no_args_is_help=True,
)
app.add_typer(grade_app, name="grade")
app.add_typer(credentials_app, name="credentials")
app.command("verify")(verify_command)

from academy.service_cli import register as _register_service  # noqa: E402

_register_service(app)

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

DataOpt = Annotated[Path, typer.Option("--data", help="network folder", show_default=True)]
CryptoOpt = Annotated[
    str,
    typer.Option(
        help="ChainMaker crypto profile: ecdsa (P-256 with SHA-256) | sm2 (SM2 with SM3)",
    ),
]


def fail(message: str) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(2)


@chain_app.command("init")
def chain_init(
    data: DataOpt = Path(".state/chain"),
    nodes: Annotated[int, typer.Option(help="number of validators")] = 4,
    consensus: Annotated[str, typer.Option(help=f"{' | '.join(BUILTIN)} | module:Class")] = "tbft",
    identity: Annotated[
        str, typer.Option(help="permissionedWithCert | permissionedWithKey")
    ] = "permissionedWithCert",
    accounts: Annotated[int, typer.Option(help="funded development accounts")] = 10,
    chain_id: Annotated[int, typer.Option(help="EIP-155 chain id")] = 1337,
    param: Annotated[
        list[str] | None, typer.Option(help="consensus parameter NAME=VALUE (repeatable)")
    ] = None,
    force: Annotated[bool, typer.Option(help="overwrite an existing chain in DATA")] = False,
    orgs: Annotated[
        int | None, typer.Option(help="ChainMaker orgs, each with its CA [one per validator]")
    ] = None,
    crypto: CryptoOpt = "ecdsa",
) -> None:
    """Create the consortium CA, validator keys and certificates, dev accounts and genesis."""
    if identity not in ("permissionedWithCert", "permissionedWithKey"):
        raise fail(f"--identity {identity!r}: use permissionedWithCert or permissionedWithKey")
    if crypto not in ("ecdsa", "sm2"):
        raise fail(f"--crypto {crypto!r}: use ecdsa (P-256, SHA-256) or sm2 (SM2, SM3)")
    try:
        load_engine(consensus)
    except EngineNotFound as exc:
        raise fail(str(exc)) from None
    params = {}
    for item in param or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise fail(f"--param {item!r}: write NAME=VALUE, e.g. --param timeout_propose=2.0")
        try:
            params[name] = json.loads(value)
        except json.JSONDecodeError:
            params[name] = value
    try:
        cfg = init_network(
            data,
            nodes,
            consensus,
            identity,
            accounts,
            chain_id,
            params,
            force,
            orgs=orgs,
            crypto=crypto,
        )
    except (NetworkError, GenesisError, IdentityError, OSError) as exc:
        raise fail(str(exc)) from None
    out.print(f"initialised a {nodes}-node {consensus} chain in {cfg.root} ({identity}, {crypto})")


def _summary(cfg: NetworkConfig) -> dict:
    genesis = load_genesis(cfg.genesis_path)
    summary: dict = {
        "nodes": [
            {"rpc_url": cfg.rpc_url(i), "pid": n.pid, "id": n.id} for i, n in enumerate(cfg.nodes)
        ],
        "accounts": cfg.accounts(),
        "chain_id": genesis.chain_id,
        "data": str(cfg.root),
    }
    if genesis.chainmaker is not None:
        for i, node in enumerate(summary["nodes"]):
            node["grpc_addr"] = cfg.grpc_addr(i)
        summary["chainmaker"] = {
            "chain_id": genesis.chainmaker.chain_id,
            "sdk_config": str(cfg.sdk_config_path),
            "crypto_config": str(cfg.crypto_config),
        }
    return summary


@chain_app.command("up")
def chain_up(
    data: DataOpt = Path(".state/chain"),
    nodes: Annotated[int, typer.Option(help="validators, when DATA must be initialised first")] = 4,
    consensus: Annotated[
        str, typer.Option(help="consensus, when DATA must be initialised first")
    ] = "tbft",
    detach: Annotated[
        bool, typer.Option(help="return once every node answers; print JSON (and only that)")
    ] = False,
    orgs: Annotated[
        int | None, typer.Option(help="ChainMaker orgs, when DATA must be initialised first")
    ] = None,
    crypto: CryptoOpt = "ecdsa",
    identity: Annotated[
        str,
        typer.Option(
            help="permissionedWithCert | permissionedWithKey, when DATA must be initialised first"
        ),
    ] = "permissionedWithCert",
) -> None:
    """Start every validator of the network in DATA (initialising it first if empty)."""
    from labs.minichain.network import start_network, stop_network

    if identity not in ("permissionedWithCert", "permissionedWithKey"):
        raise fail(f"--identity {identity!r}: use permissionedWithCert or permissionedWithKey")
    try:
        if ensure_network(data, nodes, consensus, orgs, crypto, identity):
            # stderr: with --detach, stdout is the JSON alone (so `| jq` works on a first up)
            err.print(
                f"initialised a {nodes}-node {consensus} chain in {data} ({identity}, {crypto})",
                highlight=False,
            )
    except (NetworkError, GenesisError, IdentityError, OSError) as exc:
        raise fail(str(exc)) from None
    try:
        load_genesis(data / "genesis.json")
        cfg = start_network(data)
    except (NetworkError, GenesisError, IdentityError, OSError) as exc:
        with contextlib.suppress(NetworkError, OSError):
            stop_network(data)
        raise fail(str(exc)) from None
    summary = _summary(cfg)
    if detach:
        print(json.dumps(summary, indent=2))
        return
    _print_welcome(summary)
    try:
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        stopped = stop_network(data)
        out.print(f"stopped {stopped} node(s); the chain is kept in {data}")


def _print_welcome(summary: dict) -> None:
    table = Table(title=f"minichain (chain id {summary['chain_id']}) — Ctrl-C stops it")
    table.add_column("node")
    table.add_column("JSON-RPC")
    table.add_column("pid")
    for i, n in enumerate(summary["nodes"]):
        table.add_row(f"node{i}", n["rpc_url"], str(n["pid"]))
    out.print(table)
    if summary["accounts"]:
        a = summary["accounts"][0]
        out.print(
            f"funded dev account: {a['address']}  (keys for all: {summary['data']}/accounts.json)"
        )
    out.print(
        'try: python -c "from web3 import Web3; '
        f"print(Web3(Web3.HTTPProvider('{summary['nodes'][0]['rpc_url']}')).eth.block_number)\""
    )


@chain_app.command("status")
def chain_status(
    data: DataOpt = Path(".state/chain"), as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """Show each node: running, height, connected peers."""
    from labs.minichain.network import network_status

    try:
        rows = network_status(data)
    except NetworkError as exc:
        raise fail(str(exc)) from None
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title=str(data))
    for col in ("node", "id", "rpc", "pid", "running", "height", "peers"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            f"node{r['index']}",
            r["id"][:10],
            r["rpc_url"],
            str(r["pid"] or "-"),
            "yes" if r["running"] else "no",
            str(r.get("height", "-")),
            str(r.get("peers", "-")),
        )
    out.print(table)


@chain_app.command("down")
def chain_down(data: DataOpt = Path(".state/chain")) -> None:
    """Stop every node of the network in DATA (the chain's data is kept)."""
    from labs.minichain.network import stop_network

    try:
        n = stop_network(data)
    except NetworkError as exc:
        raise fail(str(exc)) from None
    out.print(f"stopped {n} node(s)")


CourseOpt = Annotated[
    Path, typer.Option("--course", help="nbgrader course folder (source/, submitted/)")
]


@grade_app.command("release")
def grade_release(course: CourseOpt, assignment: str) -> None:
    """Make the learner version of ASSIGNMENT (solutions and hidden tests removed) in release/."""
    from grader.assignment import AssignmentError
    from grader.release import release

    try:
        written = release(course, assignment)
    except (AssignmentError, OSError) as exc:
        raise fail(str(exc)) from None
    for path in written:
        out.print(f"released {path}")


@grade_app.command("autograde")
def grade_autograde(
    course: CourseOpt,
    assignment: str,
    workers: Annotated[int, typer.Option(help="submissions graded at once")] = 2,
    results: Annotated[Path | None, typer.Option(help="write per-cell results JSON here")] = None,
    export: Annotated[Path | None, typer.Option(help="write the per-student CSV here")] = None,
    feedback: Annotated[
        Path | None, typer.Option(help="write HTML feedback into this folder")
    ] = None,
    cell_timeout: Annotated[float, typer.Option(help="wall seconds per cell")] = 30.0,
    scheduler: Annotated[
        str | None,
        typer.Option(help="grade on this Dask cluster (tcp://HOST:PORT) instead of locally"),
    ] = None,
) -> None:
    """Grade every submission of ASSIGNMENT in sandboxes, with a progress bar and an ETA."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from grader.assignment import AssignmentError, Course
    from grader.autograde import autograde
    from grader.cluster import ClusterError
    from grader.executor import SandboxError
    from grader.limits import Limits
    from grader.results import export_csv, write_feedback, write_results

    if workers < 1:
        raise fail("--workers must be at least 1")
    if scheduler is not None and not scheduler.startswith(("tcp://", "tls://")):
        raise fail(f"--scheduler must look like tcp://HOST:PORT, got {scheduler!r}")
    if scheduler is not None:
        from grader.cluster import check_scheduler

        try:
            check_scheduler(scheduler)
        except ClusterError as exc:
            raise fail(str(exc)) from None
    try:
        limits = Limits(cell_timeout=cell_timeout)
        students = Course(course).students(assignment)
        Course(course).source_notebooks(assignment)
    except (AssignmentError, ValueError, OSError) as exc:
        raise fail(str(exc)) from None
    if not students:
        raise fail(
            f"nobody submitted {assignment!r}: expected {course}/submitted/<student>/{assignment}/"
        )
    columns = (
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=False) as progress:
        task = progress.add_task(f"grading {assignment}", total=len(students))
        try:
            graded = autograde(
                course,
                assignment,
                workers=workers,
                limits=limits,
                students=students,
                on_done=lambda r: progress.advance(task),
                scheduler=scheduler,
            )
        except (AssignmentError, SandboxError, ClusterError, OSError) as exc:
            raise fail(str(exc)) from None
    scores = {student: r.notebooks for student, r in graded.items()}
    if results:
        write_results(results, scores)
    if export:
        export_csv(export, assignment, scores)
    if feedback:
        write_feedback(
            feedback, assignment, scores, {student: r.notes for student, r in graded.items()}
        )
    table = Table(title=f"{assignment}: {len(scores)} submission(s)")
    for col in ("student", "score", "max"):
        table.add_column(col)
    for student, notebooks in scores.items():
        got = sum(c.points or 0 for cells in notebooks.values() for c in cells.values())
        top = sum(c.max_points for cells in notebooks.values() for c in cells.values())
        table.add_row(student, f"{got:g}", f"{top:g}")
    out.print(table)


course_app = typer.Typer(
    help="Check course folders and build lab notebooks (course.toml, lab.toml, nbgrader).",
    no_args_is_help=True,
)
app.add_typer(course_app, name="course")


@course_app.command("check")
def course_check(
    root: Annotated[Path, typer.Argument(help="a courses folder, or one course folder")],
    course: Annotated[
        str | None, typer.Option("--course", help="check only this course id")
    ] = None,
    chain: Annotated[
        bool, typer.Option("--chain/--no-chain", help="start each lab's chain spec")
    ] = True,
    workers: Annotated[int, typer.Option(help="labs graded at once")] = 2,
    require_variants: Annotated[
        bool,
        typer.Option(
            "--require-variants",
            help="fail a lab with fewer than 5 mutants or 2 alternatives (see docs/authoring.md)",
        ),
    ] = False,
    require_languages: Annotated[
        bool,
        typer.Option(
            "--require-languages",
            help="fail a lab without a zh-CN version of every notebook and README",
        ),
    ] = False,
) -> None:
    """Validate every course; grade each lab's solution (full marks), starter (zero), mutants
    (must lose the points they name) and alternatives (full marks) in the sandbox, and the
    solution and starter of each translation, which must match the English cell for cell;
    start each lab's chain. One line per lab, then a total; exit 1 on any failure."""
    from academy.courses.check import check_courses
    from grader.executor import SandboxError

    if not root.exists():
        raise fail(f"{root} does not exist: give the courses folder, e.g. courses/")
    if workers < 1:
        raise fail("--workers must be at least 1")
    try:
        report = check_courses(
            root,
            course_id=course,
            chain=chain,
            workers=workers,
            require_variants=require_variants,
            require_languages=require_languages,
            on_lab=lambda r: out.print(r.line(), highlight=False),
        )
    except SandboxError as exc:
        raise fail(f"{exc} (run the check as root)") from None
    for problem in report.course_problems:
        out.print(f"FAIL {problem}", highlight=False)
    out.print(report.summary(), highlight=False)
    if not report.ok:
        raise typer.Exit(1)


@course_app.command("notebook")
def course_notebook(
    text: Annotated[Path, typer.Argument(help="lab text (# %% md / solution / test cells)")],
    notebook: Annotated[Path, typer.Argument(help="the .ipynb to write")],
) -> None:
    """Build an nbgrader source notebook from lab text (see docs/authoring.md)."""
    from academy.courses.labtext import LabTextError, build_file

    try:
        build_file(text, notebook)
    except (LabTextError, OSError) as exc:
        raise fail(str(exc)) from None
    out.print(f"wrote {notebook}")


@app.command("up")
def up(
    data: DataOpt = Path(".state/chain"),
    nodes: Annotated[int, typer.Option(help="validators of the shared chain")] = 4,
    consensus: Annotated[str, typer.Option(help="consensus of the shared chain")] = "tbft",
    chains: Annotated[
        str,
        typer.Option(
            help="learners' chains: sandbox (one per learner, for the first lab that asks for "
            "one), shared (one chain in --data for everyone), none, or auto (sandbox if possible)"
        ),
    ] = "auto",
    ledger: Annotated[
        bool,
        typer.Option(
            help="run the academy ledger (certificates anchored there) in STATE_DIR/ledger, "
            "unless ACADEMY_LEDGER_RPC_URL names one"
        ),
    ] = True,
) -> None:
    """Run ChainAcademy on its embedded defaults until Ctrl-C.

    JupyterHub with its proxy on http://localhost:8000 (ACADEMY_HUB_PORT), learners' JupyterLab as
    local processes, each on an origin of its own (http://NAME.localhost:8000), academy as the hub
    service /services/academy/ (SQLite under .state/ unless ACADEMY_DATABASE_URL says otherwise)
    grading in a local pool, the demo institution with the courses under courses/ imported, and a
    chain for the learners. Prints the URL and demo logins.
    """
    from academy.hub.launcher import HubError, run_up

    try:
        run_up(
            chains, data, nodes, consensus, ledger=ledger,
            say=lambda text: out.print(text, highlight=False),
        )  # fmt: skip
    except (HubError, NetworkError, GenesisError, IdentityError, OSError) as exc:
        raise fail(str(exc)) from None


with contextlib.suppress(ImportError):  # ``academy up --help`` lists every ACADEMY_* setting
    from academy.hub.launcher import settings_help

    up.__doc__ = (up.__doc__ or "") + "\n\n" + settings_help()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
