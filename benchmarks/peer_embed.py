"""In-process timing of the ONNX Runtime peer for `mass bench embed` (measurement only, never a dependency).

Same protocol as `mass bench embed`: the corpus is tokenized first (not timed), one warm-up pass, then
--runs timed passes; reports the median pass's sentences/s and tokens/s and per-call latency percentiles
over all passes. Inputs are sorted by token count and padded to the longest in each call, as the peer kit's
embed_corpus.py does. Run with the peer kit's virtualenv python:

  $PY benchmarks/peer_embed.py ../shared/peers/corpus.txt --batch-size 1

With --folder DIR, the model is DIR/model.onnx (output `sentence_embedding`) with DIR/tokenizer.json, e.g. the
all-mpnet-base-v2 export of benchmarks/peers/export_sentence_onnx.py, truncated to --max-length.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared" / "peers"))
import peerlib  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--int8", action="store_true")
    ap.add_argument("--folder", help="an exported sentence-embedding folder (model.onnx + tokenizer.json)")
    ap.add_argument("--max-length", type=int, default=256)
    a = ap.parse_args()
    np, tokenizers = peerlib.require("numpy", "tokenizers")
    if a.folder:
        sess = peerlib.ort_session(Path(a.folder) / "model.onnx", a.threads)
        tok = tokenizers.Tokenizer.from_file(str(Path(a.folder) / "tokenizer.json"))
    else:
        sess = peerlib.ort_session(peerlib.onnx_file("minilm_int8" if a.int8 else "minilm_fp32"), a.threads)
        tok = tokenizers.Tokenizer.from_file(str(peerlib.minilm_dir() / "tokenizer.json"))
    inputs = {i.name for i in sess.get_inputs()}
    tok.no_padding()
    tok.enable_truncation(max_length=a.max_length)
    lines = [l.rstrip("\r\n") for l in open(a.corpus, encoding="utf-8")]
    lengths = [len(e.ids) for e in tok.encode_batch(lines)]
    pad = "[PAD]" if tok.token_to_id("[PAD]") is not None else "<pad>"
    tok.enable_padding(pad_id=tok.token_to_id(pad), pad_token=pad)  # to the longest in each call
    order = sorted(range(len(lines)), key=lambda i: lengths[i])
    feeds = []
    for s in range(0, len(order), a.batch_size):
        enc = tok.encode_batch([lines[i] for i in order[s:s + a.batch_size]])
        feed = {"input_ids": np.array([e.ids for e in enc], np.int64),
                "attention_mask": np.array([e.attention_mask for e in enc], np.int64),
                "token_type_ids": np.array([e.type_ids for e in enc], np.int64)}
        feeds.append({k: v for k, v in feed.items() if k in inputs})
    for f in feeds:  # warm-up pass
        sess.run(["sentence_embedding"], f)
    walls, calls = [], []
    for _ in range(a.runs):
        start = time.perf_counter()
        for f in feeds:
            t = time.perf_counter()
            sess.run(["sentence_embedding"], f)
            calls.append(time.perf_counter() - t)
        walls.append(time.perf_counter() - start)
    wall = statistics.median(walls)
    calls.sort()
    pct = lambda p: calls[min(len(calls) - 1, int(p * len(calls)))] * 1000
    name = Path(a.folder).name if a.folder else "MiniLM"
    print(f"peer             onnxruntime {'int8' if a.int8 else 'fp32'} {name}, batch {a.batch_size}, {a.threads} threads")
    print(f"sentences_per_s  {len(lines) / wall:.1f}")
    print(f"tokens_per_s     {sum(lengths) / wall:.0f}")
    print(f"latency_ms       p50 {pct(0.5):.2f}  p90 {pct(0.9):.2f}  p99 {pct(0.99):.2f}  max {calls[-1] * 1000:.2f}")


if __name__ == "__main__":
    main()
