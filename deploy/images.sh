#!/usr/bin/env bash
# Builds the platform's three images with no registry and no network inside the build, for Docker
# Engine (production) or podman (the tests' engine, deploy/podman-engine.sh):
#
#   deploy/images.sh node       the minichain validators (labs.sandbox's docker backend runs it)
#   deploy/images.sh learner    the learner's JupyterLab (DockerSpawner / KubeSpawner run it)
#   deploy/images.sh academy    hub, academy, grader workers (deploy/compose.yaml runs it)
#                               (both FROM app-base: the project's venv and node_modules)
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
#   BASE           Debian bookworm base of node and app-base, with python3 and python3-venv
#                  (app-base also wants nodejs and tini; a base without them gets them from apt)
#                  [debian:bookworm-slim]
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
# left out), so an image is rebuilt exactly when something that goes into it changed. The built
# JupyterLab extension is left out too: its bundle names differ with the folder it was built in,
# so every clone would rebuild the images; its sources and the stamp of them stand for it.
inputs_hash() {
  { echo "$BASE"; find "$@" \( -name __pycache__ -o -name node_modules -o -name '*.egg-info' \
      -o -path '*/labext/share/labextensions' \) -prune \
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

# The ChainMaker SDK's wheel alone: it names pysha3, which does not build on Python 3.11; the
# wheelhouse holds its other dependencies (and safe-pysha3 for the same `sha3` module).
CHAINMAKER_SDK=chainmaker==3.0.7
chainmaker_sdk() {  # $1: wheelhouse directory
  "$PY" -m pip download -q --no-deps -d "$1" --only-binary=:all: "$CHAINMAKER_SDK" 2>&1 \
    | { grep -v "^WARNING: Location" || true; } >&2
}

build() {  # $1: image name, $2: Dockerfile, $3: context, $4: tag, then more build arguments
  log "building $4"
  local name=$1 file=$2 ctx=$3 tag=$4 net=()
  shift 4
  [ "$CLI" = podman ] && net=(--network none)
  "$CLI" build -q "${net[@]}" "$@" -t "$tag" -f "$file" "$ctx" >&2
  "$CLI" tag "$tag" "$PREFIX$name:latest"
}

RUN_DIR=$(mktemp -d "$WORK/run.XXXXXX")
trap 'rm -rf "$RUN_DIR"' EXIT
context() {  # a fresh build-context folder, removed when the script ends
  mktemp -d "$RUN_DIR/ctx.XXXXXX"
}

build_node() {
  local tag ctx
  tag=$PREFIX"node:"$(inputs_hash deploy/node deploy/images.sh labs/__init__.py labs/minichain labs/sandbox/launcher.py)
  if exists "$tag"; then echo "$tag"; return; fi
  ctx=$(context)
  wheelhouse "$WORK/wheels-node" -r deploy/node/requirements.txt
  chainmaker_sdk "$WORK/wheels-node"
  mkdir -p "$ctx/labs/sandbox"
  cp -rl "$WORK/wheels-node" "$ctx/wheels"
  cp deploy/node/requirements.txt "$ctx/"
  cp labs/__init__.py "$ctx/labs/"
  cp -r labs/minichain "$ctx/labs/minichain"
  cp labs/sandbox/launcher.py "$ctx/labs/sandbox/"
  touch "$ctx/labs/sandbox/__init__.py"
  find "$ctx" -name __pycache__ -prune -exec rm -rf {} +
  build node deploy/node/Dockerfile "$ctx" "$tag" --build-arg "BASE=$BASE"
  echo "$tag"
}

app_hash() {  # the folders of the images' own Dockerfiles, then everything they install
  inputs_hash "$@" pyproject.toml package-lock.json platform labs grader \
    platform/academy/labext/share/.chainacademy-built
}

# learner and academy are built FROM app-base: the project's venv and node_modules, built once.
APP_BASE_TAG=
build_app_base() {  # sets APP_BASE_TAG (in this shell: learner and academy of one run share it)
  local ctx
  APP_BASE_TAG=$PREFIX"app-base:"$(app_hash deploy/app-base)
  exists "$APP_BASE_TAG" && return
  [ -d node_modules/solc ] || { log "node_modules is missing: run 'make setup' first"; exit 1; }
  ctx=$(context)
  rm -rf build  # setuptools would reuse an older build's files from it
  "$PY" -m pip wheel -q --no-deps -w "$ctx/project" . 2>&1 | { grep -v "^WARNING: Location" || true; } >&2
  wheelhouse "$WORK/wheels-app" "chainacademy[hub] @ file://$(ls "$ctx"/project/chainacademy-*.whl)"
  mv "$ctx"/project/*.whl "$WORK/wheels-app/" && rmdir "$ctx/project"
  chainmaker_sdk "$WORK/wheels-app"
  cp -rl "$WORK/wheels-app" "$ctx/wheels"
  cp -r node_modules/ "$ctx/node_modules"  # its contents, also when node_modules is a link
  build app-base deploy/app-base/Dockerfile "$ctx" "$APP_BASE_TAG" --build-arg "BASE=$BASE"
}

build_app() {  # $1: learner | academy
  local tag ctx labext=platform/academy/labext/share/labextensions
  tag=$PREFIX$1:$(app_hash "deploy/$1" deploy/app-base)
  if exists "$tag"; then echo "$tag"; return; fi
  build_app_base
  ctx=$(context)
  if [ "$1" = learner ]; then
    [ -d "$labext" ] || { log "the JupyterLab extension is not built: run 'make setup' first"; exit 1; }
    cp -r "$labext" "$ctx/labextensions"
  fi
  build "$1" "deploy/$1/Dockerfile" "$ctx" "$tag" --build-arg "APP_BASE=$APP_BASE_TAG"
  echo "$tag"
}

case "${1:-}" in
  node) build_node ;;
  learner | academy) build_app "$1" ;;
  all) build_node; build_app learner; build_app academy ;;
  *) echo "usage: $0 node|learner|academy|all" >&2; exit 2 ;;
esac
