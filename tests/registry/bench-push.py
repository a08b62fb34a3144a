#!/usr/bin/env python3
"""bench-push.py - push throughput of the registry client vs skopeo, to a loopback docker-registry.

Not part of `make check` (speed is not asserted in tests).  Usage:
  KPAR_TOP_BUILDDIR=BUILD bench-push.py [MiB per layer] [layers] [flavour]
Builds an OCI layout of random (incompressible) layers, then times, each
against a fresh repository: regtool push (parallel 4), regtool push (parallel
1), regtool with 8 MiB PATCH chunks, a no-op re-push, and `skopeo copy
oci:... docker://...` of the same layout.
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import REGTOOL, tmpdir  # noqa: E402
import ocitest  # noqa: E402
from registry import Registry  # noqa: E402


def layout(mib, n):
    d = tmpdir()
    layers, diff_ids = [], []
    for i in range(n):
        with open("/dev/urandom", "rb") as r:
            data = r.read(mib << 20)
        desc = ocitest.put_blob(d, data)
        desc["mediaType"] = ocitest.OCI_LAYER
        layers.append(desc)
        diff_ids.append(desc["digest"])
    cfg = json.dumps({"architecture": "amd64", "os": "linux",
                      "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    cdesc = ocitest.put_blob(d, cfg)
    cdesc["mediaType"] = ocitest.OCI_CONFIG
    man = json.dumps({"schemaVersion": 2, "mediaType": ocitest.OCI_MANIFEST, "config": cdesc,
                      "layers": layers}).encode()
    mdesc = ocitest.put_blob(d, man)
    mdesc["mediaType"] = ocitest.OCI_MANIFEST
    ocitest.write_index(d, [mdesc], "b")
    return d


def timed(argv, env=None):
    t = time.time()
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    dt = time.time() - t
    if p.returncode:
        sys.exit("%s failed: %s" % (argv, p.stderr))
    return dt, p.stdout.strip()


def main():
    mib = int(sys.argv[1]) if len(sys.argv) > 1 else 128
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    flavour = sys.argv[3] if len(sys.argv) > 3 else "plain"
    total = mib * n
    d = layout(mib, n)
    with Registry(flavour) as reg:
        base = [REGTOOL] + (["--ca", reg.ca] if reg.ca else []) + \
            ["--config-dir", reg.docker_config]
        runs = [("kpar parallel 4", base + ["--parallel", "4"], "r1"),
                ("kpar parallel 1", base + ["--parallel", "1"], "r2"),
                ("kpar 8 MiB chunks", base + ["--chunk", str(8 << 20)], "r3"),
                ("kpar no-op re-push", base, "r1")]
        for name, argv, repo in runs:
            dt, out = timed(argv + ["push", reg.host, "bench/" + repo, d, "b"])
            print("%-22s %7.2f s  %7.1f MiB/s   %s" % (name, dt, total / dt,
                                                      out.split("\n")[0]))
        sk = ["skopeo", "copy", "--quiet"] + (["--dest-cert-dir", reg.cert_dir, "--dest-creds",
                                               reg.creds] if reg.ca else
                                              ["--dest-tls-verify=false"])
        dt, _ = timed(sk + ["oci:%s:b" % d, "docker://%s/bench/skopeo:b" % reg.host])
        print("%-22s %7.2f s  %7.1f MiB/s" % ("skopeo copy", dt, total / dt))


if __name__ == "__main__":
    main()
