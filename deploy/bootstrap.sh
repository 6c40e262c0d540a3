#!/usr/bin/env bash
# Sets a fresh machine up for ChainAcademy: Debian packages where missing, the .venv with every
# pinned Python package, and the pinned npm packages (solc-js, the proxy, the VC verifiers that
# the certificate tests cross-check with) inside the repository.
# Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
command -v sqlite3 >/dev/null 2>&1 || need_apt+=(sqlite3)
# the SM2 tests cross-check certificates and signatures with OpenSSL's own SM2
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)  # page tests (Playwright drives it)
# a CJK font, so pages in Chinese render as text (not boxes) in Chromium and its screenshots
[ -f /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc ] || need_apt+=(fonts-wqy-zenhei)
# bubblewrap: the embedded hub runs each learner's server in namespaces of its own
command -v bwrap >/dev/null 2>&1 || need_apt+=(bubblewrap)
python3 -c "import venv, ensurepip" >/dev/null 2>&1 || need_apt+=(python3-venv)
# the grading sandbox's seccomp filter (pyseccomp loads the system's libseccomp)
ldconfig -p 2>/dev/null | grep -q 'libseccomp\.so\.2' || need_apt+=(libseccomp2)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "bootstrap: installing Debian packages: ${need_apt[*]}"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.chainacademy-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "bootstrap: installing Python packages (pinned in pyproject.toml)"
  .venv/bin/python -m pip install -q --upgrade pip==25.3
  .venv/bin/python -m pip install -q -e ".[dev]"
  touch "$stamp"
fi
# The ChainMaker SDK without its declared dependencies: it names pysha3, which does not build on
# Python 3.11; pyproject.toml pins the others and safe-pysha3, which provides the same `sha3`.
chainmaker_sdk=3.0.7
if [ "$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("chainmaker"))' 2>/dev/null)" != "$chainmaker_sdk" ]; then
  echo "bootstrap: installing the ChainMaker SDK $chainmaker_sdk (without pysha3)"
  .venv/bin/python -m pip install -q --no-deps "chainmaker==$chainmaker_sdk"
fi

# npm rewrites node_modules/.package-lock.json itself, so a stamp of the lock's content decides.
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat node_modules/.chainacademy-lock 2>/dev/null)" != "$lock_sum" ]; then
  echo "bootstrap: installing npm packages (pinned in package-lock.json)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_sum" > node_modules/.chainacademy-lock
fi
# The learners' JupyterLab extension (Academy menu, Submit button): its own npm tree, built once
# per change of its sources into platform/academy/labext/share (on the learners' JUPYTER_PATH).
labext=platform/academy/labext
ext_sum=$(cat $labext/package-lock.json $labext/package.json $labext/src/*.js $labext/style/* | sha256sum | cut -d' ' -f1)
if [ "$(cat $labext/share/.chainacademy-built 2>/dev/null)" != "$ext_sum" ]; then
  echo "bootstrap: building the JupyterLab extension ($labext)"
  (cd $labext && npm ci --no-audit --no-fund --loglevel=error && rm -rf share \
    && ../../../.venv/bin/jupyter-builder build . >/dev/null)
  echo "$ext_sum" > $labext/share/.chainacademy-built
fi
# Commit messages: a short subject and a body (deploy/git-hooks/commit-msg), in a git checkout only.
if [ -d .git ] || [ -f .git ]; then
  [ "$(git config --local core.hooksPath 2>/dev/null)" = deploy/git-hooks ] \
    || git config --local core.hooksPath deploy/git-hooks
fi
echo "bootstrap: ready"
