#!/usr/bin/env python3
"""httpd.py - a loopback HTTP server for the artifact cache's tests, with
faults on demand.

Serves the files under --root on 127.0.0.1 (port 0 = any free port, written
to --port-file once listening), over HTTPS with --tls-cert/--tls-key.  Every request is logged as one JSON line to
--log, so tests can count downloads and inspect the conditional and range
headers kpar sent.  It stops by itself after --lifetime seconds.

Real HTTP behaviour: ETag (sha256 of the content, quoted) and Last-Modified
(the file's mtime); If-None-Match / If-Modified-Since -> 304; Range
"bytes=N-" / "bytes=N-M" -> 206 (If-Range honoured), beyond the end -> 416.

"Tweak" query parameters turn a response into a fault (in the manner of
curl's test servers):
  status=N        answer N with a short body
  delay=S         wait S seconds before answering
  rate=B          send the body at about B bytes per second
  stall=N         send N body bytes then stop sending (hold the connection
                  for --stall-seconds, then close)
  truncate=N      announce the full Content-Length, send N bytes, close
  redirect=N      a chain of N 302 redirects back to this URL (N-1, ...)
  location=URL    one 302 redirect to URL
  etag=E          use E as the ETag ("none" = send no ETag)
  nolm=1          send no Last-Modified
  norange=1       ignore Range (always 200 with the whole body)
  times=K         apply the faults above only to the first K requests with
                  this exact path and query; later ones are served normally
  id=...          ignored: makes otherwise equal URLs distinct
  logdelay=S      log the request S seconds after answering it (the handler
                  thread being slow to log, as under load)
"""
import argparse
import hashlib
import json
import os
import re
import signal
import ssl
import sys
import threading
import time
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

FAULTS = ("status", "delay", "rate", "stall", "truncate", "redirect", "location")


