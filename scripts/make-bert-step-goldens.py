#!/usr/bin/env python3
"""Offline: one training step of a small BERT classifier in PyTorch, for Mass's training-step parity test.

Loads the random-weight BertForSequenceClassification of Tests/MassModelsTests/Goldens/text-classifier (2 layers,
hidden 32, 4 heads, 3 labels) with dropout off, tokenizes a padded batch of four texts with its tokenizer.json,
computes the cross-entropy loss (label smoothing 0.1), back-propagates, and takes one AdamW step (lr 1e-3,
betas 0.9/0.999, eps 1e-8, weight decay 0.01, PyTorch's decoupled form). Writes:

  Tests/MassTrainingTests/Goldens/bert-step.json                 inputs, labels, loss, logits, optimizer settings
  Tests/MassTrainingTests/Goldens/bert-step-gradients.safetensors   every parameter's gradient
  Tests/MassTrainingTests/Goldens/bert-step-after.safetensors       every parameter after the step

usage: ~/.cache/mass-peers/bin/python scripts/make-bert-step-goldens.py   (the peer kit's virtualenv)
"""
import json
from pathlib import Path

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer
from transformers import BertForSequenceClassification

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "Tests" / "MassModelsTests" / "Goldens" / "text-classifier"
OUT = ROOT / "Tests" / "MassTrainingTests" / "Goldens"

TEXTS = [
    "I loved every minute of this concert.",
    "The service was slow and the food was cold.",
    "Hello world",
    "How do I reset my password from the account settings page?",
]
LABELS = [2, 0, 1, 1]
SETTINGS = {"lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.01, "label_smoothing": 0.1}


def main():
    torch.manual_seed(0)
    model = BertForSequenceClassification.from_pretrained(
        SOURCE, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, attn_implementation="eager")
    model.train()
    tokenizer = Tokenizer.from_file(str(SOURCE / "tokenizer.json"))
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    encodings = tokenizer.encode_batch(TEXTS)
    ids = torch.tensor([e.ids for e in encodings])
    mask = torch.tensor([e.attention_mask for e in encodings])
    types = torch.tensor([e.type_ids for e in encodings])
    out = model(input_ids=ids, attention_mask=mask, token_type_ids=types)
    loss = torch.nn.functional.cross_entropy(
        out.logits, torch.tensor(LABELS), label_smoothing=SETTINGS["label_smoothing"])
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=SETTINGS["lr"], betas=tuple(SETTINGS["betas"]), eps=SETTINGS["eps"],
        weight_decay=SETTINGS["weight_decay"])
    optimizer.zero_grad()
    loss.backward()
    names = [n for n, _ in model.named_parameters()]
    gradients = {n: p.grad.detach().clone().contiguous() for n, p in model.named_parameters()}
    optimizer.step()
    after = {n: p.detach().clone().contiguous() for n, p in model.named_parameters()}
    OUT.mkdir(parents=True, exist_ok=True)
    save_file(gradients, OUT / "bert-step-gradients.safetensors")
    save_file(after, OUT / "bert-step-after.safetensors")
    record = {
        "torch": torch.__version__, "texts": TEXTS, "labels": LABELS, "settings": SETTINGS, "parameters": names,
        "ids": ids.tolist(), "type_ids": types.tolist(), "attention_mask": mask.tolist(),
        "loss": loss.item(), "logits": out.logits.detach().tolist(),
    }
    (OUT / "bert-step.json").write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
