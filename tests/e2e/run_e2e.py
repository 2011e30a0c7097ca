#!/usr/bin/env python3
"""End-to-end proof of gray against real servers on 127.0.0.1 (Python 3 standard library only).

Starts sshd (the hosts), Prometheus, etcd, HAProxy / nginx, the demo service fleet and wrk,
then runs the real `gray` binary on the pipelines of tests/e2e/pipelines/ and checks what
it promises: no request lost, the right outcome, nothing done twice. See README.md.

  run_e2e.py --gray build/runtime/gray --demo-service build/tests/e2e/gray_demo_service
             [--scenario good --scenario bad ...] [--summary FILE] [--keep]

Exit status: 0 every promise kept; 1 a promise broken; 2 bad usage; 77 a server is not
installed (the test is skipped); 3 the test itself could not run (a server did not start).
"""

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import SetupError, MissingTool, log  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PIPELINES = os.path.join(HERE, "pipelines")

# Traffic: wrk connections, each pausing between a response and its next request. About
# 2,000-3,000 requests/s on two cores, leaving room for the servers and gray.
TRAFFIC = {"connections": 12, "delay_ms": 3}
# Time at each ramp step (4 steps): long enough for a few guard evaluations on 1 s scrapes.
STEP_HOLD = "6s"


class Context:
    """What every scenario shares: the tools, the work directory, sshd and Prometheus."""

    def __init__(self, args, tools, root):
        self.args = args
        self.tools = tools
        self.root = root
        self.gray = os.path.abspath(args.gray)
        self.demo = os.path.abspath(args.demo_service)
        self.sshd = None
        self.prometheus = None
        self.etcd = None
        self.ports = {}  # scenario -> [service ports], chosen up front so Prometheus scrapes them all

    def scenario_dir(self, name):
        d = os.path.join(self.root, name)
        os.makedirs(d, exist_ok=True)
        return d


class Scenario:
    """Figures and broken promises of one scenario."""

    def __init__(self, name, title):
        self.name = name
        self.title = title
        self.figures = {}
        self.broken = []
        self.notes = []
        self.started = time.monotonic()

    def promise(self, ok, text):
        """Records a promise; a broken one fails the run."""
        mark = "ok  " if ok else "FAIL"
        log(f"  [{mark}] {text}")
        if not ok:
            self.broken.append(text)

    def result(self):
        self.figures["wall_s"] = round(time.monotonic() - self.started, 1)
        return {"scenario": self.name, "title": self.title, "passed": not self.broken, "broken": self.broken,
                "figures": self.figures, "notes": self.notes}


def fleet_hosts(ports, canaries=1):
    """app-1.. on the given ports; the last `canaries` are tagged canary, the rest stable."""
    hosts = []
    for i, port in enumerate(ports):
        group = "canary" if i >= len(ports) - canaries else "stable"
        hosts.append({"name": f"app-{i + 1}", "port": port, "tags": [group]})
    return hosts


# ---- scenario 0: the service and the gateway alone ----

def scenario_restart(ctx, sc):
    """Every host restarted to v2 in turn, under load, with no gateway drain at all: the demo
    service's graceful stop and HAProxy's retries alone must lose nothing."""
    d = ctx.scenario_dir(sc.name)
    hosts = fleet_hosts(ctx.ports[sc.name], canaries=0)
    fleet = harness.Fleet(d, ctx.demo, "shop-restart", hosts)
    fleet.deploy_all("v1")
    try:
        hap = harness.HAProxy(os.path.join(d, "haproxy"), ctx.tools, [(h["name"], h["port"], "stable") for h in hosts])
        harness.wait_until("HAProxy sees every server up", lambda: hap.all_up([h["name"] for h in hosts]), 10, proc=hap.proc)
        wrk = harness.Wrk(d, ctx.tools, hap.url + "/api/ping", TRAFFIC["connections"], TRAFFIC["delay_ms"])
        time.sleep(2)
        restarts = []
        for h in hosts:
            t = time.monotonic()
            fleet.script("deploy", h["port"], "v2")
            restarts.append(round(time.monotonic() - t, 3))
            harness.wait_until(f"{h['name']} up again", lambda: hap.all_up([h["name"]]), 10)
            time.sleep(0.5)
        time.sleep(1)
        w = wrk.stop()
        absorbed = hap.retries()
        hap.proc.stop()
    finally:
        fleet.stop_all()
    sc.figures.update(restart_s=restarts, haproxy=absorbed)
    traffic_figures(sc, w)
    log(f"  HAProxy retried {absorbed.get('retries')} request(s), redispatched {absorbed.get('redispatches')}")
    sc.promise(w["failed"] == 0, f"no request lost while every host restarted under load ({w['failed']} failed)")


