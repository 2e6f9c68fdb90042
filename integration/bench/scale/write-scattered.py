#!/usr/bin/python3
"""write-scattered.py: COUNT guest-like 4 KiB writes spread over a running lab VM's disk, then a flush.

Usage: write-scattered.py DOMAIN NODE SIZE_BYTES COUNT [SEED]

NODE is the disk's top block node (`domain.sh write DOMAIN vda ...` prints it). Each write goes through HMP
`qemu-io NODE "write -P PATTERN OFFSET 4k"` on one libvirt connection (python3-libvirt, as virtnbdbackup uses), so
the dirty bitmaps of active checkpoints see them as they see a guest's writes. Offsets are random and 4 KiB aligned.
"""
import random
import sys

import libvirt
import libvirt_qemu


def main() -> None:
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    name, node, size, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    rng = random.Random(int(sys.argv[5]) if len(sys.argv) > 5 else 5000)
    connection = libvirt.open("qemu:///system")
    domain = connection.lookupByName(name)
    hmp = libvirt_qemu.VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP
    commands = [f"write -P 0x{rng.randrange(1, 256):02x} {rng.randrange(size // 4096) * 4096} 4k" for _ in range(count)]
    for command in commands + ["flush"]:
        answer = libvirt_qemu.qemuMonitorCommand(domain, f'qemu-io {node} "{command}"', hmp)
        if "rror" in answer or "failed" in answer or "not found" in answer:
            sys.exit(f"write-scattered.py: qemu-io '{command}' on {node} of {name}: {answer}")


if __name__ == "__main__":
    main()
