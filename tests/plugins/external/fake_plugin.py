#!/usr/bin/env python3
"""A test plugin for gray's external plugin protocol, misbehaving on request.

    fake_plugin.py [--kind K] [--protocol N] [--ops a,b,c] [--no-undo-for]
                   [--refuse MESSAGE] [--exit-at-start] [--silent-hello] [--pid-file PATH]
                   [--crash-on OP] [--garbage-on OP] [--hang-on OP] [--wrong-id-on OP]
                   [--bad-status-on OP] [--die-after-answer-on OP]

Operations it answers when listed in --ops:
    echo       value: the request's args, key, timeout_ms and secrets
    config     value: the handshake's config and secrets
    weight     ok, with undo {weight, canary: 0}
    fail       status failed, message "refused by the fake" (with the config's token appended
               when --leak is given, to test scrubbing)
    nothing    status nodata
    query      value 0.25
    inventory  value {"hosts": [...]} (two hosts)
    run        value {"exit_code": 0, "stdout": "ran <command> on <host>", "stderr": ""}
undo_for requests answer {weight, canary: 42}.
"""

import json
import os
import sys
import time


def arg(name, default=None):
    if name in sys.argv:
        i = sys.argv.index(name)
        return sys.argv[i + 1] if i + 1 < len(sys.argv) else ""
    return default


def flag(name):
    return name in sys.argv


def send(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main():
    pid_file = arg("--pid-file")
    if pid_file:
        with open(pid_file, "a") as f:
            f.write("%d\n" % os.getpid())
    if flag("--exit-at-start"):
        print("fake: cannot open my database", file=sys.stderr, flush=True)
        return 2
    hello = json.loads(sys.stdin.readline())
    if flag("--silent-hello"):
        time.sleep(3600)
    config = hello.get("config", {})
    token = config.get("token", "")
    print("fake: started as %s with token %s" % (hello.get("instance"), token), file=sys.stderr, flush=True)
    if arg("--refuse"):
        send({"type": "hello", "protocol": 1, "error": arg("--refuse") + " " + token})
        return 1
    ops = arg("--ops", "echo,config,weight,fail,nothing").split(",")
    send({"type": "hello", "protocol": int(arg("--protocol", "1")), "name": "fake", "version": "0.0.1",
          "kind": arg("--kind", hello.get("kind")), "ops": ops, "undo_for": not flag("--no-undo-for")})
    for line in sys.stdin:
        req = json.loads(line)
        op, rid = req.get("op"), req.get("id")
        if req.get("type") == "undo_for":
            send({"type": "result", "id": rid, "status": "ok", "undo": {"op": "weight", "args": {"canary": 42}}})
            continue
        if op == arg("--crash-on"):
            print("fake: about to crash", file=sys.stderr, flush=True)
            os._exit(3)
        if op == arg("--garbage-on"):
            sys.stdout.write("Traceback (most recent call last): token=%s\n" % token)
            sys.stdout.flush()
            continue
        if op == arg("--hang-on"):
            time.sleep(3600)
        if op == arg("--wrong-id-on"):
            send({"type": "result", "id": rid + 100, "status": "ok"})
            continue
        if op == arg("--bad-status-on"):
            send({"type": "result", "id": rid, "status": "maybe"})
            continue
        out = {"type": "result", "id": rid, "status": "ok"}
        if op == "echo":
            out["value"] = {"args": req.get("args"), "key": req.get("key"), "timeout_ms": req.get("timeout_ms"),
                            "secrets": req.get("secrets", [])}
        elif op == "config":
            out["value"] = {"config": config, "secrets": hello.get("secrets"), "instance": hello.get("instance"),
                            "kind": hello.get("kind"), "protocol": hello.get("protocol")}
        elif op == "weight":
            out["undo"] = {"op": "weight", "args": {"canary": 0}}
        elif op == "fail":
            out = {"type": "result", "id": rid, "status": "failed",
                   "message": "refused by the fake" + (" " + token if flag("--leak") else "")}
        elif op == "nothing":
            out["status"] = "nodata"
        elif op == "query":
            out["value"] = 0.25
        elif op == "inventory":
            out["value"] = {"hosts": [{"name": "ext-1", "addr": "10.9.0.1", "port": 80, "tags": ["canary"]},
                                      {"name": "ext-2", "addr": "10.9.0.2", "port": 80, "tags": ["stable"], "zone": "b"}]}
        elif op == "run":
            args = req.get("args", {})
            out["value"] = {"exit_code": 0, "stdout": "ran %s on %s" % (args.get("command"), args.get("host")), "stderr": ""}
        else:
            out = {"type": "result", "id": rid, "status": "error", "message": "fake: no such op %s" % op}
        send(out)
        if op == arg("--die-after-answer-on"):
            return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
