#!/usr/bin/env python3
"""Offline: goldens for how Whisper's word timestamps group tokens into words (faster-whisper 1.2.1's
`Tokenizer.split_to_word_tokens`): on every complete character for languages written without spaces (zh, ja, th,
lo, my, yue), at spaces and punctuation otherwise. Encodes texts with whisper-base's tokenizer.json, appends the
end-of-text token as faster-whisper's `find_alignment` does, and records words and their tokens per language.
One case ends on a lone leading byte (the model wrote invalid UTF-8). Run with the peer venv after
`scripts/fetch-models.sh models-extra extra`:

    ~/.cache/mass-peers/bin/python scripts/make-word-split-goldens.py models-extra/whisper-base/1/tokenizer.json \
        > Tests/MassTokenizersTests/Goldens/whisper-word-split.json
"""
import json
import sys

import faster_whisper
import tokenizers
from faster_whisper.tokenizer import Tokenizer

TEXTS = [
    "我喜欢在周末去公园散步。", "今天天气很好，我们去爬山吧！", "這是一個繁體中文的句子。", "北京欢迎你 Hello 世界",
    "東京は日本の首都です。", "すみません、駅はどこですか？", "สวัสดีชาวโลก", "ສະບາຍດີ", "မင်္ဂလာပါ",
    "我們今天吃點心，好唔好？", "He said: 你好! OK.", " And so, my fellow Americans, ask not.", "😀👍 emoji 🎉",
]


def main():
    hf = tokenizers.Tokenizer.from_file(sys.argv[1])
    out = {"faster_whisper": faster_whisper.__version__, "cases": []}
    for text in TEXTS:
        ids = hf.encode(text, add_special_tokens=False).ids
        cases = [ids]
        if len(text.encode()) > len(text):
            # The same tokens with a lone leading byte of a three-byte character before the end.
            cases.append(ids + [hf.token_to_id("ä")])
        for tokens in cases:
            for language in ["zh", "ja", "th", "lo", "my", "yue", "en", "de"]:
                tokenizer = Tokenizer(hf, True, task="transcribe", language=language)
                words, word_tokens = tokenizer.split_to_word_tokens(tokens + [tokenizer.eot])
                out["cases"].append({"text": text, "language": language, "tokens": tokens + [tokenizer.eot],
                                     "words": words, "word_tokens": word_tokens})
    print(json.dumps(out, ensure_ascii=False, separators=(",", ":")))


if __name__ == "__main__":
    main()
