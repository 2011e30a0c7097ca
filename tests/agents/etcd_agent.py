#!/usr/bin/env python3
"""A node's registration agent for etcd, in the kratos layout (Python 3 standard library only).

It does what a service's own registry client does, plus honour gray's pause flag:
  - registers the instance at <prefix>/<id> with a lease (TTL --ttl) and keeps the lease alive;
  - every --interval seconds reads the pause flag <control-prefix>/paused/<service>/<id>:
      * while the flag exists it does not register (gray has taken the instance out);
      * when the flag goes away it registers again at once, with its current version, and takes
        the key over if gray put it back under a lease of gray's own;
  - when its key disappears (or its lease expired) and it is not paused, it registers again;
  - on SIGTERM or SIGINT it revokes its lease (the instance leaves the registry) and exits 0.

The version comes from --version, or from --version-file, which is read again before each
registration (a deploy script writes the new version there). When the agent takes over a key that
exists, it keeps that key's metadata (weights and tags gray set) and sets its own version.

Usage:
  etcd_agent.py --endpoint http://127.0.0.1:2379 --prefix /microservices/checkout \
                --id app-1 --addr 10.0.0.5:8000 --version 2.4.1 [--service checkout] \
                [--control-prefix /gray] [--ttl 15] [--interval 1] [--metadata k=v ...] \
                [--user NAME --password-env VAR]
Each state change is logged as one line on stdout: "<unix time> <event> <details>".
"""

import argparse
import base64
import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request


def b64(text):
    return base64.b64encode(text.encode()).decode()


def unb64(text):
    return base64.b64decode(text).decode()


def log(event, details=""):
    print(f"{time.time():.3f} {event} {details}".rstrip(), flush=True)


class EtcdError(Exception):
    pass


class Etcd:
    """The v3 JSON gateway: keys and values base64, 64-bit numbers as strings."""

    def __init__(self, endpoints, user=None, password=None, timeout=3.0):
        self.endpoints = endpoints
        self.user = user
        self.password = password
        self.timeout = timeout
        self.token = None

    def _post_once(self, endpoint, path, body):
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = self.token
        req = urllib.request.Request(endpoint + path, data=json.dumps(body).encode(), headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read().decode() or "{}")
        except urllib.error.HTTPError as e:
            text = e.read().decode(errors="replace")
            try:
                reply = json.loads(text)
            except ValueError:
                reply = {}
            if reply.get("code") == 16 and self.user:  # token expired
                raise PermissionError(reply.get("message", text))
            raise EtcdError(f"HTTP {e.code} from {path}: {reply.get('message', text[:200])}")

    def post(self, path, body):
        last = None
        for endpoint in self.endpoints:
            try:
                if self.user and not self.token:
                    self._authenticate(endpoint)
                try:
                    return self._post_once(endpoint, path, body)
                except PermissionError:
                    self._authenticate(endpoint)
                    return self._post_once(endpoint, path, body)
            except (urllib.error.URLError, OSError, ValueError) as e:
                last = e
        raise EtcdError(f"cannot reach etcd at {', '.join(self.endpoints)}: {last}")

    def _authenticate(self, endpoint):
        self.token = None
        reply = self._post_once(endpoint, "/v3/auth/authenticate", {"name": self.user, "password": self.password})
        self.token = reply.get("token")
        if not self.token:
            raise EtcdError("authentication answered no token")

    def get(self, key):
        reply = self.post("/v3/kv/range", {"key": b64(key)})
        kvs = reply.get("kvs") or []
        if not kvs:
            return None
        kv = kvs[0]
        return {"value": unb64(kv.get("value", "")), "lease": int(kv.get("lease", "0"))}

    def put(self, key, value, lease):
        self.post("/v3/kv/put", {"key": b64(key), "value": b64(value), "lease": str(lease)})

    def grant(self, ttl):
        reply = self.post("/v3/lease/grant", {"TTL": ttl})
        lease = int(reply.get("ID", "0"))
        if not lease:
            raise EtcdError(f"lease grant answered no ID: {reply}")
        return lease

    def keepalive(self, lease):
        reply = self.post("/v3/lease/keepalive", {"ID": str(lease)})
        return int(reply.get("result", {}).get("TTL", "0"))

    def revoke(self, lease):
        self.post("/v3/lease/revoke", {"ID": str(lease)})


