#!/usr/bin/env bash
# Installs the Debian 12 packages Locrit needs to build and test, and nothing when they are all present.
# Safe to run again: it only asks apt-get for what dpkg does not already report as installed.
# `scripts/deps.sh bench` adds what only the benchmarks need (wrk).
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config ccache
  libsqlite3-dev sqlite3 libcurl4-openssl-dev
  libfmt-dev libcli11-dev libtomlplusplus-dev
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev libssl-dev ca-certificates
  libgtest-dev libgmock-dev libbenchmark-dev
)
if [[ ${1:-} == bench ]]; then
  packages+=(wrk curl)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "deps: installing ${missing[*]}"
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y --no-install-recommends "${missing[@]}"
