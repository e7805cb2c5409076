#!/usr/bin/env python3
"""Offline: build two small random-weight checkpoints of real Hugging Face architectures and record what
`transformers` computes on them, for Mass's text-classification and rerank parity tests.

No pretrained BERT classifier or cross-encoder ships inside a PyPI wheel (the small ones are fetched from a hub at
run time), so the tests use checkpoints of the same architecture (BertForSequenceClassification) with random
weights, saved exactly as `save_pretrained` saves them (config.json, model.safetensors) beside a WordPiece
tokenizer.json with BERT's normalizer, pre-tokenizer and pair template:

  Tests/MassModelsTests/Goldens/text-classifier/   3 labels (id2label), single-label
  Tests/MassModelsTests/Goldens/reranker/          1 label: a cross-encoder's relevance logit
  Tests/MassModelsTests/Goldens/text-heads.json    token ids, type ids, logits per case

usage: ~/.cache/mass-peers/bin/python scripts/make-text-head-goldens.py   (the peer kit's virtualenv; never at test time)
"""
import json
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests" / "MassModelsTests" / "Goldens"

CORPUS = [
    "Hello world", "A man is eating food.", "The new movie is awesome and I would watch it again.",
    "Two dogs play in the snow near a frozen lake while their owners watch from a bench.",
    "How do I reset my password?", "The quarterly report shows revenue growth in every region but one.",
    "Machine learning models need careful evaluation before they go into production.",
    "What is the capital of France?", "Paris is the capital and largest city of France.",
    "Berlin is the capital of Germany.", "The service was slow and the food was cold.",
    "I loved every minute of this concert.", "Reset the password from the account settings page.",
    "Revenue fell in the northern region.", "A cat sleeps on the warm windowsill.",
]

TEXTS = [
    "I loved every minute of this concert.",
    "The service was slow and the food was cold.",
    "Hello world",
    "",
    "Ünïcödé accents and UPPER case, with punctuation!?",
    "xylophone quantum zebra",  # words the small vocabulary splits or does not know
]

QUERY = "What is the capital of France?"
DOCUMENTS = [
    "Paris is the capital and largest city of France.",
    "Berlin is the capital of Germany.",
    "A cat sleeps on the warm windowsill.",
    "",
]
LONG_QUERY = "How do I reset my password from the account settings page if I forgot it?"
LONG_DOCUMENT = " ".join(CORPUS[:6])
# (query, document, max_length): both fit; the short side fits; both truncated (an odd and an even budget).
TRUNCATION_CASES = [
    (QUERY, DOCUMENTS[0], 64),
    (QUERY, LONG_DOCUMENT, 32),
    (LONG_QUERY, LONG_DOCUMENT, 17),
    (LONG_QUERY, LONG_DOCUMENT, 18),
    (LONG_DOCUMENT, QUERY, 24),
]


def make_tokenizer():
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=400, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    tok.train_from_iterator(CORPUS, trainer)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return tok


def make_model(tok, num_labels, seed, id2label=None):
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=64, type_vocab_size=2, num_labels=num_labels,
        id2label=id2label, label2id={v: k for k, v in (id2label or {}).items()} or None)
    model = BertForSequenceClassification(config).eval()
    # Spread the initial weights (std 0.02) so that logits differ visibly between inputs.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2:
                p.mul_(8.0)
            elif name.endswith("bias"):
                p.normal_(0, 0.1)
    return model


def run(model, fast, a, b=None, max_length=None):
    # Called with one-element lists, as sentence-transformers' CrossEncoder and batched pipelines call it: with a
    # bare string, transformers reads an empty text_pair "" as no pair at all.
    enc = fast(
        [a], None if b is None else [b], truncation=max_length is not None, max_length=max_length, return_tensors="pt",
        return_token_type_ids=True)
    with torch.no_grad():
        logits = model(**enc).logits[0]
    return {
        "ids": enc["input_ids"][0].tolist(), "type_ids": enc["token_type_ids"][0].tolist(),
        "logits": [float(x) for x in logits],
    }


def main():
    tok = make_tokenizer()
    labels = {0: "negative", 1: "neutral", 2: "positive"}
    classifier = make_model(tok, 3, seed=11, id2label=labels)
    reranker = make_model(tok, 1, seed=23)
    for folder, model in (("text-classifier", classifier), ("reranker", reranker)):
        d = OUT / folder
        d.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(d, safe_serialization=True)
        tok.save(str(d / "tokenizer.json"))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok)
    goldens = {
        "transformers": __import__("transformers").__version__, "torch": torch.__version__,
        "classification": [dict(text=t, **run(classifier, fast, t)) for t in TEXTS],
        "rerank": [dict(query=QUERY, text=d, **run(reranker, fast, QUERY, d)) for d in DOCUMENTS],
        "truncation": [
            dict(query=q, text=d, max_length=n, **run(reranker, fast, q, d, max_length=n))
            for q, d, n in TRUNCATION_CASES
        ],
    }
    (OUT / "text-heads.json").write_text(json.dumps(goldens, indent=1, ensure_ascii=False) + "\n")
    print("wrote", OUT / "text-heads.json")


if __name__ == "__main__":
    main()
