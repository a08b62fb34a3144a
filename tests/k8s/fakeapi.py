#!/usr/bin/env python3
"""fakeapi.py - a scripted Kubernetes API server that misbehaves on purpose.

Just enough HTTP/1.1 (and TLS, with certificates made by the openssl CLI) to
drive the unhappy paths of src/k8s/client.c; the happy paths run against a
real control plane elsewhere.  One process serves one mode:

  python3 fakeapi.py --certs DIR --log FILE --mode MODE [--plain] [--cert wrong]
                     [--rotate TOKEN_FILE] [--mtls]

prints "port N" once it listens on 127.0.0.1, then serves until killed.
Every request is appended to FILE as a JSON line (method, path, query,
authorization, content_type, body, time, peer: the client's port, which tells
connections apart) before it is answered.

Modes (the API answers: GET of a path with watch=1 is a watch stream, any
other GET the pod list, POST echoes its body with 201, DELETE a Status):
  list             the API, well-behaved
  watch-bytes      a watch whose events arrive one byte per chunk
  watch-batch      all events in one chunk, then events split across chunks
  watch-error410   two events, then an ERROR event holding a 410 Status
  gone             every request: HTTP 410 with an Expired Status
  ratelimit        the first two requests: 429, Retry-After: 1
  unavailable      the first request: 503
  error500         every request: 500 with an InternalError Status
  drop             the first request: the connection closes without an answer
  reset            a watch: two events and half a line, then a TCP reset
  partial          a watch: one event and half a line, then a clean end
  garbage          a watch: one event, a line that is not JSON, one more event
  huge             a watch: 17 MiB without a newline
  unauthorized     401 unless the token is "fresh-token"; the first 401
                   writes "fresh-token" to --rotate's file
  unauthorized-always  401 to everything
  forbidden        403 with a Forbidden Status
  slow             headers (a watch) or nothing (other requests) for 60 s

--cert wrong serves a certificate for api.other.example (no IP SAN); --mtls
requires a client certificate from the CA (its CN is logged as client_cn);
certificates are made once per --certs directory by make_certs().
"""
import argparse
import http.server
import json
import os
import socket
import socketserver
import ssl
import struct
import subprocess
import sys
import threading
import time
import urllib.parse

WRONG_NAME = "api.other.example"
FRESH_TOKEN = "fresh-token"
CLIENT_CN = "system:node:kpar-test"


def _openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_certs(d):
    """A CA, a server certificate for 127.0.0.1/localhost, one for WRONG_NAME and a
    client certificate (CN=CLIENT_CN), in d."""
    if os.path.exists(os.path.join(d, "client.pem")):
        return
    os.makedirs(d, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=kpar fakeapi CA", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                 "extendedKeyUsage=serverAuth"),
                      ("wrong", "subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth" % WRONG_NAME),
                      ("client", "extendedKeyUsage=clientAuth")):
        cn = CLIENT_CN if name == "client" else name
        _openssl("req", *ec, "-keyout", name + ".key", "-out", name + ".csr",
                 "-subj", "/CN=" + cn, cwd=d)
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write("basicConstraints=CA:FALSE\n%s\n" % ext)
        _openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", name + ".pem", "-days", "2",
                 "-extfile", name + ".ext", cwd=d)


def status(code, reason, message):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


def pod(i, rv):
    return {"kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": "pod-%d" % i, "namespace": "ns", "resourceVersion": str(rv)},
            "status": {"phase": "Running"}}


def event(kind, obj):
    return (json.dumps({"type": kind, "object": obj}) + "\n").encode()


POD_LIST = {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "100"},
            "items": [pod(i, 90 + i) for i in range(3)]}


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        pass    # clients that hang up on purpose (TLS refused, tick abort) are expected


