#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# unhex.py - turn the fuzz seeds git holds as text back into the bytes a
# fuzz target reads: IN.hex has '#' comment lines and hex digits (any
# spacing); OUT gets the bytes. "unhex.py --to-hex IN OUT" goes the other
# way, for a new seed (a crash input libFuzzer wrote, say).
import binascii
import sys


def to_bytes(text):
    digits = "".join(line.split("#", 1)[0] for line in text.splitlines())
    return binascii.unhexlify("".join(digits.split()))


def to_hex(data, name):
    lines = ["# SPDX-License-Identifier: Apache-2.0",
             "# fuzz seed %s, %d bytes (tests/fuzz/unhex.py makes it a file)" % (name, len(data))]
    for i in range(0, len(data), 32):
        lines.append(data[i:i + 32].hex())
    return "\n".join(lines) + "\n"


def main(argv):
    if len(argv) == 4 and argv[1] == "--to-hex":
        with open(argv[2], "rb") as f:
            data = f.read()
        name = argv[3].rsplit("/", 1)[-1]
        if name.endswith(".hex"):
            name = name[:-4]
        with open(argv[3], "w") as f:
            f.write(to_hex(data, name))
        return 0
    if len(argv) != 3:
        sys.stderr.write("usage: unhex.py IN.hex OUT | unhex.py --to-hex IN OUT.hex\n")
        return 2
    with open(argv[1]) as f:
        data = to_bytes(f.read())
    with open(argv[2], "wb") as f:
        f.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
