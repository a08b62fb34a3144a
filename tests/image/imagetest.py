"""imagetest.py - shared by the image tests (tests/image/*.py).

A small project with real test scripts, an offline base image made from
this machine's own Debian files (libc and its loader in one layer, dash and
cat in another), pushing it with skopeo, unpacking an image with umoci and
running it with bubblewrap, and decoding the worker's result record with the
project's own decoder (rectool).  Standard library only.

The runner and the checks are tests/lib/testlib.py's.
"""
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOP_SRC = os.environ.get("KPAR_TOP_SRCDIR") or os.path.dirname(os.path.dirname(HERE))
TOP_BUILD = os.environ.get("KPAR_TOP_BUILDDIR") or TOP_SRC
KPAR = os.environ.get("KPAR_BIN") or os.path.join(TOP_BUILD, "kpar")
RECTOOL = os.path.join(TOP_BUILD, "tests", "image", "rectool")
sys.path.insert(0, os.path.join(TOP_SRC, "tests", "lib"))

# Settings a developer's environment might carry into the tests.
CLEAN_ENV = ("KPAR_PAYLOAD", "KPAR_BASE_IMAGE", "KPAR_IMAGE", "KPAR_REGISTRY", "KPAR_STATE_DIR",
             "KPAR_ROOT", "KPAR_CACHE_LAYER_DIR", "KPAR_IMAGE_COMPRESSION", "KPAR_IMAGE_PREP",
             "KPAR_IMAGE_PER_BUCKET", "KPAR_IMAGE_ENV", "KPAR_WORKER_BIN", "KPAR_IMAGE_PULL",
             "SOURCE_DATE_EPOCH", "DOCKER_CONFIG", "KPAR_REGISTRY_CA", "KPAR_INSECURE_REGISTRIES")

from testlib import (Failure, Skip, check, check_in, check_not_in, need, run,  # noqa: E402,F401
                     run_tests as _run_tests, tmpdir as _tmpdir)


def tmpdir():
    return _tmpdir("kpar-imgtest-")


def env(**extra):
    e = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
    e.update({k: str(v) for k, v in extra.items()})
    return e


def kpar(*args, ok=True, cwd=None, extra_env=None):
    return run([KPAR] + list(args), ok=ok, cwd=cwd, env=env(**(extra_env or {})))


def read(path, mode="r"):
    with open(path, mode) as f:
        return f.read()


def write(path, data, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)
    os.chmod(path, mode)


LONG = "d" * 60 + "/" + "long-" + "n" * 120 + ".txt"   # a 190-byte path: PAX


def make_project(d):
    """A project with tests that pass, fail, skip, read data, and one with a
    space in its name; bucket files as `kpar plan` writes them."""
    write(os.path.join(d, "tests/pass.sh"), "#!/bin/sh\necho passing\nexit 0\n", 0o755)
    write(os.path.join(d, "tests/fail.sh"), "#!/bin/sh\necho failing >&2\nexit 1\n", 0o755)
    write(os.path.join(d, "tests/skip.sh"), "#!/bin/sh\nexit 77\n", 0o755)
    # passes only if the data layer and the long name made it into the image
    write(os.path.join(d, "tests/data.sh"),
          "#!/bin/sh\n[ \"$(cat data/input.txt)\" = hello ] || exit 1\n"
          "[ -f 'data/%s' ] || exit 1\nexit 0\n" % LONG, 0o755)
    write(os.path.join(d, "tests/with space.sh"), "#!/bin/sh\nexit 0\n", 0o755)
    write(os.path.join(d, "data/input.txt"), "hello\n")
    write(os.path.join(d, "data", LONG), "long name\n")
    os.symlink("input.txt", os.path.join(d, "data/alias.txt"))
    write(os.path.join(d, ".kpar/buckets/test-group-1"), "tests/pass.sh\ntests/fail.sh\ntests/data.sh\n")
    write(os.path.join(d, ".kpar/buckets/test-group-2"), "tests/skip.sh\ntests/with space.sh\n")
    write(os.path.join(d, ".kpar/tests.list"),
          "tests/data.sh\ntests/fail.sh\ntests/pass.sh\ntests/skip.sh\ntests/with space.sh\n")
    return d


