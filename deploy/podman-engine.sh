#!/usr/bin/env bash
# A Docker-API container engine on a machine without Docker: podman's API service, set up the way it
# was measured to work here (runc rather than crun on hybrid cgroups, default ulimits lowered to the
# host's hard limits, a user-namespace range per container) and the images the sandbox backend runs.
#
#   deploy/podman-engine.sh setup     install podman & co (apt), write containers.conf, subuid/subgid,
#                                     build the base image (debootstrap) and the node image on top
#   deploy/podman-engine.sh images    setup's images and the learner and academy images (prints
#                                     the three tags; deploy/images.sh builds them)
#   deploy/podman-engine.sh service   start `podman system service` on .state/engine/podman.sock
#                                     (no-op when it already answers); prints the DOCKER_HOST URL
#   deploy/podman-engine.sh env       prints the variables a caller exports (CONTAINERS_CONF, ...)
#
# Idempotent and cached: packages, the base image (in /var/lib/containers) and the other images (tagged
# by a hash of everything that goes into them) are built once; a second run takes about a second.
# Images come from no registry: the base is debootstrapped from the machine's own Debian mirror, and
# Python packages enter the images from a wheelhouse built on the host (pip's cache / PyPI).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STATE=${ACADEMY_STATE_DIR:-$ROOT/.state}
ENGINE=$STATE/engine
mkdir -p "$ENGINE"
ENGINE=$(cd "$ENGINE" && pwd)
export CONTAINERS_CONF=$ENGINE/containers.conf
SOCK=$ENGINE/podman.sock
BASE_IMAGE=localhost/chainacademy-base:bookworm-node
PY=${PYTHON:-$ROOT/.venv/bin/python}

log() { echo "podman-engine: $*" >&2; }
as_root() { if [ "$(id -u)" -ne 0 ]; then sudo "$@"; else "$@"; fi; }

install_packages() {
  local pkgs=(podman runc conmon catatonit netavark aardvark-dns containernetworking-plugins
              iptables fuse-overlayfs slirp4netns uidmap debootstrap)
  local missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

write_conf() {
  local nofile
  nofile=$(ulimit -Hn)
  [ "$nofile" = unlimited ] && nofile=1048576
  cat > "$CONTAINERS_CONF.tmp" <<CONF
# Written by deploy/podman-engine.sh. The host's root lacks CAP_SYS_RESOURCE, so containers may not
# raise nofile above its hard limit; crun refuses hybrid cgroups, runc works.
[containers]
userns = "auto"
default_ulimits = ["nofile=$nofile:$nofile", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
  mv "$CONTAINERS_CONF.tmp" "$CONTAINERS_CONF"
  for f in /etc/subuid /etc/subgid; do
    grep -q '^containers:' "$f" 2>/dev/null || echo "containers:2147483647:2147483648" | as_root tee -a "$f" >/dev/null
  done
}

build_base() {
  if podman image exists "$BASE_IMAGE"; then return; fi
  local mirror rootfs
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  rootfs=$(mktemp -d /var/tmp/chainacademy-rootfs.XXXXXX)
  log "debootstrapping the base image from $mirror (about a minute, once)"
  # Node.js and tini serve the learner and academy images (solc-js, configurable-http-proxy)
  as_root debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,nodejs,tini \
    bookworm "$rootfs" "$mirror" >/dev/null
  as_root rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | podman import --change 'CMD ["/bin/bash"]' - "$BASE_IMAGE" >/dev/null
  as_root rm -rf "$rootfs"
}

images() {  # the images the tests run, built by deploy/images.sh on this engine
  CONTAINER_CLI=podman IMAGE_PREFIX=localhost/chainacademy- BASE=$BASE_IMAGE PYTHON=$PY \
    bash deploy/images.sh "$@"
}

guard_host() {
  # Learner networks are internal (no route out), but the host itself sits on each bridge as its
  # gateway (that is where the network's DNS answers). Refuse every new connection from a container
  # bridge to the host except DNS, so nothing on the host answers a learner. With Docker Engine the
  # same rule goes on its bridges (br-+); see docs/scaling.md.
  command -v iptables >/dev/null || return 0
  as_root iptables -N CHAINACADEMY-SANDBOX 2>/dev/null || true
  as_root iptables -F CHAINACADEMY-SANDBOX
  as_root iptables -A CHAINACADEMY-SANDBOX -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN
  as_root iptables -A CHAINACADEMY-SANDBOX -p udp --dport 53 -j RETURN
  as_root iptables -A CHAINACADEMY-SANDBOX -p tcp --dport 53 -j RETURN
  as_root iptables -A CHAINACADEMY-SANDBOX -j REJECT
  as_root iptables -C INPUT -i podman+ -j CHAINACADEMY-SANDBOX 2>/dev/null \
    || as_root iptables -I INPUT -i podman+ -j CHAINACADEMY-SANDBOX
}

sweep_stale_networking() {
  # An engine killed with its containers (a crashed test run, a power cut) leaves kernel bridges and
  # aardvark-dns (the networks' DNS) behind; the next networks then get subnets beside stale ones and
  # the old aardvark answers only for networks that are gone, so container names stop resolving.
  # With no container left at all, nothing can use them: remove them (netavark makes them anew).
  [ -z "$(podman ps -aq 2>/dev/null)" ] || return 0
  local live link
  live=$(podman network ls -q 2>/dev/null | xargs -r podman network inspect \
           --format '{{.NetworkInterface}}' 2>/dev/null || true)
  for link in $(ip -o link show type bridge 2>/dev/null | awk -F': ' '{print $2}' | grep -E '^podman[0-9]+$'); do
    grep -qx "$link" <<<"$live" || as_root ip link delete "$link" 2>/dev/null || true
  done
  as_root pkill -x aardvark-dns 2>/dev/null || true
  as_root find /run/containers/networks/aardvark-dns -maxdepth 1 -type f ! -name '*.lock' \
    -delete 2>/dev/null || true
}

start_service() {
  if curl -sf --max-time 2 --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1; then
    echo "unix://$SOCK"; return
  fi
  rm -f "$SOCK"
  nohup podman system service --time=0 "unix://$SOCK" >"$ENGINE/service.log" 2>&1 &
  echo $! > "$ENGINE/service.pid"
  for _ in $(seq 100); do
    # 0660 like Docker Engine's socket: a container given its group (group_add) may use it
    curl -sf --max-time 1 --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1 \
      && { chmod 660 "$SOCK"; echo "unix://$SOCK"; return; }
    sleep 0.1
  done
  log "the podman service did not answer on $SOCK: see $ENGINE/service.log"; exit 1
}

case "${1:-setup}" in
  setup)
    install_packages
    command -v curl >/dev/null || { as_root apt-get install -y -qq --no-install-recommends curl >/dev/null; }
    write_conf
    sweep_stale_networking
    guard_host
    build_base
    images node
    ;;
  images)  # also the learner's and the platform's images (prints node, learner, academy tags)
    images all
    ;;
  service) start_service ;;
  env) echo "CONTAINERS_CONF=$CONTAINERS_CONF"; echo "DOCKER_HOST=unix://$SOCK" ;;
  *) echo "usage: $0 setup|service|env" >&2; exit 2 ;;
esac