class FakeAPI:
    def __init__(self, mode, log, rotate=None):
        self.mode = mode
        self.log_path = log
        self.rotate = rotate
        self.count = 0
        self.lock = threading.Lock()

    def _log(self, h, body):
        u = urllib.parse.urlsplit(h.path)
        entry = {"method": h.command, "path": u.path,
                 "query": urllib.parse.parse_qs(u.query, keep_blank_values=True),
                 "authorization": h.headers.get("Authorization"),
                 "content_type": h.headers.get("Content-Type"),
                 "body": body.decode("utf-8", "replace"), "time": time.time(),
                 "peer": h.client_address[1], "client_cn": self.client_cn(h)}
        with self.lock:
            self.count += 1
            n = self.count
            with open(self.log_path, "a") as f:
                f.write(json.dumps(entry) + "\n")
        return n, entry

    @staticmethod
    def client_cn(h):
        try:
            cert = h.connection.getpeercert()
        except (AttributeError, ValueError):
            return None
        for rdn in (cert or {}).get("subject", ()):
            for k, v in rdn:
                if k == "commonName":
                    return v
        return None

    # ---- answers ----
    @staticmethod
    def send(h, code, obj=None, headers=None, raw=None):
        body = raw if raw is not None else (json.dumps(obj).encode() if obj is not None else b"")
        h.send_response(code)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)
        h.wfile.flush()

    @staticmethod
    def start_stream(h):
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        h.wfile.flush()

    @staticmethod
    def chunk(h, data):
        h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        h.wfile.flush()

    @staticmethod
    def end_stream(h):
        h.wfile.write(b"0\r\n\r\n")
        h.wfile.flush()

    @staticmethod
    def reset(h):
        """Drops the connection with a TCP RST, whatever was buffered."""
        h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        h.close_connection = True
        h.dead = True
        h.connection.close()

    # ---- the API ----
    def handle(self, h):
        h.dead = False
        n = int(h.headers.get("Content-Length", "0") or 0)
        body = h.rfile.read(n) if n else b""
        count, entry = self._log(h, body)
        mode = self.mode
        watch = entry["query"].get("watch", [""])[0] in ("1", "true")

        if mode == "gone":
            return self.send(h, 410, status(410, "Expired", "too old resource version: 1 (100)"))
        if mode == "ratelimit" and count <= 2:
            return self.send(h, 429, status(429, "TooManyRequests", "too many requests"),
                             {"Retry-After": "1"})
        if mode == "unavailable" and count == 1:
            return self.send(h, 503, raw=b"apiserver is starting")
        if mode == "error500":
            return self.send(h, 500, status(500, "InternalError", "etcd is sad"))
        if mode == "drop" and count == 1:
            return self.reset(h)
        if mode in ("unauthorized", "unauthorized-always"):
            if mode == "unauthorized-always" or entry["authorization"] != "Bearer " + FRESH_TOKEN:
                if self.rotate and count == 1:
                    with open(self.rotate + ".tmp", "w") as f:
                        f.write(FRESH_TOKEN + "\n")
                    os.replace(self.rotate + ".tmp", self.rotate)
                return self.send(h, 401, status(401, "Unauthorized", "Unauthorized"))
        if mode == "forbidden":
            return self.send(h, 403, status(
                403, "Forbidden", 'jobs.batch is forbidden: User "system:serviceaccount:ci:kpar" '
                'cannot create resource "jobs" in API group "batch" in the namespace "ci"'))
        if mode == "slow":
            if watch:
                self.start_stream(h)
            for _ in range(600):
                time.sleep(0.1)
            return self.reset(h)

        if h.command == "POST":
            try:
                obj = json.loads(body)
            except ValueError:
                return self.send(h, 400, status(400, "BadRequest", "body is not JSON"))
            obj.setdefault("metadata", {})["uid"] = "uid-1"
            obj["echo"] = {"content_type": entry["content_type"]}
            return self.send(h, 201, obj)
        if h.command == "DELETE":
            return self.send(h, 200, {"kind": "Status", "apiVersion": "v1", "status": "Success",
                                      "code": 200})
        if h.command not in ("GET", "HEAD") or entry["path"] != "/api/v1/namespaces/ns/pods":
            return self.send(h, 404, status(404, "NotFound", "the server could not find the "
                                            "requested resource"))
        if not watch:
            return self.send(h, 200, POD_LIST)
        return self.stream(h, mode)

    def stream(self, h, mode):
        self.start_stream(h)
        evs = [event("ADDED", pod(i, 101 + i)) for i in range(3)]
        if mode == "watch-bytes":
            for b in b"".join(evs):
                self.chunk(h, bytes([b]))
        elif mode == "watch-batch":
            self.chunk(h, b"".join(evs) + event("MODIFIED", pod(0, 104)))
            # two more events cut in three chunks at odd places; a blank line between
            rest = event("MODIFIED", pod(1, 105)) + b"\n" + event("DELETED", pod(2, 106))
            self.chunk(h, rest[:10])
            self.chunk(h, rest[10:len(rest) - 7])
            self.chunk(h, rest[len(rest) - 7:])
            self.chunk(h, event("BOOKMARK", {"kind": "Pod", "apiVersion": "v1",
                                             "metadata": {"resourceVersion": "107"}}))
        elif mode == "watch-error410":
            self.chunk(h, evs[0] + evs[1])
            self.chunk(h, event("ERROR", status(410, "Expired",
                                                "too old resource version: 101 (107)")))
        elif mode == "reset":
            self.chunk(h, evs[0] + evs[1])
            self.chunk(h, evs[2][:20])
            time.sleep(0.2)
            return self.reset(h)
        elif mode == "partial":
            self.chunk(h, evs[0] + evs[1][:20])
        elif mode == "garbage":
            self.chunk(h, evs[0] + b"<html>this is not json</html>\n" + evs[1])
        elif mode == "huge":
            block = b"x" * 65536
            try:
                for _ in range(17 * 16):
                    self.chunk(h, block)
            except OSError:
                h.dead = True
                return
        else:
            for e in evs:
                self.chunk(h, e)
        self.end_stream(h)


def serve(api, plain, certs, cert, mtls):
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def _any(self):
            api.handle(self)

        do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = do_HEAD = _any

        def finish(self):
            if getattr(self, "dead", False):
                return
            try:
                super().finish()
            except OSError:
                pass

    srv = _Server(("127.0.0.1", 0), H)
    if not plain:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(certs, cert + ".pem"), os.path.join(certs, cert + ".key"))
        if mtls:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(os.path.join(certs, "ca.pem"))
        # the handshake happens in the handler's thread, on its first read
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True, do_handshake_on_connect=False)
    print("port %d" % srv.server_address[1], flush=True)
    srv.serve_forever()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--certs", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--mode", default="list")
    ap.add_argument("--plain", action="store_true")
    ap.add_argument("--cert", default="server", choices=("server", "wrong"))
    ap.add_argument("--rotate")
    ap.add_argument("--mtls", action="store_true")
    a = ap.parse_args()
    if not a.plain:
        make_certs(a.certs)
    serve(FakeAPI(a.mode, a.log, a.rotate), a.plain, a.certs, a.cert, a.mtls)


if __name__ == "__main__":
    sys.exit(main())