EXPECT = {1: {"tests/pass.sh": "pass", "tests/fail.sh": "fail", "tests/data.sh": "pass"},
          2: {"tests/skip.sh": "skip", "tests/with space.sh": "pass"}}


def build(proj, *args, ok=True, extra_env=None):
    """kpar image build in proj (payload: tests, + data as a second layer)."""
    a = ["image", "build", "-v"] + list(args)
    if "--payload" not in args and not any(x.startswith("--payload=") for x in args):
        a += ["--payload", "tests + data"]
    return kpar(*a, ok=ok, cwd=proj, extra_env=extra_env)


def digest(layout):
    return read(os.path.join(layout, "digest")).strip()


def blobs(layout):
    return sorted(os.listdir(os.path.join(layout, "blobs", "sha256")))


def manifest(layout, tag="latest"):
    idx = json.loads(read(os.path.join(layout, "index.json")))
    for m in idx["manifests"]:
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag:
            return json.loads(read(os.path.join(layout, "blobs", "sha256", m["digest"][7:])))
    raise Failure("no %s in %s" % (tag, layout))


def config(layout, tag="latest"):
    m = manifest(layout, tag)
    return json.loads(read(os.path.join(layout, "blobs", "sha256", m["config"]["digest"][7:])))


# ---------------------------------------------------------------- base image

def _tar_gz(entries):
    """entries: (name, kind, data_or_target, mode) -> (tar bytes, gzip bytes)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, kind, data, mode in sorted(entries):
            ti = tarfile.TarInfo(name)
            ti.mtime, ti.mode = 0, mode
            if kind == "dir":
                ti.type = tarfile.DIRTYPE
                t.addfile(ti)
            elif kind == "link":
                ti.type, ti.linkname = tarfile.SYMTYPE, data
                t.addfile(ti)
            else:
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
    raw = raw.getvalue()
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0, filename="") as g:
        g.write(raw)
    return raw, gz.getvalue()


def _put(d, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    os.makedirs(os.path.join(d, "blobs", "sha256"), exist_ok=True)
    with open(os.path.join(d, "blobs", "sha256", digest[7:]), "wb") as f:
        f.write(data)
    return {"digest": digest, "size": len(data)}


def base_layers():
    """Two layers from this machine's files: libc + loader; dash as /bin/sh + cat."""
    def host(p):
        return read(os.path.realpath(p), "rb")
    libc = [("etc", "dir", None, 0o755), ("tmp", "dir", None, 0o1777), ("usr", "dir", None, 0o755),
            ("usr/lib", "dir", None, 0o755), ("usr/lib/x86_64-linux-gnu", "dir", None, 0o755),
            ("usr/lib64", "dir", None, 0o755), ("lib", "link", "usr/lib", 0o777),
            ("lib64", "link", "usr/lib64", 0o777), ("bin", "link", "usr/bin", 0o777),
            ("usr/lib/x86_64-linux-gnu/libc.so.6", "file", host("/lib/x86_64-linux-gnu/libc.so.6"), 0o755),
            ("usr/lib64/ld-linux-x86-64.so.2", "file", host("/lib64/ld-linux-x86-64.so.2"), 0o755),
            ("etc/base-release", "file", b"kpar test base\n", 0o644)]
    shell = [("usr", "dir", None, 0o755), ("usr/bin", "dir", None, 0o755),
             ("usr/bin/dash", "file", host("/bin/dash"), 0o755), ("usr/bin/sh", "link", "dash", 0o777),
             ("usr/bin/cat", "file", host("/bin/cat"), 0o755)]
    return [libc, shell]


