#!/usr/bin/env python3
"""Generates realistic .gray pipelines for the front-end benchmark.

    bench/gen.py OUT_DIR [--seed N]

Writes
  OUT_DIR/single/lines-10.gray ... lines-100000.gray   one pipeline each, about that many lines
  OUT_DIR/many/gray.json                              marks the project root for imports
  OUT_DIR/many/lib/common.gray                        templates the pipelines import
  OUT_DIR/many/svc-0000.gray ... svc-0999.gray        1,000 pipelines of about 55-120 lines

Everything it writes is meant to check clean (`gray check` exits 0); bench/run.sh verifies that.
The content is deterministic for a given seed.
"""
import argparse
import os
import random

SIZES = [10, 100, 1_000, 10_000, 100_000]
MANY = 1_000

GATEWAYS = [
    ("haproxy", lambda k: f'{{ socket: "/run/haproxy/admin-{k}.sock", backend: "svc-{k}",\n'
                          f'{" " * 34}stable: ["v1-a-{k}", "v1-b-{k}"], canary: ["v2-a-{k}"] }}'),
    ("nginx", lambda k: f'{{ include: "/etc/nginx/gray-{k}.conf", upstream: "svc_{k}",\n'
                        f'{" " * 34}stable: ["10.0.1.1:8080", "10.0.1.2:8080"], canary: ["10.0.2.1:8080"] }}'),
    ("envoy", lambda k: f'{{ admin_url: "http://127.0.0.1:9901", runtime_key: "svc.{k}.canary_weight" }}'),
    ("apisix", lambda k: f'{{ admin_url: "http://127.0.0.1:9180", api_key: env("APISIX_KEY"), route_id: "r-{k}",\n'
                         f'{" " * 34}stable_upstream: "up-stable-{k}", canary_upstream: "up-canary-{k}" }}'),
]
REGISTRIES = [
    ("etcd", lambda k: f'{{ endpoints: ["http://127.0.0.1:2379"], prefix: "/services/svc-{k}", lease_ttl: 15s }}'),
    ("consul", lambda k: f'{{ address: "http://127.0.0.1:8500", service: "svc-{k}" }}'),
    ("nacos", lambda k: f'{{ server: "http://127.0.0.1:8848", service: "svc-{k}", namespace: "prod", group: "DEFAULT_GROUP" }}'),
]
COMMENTS = [
    "# keep the canary small until the error budget is known",
    "# the stable fleet is drained in pairs so capacity never drops below 75%",
    "# see runbook RB-{k} before changing these thresholds",
    "# deregister first: client caches hold the old list for up to 20s",
    "# p99 is measured at the edge, not in the service",
]


class Writer:
    def __init__(self):
        self.lines = []

    def add(self, text):
        self.lines.extend(text.rstrip("\n").split("\n"))

    def __len__(self):
        return len(self.lines)

    def text(self):
        return "\n".join(self.lines) + "\n"


def header(w, name, rng, imports=()):
    w.add(f"# pipelines/{name}.gray: gray release of {name}, generated for the front-end benchmark")
    for imp in imports:
        w.add(imp)
    w.add("")
    w.add(f'pipeline "{name}" {{')
    w.add("  param version                      # required: --set version=2.4.1")
    w.add(f'  param previous = "2.{rng.randint(0, 9)}.{rng.randint(0, 20)}"')
    w.add(f"  param max_errors: percent = {rng.choice([1, 2, 5])}%")


def declarations(w, k, rng):
    gname, gcfg = GATEWAYS[k % len(GATEWAYS)]
    rname, rcfg = REGISTRIES[k % len(REGISTRIES)]
    w.add("")
    w.add(f"  # ---- service {k} ----")
    w.add(f"  gateway  edge_{k} = {gname:<10} {gcfg(k)}")
    w.add(f"  registry names_{k} = {rname:<10} {rcfg(k)}")
    w.add(f'  hosts    fleet_{k} = ssh        {{ inventory: "inventory/svc-{k}.json", user: "deploy", port: 22 }}')
    w.add(f'  metrics  prom_{k} = prometheus {{ url: "http://127.0.0.1:9090", timeout: {rng.choice([5, 10, 30])}s }}')
    w.add(f"  metric err_{k}(v: string) = prom_{k}.query(\"sum(rate(http_errors{{svc='svc-{k}',version='${{v}}'}}[1m])) / "
          f"sum(rate(http_requests{{svc='svc-{k}',version='${{v}}'}}[1m]))\")")
    w.add(f"  metric p99_{k} = prom_{k}.query(\"histogram_quantile(0.99, rate(latency_bucket{{svc='svc-{k}'}}[5m]))\") unit ms")


