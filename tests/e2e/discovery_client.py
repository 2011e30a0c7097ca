#!/usr/bin/env python3
"""A service's caller that finds its instances in etcd, the way kratos clients do.

It keeps a cache of the instances registered under a prefix (kratos layout: key
<prefix>/<id>, value {"id","name","version","metadata","endpoints":["http://host:port", ...]})
and refreshes it every --poll seconds. Meanwhile it sends steady requests (--rate per second)
round-robin to the cached instances, over one keep-alive connection per instance, and retries
nothing: a request that fails is counted as failed. This is the client that method 5 protects:
an instance must leave the registry, and stay out of every client's cache, before it stops.

At the end (after --duration seconds, or on SIGTERM/SIGINT) it prints one JSON object:
  {"sent", "ok", "failed", "by_version": {...}, "by_instance": {...}, "failures": [...],
   "no_instance", "registry_errors", "cache_changes", "duration_s"}
and exits 0 (the caller judges the counts), 2 on bad arguments.

Usage:
  discovery_client.py --endpoint http://127.0.0.1:2379 --prefix /microservices/shop \
                      [--service shop] [--poll 1] [--rate 300] [--duration 60] [--path /api/ping]
"""

import argparse
import base64
import http.client
import json
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit


def b64(text):
    return base64.b64encode(text.encode()).decode()


def prefix_range_end(prefix):
    """The etcd range_end that selects every key starting with `prefix`."""
    raw = bytearray(prefix.encode())
    while raw and raw[-1] == 0xFF:
        raw.pop()
    if not raw:
        return "\0"
    raw[-1] += 1
    return base64.b64encode(bytes(raw)).decode()


def parse_instances(kvs, service):
    """{address: version} of the kratos entries in a range reply; others are skipped."""
    found = {}
    for kv in kvs:
        try:
            doc = json.loads(base64.b64decode(kv.get("value", "")).decode())
        except (ValueError, UnicodeDecodeError):
            continue  # not an instance (another tool's key under the prefix)
        if not isinstance(doc, dict):
            continue
        if service and doc.get("name") != service:
            continue
        for endpoint in doc.get("endpoints") or []:
            if not isinstance(endpoint, str):
                continue
            parts = urlsplit(endpoint)
            if parts.scheme == "http" and parts.hostname and parts.port:
                found[f"{parts.hostname}:{parts.port}"] = str(doc.get("version", ""))
    return found


class RegistryCache:
    """The client's copy of the registry, refreshed by a background thread."""

    def __init__(self, endpoint, prefix, service, poll):
        self.url = endpoint.rstrip("/") + "/v3/kv/range"
        self.key = prefix.rstrip("/") + "/"
        self.service = service
        self.poll = poll
        self.lock = threading.Lock()
        self.instances = {}
        self.errors = 0
        self.last_error = ""
        self.changes = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def start(self):
        self.refresh()
        self.thread.start()

    def stop(self):
        self.stopping.set()
        self.thread.join(timeout=5)

    def snapshot(self):
        with self.lock:
            return dict(self.instances)

    def refresh(self):
        body = json.dumps({"key": b64(self.key), "range_end": prefix_range_end(self.key)}).encode()
        req = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=2) as resp:
                reply = json.loads(resp.read().decode() or "{}")
        except (urllib.error.URLError, OSError, ValueError) as e:
            # A real client keeps serving from its last copy when the registry is unreachable.
            with self.lock:
                self.errors += 1
                self.last_error = f"etcd at {self.url}: {e}"
            return
        fresh = parse_instances(reply.get("kvs") or [], self.service)
        with self.lock:
            if fresh != self.instances:
                self.changes.append({"at": round(time.time(), 3), "instances": fresh})
                self.instances = fresh

    def _loop(self):
        while not self.stopping.wait(self.poll):
            self.refresh()


