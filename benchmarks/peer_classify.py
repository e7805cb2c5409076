"""In-process timing of the ONNX Runtime + Pillow peer for `mass bench classify` (measurement only).

Same protocol as `mass bench classify`: the files are read into memory first. Model only: prepared 224x224
inputs, --calls timed calls at batch 1 and --calls/4 at batch 16 after a warm-up. End to end: Pillow decode +
resize + crop + normalise (the peer kit's classify_files.py preprocessing) + ONNX Runtime, one image per call and
16 per call, --rounds passes over the files. Medians. Run with the peer kit's virtualenv python:

  $PY benchmarks/peer_classify.py ../shared/fixtures/image/*.png ../shared/fixtures/image/rocket.jpg
"""
import argparse
import io
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared" / "peers"))
import peerlib  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--onnx", help="another ONNX file (e.g. ORT's static int8); default: the kit's effnet_fp32")
    a = ap.parse_args()
    np, Image = peerlib.require("numpy", "PIL.Image")
    sess = peerlib.ort_session(a.onnx or peerlib.onnx_file("effnet_fp32"), a.threads)
    name = sess.get_inputs()[0].name
    blobs = [open(f, "rb").read() for f in a.files]

    def prepare(blob):
        im = Image.open(io.BytesIO(blob)).convert("RGB")
        w, h = im.size
        size = (256, int(256 * h / w)) if w <= h else (int(256 * w / h), 256)
        im = im.resize(size, Image.BILINEAR)
        left, top = int(round((size[0] - 224) / 2)), int(round((size[1] - 224) / 2))
        x = (np.asarray(im.crop((left, top, left + 224, top + 224)), np.float32) - 127.0) / 128.0
        return x.transpose(2, 0, 1)

    def timed(n, body):
        out = []
        for _ in range(n):
            t = time.perf_counter()
            body()
            out.append(time.perf_counter() - t)
        return out

    report = {"threads": a.threads, "files": len(blobs)}
    batch16 = np.stack([prepare(blobs[i % len(blobs)]) for i in range(16)])
    for b in (1, 16):
        x = np.ascontiguousarray(batch16[:b])
        n = a.calls if b == 1 else max(2, a.calls // 4)
        timed(max(3, n // 10), lambda: sess.run(None, {name: x}))
        t = timed(n, lambda: sess.run(None, {name: x}))
        report[f"model_b{b}_images_per_s"] = b / statistics.median(t)
        report[f"model_b{b}_ms_p50"] = statistics.median(t) * 1000
    per_image = []
    for _ in range(a.rounds):
        for blob in blobs:
            per_image += timed(1, lambda: sess.run(None, {name: prepare(blob)[None]}))
    report["e2e_b1_images_per_s"] = 1 / statistics.median(per_image)
    report["e2e_b1_ms_p50"] = statistics.median(per_image) * 1000
    per_batch = []
    for r in range(a.rounds):
        chunk = [blobs[(r * 16 + i) % len(blobs)] for i in range(16)]
        per_batch += timed(1, lambda: sess.run(None, {name: np.stack([prepare(c) for c in chunk])}))
    report["e2e_b16_images_per_s"] = 16 / statistics.median(per_batch)
    pre = []
    for _ in range(a.rounds):
        for blob in blobs:
            pre += timed(1, lambda: prepare(blob))
    report["preprocess_ms_p50"] = statistics.median(pre) * 1000
    print(json.dumps(report, sort_keys=True))


if __name__ == "__main__":
    main()