# ---- running gray ----

def gray_sets(ctx, d, fleet, service, extra):
    """The --set arguments every e2e pipeline takes."""
    sets = {"version": "v2", "previous": "v1", "service": service, "world": d, "script": harness.SERVICE_SCRIPT,
            "inventory": fleet.inventory, "prom_url": ctx.prometheus.url, "ssh_port": ctx.sshd.port,
            "ssh_user": ctx.sshd.user, "ssh_key": ctx.sshd.key, "known_hosts": ctx.sshd.known_hosts,
            "marker_dir": os.path.join(d, "markers")}
    sets.update(extra)
    argv = []
    for k, v in sets.items():
        argv += ["--set", f"{k}={v}"]
    return argv


def start_gray(ctx, d, pipeline, sets, run_id, on_event=None):
    argv = [ctx.gray, "run", os.path.join(PIPELINES, pipeline), "--format", "json", "--state-dir", os.path.join(d, "state"),
            "--run-id", run_id] + sets
    log(f"  gray run {pipeline} (run {run_id})")
    return harness.GrayRun(argv, os.path.join(d, "gray-run.log"), cwd=d, on_event=on_event)


def resume_gray(ctx, d, run_id, on_event=None):
    argv = [ctx.gray, "resume", run_id, "--format", "json", "--state-dir", os.path.join(d, "state")]
    log(f"  gray resume {run_id}")
    return harness.GrayRun(argv, os.path.join(d, "gray-resume.log"), cwd=d, on_event=on_event)


def finish_gray(sc, run, timeout, label="gray"):
    code = run.wait(timeout)
    if code is None:
        run.kill()
        sc.promise(False, f"{label} finished within {timeout} s")
    figures = run.figures()
    log(f"  {label}: exit {figures['exit_code']}, {figures['wall_s']} s, cpu {figures['cpu_s']} s, peak rss {figures['peak_rss_kb']} KiB")
    if figures["exit_code"] not in (0, 1) and code is not None:
        sc.notes.append(f"{label} stderr: {run.proc.tail()}")
    return figures


def run_outcome(d, run_id):
    """The outcome gray wrote in the run's summary.json ("promoted", "rolled-back", ...)."""
    path = os.path.join(d, "state", "runs", run_id, "summary.json")
    try:
        with open(path) as f:
            return json.load(f).get("outcome")
    except (OSError, ValueError):
        return None


def journal_path(d, run_id):
    return os.path.join(d, "state", "runs", run_id, "journal.jsonl")


def wait_for_scrapes(ctx, ports):
    harness.wait_until("Prometheus scraping every service", lambda: all(ctx.prometheus.scraping(p) for p in ports), 30, every=0.5)


def traffic_figures(sc, w):
    sc.figures["requests"] = w["requests"]
    sc.figures["requests_per_s"] = w["rps"]
    sc.figures["failed"] = w["failed"]
    sc.figures["non_2xx"] = w["status"]
    sc.figures["socket_errors"] = {k: w[k] for k in ("connect", "read", "write", "timeout")}
    sc.figures["latency_p99_ms"] = round(w["latency_p99_us"] / 1000, 2)
    log(f"  wrk: {w['requests']} requests ({w['rps']}/s), {w['status']} non-2xx, socket errors "
        f"connect {w['connect']} read {w['read']} write {w['write']} timeout {w['timeout']}")


# ---- scenarios 1, 2, 4: the plain canary through HAProxy ----

