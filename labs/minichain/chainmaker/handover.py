"""A chain's SDK configuration and its members' certificates, copied where a learner's server reads.

The chain's own folder holds every node's keys and every org's CA key, and the jailed learner's
server sees neither that folder nor files only root may read. So the learner gets a copy in their
own folder: ``sdk_config.yml`` pointing at the copy, each org's CA certificate (the TLS trust
roots) and the users of each org (``client1``, ``admin1``: governance labs sign as several orgs'
admins). Node keys and CA keys stay behind. The copy belongs to whoever owns the destination's
parent folder, so it opens for the learner's own user whatever user wrote it.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import yaml

from .chainconfig import write_yaml


def hand_over(sdk_config: Path, home: Path, name: str) -> Path:
    """Copy what ``ChainClient.from_conf()`` needs from ``sdk_config`` into
    ``home/.chainmaker/name``; returns the copied ``sdk_config.yml``. Replaces an earlier copy
    there (a chain's ports change when it restarts)."""
    top = home / ".chainmaker"
    top.mkdir(parents=True, exist_ok=True)
    _own_like(top, home)
    dest = top / (re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-") or "lab")
    document = yaml.safe_load(Path(sdk_config).read_text())
    client = document["chain_client"]
    crypto = Path(client["user_sign_key_file_path"]).parents[3]
    staging = dest.with_name(dest.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    copied = staging / "crypto-config"
    for org in sorted(p for p in crypto.iterdir() if p.is_dir()):
        (copied / org.name).mkdir(parents=True)
        if (org / "ca" / "ca.crt").exists():  # permissionedWithKey orgs have no CA
            (copied / org.name / "ca").mkdir()
            shutil.copyfile(org / "ca" / "ca.crt", copied / org.name / "ca" / "ca.crt")
        for user in sorted((org / "user").iterdir()):
            shutil.copytree(user, copied / org.name / "user" / user.name)
    final = dest / "crypto-config"
    for key in (
        "user_key_file_path",
        "user_crt_file_path",
        "user_sign_key_file_path",
        "user_sign_crt_file_path",
    ):
        if key in client:
            client[key] = str(final / Path(client[key]).relative_to(crypto))
    for node in client["nodes"]:
        node["trust_root_paths"] = [
            str(final / Path(p).relative_to(crypto)) for p in node.get("trust_root_paths", [])
        ]
    write_yaml(staging / "sdk_config.yml", document)
    _own_like(staging, home)
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(staging, dest)
    return dest / "sdk_config.yml"


def _own_like(folder: Path, home: Path) -> None:
    """Give ``folder`` and all in it to the owner of ``home``, readable by them alone."""
    st = home.stat()
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o700)
        for name in files:
            os.chmod(os.path.join(root, name), 0o600)
        if os.geteuid() == 0:
            for name in (*dirs, *files):
                os.lchown(os.path.join(root, name), st.st_uid, st.st_gid)
    os.chmod(folder, 0o700)
    if os.geteuid() == 0:
        os.chown(folder, st.st_uid, st.st_gid)
