"""faultserver.py - an in-memory registry (distribution API subset) that misbehaves on demand.

FaultRegistry(**options) serves on 127.0.0.1 in a thread; `faults` is a dict
the test sets before each run (counts are consumed as faults fire):

  head_429: n          the first n blob HEADs answer 429 with Retry-After: 1
  put_500: n           the first n blob upload PUTs answer 500 (n large: always)
  drop_put: n          the first n blob upload PUTs read the body, then close the
                       connection without an answer
  post_garbage: n      the first n upload POSTs answer 202 without a Location
  manifest_garbage     GET manifest answers 200 with an HTML page
  error_garbage        error answers carry an HTML body instead of {"errors":[...]}
  relative_location    upload Locations are relative (default: absolute); both
                       always carry a ?_state= that the PUT must return intact
  blob_redirect        GET blob answers 307 to a Storage server on another port
  bad_blob             GET blob answers other bytes than the digest says
  revoke_after: n      a Bearer token is refused (401 invalid_token) after n uses
  token_ttl: s         expires_in of issued tokens; they are refused after it
  token_503: n         the first n token requests answer 503 with Retry-After: 1

auth: None, ("basic", user, password) or ("bearer", user, password) - the
token realm is this server's /token.  Every request is appended to `log`;
protocol violations the client must never commit (a manifest PUT before its
blobs exist, a retry sooner than Retry-After, a PUT that lost the _state
query) are appended to `violations`.
"""
import base64
import hashlib
import http.server
import json
import re
import socketserver
import threading
import time
import urllib.parse
import uuid


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def _sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Storage:
    """A blob store on another port, as S3 would be behind a registry redirect."""

    def __init__(self):
        self.blobs = {}
        self.log = []
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                outer.log.append({"path": self.path,
                                  "authorization": self.headers.get("Authorization")})
                digest = urllib.parse.urlsplit(self.path).path.rsplit("/", 1)[-1]
                data = outer.blobs.get(digest)
                if data is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.srv = _Server(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


class FaultRegistry:
    def __init__(self, auth=None):
        self.auth = auth
        self.faults = {}
        self.blobs = {}
        self.manifests = {}
        self.uploads = {}
        self.tokens = {}
        self.log = []
        self.violations = []
        self.lock = threading.Lock()
        self.last_429 = {}
        self.storage = None
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                outer._handle(self, "GET")

            def do_HEAD(self):
                outer._handle(self, "HEAD")

            def do_POST(self):
                outer._handle(self, "POST")

            def do_PUT(self):
                outer._handle(self, "PUT")

            def do_PATCH(self):
                outer._handle(self, "PATCH")

        self.srv = _Server(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        self.host = "127.0.0.1:%d" % self.port
        self.base = "http://" + self.host
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()
        if self.storage:
            self.storage.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def reset_log(self):
        self.log = []
        self.violations = []

    def requests(self, method=None, kind=None):
        return [r for r in self.log if (method is None or r["method"] == method) and
                (kind is None or r["kind"] == kind)]

    def _take(self, name):
        """Consumes one unit of a counted fault; True when it fires."""
        with self.lock:
            n = self.faults.get(name, 0)
            if n > 0:
                self.faults[name] = n - 1
                return True
            return False

    # ---- answers ----
    def _send(self, h, code, body=b"", headers=None, ctype=None):
        h.send_response(code)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        if ctype:
            h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(body)

    def _error(self, h, code, ecode, msg, headers=None):
        if self.faults.get("error_garbage"):
            body = b"<html><body><h1>%d Something broke</h1></body></html>" % code
            return self._send(h, code, body, headers, "text/html")
        body = json.dumps({"errors": [{"code": ecode, "message": msg, "detail": None}]}).encode()
        self._send(h, code, body, headers, "application/json")

    def _challenge(self):
        if self.auth[0] == "basic":
            return 'Basic realm="fault-registry"'
        return 'Bearer realm="%s/token",service="fault",scope="x"' % self.base

    def _authorized(self, h, entry):
        """True when the request may proceed; answers 401 otherwise."""
        if not self.auth:
            return True
        got = h.headers.get("Authorization", "")
        kind, user, password = self.auth
        if kind == "basic":
            ok = got == "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
            if not ok:
                self._error(h, 401, "UNAUTHORIZED", "authentication required",
                            {"WWW-Authenticate": self._challenge()})
            return ok
        tok = got[7:] if got.startswith("Bearer ") else None
        info = self.tokens.get(tok) if tok else None
        err = None
        if not info:
            err = None if not tok else "invalid_token"
        elif time.time() > info["expires"]:
            err = "invalid_token"
        elif self.faults.get("revoke_after") and info["uses"] >= self.faults["revoke_after"]:
            err = "invalid_token"
        if info and not err:
            info["uses"] += 1
            return True
        ch = self._challenge() + (',error="%s"' % err if err else "")
        entry["denied"] = err or "no token"
        self._error(h, 401, "UNAUTHORIZED", "authentication required", {"WWW-Authenticate": ch})
        return False

    def _token(self, h):
        kind, user, password = self.auth
        if self._take("token_503"):
            self.last_token_503 = time.time()
            return self._send(h, 503, b"busy", {"Retry-After": "1"}, "text/plain")
        if getattr(self, "last_token_503", None):
            early = time.time() - self.last_token_503
            self.last_token_503 = None
            if early < 0.95:
                self.violations.append("token retried %.2fs after Retry-After: 1" % early)
        got = h.headers.get("Authorization", "")
        if got != "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode():
            return self._send(h, 401, b'{"details":"bad credentials"}', None, "application/json")
        tok = uuid.uuid4().hex
        ttl = self.faults.get("token_ttl", 300)
        self.tokens[tok] = {"expires": time.time() + ttl, "uses": 0}
        body = json.dumps({"token": tok, "expires_in": ttl}).encode()
        self._send(h, 200, body, None, "application/json")

    # ---- the API ----
    def _handle(self, h, method):
        u = urllib.parse.urlsplit(h.path)
        q = urllib.parse.parse_qs(u.query, keep_blank_values=True)
        n = int(h.headers.get("Content-Length", "0") or 0)
        body = h.rfile.read(n) if n else b""
        entry = {"method": method, "path": u.path, "query": q, "time": time.time(),
                 "authorization": h.headers.get("Authorization"), "kind": "other",
                 "content_type": h.headers.get("Content-Type"), "body_len": len(body)}
        self.log.append(entry)
        if u.path == "/token" and self.auth and self.auth[0] == "bearer":
            entry["kind"] = "token"
            return self._token(h)
        if u.path == "/v2/":
            entry["kind"] = "ping"
            if not self._authorized(h, entry):
                return
            return self._send(h, 200, b"{}", None, "application/json")
        m = re.match(r"^/v2/(.+)/(blobs|manifests)/(uploads/)?([^/]*)$", u.path)
        if not m:
            return self._error(h, 404, "NAME_UNKNOWN", "no such endpoint")
        repo, what, uploads, ref = m.groups()
        entry["kind"] = "upload" if uploads is not None else what[:-1]
        entry["repo"], entry["ref"] = repo, ref
        if not self._authorized(h, entry):
            return
        if uploads is not None:
            return self._upload(h, method, repo, ref, q, body, entry)
        if what == "blobs":
            return self._blob(h, method, repo, ref, entry)
        return self._manifest(h, method, repo, ref, body, entry)

    def _blob(self, h, method, repo, digest, entry):
        if method == "HEAD" and self._take("head_429"):
            now = time.time()
            self.last_429[digest] = now
            return self._error(h, 429, "TOOMANYREQUESTS", "slow down", {"Retry-After": "1"})
        if digest in self.last_429:
            early = time.time() - self.last_429.pop(digest)
            if early < 0.95:
                self.violations.append("retried %s %.2fs after a 429 with Retry-After: 1"
                                       % (digest, early))
        data = self.blobs.get((repo, digest))
        if data is None:
            return self._error(h, 404, "BLOB_UNKNOWN", "blob unknown to registry")
        if method == "GET" and self.faults.get("blob_redirect"):
            if not self.storage:
                self.storage = Storage()
            self.storage.blobs[digest] = data
            loc = "http://127.0.0.1:%d/data/%s?sig=abc" % (self.storage.port, digest)
            return self._send(h, 307, b"", {"Location": loc})
        if method == "GET" and self.faults.get("bad_blob"):
            data = b"not the blob you asked for"
        self._send(h, 200, data, {"Docker-Content-Digest": digest}, "application/octet-stream")

    def _location(self, repo, uid):
        state = base64.urlsafe_b64encode(json.dumps({"uuid": uid}).encode()).decode()
        path = "/v2/%s/blobs/uploads/%s?_state=%s" % (repo, uid, urllib.parse.quote(state))
        return path if self.faults.get("relative_location") else self.base + path, state

    def _upload(self, h, method, repo, uid, q, body, entry):
        if method == "POST":
            if "mount" in q and "from" in q:
                src = (q["from"][0], q["mount"][0])
                if src in self.blobs:
                    self.blobs[(repo, q["mount"][0])] = self.blobs[src]
                    entry["mounted"] = True
                    return self._send(h, 201, b"", {"Docker-Content-Digest": q["mount"][0]})
            if self._take("post_garbage"):
                return self._send(h, 202, b"")
            uid = uuid.uuid4().hex
            loc, state = self._location(repo, uid)
            self.uploads[uid] = {"data": bytearray(), "state": state}
            return self._send(h, 202, b"", {"Location": loc, "Range": "0-0",
                                            "Docker-Upload-UUID": uid})
        up = self.uploads.get(uid)
        if up is None:
            return self._error(h, 404, "BLOB_UPLOAD_UNKNOWN", "upload unknown")
        if q.get("_state") != [up["state"]]:
            self.violations.append("%s of upload %s lost its _state query: %r" % (method, uid, q))
            return self._error(h, 400, "BLOB_UPLOAD_INVALID", "bad _state")
        if method == "PATCH":
            rng = h.headers.get("Content-Range")
            start = len(up["data"])
            if rng and not rng.startswith("%d-" % start):
                return self._send(h, 416, b"", {"Range": "0-%d" % (start - 1)})
            up["data"] += body
            loc, _ = self._location(repo, uid)
            return self._send(h, 202, b"", {"Location": loc, "Range": "0-%d" % (len(up["data"]) - 1)})
        if method == "PUT":
            if self._take("put_500"):
                return self._error(h, 500, "UNKNOWN", "internal trouble")
            if self._take("drop_put"):
                h.close_connection = True
                h.wfile.flush()
                h.connection.shutdown(2)
                return
            data = bytes(up["data"]) + body
            digest = q.get("digest", [""])[0]
            if _sha(data) != digest:
                return self._error(h, 400, "DIGEST_INVALID", "digest did not match content")
            self.blobs[(repo, digest)] = data
            del self.uploads[uid]
            return self._send(h, 201, b"", {"Docker-Content-Digest": digest,
                                            "Location": "/v2/%s/blobs/%s" % (repo, digest)})
        return self._error(h, 405, "UNSUPPORTED", "method")

    def _manifest(self, h, method, repo, ref, body, entry):
        if method in ("GET", "HEAD"):
            if self.faults.get("manifest_garbage") and method == "GET":
                return self._send(h, 200, b"<html>Welcome to nginx!</html>", None, "text/html")
            got = self.manifests.get((repo, ref))
            if not got:
                return self._error(h, 404, "MANIFEST_UNKNOWN", "manifest unknown")
            data, ctype = got
            accept = ",".join(h.headers.get_all("Accept") or [])
            entry["accept"] = accept
            if ctype not in accept:
                self.violations.append("GET manifest without %s in Accept" % ctype)
            return self._send(h, 200, data, {"Docker-Content-Digest": _sha(data)}, ctype)
        if method == "PUT":
            ctype = h.headers.get("Content-Type")
            try:
                m = json.loads(body)
            except ValueError:
                return self._error(h, 400, "MANIFEST_INVALID", "not json")
            if m.get("mediaType") != ctype:
                self.violations.append("manifest PUT with Content-Type %r for mediaType %r"
                                       % (ctype, m.get("mediaType")))
            refs = [m["config"]["digest"]] if "config" in m else []
            refs += [x["digest"] for x in m.get("layers", [])]
            missing = [d for d in refs if (repo, d) not in self.blobs]
            if missing:
                self.violations.append("manifest PUT before blobs %s" % missing)
                return self._error(h, 400, "MANIFEST_BLOB_UNKNOWN", "blob unknown to registry")
            if self.faults.get("manifest_put_400"):
                return self._error(h, 400, "MANIFEST_INVALID", "manifest invalid")
            digest = _sha(body)
            self.manifests[(repo, ref)] = (body, ctype)
            self.manifests[(repo, digest)] = (body, ctype)
            return self._send(h, 201, b"", {"Docker-Content-Digest": digest})
        return self._error(h, 405, "UNSUPPORTED", "method")
