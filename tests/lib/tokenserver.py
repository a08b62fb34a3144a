#!/usr/bin/env python3
"""tokenserver.py - a Docker token-auth server (the Bearer realm) for tests.

GET  /token?service=S&scope=repository:NAME:pull,push[&scope=...]  with Basic auth
POST /token  grant_type=refresh_token&refresh_token=...&service=...&scope=...  (identity token)
answers {"token","access_token","expires_in","issued_at"} with an RS256 JWT that
docker-registry's `auth: token:` accepts: the signer's certificate rides in the
x5c header and is the registry's rootcertbundle.

Grants: the configured user (or refresh token) gets every action it asks for;
user "reader" (same password) gets pull only; anonymous requests get a token
with no access at all; a wrong password gets 401.  --ttl is the expires_in
told to the client; --registry-ttl (seconds) makes the JWT itself expire for
the registry that much later (docker-registry allows 60 s of clock leeway,
which this subtracts).  Every request is logged as one JSON line to --log.
Signing uses the openssl command, so only the standard library is needed.
"""
import argparse
import base64
import http.server
import json
import os
import socketserver
import ssl
import subprocess
import threading
import time
import urllib.parse
import uuid

LEEWAY = 60


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--issuer", required=True)
    ap.add_argument("--service", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--refresh-token", required=True)
    ap.add_argument("--ttl", type=int, default=300)
    ap.add_argument("--registry-ttl", type=int, default=None)
    ap.add_argument("--log", required=True)
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    a = ap.parse_args()

    der = subprocess.run(["openssl", "x509", "-in", a.cert, "-outform", "DER"], check=True,
                         stdout=subprocess.PIPE).stdout
    x5c = base64.b64encode(der).decode()
    lock = threading.Lock()

    def sign(claims):
        header = {"typ": "JWT", "alg": "RS256", "x5c": [x5c]}
        signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                         b64url(json.dumps(claims, separators=(",", ":")).encode()))
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", a.key], check=True,
                             input=signing_input.encode(), stdout=subprocess.PIPE).stdout
        return signing_input + "." + b64url(sig)

    def log(entry):
        with lock, open(a.log, "a") as f:
            f.write(json.dumps(entry) + "\n")

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def reply(self, code, body, extra=None):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def handle_token(self, params, who, grant_all):
            scopes = []
            for s in params.get("scope", []):
                scopes += [x for x in s.split(" ") if x]
            access = []
            for s in scopes:
                parts = s.split(":")
                if len(parts) < 3 or parts[0] != "repository":
                    continue
                name, actions = ":".join(parts[1:-1]), parts[-1].split(",")
                if who == "anonymous":
                    actions = []
                elif not grant_all:
                    actions = [x for x in actions if x == "pull"]
                if actions:
                    access.append({"type": "repository", "name": name, "actions": actions})
            now = int(time.time())
            exp = now + a.ttl if a.registry_ttl is None else now + a.registry_ttl - LEEWAY
            claims = {"iss": a.issuer, "sub": who, "aud": a.service, "exp": exp,
                      "nbf": now - 1 - LEEWAY if a.registry_ttl is not None else now - 1,
                      "iat": now, "jti": uuid.uuid4().hex, "access": access}
            tok = sign(claims)
            log({"method": self.command, "who": who, "scopes": scopes, "access": access,
                 "service": params.get("service", [""])[0], "time": time.time()})
            self.reply(200, {"token": tok, "access_token": tok, "expires_in": a.ttl,
                             "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))})

        def do_GET(self):
            u = urllib.parse.urlsplit(self.path)
            if u.path != "/token":
                return self.reply(404, {"error": "not found"})
            params = urllib.parse.parse_qs(u.query)
            auth = self.headers.get("Authorization", "")
            who, grant_all = "anonymous", False
            if auth:
                try:
                    scheme, val = auth.split(" ", 1)
                    user, pw = base64.b64decode(val).decode().split(":", 1)
                    assert scheme.lower() == "basic"
                except Exception:
                    log({"method": "GET", "who": "malformed", "time": time.time()})
                    return self.reply(400, {"error": "malformed Authorization"})
                if pw != a.password or user not in (a.user, "reader"):
                    log({"method": "GET", "who": "denied:" + user, "time": time.time()})
                    return self.reply(401, {"details": "bad credentials"},
                                      {"WWW-Authenticate": 'Basic realm="kpar-token"'})
                who, grant_all = user, user == a.user
            self.handle_token(params, who, grant_all)

        def do_POST(self):
            u = urllib.parse.urlsplit(self.path)
            n = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(n).decode()
            if u.path != "/token":
                return self.reply(404, {"error": "not found"})
            params = urllib.parse.parse_qs(body)
            if (params.get("grant_type") != ["refresh_token"] or
                    params.get("refresh_token") != [a.refresh_token]):
                log({"method": "POST", "who": "denied", "time": time.time()})
                return self.reply(401, {"error": "invalid_grant"})
            self.handle_token(params, "identity-token", True)

    srv = Server(("127.0.0.1", 0), Handler)
    if a.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, a.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
