#!/usr/bin/env bash
# Makes a fresh Debian machine ready to run and test SSC Hub: system packages, the virtualenv,
# PostgreSQL answering on 127.0.0.1:5432 with the project's role, and pcscd with the vpcd driver.
# Safe to run again: each step checks first and does only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
PACKAGES=(python3-venv python3-dev gcc make swig libpcsclite-dev pcscd vsmartcard-vpcd pcsc-tools
          libzbar0 chromium fonts-dejavu-core postgresql postgresql-contrib)
STAMP=var/.setup-packages

say() { printf '==> %s\n' "$*"; }

install_packages() {
  local missing=()
  for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return
  say "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

python_bin() {
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
      echo "$candidate"; return
    fi
  done
  echo "Python 3.11 or newer is required" >&2; exit 1
}

make_venv() {
  if [ ! -x .venv/bin/python ]; then
    say "creating .venv"
    "$(python_bin)" -m venv .venv
  fi
  # Reinstall only when the project's requirements changed.
  local want; want=$(sha256sum pyproject.toml | cut -c1-16)
  if [ "$(cat .venv/.installed 2>/dev/null)" != "$want" ]; then
    say "installing the project into .venv"
    .venv/bin/pip install -q --upgrade pip
    .venv/bin/pip install -q -e '.[dev]'
    echo "$want" > .venv/.installed
  fi
}

pg_ready() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }

start_postgres() {
  if ! pg_ready; then
    say "starting PostgreSQL"
    local version; version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
    if [ -z "$version" ]; then echo "no PostgreSQL cluster found" >&2; exit 1; fi
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start || $SUDO pg_ctlcluster "$version" main start
    for _ in $(seq 30); do pg_ready && break; sleep 1; done
  fi
  pg_ready || { echo "PostgreSQL does not answer on 127.0.0.1:5432" >&2; exit 1; }
  # The project's role; the password also satisfies scram/md5 rules of a stock pg_hba.conf.
  local psql=(psql -h /var/run/postgresql -U postgres -qtAX)
  [ "$(id -u)" -eq 0 ] && psql=(runuser -u postgres -- psql -qtAX)
  if ! "${psql[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname='sshub'" | grep -q 1; then
    say "creating PostgreSQL role sshub"
    "${psql[@]}" -c "CREATE ROLE sshub LOGIN CREATEDB PASSWORD 'sshub'"
  fi
  if ! "${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname='sshub'" | grep -q 1; then
    "${psql[@]}" -c "CREATE DATABASE sshub OWNER sshub"
  fi
}

start_pcscd() {
  # pcscd loads the vpcd driver at start and then listens on 127.0.0.1:35963 for virtual cards.
  if ! pgrep -x pcscd >/dev/null; then
    say "starting pcscd"
    $SUDO pcscd
    sleep 1
  fi
}

mkdir -p var
install_packages
make_venv
[ "${1:-}" = "--demo" ] && exit 0
start_postgres
start_pcscd
say "ready"
