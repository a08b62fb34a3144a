#!/usr/bin/env python3
"""gen-payload.py DIR [--mib 1024] [--files 20000] [--seed 1]

Writes a build-output-like payload of about MIB MiB in about FILES files:
  DIR/build/lib   large shared objects   (~45% of the bytes, few files)
  DIR/build/bin   executables            (~25%)
  DIR/data        test fixtures, text    (~18%)
  DIR/tests       many small test files  (~12%, most of the files)
Contents are slices of this machine's own shared libraries and headers (real
machine code and real text, so they compress as build outputs do: about
2.5-3x with gzip -1), each file starting with a unique header so no two are
alike.  Deterministic for a given machine and seed.
"""
import argparse
import glob
import os
import random


def corpus(paths, limit):
    out, n = [], 0
    for p in paths:
        try:
            with open(p, "rb") as f:
                b = f.read(4 << 20)
        except OSError:
            continue
        out.append(b)
        n += len(b)
        if n >= limit:
            break
    return b"".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--files", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    libs = sorted(glob.glob("/usr/lib/x86_64-linux-gnu/*.so*"))
    texts = sorted(glob.glob("/usr/include/**/*.h", recursive=True))
    binc = corpus([p for p in libs if os.path.isfile(p) and not os.path.islink(p)], 48 << 20)
    txtc = corpus(texts, 24 << 20)
    if len(binc) < (1 << 20) or len(txtc) < (1 << 20):
        raise SystemExit("not enough libraries or headers on this machine to make a payload")
    total = a.mib << 20
    # (directory, share of bytes, share of files, corpus)
    groups = [("build/lib", 0.45, 0.02, binc), ("build/bin", 0.25, 0.05, binc),
              ("data", 0.18, 0.13, txtc), ("tests", 0.12, 0.80, txtc)]
    made = 0
    for name, bshare, fshare, src in groups:
        nfiles = max(1, int(a.files * fshare))
        budget = int(total * bshare)
        # log-normal-ish sizes scaled to the budget
        weights = [rnd.lognormvariate(0, 1.0) for _ in range(nfiles)]
        scale = budget / sum(weights)
        for i in range(nfiles):
            size = max(64, int(weights[i] * scale))
            sub = "d%02d" % (i % 37)
            path = os.path.join(a.dir, name, sub, "f%05d%s" % (i, ".so" if name == "build/lib" else ""))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            head = ("%s %d %d\n" % (path, a.seed, rnd.getrandbits(64))).encode()
            parts, left = [head], size - len(head)
            while left > 0:
                off = rnd.randrange(0, len(src) - 1)
                chunk = src[off:off + min(left, 256 << 10)]
                parts.append(chunk)
                left -= len(chunk)
            with open(path, "wb") as f:
                f.write(b"".join(parts)[:size])
            if name in ("build/bin", "tests") and i % 3 == 0:
                os.chmod(path, 0o755)
            made += size
    print("%d files, %.1f MiB in %s" % (sum(max(1, int(a.files * g[2])) for g in groups),
                                         made / 1048576.0, a.dir))


if __name__ == "__main__":
    main()
