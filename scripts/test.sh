#!/usr/bin/env bash
# Set up, build with warnings as errors, run the whole test suite, then build
# with AddressSanitizer + UndefinedBehaviorSanitizer and run the unit tests in it.
set -euo pipefail
cd "$(dirname "$0")/.."
EXOSBI_CMAKE_ARGS="-DEXOSBI_WERROR=ON" scripts/setup.sh
(cd build && ctest --output-on-failure -j"$(nproc)" --timeout 900)
EXOSBI_BUILD_DIR=build-asan EXOSBI_CMAKE_ARGS="-DEXOSBI_WERROR=ON -DEXOSBI_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug" \
  scripts/setup.sh
(cd build-asan && ctest --output-on-failure -j"$(nproc)" -L unit -LE slow --timeout 900)
