#!/usr/bin/env python3
"""Writes a deterministic benchmark build context (same bytes on every run and machine):

    tree/dNNNN/fK.{txt,dat}   2,000 directories x 5 files = 10,000 files, 100 B to 20 KiB,
                              about 60 MB (.txt base64 text, compressible; .dat random)
    big.bin                   200 MiB of random (incompressible) bytes

usage: scripts/gen-context.py OUT_DIR
"""
import base64
import os
import random
import sys


def main(out):
    rng = random.Random(20261123)
    total = 0
    for d in range(2000):
        directory = os.path.join(out, "tree", "d%04d" % d)
        os.makedirs(directory, exist_ok=True)
        for k in range(5):
            size = rng.randint(100, 4096) if rng.random() < 0.6 else rng.randint(4096, 20480)
            if (d * 5 + k) % 2 == 0:
                data = base64.encodebytes(rng.randbytes(size * 3 // 4 + 3))[:size]
                name = "f%d.txt" % k
            else:
                data = rng.randbytes(size)
                name = "f%d.dat" % k
            with open(os.path.join(directory, name), "wb") as f:
                f.write(data)
            total += len(data)
    big = random.Random(42)
    with open(os.path.join(out, "big.bin"), "wb") as f:
        for _ in range(25):
            f.write(big.randbytes(8 << 20))
    # Fixed times, so tools that look at metadata see the same files on every run.
    for root, dirs, files in os.walk(out):
        for name in dirs + files:
            os.utime(os.path.join(root, name), (1767225600, 1767225600), follow_symlinks=False)
    print("tree: 10000 files, %d bytes; big.bin: %d bytes" % (total, 25 * (8 << 20)))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
