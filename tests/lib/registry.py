#!/usr/bin/env python3
"""registry.py - start Debian's docker-registry on loopback for tests, in three flavours.

  plain  http, anonymous
  tls    https with a CA made here, Basic auth from an htpasswd file (bcrypt)
  token  https, Bearer token flow against tokenserver.py (also https, same CA)

As a module:
    with Registry("tls") as reg:
        reg.host        "127.0.0.1:PORT"
        reg.ca          CA bundle (PEM) for tls/token, else None
        reg.cert_dir    a dir with ca.crt for skopeo --cert-dir
        reg.docker_config  a DOCKER_CONFIG dir whose config.json holds the credentials
        reg.user, reg.password, reg.creds ("user:password" for skopeo --creds)
        reg.token_log   JSON lines, one per token request (token flavour)
As a command (for shell tests; see registry.sh):
    registry.py start FLAVOUR WORKDIR [--token-ttl S] [--registry-ttl S]
        starts detached processes and writes WORKDIR/env (shell assignments)
    registry.py stop WORKDIR

Everything binds 127.0.0.1 only; storage and keys live in the work directory.
Only the standard library and the openssl/htpasswd commands are used.
"""
import base64
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
USER = "kpar"
PASSWORD = "s3cret-Pa55"          # tests grep for this to prove it never leaks
REFRESH_TOKEN = "kpar-refresh-0123456789"
SERVICE = "kpar-test-registry"
ISSUER = "kpar-test-issuer"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(argv, **kw):
    return subprocess.run(argv, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def make_ca(d):
    """A CA and a server certificate for 127.0.0.1/localhost signed by it."""
    ca_key, ca_crt = os.path.join(d, "ca.key"), os.path.join(d, "ca.crt")
    key, csr, crt = (os.path.join(d, n) for n in ("server.key", "server.csr", "server.crt"))
    ext = os.path.join(d, "server.ext")
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key,
         "-out", ca_crt, "-days", "2", "-subj", "/CN=kpar test CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
         "-subj", "/CN=127.0.0.1"])
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\n")
    run(["openssl", "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key,
         "-CAcreateserial", "-out", crt, "-days", "2", "-extfile", ext])
    return ca_crt, crt, key


def write_docker_config(d, host, user=None, password=None, identity_token=None, extra=None):
    os.makedirs(d, exist_ok=True)
    entry = {}
    if user is not None:
        entry["auth"] = base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
    if identity_token is not None:
        entry["identitytoken"] = identity_token
    cfg = {"auths": {host: entry} if entry else {}}
    if extra:
        cfg.update(extra)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f)
    return d


