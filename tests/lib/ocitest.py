"""ocitest.py - build small OCI image layouts by hand for the registry tests.

make_layout(dir, layers, tag) writes oci-layout, index.json and blobs/sha256/*
for an image whose layers are given as {path: bytes} dicts (gzip'd tar, fixed
mtimes, so the same input gives the same digests).  make_index() adds an
image index over several platforms' manifests.  Standard library only.
"""
import gzip
import hashlib
import io
import json
import os
import tarfile

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def put_blob(d, data):
    digest = sha(data)
    bdir = os.path.join(d, "blobs", "sha256")
    os.makedirs(bdir, exist_ok=True)
    with open(os.path.join(bdir, digest[7:]), "wb") as f:
        f.write(data)
    return {"digest": digest, "size": len(data)}


def tar_layer(files):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for path in sorted(files):
            data = files[path]
            ti = tarfile.TarInfo(path)
            ti.size, ti.mode, ti.mtime = len(data), 0o644, 0
            t.addfile(ti, io.BytesIO(data))
    raw = raw.getvalue()
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0, filename="") as g:
        g.write(raw)
    return raw, gz.getvalue()


def make_image(d, layers, arch="amd64", os_name="linux"):
    """Writes the blobs of one image; returns (manifest bytes, manifest descriptor)."""
    descs, diff_ids = [], []
    for files in layers:
        raw, gz = tar_layer(files)
        diff_ids.append(sha(raw))
        desc = put_blob(d, gz)
        desc["mediaType"] = OCI_LAYER
        descs.append(desc)
    config = json.dumps({"architecture": arch, "os": os_name,
                         "config": {"Cmd": ["/bin/true"]},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}},
                        sort_keys=True, separators=(",", ":")).encode()
    cdesc = put_blob(d, config)
    cdesc["mediaType"] = OCI_CONFIG
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {k: cdesc[k] for k in ("mediaType", "digest", "size")},
                           "layers": [{k: x[k] for k in ("mediaType", "digest", "size")}
                                      for x in descs]},
                          separators=(",", ":")).encode()
    mdesc = put_blob(d, manifest)
    mdesc["mediaType"] = OCI_MANIFEST
    return manifest, mdesc


def write_index(d, descs, tag):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    entries = []
    for desc in descs:
        e = dict(desc)
        e["annotations"] = {"org.opencontainers.image.ref.name": tag}
        entries.append(e)
    with open(os.path.join(d, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}, f)


def make_layout(d, layers, tag="latest", arch="amd64"):
    """An OCI layout holding one image; returns its manifest descriptor."""
    _, mdesc = make_image(d, layers, arch=arch)
    write_index(d, [mdesc], tag)
    return mdesc


def make_index(d, per_platform, tag="latest"):
    """Images for several (os, arch, layers) plus an image index over them, in one layout.

    index.json names the image index; returns (index descriptor, {arch: manifest descriptor})."""
    entries, by_arch = [], {}
    for os_name, arch, layers in per_platform:
        _, mdesc = make_image(d, layers, arch=arch, os_name=os_name)
        e = dict(mdesc)
        e["platform"] = {"os": os_name, "architecture": arch}
        entries.append(e)
        by_arch[arch] = mdesc
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries},
                       separators=(",", ":")).encode()
    idesc = put_blob(d, index)
    idesc["mediaType"] = OCI_INDEX
    write_index(d, [idesc], tag)
    return idesc, by_arch
