"""Writes the preprocessing reference used by data/image_test.go.

Makes two small test images (preprocess_*.png) and records what PIL's
bicubic resize of the shortest side followed by torchvision's centre-crop
arithmetic gives for them (the CLIP evaluation transform before
normalisation), as uint8 HWC pixels in preprocess_reference.json.

The Go tests only read the committed files. To regenerate (Debian:
apt-get install python3-pil python3-numpy):

    cd data/testdata && /usr/bin/python3 gen_preprocess_reference.py
"""
import json

import numpy as np
from PIL import Image


def make(w, h, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w, 3))
    img[..., 0] = 255 * x / max(w - 1, 1)
    img[..., 1] = 255 * y / max(h - 1, 1)
    img[..., 2] = 128 + 100 * np.sin(x / 3.0) * np.cos(y / 4.0)
    # A sharp-edged square and some noise.
    img[h // 4 : h // 2, w // 3 : w // 3 + h // 4, :] = [250, 30, 40]
    img += rng.normal(0, 12, img.shape)
    return Image.fromarray(np.clip(np.round(img), 0, 255).astype(np.uint8), "RGB")


def clip_eval(img, size):
    # torchvision Resize(size): shortest side to size, long side truncated.
    w, h = img.size
    if w <= h:
        nw, nh = size, int(size * h / w)
    else:
        nw, nh = int(size * w / h), size
    r = img.resize((nw, nh), Image.BICUBIC)
    # torchvision CenterCrop(size): Python round (half to even).
    top = int(round((nh - size) / 2.0))
    left = int(round((nw - size) / 2.0))
    return r.crop((left, top, left + size, top + size))


cases = []
for (w, h, seed, size) in [(61, 47, 1, 32), (20, 13, 2, 32), (90, 200, 3, 24)]:
    name = f"preprocess_{w}x{h}.png"
    img = make(w, h, seed)
    img.save(name)
    out = np.asarray(clip_eval(img, size), dtype=np.uint8)
    cases.append({"file": name, "size": size, "pixels": out.reshape(-1).tolist()})

# The augmentation path: torchvision's resized_crop crops, then resizes the
# crop to size x size.
for (name, box, size) in [("preprocess_61x47.png", (5, 3, 40, 30), 24), ("preprocess_90x200.png", (10, 20, 70, 150), 16)]:
    left, top, cw, ch = box
    img = Image.open(name).convert("RGB")
    out = np.asarray(img.crop((left, top, left + cw, top + ch)).resize((size, size), Image.BICUBIC), dtype=np.uint8)
    cases.append({"file": name, "size": size, "crop": list(box), "pixels": out.reshape(-1).tolist()})

with open("preprocess_reference.json", "w") as f:
    json.dump({"generator": "gen_preprocess_reference.py with PIL " + Image.__version__, "cases": cases}, f)
    f.write("\n")
print("wrote", len(cases), "cases")