class Release:
    """A fleet of four demo hosts behind HAProxy with wrk traffic: the stage of scenarios 1, 2, 4."""

    def __init__(self, ctx, sc, fail_rates=None):
        self.ctx = ctx
        self.d = ctx.scenario_dir(sc.name)
        self.service = f"shop-{sc.name}"
        self.hosts = fleet_hosts(ctx.ports[sc.name])
        self.fleet = harness.Fleet(self.d, ctx.demo, self.service, self.hosts, fail_rates)
        self.hap = None
        self.watch = None
        try:
            self._start(ctx)
        except BaseException:
            self.close()
            raise

    def _start(self, ctx):
        self.fleet.deploy_all("v1")
        self.hap = harness.HAProxy(os.path.join(self.d, "haproxy"), ctx.tools,
                                   [(h["name"], h["port"], h["tags"][0]) for h in self.hosts])
        names = [h["name"] for h in self.hosts]
        harness.wait_until("HAProxy sees every server up", lambda: self.hap.all_up(names), 15, proc=self.hap.proc)
        wait_for_scrapes(ctx, [h["port"] for h in self.hosts])
        self.watch = harness.WeightWatcher(lambda: {k: v["weight"] for k, v in self.hap.servers().items()})
        self.watch.start()
        self.wrk = harness.Wrk(self.d, ctx.tools, self.hap.url + "/api/ping", TRAFFIC["connections"], TRAFFIC["delay_ms"])
        time.sleep(2)  # steady traffic before the release starts

    def sets(self, extra=None):
        return gray_sets(self.ctx, self.d, self.fleet, self.service, dict({"socket": self.hap.socket, "step_hold": STEP_HOLD}, **(extra or {})))

    def finish(self, sc):
        time.sleep(2)  # steady traffic after the release too
        w = self.wrk.stop()
        self.watch.stop()
        traffic_figures(sc, w)
        sc.figures["haproxy"] = self.hap.retries()
        return w

    def close(self):
        if self.watch is not None:
            self.watch.stop()
        try:
            self.fleet.stop_all()
        finally:
            if self.hap is not None:
                self.hap.proc.stop()


def check_promoted(sc, rel, d, run_id):
    outcome = run_outcome(d, run_id)
    sc.figures["outcome"] = outcome
    sc.promise(outcome == "promoted", f"the run ends promoted (outcome {outcome})")
    versions = rel.fleet.versions()
    sc.promise(all(v == "v2" for v in versions.values()), f"every host runs v2 ({versions})")
    servers = rel.hap.servers()
    weights = {k: v["weight"] for k, v in servers.items()}
    up = all(v["status"].startswith("UP") for v in servers.values())
    even = len(set(weights.values())) == 1 and min(weights.values()) > 0
    sc.promise(up and even, f"clean-up: all four servers up and sharing the load evenly ({weights})")


def scenario_good(ctx, sc):
    """Scenario 1: a good release, canary to 100% and alignment, loses no request."""
    rel = Release(ctx, sc)
    try:
        run_id = "e2e-good"
        run = start_gray(ctx, rel.d, "canary.gray", rel.sets(), run_id)
        sc.figures["gray"] = finish_gray(sc, run, 240)
        w = rel.finish(sc)
        check_promoted(sc, rel, rel.d, run_id)
    finally:
        rel.close()
    sc.promise(w["requests"] >= 50000, f"at least 50,000 requests during the release ({w['requests']})")
    sc.promise(w["failed"] == 0, f"zero failed requests ({w['status']} non-2xx, {w['socket_errors']} socket errors)")