class Caller:
    """Round-robin requests over the cached instances; no retries."""

    def __init__(self, path, timeout):
        self.path = path
        self.timeout = timeout
        self.connections = {}
        self.next = 0
        self.sent = self.ok = self.failed = self.no_instance = 0
        self.by_version = {}
        self.by_instance = {}
        self.failures = []

    def forget_missing(self, live):
        """Closes the connections of instances that left the cache."""
        for address in list(self.connections):
            if address not in live:
                self.connections.pop(address).close()

    def call(self, instances):
        if not instances:
            self.no_instance += 1
            self.failed += 1
            self._note_failure("-", "no instance in the registry cache")
            return
        addresses = sorted(instances)
        address = addresses[self.next % len(addresses)]
        self.next += 1
        self.sent += 1
        counts = self.by_instance.setdefault(address, {"sent": 0, "ok": 0, "failed": 0})
        counts["sent"] += 1
        conn = self.connections.get(address)
        if conn is None:
            host, port = address.rsplit(":", 1)
            conn = http.client.HTTPConnection(host, int(port), timeout=self.timeout)
            self.connections[address] = conn
        try:
            conn.request("GET", self.path, headers={"Host": address})
            resp = conn.getresponse()
            body = resp.read()
            if resp.will_close:
                conn.close()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            self.connections.pop(address, None)
            self.failed += 1
            counts["failed"] += 1
            self._note_failure(address, f"{type(e).__name__}: {e}")
            return
        if 200 <= resp.status < 300:
            self.ok += 1
            counts["ok"] += 1
            try:
                version = str(json.loads(body.decode()).get("version", "?"))
            except (ValueError, UnicodeDecodeError, AttributeError):
                version = "?"
            self.by_version[version] = self.by_version.get(version, 0) + 1
        else:
            self.failed += 1
            counts["failed"] += 1
            self._note_failure(address, f"HTTP {resp.status}")

    def _note_failure(self, address, what):
        if len(self.failures) < 50:
            self.failures.append({"at": round(time.time(), 3), "instance": address, "error": what})

    def close(self):
        for conn in self.connections.values():
            conn.close()


def main():
    ap = argparse.ArgumentParser(description="A registry-caching client that sends steady requests and counts failures.")
    ap.add_argument("--endpoint", required=True, help="etcd client URL, e.g. http://127.0.0.1:2379")
    ap.add_argument("--prefix", required=True, help="the service's prefix, e.g. /microservices/shop")
    ap.add_argument("--service", default="", help="keep only instances with this name (default: all under the prefix)")
    ap.add_argument("--poll", type=float, default=1.0, help="seconds between registry reads (the cache's age)")
    ap.add_argument("--rate", type=float, default=300.0, help="requests per second")
    ap.add_argument("--duration", type=float, default=0.0, help="seconds to run; 0 runs until SIGTERM/SIGINT")
    ap.add_argument("--path", default="/api/ping", help="request path")
    ap.add_argument("--timeout", type=float, default=5.0, help="seconds one request may take")
    args = ap.parse_args()
    if args.poll <= 0 or args.rate <= 0 or args.duration < 0 or args.timeout <= 0:
        ap.error("--poll, --rate and --timeout must be positive, --duration at least 0")
    if not args.path.startswith("/"):
        ap.error("--path must start with '/'")

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    cache = RegistryCache(args.endpoint, args.prefix, args.service, args.poll)
    cache.start()
    caller = Caller(args.path, args.timeout)
    started = time.monotonic()
    interval = 1.0 / args.rate
    due = started
    while not stop.is_set():
        now = time.monotonic()
        if args.duration and now - started >= args.duration:
            break
        if now < due:
            stop.wait(due - now)
            continue
        live = cache.snapshot()
        caller.forget_missing(live)
        caller.call(live)
        # Keep the average rate; after a stall, do not burst to catch up by more than a second.
        due = max(due + interval, now - 1.0)
    elapsed = time.monotonic() - started
    cache.stop()
    caller.close()
    print(json.dumps({
        "sent": caller.sent,
        "ok": caller.ok,
        "failed": caller.failed,
        "no_instance": caller.no_instance,
        "by_version": caller.by_version,
        "by_instance": caller.by_instance,
        "failures": caller.failures,
        "registry_errors": cache.errors,
        "last_registry_error": cache.last_error,
        "cache_changes": cache.changes,
        "duration_s": round(elapsed, 3),
    }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