class Registry:
    def __init__(self, flavour="plain", workdir=None, token_ttl=300, registry_ttl=None,
                 detached=False):
        assert flavour in ("plain", "tls", "token")
        self.flavour = flavour
        self.own_dir = workdir is None
        self.dir = workdir or tempfile.mkdtemp(prefix="kpar-registry-")
        os.makedirs(self.dir, exist_ok=True)
        self.token_ttl = token_ttl
        self.registry_ttl = registry_ttl
        self.detached = detached
        self.procs = []
        self.host = None
        self.ca = None
        self.cert_dir = None
        self.user, self.password = USER, PASSWORD
        self.creds = "%s:%s" % (USER, PASSWORD)
        self.docker_config = None
        self.token_log = None
        self.token_url = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *a):
        self.stop()

    def _spawn(self, argv, log):
        out = open(os.path.join(self.dir, log), "ab")
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=self.detached, close_fds=True)
        out.close()
        self.procs.append(p)
        return p

    def _ssl_ctx(self):
        if not self.ca:
            return None
        return ssl.create_default_context(cafile=self.ca)

    def _wait_http(self, url, proc, what):
        deadline = time.time() + 20
        while time.time() < deadline:
            if proc.poll() is not None:
                return False
            try:
                urllib.request.urlopen(url, timeout=2, context=self._ssl_ctx())
                return True
            except urllib.error.HTTPError:
                return True          # any HTTP answer means it is up
            except (urllib.error.URLError, OSError):
                time.sleep(0.05)
        raise RuntimeError("%s did not come up at %s; see %s" % (what, url, self.dir))

    def start(self):
        d = self.dir
        tls = self.flavour in ("tls", "token")
        if tls:
            self.ca, crt, key = make_ca(d)
            self.cert_dir = os.path.join(d, "certs")
            os.makedirs(self.cert_dir, exist_ok=True)
            shutil.copy(self.ca, os.path.join(self.cert_dir, "ca.crt"))
        auth = ""
        if self.flavour == "tls":
            ht = run(["htpasswd", "-Bbn", USER, PASSWORD]).stdout
            with open(os.path.join(d, "htpasswd"), "wb") as f:
                f.write(ht)
            auth = ("auth:\n  htpasswd:\n    realm: kpar-test\n    path: %s\n"
                    % os.path.join(d, "htpasswd"))
        if self.flavour == "token":
            tkey, tcrt = os.path.join(d, "token.key"), os.path.join(d, "token.crt")
            run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", tkey,
                 "-out", tcrt, "-days", "2", "-subj", "/CN=kpar token signer"])
            self.token_log = os.path.join(d, "token.log")
            portfile = os.path.join(d, "token.port")
            argv = [sys.executable, os.path.join(HERE, "tokenserver.py"),
                    "--port-file", portfile, "--key", tkey, "--cert", tcrt,
                    "--issuer", ISSUER, "--service", SERVICE, "--user", USER,
                    "--password", PASSWORD, "--refresh-token", REFRESH_TOKEN,
                    "--ttl", str(self.token_ttl), "--log", self.token_log,
                    "--tls-cert", crt, "--tls-key", key]
            if self.registry_ttl is not None:
                argv += ["--registry-ttl", str(self.registry_ttl)]
            p = self._spawn(argv, "tokenserver.out")
            deadline = time.time() + 20
            while not (os.path.exists(portfile) and os.path.getsize(portfile)):
                if p.poll() is not None or time.time() > deadline:
                    raise RuntimeError("token server did not start; see %s" % d)
                time.sleep(0.05)
            with open(portfile) as f:
                tport = int(f.read())
            self.token_url = "https://127.0.0.1:%d/token" % tport
            auth = ("auth:\n  token:\n    realm: %s\n    service: %s\n    issuer: %s\n"
                    "    rootcertbundle: %s\n" % (self.token_url, SERVICE, ISSUER, tcrt))
        # A port picked then bound by another process is a (rare) race: try again.
        for _ in range(5):
            port = free_port()
            cfg = os.path.join(d, "config.yml")
            with open(cfg, "w") as f:
                f.write("version: 0.1\n"
                        "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
                        "storage:\n  filesystem:\n    rootdirectory: %s\n"
                        "  delete:\n    enabled: true\n"
                        "  maintenance:\n    uploadpurging:\n      enabled: false\n"
                        "http:\n  addr: 127.0.0.1:%d\n  secret: kpar-test-%d\n"
                        % (os.path.join(d, "storage"), port, os.getpid()))
                if tls:
                    f.write("  tls:\n    certificate: %s\n    key: %s\n" % (crt, key))
                f.write(auth)
            p = self._spawn(["docker-registry", "serve", cfg], "registry.out")
            scheme = "https" if tls else "http"
            if self._wait_http("%s://127.0.0.1:%d/v2/" % (scheme, port), p, "docker-registry"):
                self.host = "127.0.0.1:%d" % port
                break
            self.procs.remove(p)
        else:
            raise RuntimeError("docker-registry would not start; see %s/registry.out" % d)
        self.docker_config = os.path.join(d, "docker")
        if self.flavour == "plain":
            write_docker_config(self.docker_config, self.host)
        else:
            write_docker_config(self.docker_config, self.host, USER, PASSWORD)
        return self

    def env(self):
        return {"REGISTRY_HOST": self.host, "REGISTRY_FLAVOUR": self.flavour,
                "REGISTRY_CA": self.ca or "", "REGISTRY_CERT_DIR": self.cert_dir or "",
                "REGISTRY_USER": self.user, "REGISTRY_PASSWORD": self.password,
                "REGISTRY_CREDS": self.creds, "REGISTRY_DOCKER_CONFIG": self.docker_config,
                "REGISTRY_TOKEN_LOG": self.token_log or "", "REGISTRY_DIR": self.dir,
                "REGISTRY_PIDS": " ".join(str(p.pid) for p in self.procs)}

    def skopeo_args(self, with_creds=True):
        """The options skopeo needs for this registry."""
        if self.flavour == "plain":
            return ["--tls-verify=false"]
        args = ["--cert-dir", self.cert_dir]
        if with_creds:
            args += ["--creds", self.creds]
        return args

    def token_requests(self):
        if not self.token_log or not os.path.exists(self.token_log):
            return []
        with open(self.token_log) as f:
            return [json.loads(line) for line in f if line.strip()]

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs = []
        if self.own_dir and not os.environ.get("KPAR_KEEP_TEST_DIRS"):
            shutil.rmtree(self.dir, ignore_errors=True)


def shell_quote(s):
    return "'" + s.replace("'", "'\\''") + "'"


def main(argv):
    if len(argv) >= 3 and argv[0] == "start":
        flavour, workdir = argv[1], argv[2]
        opts = dict(zip(argv[3::2], argv[4::2]))
        reg = Registry(flavour, workdir=workdir, detached=True,
                       token_ttl=int(opts.get("--token-ttl", "300")),
                       registry_ttl=int(opts["--registry-ttl"]) if "--registry-ttl" in opts else None)
        try:
            reg.start()
        except Exception as e:
            reg.stop()
            sys.stderr.write("registry.py: %s\n" % e)
            return 99
        with open(os.path.join(workdir, "env"), "w") as f:
            for k, v in reg.env().items():
                f.write("%s=%s\n" % (k, shell_quote(v)))
        return 0
    if len(argv) == 2 and argv[0] == "stop":
        envf = os.path.join(argv[1], "env")
        pids = []
        if os.path.exists(envf):
            with open(envf) as f:
                for line in f:
                    if line.startswith("REGISTRY_PIDS="):
                        pids = [int(x) for x in line.split("=", 1)[1].strip().strip("'").split()]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.time() + 10
        for pid in pids:
            while time.time() < deadline:
                try:
                    os.kill(pid, 0)
                    time.sleep(0.05)
                except ProcessLookupError:
                    break
            else:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