def scenario_bad(ctx, sc):
    """Scenario 2: v2 answers 5% of its requests with 500; the ramp's guard must catch it at 5%
    and traffic must go back to v1."""
    rel = Release(ctx, sc, fail_rates={"v2": 0.05})
    canary = rel.hosts[-1]["name"]
    try:
        run_id = "e2e-bad"
        # A longer hold than the good release's: the promise is that the breach comes within the
        # first step, and Prometheus needs a few seconds (scrape, rate window, `for 2s`) to show it.
        run = start_gray(ctx, rel.d, "canary.gray", rel.sets({"step_hold": "12s"}), run_id)
        sc.figures["gray"] = finish_gray(sc, run, 240)
        w = rel.finish(sc)
        outcome = run_outcome(rel.d, run_id)
        sc.figures["outcome"] = outcome
        sc.promise(outcome == "rolled-back", f"the run ends rolled back (outcome {outcome})")

        # Where and when the guard said breach: the failing evaluation that tripped it is the
        # last "fail" verdict before the stage reports the breach.
        events = run.events
        breach_idx = next((i for i, e in enumerate(events) if e.get("kind") == "stage" and "guard breached" in e.get("text", "")), None)
        verdict = None
        if breach_idx is not None:
            verdict = next((e for e in reversed(events[:breach_idx]) if e.get("kind") == "guard" and e.get("data", {}).get("verdict") == "fail"), None)
        sc.promise(verdict is not None, "gray's event stream shows the guard's breach verdict")
        ramp_weights = [e["data"]["canary"] for e in events[:breach_idx or len(events)] if e.get("kind") == "weights"]
        sc.figures["ramp_steps_before_breach"] = ramp_weights
        sc.promise(ramp_weights == [5], f"the guard trips in the first ramp step, 5% (steps reached: {ramp_weights})")
        if verdict is not None:
            sc.figures["breach"] = verdict.get("text")
            # The first moment after the verdict at which HAProxy gives the canary nothing.
            zero = next((t for t, ws in rel.watch.changes if t >= verdict["_t"] and ws.get(canary, 0) == 0), None)
            if zero is None and rel.watch.changes and rel.watch.changes[-1][1].get(canary, 0) == 0 and rel.watch.changes[-1][0] < verdict["_t"]:
                zero = verdict["_t"]  # already at 0 when the verdict line was read
            latency = None if zero is None else round((zero - verdict["_t"]) * 1000, 1)
            sc.figures["rollback_latency_ms"] = latency
            zero_ev = next((e for e in events[breach_idx:] if e.get("kind") == "step" and "weight" in e.get("text", "") and "0%" in e.get("text", "")), None)
            if zero_ev is not None:
                sc.figures["rollback_latency_gray_clock_ms"] = round(zero_ev["at_ms"] - verdict["at_ms"], 1)
            log(f"  breach verdict -> HAProxy gives {canary} weight 0: {latency} ms")
            sc.promise(latency is not None and latency < 2000, f"traffic back to v1 within 2 s of the breach verdict ({latency} ms)")
        final = rel.hap.servers().get(canary, {})
        sc.promise(final.get("weight") == 0, f"HAProxy serves 0% to the canary at the end (weight {final.get('weight')})")
        versions = rel.fleet.versions()
        sc.promise(all(v == "v1" for v in versions.values()), f"the canary's deploy was undone: every host runs v1 ({versions})")
        sc.figures["failed_requests_reported"] = w["failed"]
        sc.promise(w["socket_errors"] == 0, f"the failed requests are the canary's own 500s, no socket errors ({w['socket_errors']})")
    finally:
        rel.close()


def journal_repeats(records, kill_seq):
    """Effects that were completed before the kill and started again after it, and keys
    completed more than once."""
    completed_before = {r["key"] for r in records if r.get("t") == "completed" and r.get("seq", 0) <= kill_seq}
    started_after = [r for r in records if r.get("t") == "started" and r.get("seq", 0) > kill_seq]
    repeated = sorted({r["key"] for r in started_after if r["key"] in completed_before})
    counts = {}
    for r in records:
        if r.get("t") == "completed":
            counts[r["key"]] = counts.get(r["key"], 0) + 1
    twice = sorted(k for k, n in counts.items() if n > 1)
    in_flight = sorted({r["key"] for r in records if r.get("t") == "started" and r.get("seq", 0) <= kill_seq} - completed_before)
    return repeated, twice, in_flight


