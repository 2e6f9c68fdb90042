#!/usr/bin/python3
"""make-fragmented.py: a sparse raw image holding EXTENTS scattered extents of EXTENT_KIB KiB each.

Usage: make-fragmented.py RAW_FILE SIZE_BYTES EXTENTS [EXTENT_KIB [SEED]]

The extents lie at random, extent-aligned offsets with at least one extent-sized hole between any two, so no two
merge (qemu-img map and NBD block status report EXTENTS data extents). Half of them hold random bytes, half text
(`seq`-like numbers, which zstd shrinks about 10x), like a guest file system's mix. The same SEED gives the same
image. Prints the data bytes written.
"""
import os
import random
import sys


def main() -> None:
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    path, size, extents = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    extent = int(sys.argv[4]) * 1024 if len(sys.argv) > 4 else 64 * 1024
    rng = random.Random(int(sys.argv[5]) if len(sys.argv) > 5 else 14)
    slots = size // (2 * extent)  # every extent in its own even slot: a hole of at least one extent after it
    if extents > slots:
        sys.exit(f"make-fragmented.py: {extents} extents of {extent} bytes do not fit apart in {size} bytes")
    offsets = sorted(slot * 2 * extent for slot in rng.sample(range(slots), extents))
    with open(path, "wb") as image:
        image.truncate(size)
        for index, offset in enumerate(offsets):
            if index % 2 == 0:
                data = rng.randbytes(extent)
            else:
                start = rng.randrange(10**9)
                text = "".join(f"{n}\n" for n in range(start, start + extent // 4)).encode()
                data = text[:extent]
            image.seek(offset)
            image.write(data)
    print(extents * extent)


if __name__ == "__main__":
    main()
