#!/usr/bin/env python3
"""Writes reference.safetensors byte by byte from the safetensors format description, without
the safetensors package (Debian does not ship it) and without numpy:

  8 bytes   little-endian u64 N, the header length (padding included)
  N bytes   compact JSON: "__metadata__" first, then every tensor as
            {"dtype": ..., "shape": [...], "data_offsets": [begin, end]}, in data order;
            padded with spaces to a multiple of 8
  data      the tensors' little-endian bytes, back to back, ordered by descending dtype
            (U64 I64 F64 F32 U32 I32 BF16 F16 U16 I16 I8 U8 BOOL), then by name

which is what `safetensors.torch.save_file(tensors, path, metadata={"format": "pt"})` writes.
Run it from this folder; the Go test compares its output with what tensorio writes.
"""
import json
import struct

# name -> (dtype, shape, struct format char, values)
TENSORS = {
    "text_model.final_layer_norm.weight": ("F32", [4], "f", [1.0, -2.5, 0.125, 3.0e-8]),
    "logit_scale": ("F32", [], "f", [4.6052]),
    "visual.proj": ("F16", [2, 3], "H", [0x3C00, 0xC000, 0x0001, 0x7BFF, 0x0000, 0x8000]),
    "position_ids": ("I64", [1, 3], "q", [0, 1, -(1 << 40)]),
    "mask": ("BOOL", [2, 2], "?", [True, False, False, True]),
    "pixel_values": ("U8", [3], "B", [0, 128, 255]),
    "empty": ("F32", [0, 3], "f", []),
}
ORDER = ["BOOL", "U8", "I8", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "F64", "I64", "U64"]

names = sorted(TENSORS, key=lambda n: (-ORDER.index(TENSORS[n][0]), n))
header = {"__metadata__": {"format": "pt"}}
data = b""
for n in names:
    dtype, shape, fmt, values = TENSORS[n]
    raw = struct.pack("<%d%s" % (len(values), fmt), *values)
    header[n] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
    data += raw
h = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
h += b" " * ((8 - len(h) % 8) % 8)
with open("reference.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + data)