def scenario_resume(ctx, sc):
    """Scenario 4: gray is SIGKILLed in the middle of the ramp; `gray resume` finishes the
    release without repeating a step and without losing a request."""
    rel = Release(ctx, sc)
    try:
        run_id = "e2e-resume"
        reached = {}

        def on_event(ev):
            if ev.get("kind") == "weights" and ev.get("data", {}).get("canary") == 20 and "t" not in reached:
                reached["t"] = ev["_t"]

        run = start_gray(ctx, rel.d, "canary.gray", rel.sets(), run_id, on_event=on_event)
        harness.wait_until("the ramp reaching 20%", lambda: "t" in reached or not run.proc.running(), 180, every=0.05)
        sc.promise("t" in reached, "the ramp reached 20% before the kill")
        time.sleep(2.5)  # in the middle of the 20% hold
        run.kill()
        first = run.figures()
        records = harness.read_journal(journal_path(rel.d, run_id))
        kill_seq = max((r.get("seq", 0) for r in records), default=0)
        log(f"  SIGKILLed gray at journal record {kill_seq}; HAProxy weights {rel.watch.changes[-1][1] if rel.watch.changes else '?'}")
        time.sleep(1)
        resumed = resume_gray(ctx, rel.d, run_id)
        second = finish_gray(sc, resumed, 240, label="gray resume")
        sc.figures["gray"] = {"killed_run": first, "resumed_run": second,
                              "cpu_s": round(first["cpu_s"] + second["cpu_s"], 3),
                              "peak_rss_kb": max(first["peak_rss_kb"], second["peak_rss_kb"])}
        w = rel.finish(sc)
        check_promoted(sc, rel, rel.d, run_id)
        records = harness.read_journal(journal_path(rel.d, run_id))
        repeated, twice, in_flight = journal_repeats(records, kill_seq)
        effects_after = [r for r in records if r.get("t") == "started" and r.get("seq", 0) > kill_seq]
        sc.figures["journal"] = {
            "records": len(records), "killed_at_record": kill_seq, "in_flight_at_kill": in_flight,
            "effects_started_after_resume": len(effects_after),
            "weights_set_after_resume": [r["args"]["canary"]["percent"] for r in effects_after
                                         if r.get("op") == "weight" and isinstance(r.get("args", {}).get("canary"), dict)]}
        log(f"  journal: in flight at the kill {in_flight}; weights set after the resume "
            f"{sc.figures['journal']['weights_set_after_resume']}")
        sc.promise(not repeated and not twice, f"no completed step repeated after the resume (repeated {repeated}, completed twice {twice})")
        sc.promise(w["failed"] == 0, f"zero failed requests ({w['status']} non-2xx, {w['socket_errors']} socket errors)")
    finally:
        rel.close()


# ---- scenario 3: method 5 with etcd ----

