#!/usr/bin/env bash
# Builds the platform's three images with no registry and no network inside the build, for Docker
# Engine (production) or podman (the tests' engine, deploy/podman-engine.sh):
#
#   deploy/images.sh node       the minichain validators (labs.sandbox's docker backend runs it)
#   deploy/images.sh learner    the learner's JupyterLab (DockerSpawner / KubeSpawner run it)
#   deploy/images.sh academy    hub, academy, grader workers (deploy/compose.yaml runs it)
#   deploy/images.sh all
#
# Each prints the tag it built (NAME:<hash of its inputs>, also tagged :latest) and is skipped when
# that tag exists, so a second run takes about a second. What enters the images comes from the
# host, pinned by the repository: Python packages from a wheelhouse (`pip wheel`, out of pip's cache
# or the package index), npm packages from node_modules/ and the JupyterLab extension as
# `make setup` installed and built them. Settings (environment):
#   CONTAINER_CLI  docker | podman            [docker if it is on PATH, else podman]
#   IMAGE_PREFIX   repository prefix          [chainacademy/ ; podman-engine.sh: localhost/chainacademy-]
#   IMAGE_PYTHON   the base's python3 version, GLIBC_MINOR its glibc's  [3.11.2, 36: bookworm]
#   BASE           Debian bookworm base with python3 and python3-venv (learner and academy also
#                  want nodejs and tini; a base without them gets them from apt) [debian:bookworm-slim]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STATE=${ACADEMY_STATE_DIR:-$ROOT/.state}
WORK=$STATE/images
mkdir -p "$WORK"
PY=${PYTHON:-$ROOT/.venv/bin/python}
CLI=${CONTAINER_CLI:-$(command -v docker >/dev/null && echo docker || echo podman)}
PREFIX=${IMAGE_PREFIX:-chainacademy/}
BASE=${BASE:-debian:bookworm-slim}

log() { echo "images: $*" >&2; }

exists() { "$CLI" image inspect "$1" >/dev/null 2>&1; }

# A digest of every file under the given paths (bytecode, build trees and the labext's own npm tree
# left out), so an image is rebuilt exactly when something that goes into it changed.
inputs_hash() {
  { echo "$BASE"; find "$@" \( -name __pycache__ -o -name node_modules -o -name '*.egg-info' \) -prune \
      -o -type f ! -name '*.pyc' -print 2>/dev/null | LC_ALL=C sort | xargs -d '\n' sha256sum; } \
    | sha256sum | cut -c1-12
}

# Wheels for the images' Python (Debian bookworm's python3 3.11.2, glibc 2.36), not the host's: the
# resolver then keeps packages that need a newer 3.11 out. The project itself is built here.
wheelhouse() {  # $1: directory, then pip requirement arguments
  local dir=$1; shift
  local plats=(--platform linux_x86_64) v
  for v in $(seq 17 "${GLIBC_MINOR:-36}"); do plats+=(--platform "manylinux_2_${v}_x86_64"); done
  log "building the wheelhouse $dir"
  rm -rf "$dir" && mkdir -p "$dir"
  "$PY" -m pip download -q -d "$dir" --only-binary=:all: --python-version "${IMAGE_PYTHON:-3.11.2}" \
    "${plats[@]}" "$@" 2>&1 | { grep -v "^WARNING: Location" || true; } >&2
}

build() {  # $1: image name, $2: Dockerfile, $3: context, $4: tag
  log "building $4"
  local net=()
  [ "$CLI" = podman ] && net=(--network none)
  "$CLI" build -q "${net[@]}" --build-arg "BASE=$BASE" -t "$4" -f "$2" "$3" >&2
  "$CLI" tag "$4" "$PREFIX$1:latest"
}

build_node() {
  local tag ctx
  tag=$PREFIX"node:"$(inputs_hash deploy/node labs/__init__.py labs/minichain labs/sandbox/launcher.py)
  if exists "$tag"; then echo "$tag"; return; fi
  ctx=$(mktemp -d "$WORK/node.XXXXXX")
  wheelhouse "$WORK/wheels-node" -r deploy/node/requirements.txt
  mkdir -p "$ctx/labs/sandbox"
  cp -rl "$WORK/wheels-node" "$ctx/wheels"
  cp deploy/node/requirements.txt "$ctx/"
  cp labs/__init__.py "$ctx/labs/"
  cp -r labs/minichain "$ctx/labs/minichain"
  cp labs/sandbox/launcher.py "$ctx/labs/sandbox/"
  touch "$ctx/labs/sandbox/__init__.py"
  find "$ctx" -name __pycache__ -prune -exec rm -rf {} +
  build node deploy/node/Dockerfile "$ctx" "$tag"
  rm -rf "$ctx"
  echo "$tag"
}

# learner and academy share their first layers (the base, the venv of the whole project), so
# building the second reuses the first's.
APP_CTX=
app_context() {  # the build context of the learner and academy images, made once per run
  local labext=platform/academy/labext/share/labextensions
  [ -n "$APP_CTX" ] && return
  [ -d node_modules/solc ] && [ -d "$labext" ] \
    || { log "node_modules or the JupyterLab extension is missing: run 'make setup' first"; exit 1; }
  APP_CTX=$(mktemp -d "$WORK/app.XXXXXX")
  trap 'rm -rf "$APP_CTX"' EXIT
  rm -rf build  # setuptools would reuse an older build's files from it
  "$PY" -m pip wheel -q --no-deps -w "$APP_CTX/project" . 2>&1 | { grep -v "^WARNING: Location" || true; } >&2
  wheelhouse "$WORK/wheels-app" "chainacademy[hub] @ file://$(ls "$APP_CTX"/project/chainacademy-*.whl)"
  mv "$APP_CTX"/project/*.whl "$WORK/wheels-app/" && rmdir "$APP_CTX/project"
  cp -rl "$WORK/wheels-app" "$APP_CTX/wheels"
  cp -r node_modules "$APP_CTX/node_modules"
  cp -r "$labext" "$APP_CTX/labextensions"
}

app_hash() {
  inputs_hash "$1" pyproject.toml package-lock.json platform labs grader \
    platform/academy/labext/share/.chainacademy-built
}

build_app() {  # $1: learner | academy
  local tag
  tag=$PREFIX$1:$(app_hash "deploy/$1")
  if exists "$tag"; then echo "$tag"; return; fi
  app_context
  build "$1" "deploy/$1/Dockerfile" "$APP_CTX" "$tag"
  echo "$tag"
}

case "${1:-}" in
  node) build_node ;;
  learner | academy) build_app "$1" ;;
  all) build_node; build_app learner; build_app academy ;;
  *) echo "usage: $0 node|learner|academy|all" >&2; exit 2 ;;
esac
