#!/usr/bin/env bash
# Installs everything robo needs on a fresh machine: Chromium (Debian/Ubuntu
# package) and a virtual environment with robo and its development tools.
# Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

find_python() {
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "robo needs Python 3.11 or newer; install it and run this again" >&2
  return 1
}

if [ -z "${ROBO_CHROMIUM:-}" ] && [ ! -x /usr/bin/chromium ] && [ ! -x /usr/bin/chromium-browser ]; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
    say "installing Chromium (Debian package 'chromium')"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
  else
    say "no apt-get here: install Chromium yourself and set ROBO_CHROMIUM, or run '.venv/bin/playwright install chromium'"
  fi
fi

if [ ! -x .venv/bin/python ]; then
  python=$(find_python)
  say "creating .venv with $($python --version)"
  "$python" -m venv .venv
fi

stamp=.venv/.robo-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  say "installing robo and its dependencies into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev,postgres,celery]'
  touch "$stamp"
fi