def scenario_registry(ctx, sc):
    """Scenario 3: registry-driven rolling online (method 5) with etcd, registration agents and a
    caching discovery client that retries nothing."""
    if ctx.etcd is None:
        ctx.etcd = harness.Etcd(ctx.root, ctx.tools)
    d = ctx.scenario_dir(sc.name)
    service = f"shop-{sc.name}"
    prefix = f"/microservices/{service}"
    hosts = fleet_hosts(ctx.ports[sc.name])
    fleet = harness.Fleet(d, ctx.demo, service, hosts)
    agents = []
    client = None
    try:
        fleet.deploy_all("v1")
        for h in hosts:
            agents.append(harness.start_agent(d, ctx.etcd.url, prefix, service, h, os.path.join(fleet.state, f"{h['port']}.version")))
        harness.wait_until("every instance registered in etcd", lambda: len(ctx.etcd.list_prefix(prefix + "/")) == len(hosts), 15, every=0.2)
        wait_for_scrapes(ctx, [h["port"] for h in hosts])
        client = harness.DiscoveryClient(d, ctx.etcd.url, prefix, service, rate=400, poll=1.0)
        time.sleep(2)
        run_id = "e2e-registry"
        run = start_gray(ctx, d, "registry-rolling.gray",
                         gray_sets(ctx, d, fleet, service, {"etcd_url": ctx.etcd.url, "cache_wait": "3s"}), run_id)
        sc.figures["gray"] = finish_gray(sc, run, 240)
        time.sleep(2)
        counts = client.stop()
        client = None
        outcome = run_outcome(d, run_id)
        sc.figures["outcome"] = outcome
        sc.figures["requests"] = counts["sent"]
        sc.figures["failed"] = counts["failed"]
        sc.figures["by_version"] = counts["by_version"]
        sc.figures["client_cache_changes"] = len(counts["cache_changes"])
        if counts["failures"]:
            sc.notes.append({"first_failures": counts["failures"][:10]})
        log(f"  discovery client: {counts['sent']} sent, {counts['ok']} ok, {counts['failed']} failed, by version {counts['by_version']}")
        sc.promise(outcome == "promoted", f"the run ends promoted (outcome {outcome})")
        sc.promise(counts["failed"] == 0, f"zero failed requests at the discovery client ({counts['failed']} of {counts['sent']})")
        sc.promise(counts["by_version"].get("v2", 0) > 0, "the client reached v2 instances once they were back online")
        registered = ctx.etcd.list_prefix(prefix + "/")
        versions = {}
        for key, value in registered.items():
            try:
                versions[key.rsplit("/", 1)[1]] = json.loads(value).get("version")
            except ValueError:
                versions[key] = "?"
        sc.promise(len(versions) == len(hosts) and all(v == "v2" for v in versions.values()),
                   f"every instance is registered again, as v2 ({versions})")
        paused = ctx.etcd.list_prefix("/gray/paused/")
        sc.promise(not paused, f"no registration left paused ({sorted(paused)})")
        running = fleet.versions()
        sc.promise(all(v == "v2" for v in running.values()), f"every instance runs v2 ({running})")
    finally:
        if client is not None:
            client.proc.stop()
        for a in agents:
            a.stop()
        fleet.stop_all()


def scenario_registry_control(ctx, sc):
    """Control for scenario 3: the same instances, agents and client, but each instance is just
    restarted to v2 (graceful stop and all) while it is still registered. The client, which
    retries nothing, must see failures: the zero of scenario 3 is the online process's doing,
    and the harness does see lost requests."""
    if ctx.etcd is None:
        ctx.etcd = harness.Etcd(ctx.root, ctx.tools)
    d = ctx.scenario_dir(sc.name)
    service = f"shop-{sc.name}"
    prefix = f"/microservices/{service}"
    hosts = fleet_hosts(ctx.ports[sc.name])
    fleet = harness.Fleet(d, ctx.demo, service, hosts)
    agents = []
    client = None
    try:
        fleet.deploy_all("v1")
        for h in hosts:
            agents.append(harness.start_agent(d, ctx.etcd.url, prefix, service, h, os.path.join(fleet.state, f"{h['port']}.version")))
        harness.wait_until("every instance registered in etcd", lambda: len(ctx.etcd.list_prefix(prefix + "/")) == len(hosts), 15, every=0.2)
        client = harness.DiscoveryClient(d, ctx.etcd.url, prefix, service, rate=400, poll=1.0)
        time.sleep(2)
        for h in hosts:
            fleet.script("stop", h["port"])
            time.sleep(1)  # an upgrade takes a moment; the registry still lists the instance
            fleet.script("install", h["port"], "v2")
            fleet.script("start", h["port"])
            time.sleep(1)
        time.sleep(1)
        counts = client.stop()
        client = None
    finally:
        if client is not None:
            client.proc.stop()
        for a in agents:
            a.stop()
        fleet.stop_all()
    sc.figures.update(requests=counts["sent"], failed=counts["failed"], by_version=counts["by_version"])
    log(f"  discovery client: {counts['sent']} sent, {counts['failed']} failed without the online process")
    sc.promise(counts["failed"] > 0, f"without deregistering first, the client loses requests ({counts['failed']} of {counts['sent']})")


# ---- scenario 5: nginx ----

