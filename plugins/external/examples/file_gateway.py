#!/usr/bin/env python3
"""A gray gateway plugin that keeps its state in a JSON file.

An example of the external plugin protocol (docs/plugin-protocol.md, version 1), written with
the Python standard library only. It is a real gateway as far as gray can tell: the canary
weight, the state of each server (ready, drain, maint) and the routing rules live in one JSON
file that other programs (a config renderer, a test) read back.

Configuration (the `config` map of the pipeline's declaration):
    state   path of the JSON state file (relative to the pipeline's folder); created when missing
    stable  the servers of the stable version (list of names)
    canary  the servers of the canary version (list of names)

    gateway edge = external { command: ["python3", "plugins/file_gateway.py"],
                              config: { state: "edge-state.json",
                                        stable: ["app-1", "app-2"], canary: ["app-3"] } }

The state file:
    {"canary_weight": 5,
     "servers": {"app-1": {"group": "stable", "state": "ready"}, ...},
     "routes": [{"match": "header", "name": "X-Canary", "op": "==", "value": "1", "target": "canary"}],
     "applied": {"<idempotency key>": {"op": "weight", "undo": {...}}}}
"""

import json
import os
import sys
import tempfile

PROTOCOL = 1
SERVER_STATES = ("ready", "drain", "maint")
OPS = ["weight", "drain", "ready", "maint", "weight_of", "route", "unroute", "clear_routes", "set_routes"]
EFFECTS = {"weight", "drain", "ready", "maint", "route", "unroute", "clear_routes", "set_routes"}
ROUTE_FIELDS = ("match", "name", "op", "value", "target")


class Refused(Exception):
    """The operation ran and was refused: answered as status "failed"."""


def note(text):
    # stderr becomes gray's notes; stdout carries protocol lines only.
    print(text, file=sys.stderr, flush=True)