def stage_deploy(w, k, rng, tag=None):
    tag = k if tag is None else tag
    w.add("")
    w.add(f"  deploy canary_{tag} {{")
    w.add(f'    on   fleet_{k}.tagged("canary")')
    w.add(f'    run  "deploy.sh svc-{k} ${{version}} --mode gray" timeout {rng.choice([2, 5, 10])}m')
    w.add(f'    undo "deploy.sh svc-{k} ${{previous}}"')
    w.add("  }")


def stage_verify(w, k, rng, tag=None):
    tag = k if tag is None else tag
    w.add("")
    w.add(f"  verify smoke_{tag} {{")
    w.add(f'    on    fleet_{k}.tagged("canary")')
    w.add(f'    probe http "http://${{host}}:8080/health" expect 200 attempts {rng.randint(3, 9)} every 5s')
    w.add(f'    probe http "http://${{host}}:8080/api/v1/svc-{k}" header "X-Gray-User: test-{k}" expect [200, 204]')
    w.add(f'    probe tcp "${{host.addr}}:{9000 + k % 1000}" timeout 2s')
    w.add("  }")


def stage_ramp(w, k, rng, tag=None):
    tag = k if tag is None else tag
    steps = rng.choice(["5% -> 20% -> 50% -> 100%", "1% -> 5% -> 25% -> 50% -> 100%", "10% -> 50% -> 100%"])
    w.add("")
    w.add(f"  ramp traffic_{tag} {{")
    w.add(f"    via   edge_{k}")
    w.add(f"    steps {steps}")
    w.add(f"    hold  {rng.choice([5, 10, 15])}m")
    w.add(f'    guard "error ceiling" err_{k}(version) < max_errors for 2m')
    w.add(f"    guard p99_{k} < {rng.choice([200, 300, 500])}ms for 1m every 15s")
    w.add(f"    guard compare err_{k}(version) vs err_{k}(previous) within 10% samples 20 else pause")
    w.add("    on breach rollback")
    w.add("  }")


def stage_align(w, k, rng, tag=None):
    tag = k if tag is None else tag
    w.add("")
    w.add(f"  align rest_{tag} {{")
    w.add(f'    on    fleet_{k}.tagged("stable")')
    w.add(f"    batch {rng.choice(['2', '25%'])}")
    w.add(f"    {rng.choice(COMMENTS).format(k=k)}")
    w.add(f"    drain names_{k} wait 20s             # deregister, keep it out, wait for client caches")
    w.add(f'    run   "deploy.sh svc-{k} ${{version}}"')
    w.add(f'    probe http "http://${{host}}:8080/health" expect 200 attempts 6 every 5s')
    w.add(f'    if edge_{k}.sessions("v1-a-{k}") > 10 and not false {{ wait 5s }} else {{ phase "svc-{k} drained" }}')
    w.add(f"    restore names_{k}")
    w.add("  }")


def stage_gate(w, k, rng, tag=None):
    tag = k if tag is None else tag
    w.add("")
    w.add(f"  align gate_{tag} {{")
    w.add(f'    approve "promote svc-{k} ${{version}} to every host?" timeout 30m default rollback')
    w.add(f'    wait until edge_{k}.sessions("v1-a-{k}") < 5 timeout 10m every 10s')
    w.add(f'    route edge_{k} header "X-Gray-User" == "test-{k}" -> canary')
    w.add(f"    edge_{k}.weight(canary: {rng.choice([0, 50, 100])}%)")
    w.add("  }")


STAGES = [stage_deploy, stage_verify, stage_ramp, stage_align, stage_gate]


def footer(w, k):
    w.add("")
    w.add("  rollback {")
    w.add(f"    edge_{k}.weight(0%)")
    w.add("    undo all")
    w.add("  }")
    w.add("}")