def scenario_nginx(ctx, sc):
    """Scenario 5: scenario 1 through nginx (weights by rendered include and reload)."""
    d = ctx.scenario_dir(sc.name)
    service = f"shop-{sc.name}"
    hosts = fleet_hosts(ctx.ports[sc.name])
    fleet = harness.Fleet(d, ctx.demo, service, hosts)
    ngx = None
    try:
        fleet.deploy_all("v1")
        servers = [(h["name"], h["port"], h["tags"][0]) for h in hosts]
        ngx = harness.Nginx(os.path.join(d, "nginx"), ctx.tools, "app", servers)
        wait_for_scrapes(ctx, [h["port"] for h in hosts])
        wrk = harness.Wrk(d, ctx.tools, ngx.url + "/api/ping", TRAFFIC["connections"], TRAFFIC["delay_ms"])
        time.sleep(2)
        stable = ",".join(f"127.0.0.1:{h['port']}" for h in hosts if h["tags"][0] == "stable")
        canary = ",".join(f"127.0.0.1:{h['port']}" for h in hosts if h["tags"][0] == "canary")
        run_id = "e2e-nginx"
        run = start_gray(ctx, d, "nginx-canary.gray", gray_sets(ctx, d, fleet, service, {
            "include": ngx.include, "prefix": ngx.dir, "conf": ngx.conf, "probe_url": ngx.probe_url,
            "stable": stable, "canary": canary, "step_hold": STEP_HOLD}), run_id)
        sc.figures["gray"] = finish_gray(sc, run, 240)
        time.sleep(2)
        w = wrk.stop()
        traffic_figures(sc, w)
        outcome = run_outcome(d, run_id)
        sc.figures["outcome"] = outcome
        sc.figures["keepalive_resets"] = w["read"] + w["write"]
        # Each change gray made at nginx is a rendered include and a reload.
        changes = [r for r in harness.read_journal(journal_path(d, run_id)) if r.get("t") == "started" and r.get("plugin") == "edge"]
        sc.figures["nginx_reloads"] = len(changes)
        log(f"  nginx: {len(changes)} reloads by gray; {w['read'] + w['write']} keep-alive resets seen by wrk")
        sc.promise(outcome == "promoted", f"the run ends promoted (outcome {outcome})")
        versions = fleet.versions()
        sc.promise(all(v == "v2" for v in versions.values()), f"every host runs v2 ({versions})")
        sc.promise(w["requests"] >= 50000, f"at least 50,000 requests during the release ({w['requests']})")
        sc.promise(w["status"] == 0, f"zero non-2xx answers ({w['status']})")
        sc.promise(w["connect"] == 0 and w["timeout"] == 0, f"no refused or timed-out request (connect {w['connect']}, timeout {w['timeout']})")
        if w["read"] + w["write"]:
            sc.notes.append(f"{w['read'] + w['write']} keep-alive connection(s) reset by nginx's old workers around reloads "
                            "(wrk does not retry; the request on such a connection is reported as a read error)")
    finally:
        if ngx is not None:
            ngx.stop()
        fleet.stop_all()


SCENARIOS = {
    "restart": ("bare restarts under load behind HAProxy (no gray)", scenario_restart, 4),
    "good": ("good release: canary 5% -> 100% through HAProxy, align, clean up", scenario_good, 4),
    "bad": ("bad canary (v2 fails 5%): guard trips at 5%, rolled back", scenario_bad, 4),
    "registry": ("registry-driven rolling online (method 5) with etcd", scenario_registry, 4),
    "resume": ("gray SIGKILLed mid-ramp, then gray resume", scenario_resume, 4),
    "nginx": ("good release through nginx", scenario_nginx, 4),
    "registry-control": ("control: instances restarted while still registered (no gray)", scenario_registry_control, 4),
}
DEFAULT_ORDER = ["good", "bad", "registry", "resume", "nginx"]


