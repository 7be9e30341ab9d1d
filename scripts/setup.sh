#!/usr/bin/env bash
# Install the Debian packages exosbi needs (only those missing), then configure
# and build it in build/.  Idempotent and non-interactive.
#   scripts/setup.sh            release build in build/
#   EXOSBI_BUILD_DIR=dir EXOSBI_CMAKE_ARGS="-DEXOSBI_SANITIZE=ON" scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(cmake build-essential pkg-config git openmpi-bin libopenmpi-dev libhdf5-openmpi-dev hdf5-tools
          libscalapack-openmpi-dev libopenblas-dev liblapacke-dev petsc-dev libyaml-dev libcjson-dev
          libcfitsio-dev librandom123-dev libssl-dev python3-h5py python3-matplotlib python3-numpy)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q -o DPkg::Lock::Timeout=900 "${missing[@]}"
fi

build="${EXOSBI_BUILD_DIR:-build}"
# shellcheck disable=SC2086
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release ${EXOSBI_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j"$(nproc)"
echo "setup: built $build/exosbi"