def send(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


class FileGateway:
    def __init__(self, config):
        path = config.get("state")
        if not isinstance(path, str) or not path:
            raise ValueError("config.state (the path of the state file) is required")
        self.path = os.path.abspath(path)
        self.groups = {}
        for group in ("stable", "canary"):
            names = config.get(group, [])
            if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
                raise ValueError("config.%s must be a list of server names" % group)
            for name in names:
                if name in self.groups:
                    raise ValueError("server %s is listed in both stable and canary" % name)
                self.groups[name] = group
        self.state = self.load()

    # --- the state file ---------------------------------------------------------------------

    def load(self):
        try:
            with open(self.path, encoding="utf-8") as f:
                state = json.load(f)
        except FileNotFoundError:
            state = {}
        except (OSError, ValueError) as e:
            raise ValueError("cannot read the state file %s: %s" % (self.path, e))
        if not isinstance(state, dict):
            raise ValueError("the state file %s does not hold a JSON object" % self.path)
        state.setdefault("canary_weight", 0)
        state.setdefault("servers", {})
        state.setdefault("routes", [])
        state.setdefault("applied", {})
        for name, group in self.groups.items():
            state["servers"].setdefault(name, {"group": group, "state": "ready"})
        self.state = state
        self.save()
        return state

    def save(self):
        # Write a temporary file next to the state and rename it over: readers never see half a file.
        folder = os.path.dirname(self.path) or "."
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".file-gateway-", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(self.state, f, indent=2, sort_keys=True)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    # --- operations -------------------------------------------------------------------------

    def server(self, args):
        name = args.get("server")
        if not isinstance(name, str) or not name:
            raise Refused("needs a server name")
        if name not in self.state["servers"]:
            raise Refused("no such server %s (known: %s)" % (name, ", ".join(sorted(self.state["servers"]))))
        return name

    @staticmethod
    def percent(args):
        value = args.get("canary")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
            raise Refused("canary must be a percentage from 0 to 100, not %r" % (value,))
        return value

    @staticmethod
    def route_of(args):
        route = {k: args.get(k) for k in ROUTE_FIELDS if args.get(k) is not None}
        if route.get("match") not in ("header", "cookie", "ip"):
            raise Refused("match must be header, cookie or ip, not %r" % (route.get("match"),))
        if route.get("target") not in ("canary", "stable"):
            raise Refused("target must be canary or stable, not %r" % (route.get("target"),))
        if "value" not in route:
            raise Refused("a route needs a value")
        if route["match"] != "ip" and not route.get("name"):
            raise Refused("a %s route needs a name" % route["match"])
        return route

    def routes_arg(self, args):
        routes = args.get("routes")
        if not isinstance(routes, list):
            raise Refused("routes must be a list")
        return [self.route_of(r if isinstance(r, dict) else {}) for r in routes]

    def undo_of(self, op, args):
        """The call that puts back what `op` would change, read from the state as it is now."""
        if op == "weight":
            self.percent(args)
            return {"op": "weight", "args": {"canary": self.state["canary_weight"]}}
        if op in SERVER_STATES:
            name = self.server(args)
            return {"op": self.state["servers"][name]["state"], "args": {"server": name}}
        if op == "route":
            return {"op": "unroute", "args": self.route_of(args)}
        if op == "unroute":
            route = self.route_of(args)
            return {"op": "route", "args": route} if route in self.state["routes"] else None
        if op in ("clear_routes", "set_routes"):
            return {"op": "set_routes", "args": {"routes": list(self.state["routes"])}}
        return None

    def apply(self, op, args):
        if op == "weight":
            value = self.percent(args)
            note("weight: canary %s%% (was %s%%)" % (value, self.state["canary_weight"]))
            self.state["canary_weight"] = value
        elif op in SERVER_STATES:
            name = self.server(args)
            note("%s: %s (was %s)" % (op, name, self.state["servers"][name]["state"]))
            self.state["servers"][name]["state"] = op
        elif op == "route":
            route = self.route_of(args)
            if route not in self.state["routes"]:
                self.state["routes"].append(route)
        elif op == "unroute":
            route = self.route_of(args)
            self.state["routes"] = [r for r in self.state["routes"] if r != route]
        elif op == "clear_routes":
            self.state["routes"] = []
        elif op == "set_routes":
            self.state["routes"] = self.routes_arg(args)

    def weight_of(self, args):
        group = args.get("group")
        if group == "canary":
            return self.state["canary_weight"]
        if group == "stable":
            return 100 - self.state["canary_weight"]
        raise Refused("group must be canary or stable, not %r" % (group,))

    # --- requests ---------------------------------------------------------------------------

    def call(self, op, args, key):
        if op == "weight_of":
            return {"status": "ok", "value": self.weight_of(args)}
        if op not in EFFECTS:
            return {"status": "error", "message": "unknown operation %s" % op}
        self.state = self.load()  # another process may have changed the file since
        if key and key in self.state["applied"]:
            # Applied before under this key (gray re-entered a step after a crash): do nothing again.
            return {"status": "ok", "replayed": True, "undo": self.state["applied"][key].get("undo")}
        undo = self.undo_of(op, args)
        self.apply(op, args)
        if key:
            self.state["applied"][key] = {"op": op, "undo": undo}
        self.save()
        return {"status": "ok", "undo": undo}

    def handle(self, request):
        kind = request.get("type", "call")
        op, args, key = request.get("op"), request.get("args") or {}, request.get("key") or ""
        try:
            if kind == "undo_for":
                self.state = self.load()
                return {"status": "ok", "undo": self.undo_of(op, args) if op in EFFECTS else None}
            if kind == "call":
                return self.call(op, args, key)
            return {"status": "error", "message": "unknown request type %r" % (kind,)}
        except Refused as e:
            return {"status": "failed", "message": "%s: %s" % (op, e)}
        except (OSError, ValueError) as e:
            return {"status": "error", "message": str(e)}


def main():
    first = sys.stdin.readline()
    if not first:
        return 0
    hello = json.loads(first)
    answer = {"type": "hello", "protocol": PROTOCOL, "name": "file-gateway", "version": "1.0.0", "kind": "gateway",
              "ops": OPS, "undo_for": True}
    if hello.get("protocol") != PROTOCOL:
        answer = {"type": "hello", "protocol": PROTOCOL,
                  "error": "file-gateway speaks protocol %d, gray asked for %r" % (PROTOCOL, hello.get("protocol"))}
        send(answer)
        return 1
    if hello.get("kind") != "gateway":
        send({"type": "hello", "protocol": PROTOCOL, "error": "file-gateway is a gateway plugin, not a %s plugin" % hello.get("kind")})
        return 1
    try:
        gateway = FileGateway(hello.get("config") or {})
    except ValueError as e:
        send({"type": "hello", "protocol": PROTOCOL, "error": str(e)})
        return 1
    send(answer)
    note("file-gateway: state in %s" % gateway.path)
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        response = gateway.handle(request)
        response["type"] = "result"
        response["id"] = request.get("id")
        send(response)
    return 0


if __name__ == "__main__":
    sys.exit(main())
