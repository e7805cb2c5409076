"""PyTorch peer of `mass bench train` (measurement only, never a dependency): fine-tuning throughput of a
sentence-transformers BERT encoder with a linear head on its mean-pooled states, on the same token ids Mass
uses (the model's tokenizer.json through `tokenizers`, corpus lines joined until they give at least LENGTH
tokens, then truncated), dropout 0.1, AdamW lr 5e-5, weight decay 0.01. Prints one JSON object like Mass's.

    python train_finetune_torch.py MODEL_DIR CORPUS [--batch-size 32] [--length 64] [--steps 20] [--warmup 3]
        [--threads 2]
"""
import argparse
import json
import resource
import time

import torch
from tokenizers import Tokenizer
from transformers import AutoModel

p = argparse.ArgumentParser()
p.add_argument("model")
p.add_argument("corpus")
p.add_argument("--batch-size", type=int, default=32)
p.add_argument("--length", type=int, default=64)
p.add_argument("--steps", type=int, default=20)
p.add_argument("--warmup", type=int, default=3)
p.add_argument("--threads", type=int, default=2)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(42)

tokenizer = Tokenizer.from_file(f"{a.model}/tokenizer.json")
tokenizer.no_truncation()
tokenizer.no_padding()
texts, current = [], ""
for line in open(a.corpus, encoding="utf-8").read().split("\n"):
    if not line:
        continue
    current = line if not current else current + " " + line
    if len(tokenizer.encode(current).ids) >= a.length:
        texts.append(current)
        current = ""
tokenizer.enable_truncation(a.length)
encoded = [tokenizer.encode(t) for t in texts]
ids = torch.tensor([e.ids for e in encoded], dtype=torch.long)
types = torch.tensor([e.type_ids for e in encoded], dtype=torch.long)
mask = torch.ones_like(ids)
labels = torch.tensor([i % 2 for i in range(len(texts))], dtype=torch.long)

encoder = AutoModel.from_pretrained(a.model, attn_implementation="eager")
encoder.config.hidden_dropout_prob = 0.1
head = torch.nn.Linear(encoder.config.hidden_size, 2)
dropout = torch.nn.Dropout(0.1)
encoder.train()
parameters = list(encoder.parameters()) + list(head.parameters())
optimizer = torch.optim.AdamW(parameters, lr=5e-5, weight_decay=0.01)
position = 0


def step():
    global position
    rows = [(position + i) % len(texts) for i in range(a.batch_size)]
    position += a.batch_size
    m = mask[rows]
    states = encoder(input_ids=ids[rows], token_type_ids=types[rows], attention_mask=m).last_hidden_state
    pooled = (states * m.unsqueeze(-1)).sum(1) / m.sum(1, keepdim=True)
    loss = torch.nn.functional.cross_entropy(head(dropout(pooled)), labels[rows])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


for _ in range(a.warmup):
    step()
start = time.perf_counter()
for _ in range(a.steps):
    last = step()
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({
    "examples_per_second": a.steps * a.batch_size / seconds, "seconds_per_step": seconds / a.steps,
    "peak_rss_mb": peak, "batch_size": a.batch_size, "length": a.length, "steps": a.steps,
    "threads": a.threads, "last_loss": last, "torch": torch.__version__}, sort_keys=True))