def make_base_image(d, arch="amd64", mark="debian-files"):
    """Writes the blobs of the base image; returns its manifest descriptor."""
    descs, diff_ids = [], []
    for entries in base_layers():
        raw, gz = _tar_gz(entries)
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        desc = _put(d, gz)
        desc["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip"
        descs.append(desc)
    cfg = json.dumps({"architecture": arch, "os": "linux",
                      "config": {"Env": ["PATH=/usr/bin:/bin", "BASE_MARK=" + mark],
                                 "Cmd": ["/bin/sh"]},
                      "rootfs": {"type": "layers", "diff_ids": diff_ids},
                      "history": [{"created_by": "libc"}, {"created_by": "dash"}]},
                     separators=(",", ":")).encode()
    cdesc = _put(d, cfg)
    man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                 "digest": cdesc["digest"], "size": cdesc["size"]},
                      "layers": [{"mediaType": x["mediaType"], "digest": x["digest"],
                                  "size": x["size"]} for x in descs]},
                     separators=(",", ":")).encode()
    mdesc = _put(d, man)
    mdesc["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
    return mdesc


def _index_json(d, entries):
    with open(os.path.join(d, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    with open(os.path.join(d, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": entries}, f)


def base_layout(d, multiarch=False, mark="debian-files"):
    """An OCI layout with the base as `base` (a plain image, or an index over
    amd64 and a decoy arm64 image when multiarch)."""
    m = make_base_image(d, mark=mark)
    if not multiarch:
        _index_json(d, [dict(m, annotations={"org.opencontainers.image.ref.name": "base"})])
        return m
    decoy = make_base_image(d, arch="arm64")
    idx = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                      "manifests": [dict(decoy, platform={"os": "linux", "architecture": "arm64"}),
                                    dict(m, platform={"os": "linux", "architecture": "amd64"})]},
                     separators=(",", ":")).encode()
    idesc = _put(d, idx)
    idesc["mediaType"] = "application/vnd.oci.image.index.v1+json"
    _index_json(d, [dict(idesc, annotations={"org.opencontainers.image.ref.name": "base"})])
    return m


def dest_args(reg):
    if reg.flavour == "plain":
        return ["--dest-tls-verify=false"]
    return ["--dest-cert-dir", reg.cert_dir, "--dest-creds", reg.creds]


def src_args(reg):
    if reg.flavour == "plain":
        return ["--src-tls-verify=false"]
    return ["--src-cert-dir", reg.cert_dir, "--src-creds", reg.creds]


def skopeo_push(reg, layout, ref, fmt=None, all_images=False):
    argv = ["skopeo", "copy", "--quiet"] + dest_args(reg)
    if fmt:
        argv += ["--format", fmt]
    if all_images:
        argv += ["--all"]
    run(argv + ["oci:%s:base" % layout, "docker://%s/%s" % (reg.host, ref)])


# ------------------------------------------------------------ running images

def unpack(layout, tag):
    """umoci unpack: returns (rootfs, runtime config)."""
    b = os.path.join(tmpdir(), "bundle")
    run(["umoci", "unpack", "--rootless", "--image", "%s:%s" % (layout, tag), b])
    return os.path.join(b, "rootfs"), json.loads(read(os.path.join(b, "config.json")))


def run_bundle(rootfs, rt, extra_env=None):
    """Runs the image's process (as umoci derived it from the image config)
    in the unpacked rootfs with bubblewrap: no network, own namespaces."""
    proc = rt["process"]
    argv = ["bwrap", "--bind", rootfs, "/", "--proc", "/proc", "--dev", "/dev", "--unshare-all",
            "--die-with-parent", "--clearenv"]
    for kv in proc.get("env", []) + ["%s=%s" % kv for kv in (extra_env or {}).items()]:
        k, v = kv.split("=", 1)
        argv += ["--setenv", k, v]
    argv += ["--chdir", proc.get("cwd", "/")] + proc["args"]
    return run(argv, ok=None, timeout=120)


def decode(text):
    """The record on a worker's stdout -> (bucket, {id: status})."""
    p = subprocess.run([RECTOOL], input=text, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=60)
    if p.returncode != 0:
        raise Failure("no valid record (%s) in:\n%s" % (p.stderr.strip(), text[:3000]))
    lines = p.stdout.splitlines()
    bucket = int(lines[0].split()[1])
    return bucket, dict((l.split(" ", 1)[1], l.split(" ", 1)[0]) for l in lines[1:])


def run_image(layout, tag, extra_env=None):
    rootfs, rt = unpack(layout, tag)
    p = run_bundle(rootfs, rt, extra_env)
    if p.returncode != 0:
        raise Failure("the worker in %s:%s exited %d:\n%s" % (layout, tag, p.returncode, p.stderr))
    return decode(p.stdout)


# ------------------------------------------------------------------- runner

def run_tests(tests):
    _run_tests(tests, needs=(KPAR,))
