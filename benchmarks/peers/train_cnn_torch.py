"""PyTorch peer of `mass bench train-cnn` (measurement only, never a dependency): the same two-convolution
network (3x3 convolutions of 32 and 64 channels with padding 1, ReLU, 2x2 max pooling; 128 hidden with ReLU and
dropout 0.25; 10 classes), AdamW (lr 1e-3, weight decay 1e-4), batches taken in order from the Fashion-MNIST
training images (gzip IDX). Prints one JSON object like Mass's.

    python train_cnn_torch.py [--data /usr/share/datasets/fashion-mnist] [--batch-size 64] [--steps 50]
        [--warmup 5] [--threads 2]
"""
import argparse
import gzip
import json
import resource
import time

import numpy as np
import torch

p = argparse.ArgumentParser()
p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
p.add_argument("--batch-size", type=int, default=64)
p.add_argument("--steps", type=int, default=50)
p.add_argument("--warmup", type=int, default=5)
p.add_argument("--threads", type=int, default=2)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(42)


def idx(path):
    data = gzip.open(path).read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


images = torch.from_numpy(idx(f"{a.data}/train-images-idx3-ubyte.gz").astype(np.float32) / 255).unsqueeze(1)
labels = torch.from_numpy(idx(f"{a.data}/train-labels-idx1-ubyte.gz").astype(np.int64))
model = torch.nn.Sequential(
    torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
    torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
    torch.nn.Flatten(), torch.nn.Linear(7 * 7 * 64, 128), torch.nn.ReLU(), torch.nn.Dropout(0.25),
    torch.nn.Linear(128, 10))
model.train()
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
position = 0


def step():
    global position
    rows = [(position + i) % len(labels) for i in range(a.batch_size)]
    position += a.batch_size
    loss = torch.nn.functional.cross_entropy(model(images[rows]), labels[rows])
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
    "peak_rss_mb": peak, "batch_size": a.batch_size, "steps": a.steps, "threads": a.threads, "last_loss": last,
    "torch": torch.__version__}, sort_keys=True))