class State:
    def __init__(self, root, log_path, stall_seconds):
        self.root = os.path.realpath(root)
        self.log_path = log_path
        self.stall_seconds = stall_seconds
        self.lock = threading.Lock()
        self.counts = {}
        self.next_id = 0

    def new_id(self):
        with self.lock:
            self.next_id += 1
            return self.next_id

    def count(self, key):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + 1
            return self.counts[key]

    def log(self, entry):
        if not self.log_path:
            return
        line = json.dumps(entry, sort_keys=True) + "\n"
        with self.lock:
            with open(self.log_path, "a") as f:
                f.write(line)
                f.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kpar-test-httpd/1"

    def log_message(self, fmt, *args):  # quiet: the JSON log is the record
        pass

    def do_HEAD(self):
        self.handle_request(head=True)

    def do_GET(self):
        self.handle_request(head=False)

    def handle_request(self, head):
        st = self.server.state
        parts = urlsplit(self.path)
        q = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        entry = {
            "method": self.command,
            "path": parts.path,
            "query": parts.query,
            "range": self.headers.get("Range"),
            "if_range": self.headers.get("If-Range"),
            "if_none_match": self.headers.get("If-None-Match"),
            "if_modified_since": self.headers.get("If-Modified-Since"),
            "user_agent": self.headers.get("User-Agent"),
            "status": None,
            "sent": 0,
        }
        # A "begin" line first, so a test can wait for requests in flight to
        # be logged instead of racing the handler's last write.
        entry["id"] = st.new_id()
        st.log({"begin": entry["id"]})
        n = st.count(self.path)
        faulty = "times" not in q or n <= int(q["times"])
        if not faulty:
            q = {k: v for k, v in q.items() if k not in FAULTS}
        try:
            self.respond(st, parts, q, entry, head)
        except (BrokenPipeError, ConnectionResetError):
            entry["aborted"] = True
        finally:
            if "logdelay" in q:
                time.sleep(float(q["logdelay"]))
            st.log(entry)

    def send_simple(self, entry, status, body=b"", headers=()):
        entry["status"] = status
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)
            entry["sent"] = len(body)

    def respond(self, st, parts, q, entry, head):
        if "delay" in q:
            time.sleep(float(q["delay"]))
        if "status" in q:
            code = int(q["status"])
            self.send_simple(entry, code, b"fault %d\n" % code,
                             [("Content-Type", "text/plain")])
            return
        if "location" in q:
            self.send_simple(entry, 302, b"", [("Location", q["location"])])
            return
        if "redirect" in q and int(q["redirect"]) > 0:
            rest = re.sub(r"(^|&)redirect=\d+", r"\1redirect=%d" % (int(q["redirect"]) - 1),
                          parts.query)
            self.send_simple(entry, 302, b"", [("Location", parts.path + "?" + rest)])
            return

        path = os.path.realpath(os.path.join(st.root, parts.path.lstrip("/")))
        if not (path == st.root or path.startswith(st.root + os.sep)) or not os.path.isfile(path):
            self.send_simple(entry, 404, b"not found\n", [("Content-Type", "text/plain")])
            return
        with open(path, "rb") as f:
            data = f.read()
        mtime = int(os.stat(path).st_mtime)
        etag = '"%s"' % hashlib.sha256(data).hexdigest()[:16]
        if "etag" in q:
            etag = None if q["etag"] == "none" else q["etag"]
        lm = None if q.get("nolm") else formatdate(mtime, usegmt=True)
        validators = []
        if etag:
            validators.append(("ETag", etag))
        if lm:
            validators.append(("Last-Modified", lm))

        inm = self.headers.get("If-None-Match")
        ims = self.headers.get("If-Modified-Since")
        if inm is not None:
            if etag and etag in [t.strip() for t in inm.split(",")]:
                self.send_simple(entry, 304, b"", validators)
                return
        elif ims and lm:
            try:
                if mtime <= parsedate_to_datetime(ims).timestamp():
                    self.send_simple(entry, 304, b"", validators)
                    return
            except (TypeError, ValueError):
                pass

        status, body, extra = 200, data, []
        rng = self.headers.get("Range")
        if rng and not q.get("norange"):
            if_range = self.headers.get("If-Range")
            honour = if_range is None or if_range == etag or (lm is not None and if_range == lm)
            m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())
            if honour and m:
                start = int(m.group(1))
                end = int(m.group(2)) if m.group(2) else len(data) - 1
                if start >= len(data):
                    self.send_simple(entry, 416, b"",
                                     [("Content-Range", "bytes */%d" % len(data))])
                    return
                end = min(end, len(data) - 1)
                status, body = 206, data[start:end + 1]
                extra = [("Content-Range", "bytes %d-%d/%d" % (start, end, len(data)))]

        entry["status"] = status
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(body)))
        for k, v in validators + extra:
            self.send_header(k, v)
        self.end_headers()
        if head:
            return
        limit = len(body)
        if "truncate" in q:
            limit = min(limit, int(q["truncate"]))
        if "stall" in q:
            limit = min(limit, int(q["stall"]))
        rate = float(q["rate"]) if "rate" in q else 0
        sent = 0
        while sent < limit:
            chunk = limit - sent
            if rate:
                chunk = min(chunk, max(1, int(rate / 20)))
            self.wfile.write(body[sent:sent + chunk])
            self.wfile.flush()
            sent += chunk
            entry["sent"] = sent
            if rate and sent < limit:
                time.sleep(chunk / rate)
        if "stall" in q and limit < len(body):
            time.sleep(st.stall_seconds)
        if limit < len(body):
            self.close_connection = True
            entry["truncated"] = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--log")
    ap.add_argument("--lifetime", type=float, default=600.0)
    ap.add_argument("--stall-seconds", type=float, default=30.0)
    ap.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM)")
    ap.add_argument("--tls-key", help="the certificate's private key (PEM)")
    args = ap.parse_args()

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    server.state = State(args.root, args.log, args.stall_seconds)
    port = server.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, args.port_file)
    else:
        print(port, flush=True)

    def stop(*_):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    timer = threading.Timer(args.lifetime, stop)
    timer.daemon = True
    timer.start()
    server.serve_forever(poll_interval=0.1)
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
