"""Settings of the academy service, read from environment variables prefixed ``ACADEMY_``.

Every default runs on one laptop with nothing else installed: SQLite under ``.state/``, grading in
a local pool inside the service process, no JupyterHub needed for API-token clients.  Production
points ``ACADEMY_DATABASE_URL`` at PostgreSQL and runs academy as a JupyterHub service.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """One object holds every knob; each part of academy adds its own fields in a small block."""

    model_config = SettingsConfigDict(env_prefix="ACADEMY_", extra="ignore", populate_by_name=True)

    # --- core (platform) ---------------------------------------------------------------------
    state_dir: Path = Field(Path(".state"), description="where the database and uploads live")
    database_url: str = Field(
        "",
        description="SQLAlchemy URL; empty means SQLite at STATE_DIR/academy.db "
        "(PostgreSQL: postgresql+psycopg://user@host/db)",
    )
    base_path: str = Field("/services/academy", description="URL prefix of every route")
    courses_dir: Path = Field(Path("courses"), description="folder of courses/<id>/course.toml")
    host: str = Field("127.0.0.1", description="address `academy serve` binds to")
    port: int = Field(8890, description="port `academy serve` binds to (0: pick a free one)")
    migrate_on_start: bool = Field(True, description="run Alembic migrations when the app starts")

    # --- grading queue (platform) -------------------------------------------------------------
    grade_workers: int = Field(
        2, ge=0, description="grading threads inside the service (0: only `academy worker`)"
    )
    grade_lease_seconds: float = Field(
        30.0, gt=0, description="a running job whose worker stops heartbeating is retried after"
    )
    grade_max_attempts: int = Field(3, ge=1, description="tries before a job is marked failed")
    grade_backoff_seconds: float = Field(2.0, ge=0, description="first retry delay (doubles)")
    grade_poll_seconds: float = Field(1.0, gt=0, description="idle workers look for jobs every")
    cell_timeout: float = Field(30.0, gt=0, description="wall seconds per notebook cell")
    grader_backend: Literal["local", "dask"] = Field(
        "local", description="where submissions are graded: local sandboxes or a Dask cluster"
    )
    dask_scheduler: str = Field(
        "", description="tcp://HOST:PORT of the Dask scheduler (grader_backend=dask)"
    )
    max_upload_bytes: int = Field(
        20 * 1024 * 1024, gt=0, description="largest notebook upload accepted"
    )

    # --- authentication (platform) ------------------------------------------------------------
    service_token: str = Field(
        "",
        description="API token the hub uses to call academy's internal endpoints "
        "(scope `hub`); registered at start when set",
    )
    hub_api_token: str = Field(
        "",
        validation_alias=AliasChoices("ACADEMY_HUB_API_TOKEN", "JUPYTERHUB_API_TOKEN"),
        description="token academy uses to ask JupyterHub who a token belongs to "
        "(set by the hub for a hub-managed service)",
    )
    hub_api_url: str = Field(
        "",
        validation_alias=AliasChoices("ACADEMY_HUB_API_URL", "JUPYTERHUB_API_URL"),
        description="JupyterHub's API URL (set by the hub for a hub-managed service)",
    )
    hub_client_id: str = Field(
        "",
        validation_alias=AliasChoices("ACADEMY_HUB_CLIENT_ID", "JUPYTERHUB_CLIENT_ID"),
        description="academy's OAuth client id at the hub (set by the hub)",
    )
    seed_demo: bool = Field(False, description="create the demo institution, users and course")

    # --- hub (JupyterHub in front of academy: `academy up`, academy.hub) -----------------------
    hub_ip: str = Field("127.0.0.1", description="address of the hub's public proxy")
    hub_port: int = Field(
        8000, description="public port: http://HUB_DOMAIN:HUB_PORT/ is the platform"
    )
    hub_domain: str = Field(
        "",
        description="the hub's host name; learner NAME's server is served at "
        "http://NAME.HUB_DOMAIN:HUB_PORT/, an origin of its own (academy.hub.origins), so "
        "its subdomains must resolve to this machine (wildcard DNS); empty: localhost, whose "
        "subdomains browsers send to loopback (a hub on a loopback HUB_IP only)",
    )
    hub_api_port: int = Field(8081, description="the hub's own API port, behind the proxy")
    hub_proxy_api_port: int = Field(8001, description="configurable-http-proxy's REST API port")
    hub_spawn_timeout: float = Field(
        180.0, gt=0, description="seconds a learner's JupyterLab (and academy) may take to start"
    )
    hub_lab: Path | None = Field(
        None,
        description="lab.toml whose chain each learner gets at spawn (labs.sandbox); "
        "empty: `academy up` picks the first lab that asks for a chain",
    )
    hub_chain_rpc_urls: str = Field(
        "", description="RPC URLs (comma-separated) of one chain shared by every learner"
    )
    hub_isolate: bool = Field(
        True,
        description="run each learner's server and kernels in a jail of their own "
        "(academy.hub.jail: bubblewrap, a hub running as root); false: as the hub's user, "
        "with no boundary between learners",
    )

    # --- certificates (credentials) ----------------------------------------------------------
    public_url: str = Field(
        "",
        description="origin the world reaches academy at, used in credential URLs "
        "(status lists, issuer profiles, share links); empty: http://HOST:PORT",
    )
    credentials_passphrase: str = Field(
        "",
        description="encrypts issuer private keys at rest; empty: a random secret kept in "
        "STATE_DIR/credentials.secret (mode 0600), away from the database",
    )
    ledger_rpc_url: str = Field(
        "", description="a node of the academy ledger (minichain); empty: credentials not anchored"
    )
    ledger_private_key: str = Field(
        "", description="the academy's account on the ledger (writes the registry)"
    )
    ledger_genesis: str = Field(
        "",
        description="genesis block hash of the academy ledger, pinned: academy neither issues "
        "on nor verifies against a ledger with another genesis; empty: the ledger academy "
        "recorded when it first deployed its registry",
    )
    credentials_auto_seconds: float = Field(
        60.0, ge=0, description="how often auto-issuing institutions issue a batch (0: never)"
    )
    credentials_workers: int = Field(
        0,
        ge=0,
        description="processes that canonicalize a batch of credentials before academy signs "
        "it (the key stays in academy's process); 0: one per CPU core; 1: none, all in-process",
    )

    # --- learners' lab chains (services.labchains) and the chain explorer (pages) --------------
    sandbox_dir: Path | None = Field(
        None,
        description="labs.sandbox state folder of the learners' lab chains: academy starts each "
        "lab's chain there and the explorer shows them (empty: STATE_DIR/sandbox, where the hub "
        "keeps them)",
    )
    sandbox_config: Path | None = Field(
        None,
        description="traitlets config file of labs.sandbox, the one the hub loads (e.g. "
        "c.SandboxManager.backend_class = 'docker' in production); empty: local processes",
    )
    learner_home_template: str = Field(
        "",
        description="the learners' server folders, with {username} (the hub's home_dir_template): "
        "academy copies a lab chain's ChainMaker SDK configuration and its orgs' users there, "
        "where a jailed server reads them; empty: hand over the chain's own sdk_config.yml path",
    )
    lab_idle_seconds: float = Field(
        3600.0,
        ge=0,
        description="a learner's lab chain unused this long is stopped (state kept; it starts "
        "again on next use); 0: never",
    )

    @model_validator(mode="after")
    def _derive(self) -> Settings:
        self.base_path = "/" + self.base_path.strip("/") if self.base_path.strip("/") else ""
        if self.grader_backend == "dask" and not self.dask_scheduler:
            raise ValueError("grader_backend=dask needs ACADEMY_DASK_SCHEDULER=tcp://HOST:PORT")
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.state_dir / 'academy.db').resolve()}"
        if self.service_token and not self.service_token.startswith("aca_"):
            # academy tells its own tokens from the hub's by this prefix: without it the hub's
            # password checks would be sent to the hub to identify, and every login refused
            raise ValueError(
                "ACADEMY_SERVICE_TOKEN must start with 'aca_': make one with "
                "python3 -c \"import secrets; print('aca_' + secrets.token_urlsafe(32))\""
            )
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
