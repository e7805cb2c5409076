"""Peer for measurement only: ONNX Runtime's static int8 quantisation of the peer kit's EfficientNet-Lite0
(effnet_fp32.onnx), calibrated on the given images with the peer kit's preprocessing (MinMax, QDQ, per-channel
weights, u8 activations: onnxruntime.quantization.quantize_static's defaults but per_channel=True). Prints the
top-1 of the fp32 and int8 sessions per image. Used by benchmarks/compare-classify-int8.sh.

usage: $PY quantize_effnet_ort.py OUT.onnx IMAGE...
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "shared" / "peers"))
import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import peerlib  # noqa: E402
from onnxruntime.quantization import CalibrationDataReader, QuantType, quantize_static  # noqa: E402
from onnxruntime.quantization.shape_inference import quant_pre_process  # noqa: E402
from PIL import Image  # noqa: E402
from classify_files import preprocess  # noqa: E402


class Images(CalibrationDataReader):
    def __init__(self, name, inputs):
        self.items = iter([{name: x[None]} for x in inputs])

    def get_next(self):
        return next(self.items, None)


def main():
    out, files = sys.argv[1], sys.argv[2:]
    fp32 = str(peerlib.onnx_file("effnet_fp32"))
    inputs = [preprocess(f, np, Image) for f in files]
    name = ort.InferenceSession(fp32, providers=["CPUExecutionProvider"]).get_inputs()[0].name
    prepared = out + ".pre.onnx"
    quant_pre_process(fp32, prepared)
    quantize_static(
        prepared, out, Images(name, inputs), per_channel=True, activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )
    for label, path in (("fp32", fp32), ("int8", out)):
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        tops = [int(np.argmax(sess.run(None, {name: x[None]})[0])) for x in inputs]
        print(label, " ".join(f"{Path(f).name}:{t}" for f, t in zip(files, tops)))


if __name__ == "__main__":
    main()