def print_table(results):
    """One line per scenario, for people; the JSON above has everything."""
    log("summary:")
    for r in results:
        f = r["figures"]
        g = f.get("gray", {})
        cpu = g.get("cpu_s")
        rss = g.get("peak_rss_kb")
        parts = [f"{r['scenario']:<9} {'PASS' if r['passed'] else 'FAIL'}",
                 f"requests {f.get('requests', '-')}", f"failed {f.get('failed', '-')}",
                 f"non-2xx {f.get('non_2xx', '-')}"]
        if isinstance(f.get("socket_errors"), dict):
            parts.append("socket errors " + "/".join(str(v) for v in f["socket_errors"].values()) + " (connect/read/write/timeout)")
        if "rollback_latency_ms" in f:
            parts.append(f"rollback {f['rollback_latency_ms']} ms")
        if cpu is not None:
            parts.append(f"gray cpu {cpu} s, peak rss {rss} KiB")
        parts.append(f"wall {f.get('wall_s')} s")
        log("  " + ", ".join(parts))
        for b in r["broken"]:
            log(f"    broken: {b.splitlines()[0]}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gray", required=True, help="the gray binary")
    ap.add_argument("--demo-service", required=True, help="the gray_demo_service binary")
    ap.add_argument("--scenario", action="append", choices=sorted(SCENARIOS), help="run only these (repeatable)")
    ap.add_argument("--summary", help="also write the JSON summary to this file")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs, journals) afterwards")
    ap.add_argument("--wrk-connections", type=int, default=TRAFFIC["connections"], help="wrk connections (default %(default)s)")
    ap.add_argument("--wrk-delay-ms", type=int, default=TRAFFIC["delay_ms"],
                    help="pause of each wrk connection between a response and its next request (default %(default)s; 0: flat out)")
    args = ap.parse_args()
    for path, what in ((args.gray, "--gray"), (args.demo_service, "--demo-service")):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            ap.error(f"{what}: '{path}' is not an executable file")
    chosen = args.scenario or DEFAULT_ORDER
    if args.wrk_connections < 1 or args.wrk_delay_ms < 0:
        ap.error("--wrk-connections must be at least 1 and --wrk-delay-ms at least 0")
    TRAFFIC.update(connections=args.wrk_connections, delay_ms=args.wrk_delay_ms)

    try:
        tools = harness.require("haproxy", "nginx", "etcd", "prometheus", "sshd", "ssh", "ssh-keygen", "wrk", "curl")
    except MissingTool as e:
        print(f"e2e: skipped: {e}", file=sys.stderr)
        return 77

    root = tempfile.mkdtemp(prefix="gray-e2e-")
    ctx = Context(args, tools, root)
    results = []
    setup_failed = None
    started = time.monotonic()
    log(f"work directory {root}")

    def on_signal(sig, _frame):
        raise KeyboardInterrupt(f"signal {sig}")
    signal.signal(signal.SIGTERM, on_signal)

    try:
        for name in chosen:
            ctx.ports[name] = [harness.free_port() for _ in range(SCENARIOS[name][2])]
        all_ports = [p for ps in ctx.ports.values() for p in ps]
        ctx.sshd = harness.Sshd(root, tools)
        log(f"sshd on 127.0.0.1:{ctx.sshd.port} (user {ctx.sshd.user})")
        ctx.prometheus = harness.Prometheus(root, tools, all_ports)
        log(f"prometheus on {ctx.prometheus.url}, scraping {len(all_ports)} service ports every 1 s")
        for name in chosen:
            title, run, _ = SCENARIOS[name]
            sc = Scenario(name, title)
            log(f"scenario {name}: {title}")
            try:
                run(ctx, sc)
            except SetupError as e:
                sc.promise(False, f"could not run: {e}")
            except Exception:
                sc.promise(False, "harness error:\n" + traceback.format_exc())
            results.append(sc.result())
    except SetupError as e:
        setup_failed = str(e)
        log(f"set-up failed: {e}")
    except KeyboardInterrupt as e:
        setup_failed = f"interrupted ({e})"
    finally:
        if ctx.sshd:
            ctx.sshd.stop()
        harness.Proc.stop_all()
        if ctx.etcd:
            ctx.etcd.remove()

    summary = {"passed": setup_failed is None and all(r["passed"] for r in results),
               "setup_error": setup_failed, "wall_s": round(time.monotonic() - started, 1),
               "work_dir": root if args.keep else None, "scenarios": results}
    text = json.dumps(summary, indent=2)
    print(text)
    print_table(results)
    if args.summary:
        with open(args.summary, "w") as f:
            f.write(text + "\n")
    if args.keep:
        log(f"kept {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)
    if setup_failed is not None:
        return 3
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