def single(target, rng):
    """One pipeline of about `target` lines."""
    name = f"svc-{target}"
    w = Writer()
    if target <= 20:
        w.add(f'pipeline "{name}" {{')
        w.add("  param version")
        w.add('  hosts fleet = ssh { inventory: "inventory.json", user: "deploy" }')
        w.add("  # one stage: run it on the canary hosts")
        w.add("  deploy canary {")
        w.add('    on fleet.tagged("canary")')
        w.add('    run "deploy.sh ${version}" timeout 5m')
        w.add('    undo "deploy.sh ${version} --revert"')
        w.add("  }")
        w.add("}")
        return w.text()
    header(w, name, rng)
    k = 0
    while True:
        declarations(w, k, rng)
        for st in STAGES:
            st(w, k, rng)
            if len(w) + 6 >= target:
                break
        if len(w) + 6 >= target:
            break
        k += 1
    footer(w, 0)
    return w.text()


COMMON = '''# lib/common.gray: step and stage templates shared by the service pipelines.

# Take one server out of rotation, wait for its sessions to end, and put it back.
template bounce(gw: gateway, server: string, pause: duration = 10s) {
  gw.drain(server: server)
  wait until gw.sessions(server) < 1 timeout 5m every 5s
  wait pause
  gw.ready(server)
}

# The health probes every stage on hosts runs after a deploy.
template health(port: number = 8080, tries: number = 6) {
  probe http "http://${host}:${port}/health" expect 200 attempts tries every 5s
  probe http "http://${host}:${port}/ready" expect [200, 204] timeout 2s
}

# A whole ramp stage judged by an error-rate metric.
template judged_ramp(gw: gateway, rate: metric, canary_version: string, baseline: string,
                     hold_time: duration = 10m, max_rate: percent = 1%) {
  ramp judged {
    via gw
    steps 5% -> 20% -> 50% -> 100%
    hold hold_time
    guard "canary error rate" rate(canary_version) < max_rate for 2m
    guard "canary vs baseline" compare rate(canary_version) vs rate(baseline) within 10% samples 20
    on breach rollback
  }
}
'''


def typical(i, rng):
    """A service pipeline of about 55-120 lines (87 on average); most import lib/common.gray."""
    target = rng.randint(70, 122)
    name = f"svc-{i:04d}"
    uses_lib = i % 4 != 0
    w = Writer()
    header(w, name, rng, imports=['import "lib/common.gray" as common'] if uses_lib else [])
    declarations(w, i, rng)
    stage_deploy(w, i, rng)
    if uses_lib:
        w.add("")
        w.add(f"  verify health_{i} {{")
        w.add(f'    on fleet_{i}.tagged("canary")')
        w.add(f"    use common.health(port: {8000 + i % 100})")
        w.add("  }")
        w.add(f'  use common.judged_ramp(gw: edge_{i}, rate: err_{i}, canary_version: version, baseline: previous)')
    order = [stage_verify, stage_ramp, stage_align, stage_gate]
    n = 0
    while len(w) + 22 < target:
        st = order[n % len(order)]
        if n >= len(order):  # later rounds: more stages of the same service, new names
            if st is not stage_ramp:  # one ramp per gateway is what people write
                st(w, i, rng, tag=f"{i}_{n}")
        else:
            st(w, i, rng)
        n += 1
        if n > 12:
            break
    if uses_lib:
        w.add("")
        w.add(f"  align bounce_{i} {{")
        w.add(f'    use common.bounce(gw: edge_{i}, server: "v1-a-{i}")')
        w.add("  }")
    footer(w, i)
    return w.text()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    os.makedirs(os.path.join(a.out, "single"), exist_ok=True)
    os.makedirs(os.path.join(a.out, "many", "lib"), exist_ok=True)
    for n in SIZES:
        with open(os.path.join(a.out, "single", f"lines-{n}.gray"), "w") as f:
            f.write(single(n, rng))
    with open(os.path.join(a.out, "many", "gray.json"), "w") as f:
        f.write("{}\n")
    with open(os.path.join(a.out, "many", "lib", "common.gray"), "w") as f:
        f.write(COMMON)
    for i in range(MANY):
        with open(os.path.join(a.out, "many", f"svc-{i:04d}.gray"), "w") as f:
            f.write(typical(i, rng))


if __name__ == "__main__":
    main()