class Agent:
    def __init__(self, args, etcd):
        self.args = args
        self.etcd = etcd
        self.key = f"{args.prefix.rstrip('/')}/{args.id}"
        self.flag = f"{args.control_prefix.rstrip('/')}/paused/{args.service}/{args.id}"
        self.lease = 0
        self.paused = None  # unknown until the first poll
        self.next_keepalive = 0.0
        self.stopping = False

    def version(self):
        if self.args.version_file:
            try:
                with open(self.args.version_file, encoding="utf-8") as f:
                    return f.read().strip()
            except OSError as e:
                log("version-file-unreadable", str(e))
        return self.args.version or ""

    def value(self, existing):
        metadata = dict(kv.split("=", 1) for kv in self.args.metadata)
        if existing:
            try:
                metadata.update(json.loads(existing["value"]).get("metadata") or {})
            except ValueError:
                pass
        version = self.version()
        if "version" in metadata:
            metadata["version"] = version
        return json.dumps({
            "id": self.args.id,
            "name": self.args.service,
            "version": version,
            "metadata": metadata,
            "endpoints": [f"{self.args.scheme}://{self.args.addr}?isSecure=false"],
        })

    def ensure_lease(self):
        now = time.monotonic()
        if self.lease and now < self.next_keepalive:
            return
        if self.lease and self.etcd.keepalive(self.lease) > 0:
            self.next_keepalive = now + self.args.ttl / 3.0
            return
        if self.lease:
            log("lease-expired", str(self.lease))
        self.lease = self.etcd.grant(self.args.ttl)
        self.next_keepalive = now + self.args.ttl / 3.0

    def register(self, why, existing):
        self.etcd.put(self.key, self.value(existing), self.lease)
        log("registered", f"{why} key={self.key} version={self.version()} lease={self.lease}")

    def step(self):
        self.ensure_lease()
        paused = self.etcd.get(self.flag) is not None
        was_paused, self.paused = self.paused, paused
        if paused:
            if was_paused is not True:
                log("paused", self.flag)
            return
        existing = self.etcd.get(self.key)
        if was_paused:
            log("resumed", self.flag)
            self.register("resumed", existing)
        elif existing is None:
            self.register("missing", None)
        elif existing["lease"] != self.lease:
            # gray put the key back under its own lease: take it over so it outlives gray.
            self.register("taken-over", existing)

    def run(self):
        while not self.stopping:
            try:
                self.step()
            except EtcdError as e:
                log("error", str(e))
            deadline = time.monotonic() + self.args.interval
            while not self.stopping and time.monotonic() < deadline:
                time.sleep(min(0.05, self.args.interval))
        if self.lease:
            try:
                self.etcd.revoke(self.lease)
                log("deregistered", self.key)
            except EtcdError as e:
                log("error", f"revoking the lease on exit: {e}")


def main(argv):
    p = argparse.ArgumentParser(description="Register an instance in etcd (kratos layout) and honour gray's pause flag.")
    p.add_argument("--endpoint", action="append", required=True, help="etcd client URL (repeatable)")
    p.add_argument("--prefix", required=True, help="key prefix, e.g. /microservices/checkout")
    p.add_argument("--service", help="service name (default: the prefix's last part)")
    p.add_argument("--id", required=True, help="instance id: the key's last part; use the inventory host name")
    p.add_argument("--addr", required=True, help="host:port the instance serves on")
    p.add_argument("--scheme", default="http", help="endpoint scheme (default http)")
    p.add_argument("--version", help="version to register")
    p.add_argument("--version-file", help="file holding the version, read again before each registration")
    p.add_argument("--metadata", action="append", default=[], help="k=v metadata (repeatable)")
    p.add_argument("--control-prefix", default="/gray", help="gray's control prefix (default /gray)")
    p.add_argument("--ttl", type=int, default=15, help="lease TTL in seconds (default 15)")
    p.add_argument("--interval", type=float, default=1.0, help="poll interval in seconds (default 1)")
    p.add_argument("--user", help="etcd user")
    p.add_argument("--password-env", help="environment variable holding the etcd password")
    args = p.parse_args(argv)
    if not args.version and not args.version_file:
        p.error("give --version or --version-file")
    if args.service is None:
        args.service = args.prefix.rstrip("/").rsplit("/", 1)[-1]
    if args.ttl < 1 or args.interval <= 0:
        p.error("--ttl must be at least 1 and --interval more than 0")
    password = os.environ.get(args.password_env, "") if args.password_env else None
    etcd = Etcd([e.rstrip("/") for e in args.endpoint], args.user, password)
    agent = Agent(args, etcd)

    def stop(signum, frame):
        agent.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log("started", f"key={agent.key} flag={agent.flag} interval={args.interval}s ttl={args.ttl}s")
    agent.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
