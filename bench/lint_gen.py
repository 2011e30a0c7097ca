#!/usr/bin/env python3
"""Generates the inputs of the lint benchmark (bench/lint_bench.sh).

    bench/lint_gen.py OUT_DIR [--seed N]

Writes
  OUT_DIR/many/gray.json, OUT_DIR/many/svc-000.gray ... svc-199.gray
      200 pipelines of 102 lines each (20,400 lines), like the 200 GitHub workflow files the
      peers were measured on: parameters, plugins, metrics, guards, the five stage kinds,
      comments, and imports of the standard library;
  OUT_DIR/single/gray.json, OUT_DIR/single/big.gray
      one pipeline of about 14,400 lines (many services released in sequence).

Everything is lint-clean and formatted: `gray lint` exits 0 and prints nothing, `gray fmt
--check` lists nothing; lint_bench.sh verifies both. Deterministic for a given seed.
"""
import argparse
import os
import random

LINES_PER_FILE = 102
FILES = 200
BIG_LINES = 14_400


def header(k, rnd):
    return [
        f"# svc-{k:03d}: canary release of the {rnd.choice(['orders', 'users', 'payments', 'search', 'cart'])} service, "
        f"team {rnd.choice(['red', 'blue', 'green'])}.",
        "# Generated for the lint benchmark; every line is something a real pipeline has.",
        "",
        'import "std/checks.gray" as checks',
        'import "std/canary.gray"',
        "",
    ]


def declarations(k, rnd):
    p = rnd.randint(1, 9)
    return [
        f'pipeline "svc-{k:03d}" {{',
        "  param version",
        f'  param previous = "{p}.{rnd.randint(0, 20)}.{rnd.randint(0, 9)}"',
        f"  param hold_time: duration = {rnd.choice([10, 15, 20])}m",
        "",
        "  # Server names at the gateway are the host names of the inventory.",
        "  gateway edge = haproxy {",
        f'    socket: "/run/haproxy/svc-{k:03d}.sock"',
        f'    backend: "svc-{k:03d}"',
        f'    stable: ["app-{k}-1", "app-{k}-2", "app-{k}-3"]',
        f'    canary: ["app-{k}-4"]',
        "  }",
        f'  hosts fleet = ssh {{ inventory: "inventory/svc-{k:03d}.json", user: "deploy" }}',
        '  metrics prom = prometheus { url: "http://prometheus.internal:9090" }',
        "",
        "  # Share of 5xx answers of one version, for the judge.",
        "  metric error_rate(v: string) = prom.query(",
        f"    \"sum(rate(http_requests_total{{service='svc-{k:03d}',version='${{v}}',code=~'5..'}}[1m]))\" +",
        f"    \" / sum(rate(http_requests_total{{service='svc-{k:03d}',version='${{v}}'}}[1m]))\"",
        "  )",
        "  metric p99 = prom.query(",
        f"    \"1000 * histogram_quantile(0.99, sum by (le) (rate(latency_seconds_bucket{{service='svc-{k:03d}'}}[1m])))\"",
        "  ) unit ms",
        "",
        '  guard "service is up" error_rate(version) < 5% for 1m else rollback',
        "",
    ]


def stages(k, rnd, suffix=""):
    first = rnd.choice([1, 2, 5])
    second = rnd.choice([10, 20, 25])
    third = rnd.choice([50, 60])
    port = rnd.choice([8080, 8081, 9000])
    return [
        f"  deploy canary{suffix} {{",
        '    on fleet.tagged("canary")',
        f'    run "/opt/svc-{k:03d}/bin/deploy.sh ${{version}}" timeout 10m',
        f'    undo "/opt/svc-{k:03d}/bin/deploy.sh ${{previous}}"',
        f'    use checks.http(url: "http://${{host.addr}}:{port}/health")',
        "  }",
        "",
        f"  verify smoke{suffix} {{",
        '    on fleet.tagged("canary")',
        "    # A test account through the canary host itself.",
        f'    probe http "http://${{host.addr}}:{port}/api/ping" header "X-Gray-User: qa-1" expect 200',
        f'    probe tcp "${{host.addr}}:{port}" attempts 3 every 5s',
        "  }",
        "",
        f"  ramp traffic{suffix} {{",
        "    via edge",
        f"    steps {first}% -> {second}% -> {third}% -> 100%",
        "    hold hold_time",
        '    guard "canary error rate" error_rate(version) < 1% for 2m',
        '    guard "canary p99 latency" p99 < 300ms for 2m nodata fail',
        '    guard "canary vs baseline" compare error_rate(version) vs error_rate(previous) within 10% samples 20',
        "    on breach rollback",
        "  }",
        "",
        "  # The stable hosts leave the gateway while they change.",
        f"  align rest{suffix} {{",
        '    on fleet.tagged("stable")',
        "    batch 1",
        "    drain edge",
        f'    run "/opt/svc-{k:03d}/bin/deploy.sh ${{version}}" timeout 10m',
        f'    undo "/opt/svc-{k:03d}/bin/deploy.sh ${{previous}}"',
        f'    use checks.http(url: "http://${{host.addr}}:{port}/health")',
        "    restore edge",
        "  }",
        "",
    ]


def rollback():
    return [
        "  rollback {",
        "    # First stop the bleeding, then unwind what really happened.",
        "    edge.weight(0%)",
        "    undo all",
        "  }",
        "}",
    ]


def small(k, rnd):
    decl = declarations(k, rnd)
    # Test accounts reach the canary by a header before real users do, and a person says go.
    testers = [
        "  verify testers {",
        '    route edge header "X-Gray-User" ~ "^qa-" -> canary',
        f'    probe http "https://svc-{k:03d}.example.com/api/ping" header "X-Gray-User: qa-2" expect 200',
        '    approve "Real users for svc-%03d ${version}?" timeout 4h default rollback' % k,
        "  }",
        "",
    ]
    settle = [
        "  # A second look at full traffic, judged by the library template.",
        "  ramp settle {",
        "    via edge",
        "    steps 100%",
        "    hold 10m",
        "    use canary.judged(rate: error_rate, canary_version: version, baseline: previous)",
        "  }",
        "",
    ]
    preflight = [
        "  # Nothing starts when the version's build is not published.",
        "  verify preflight {",
        f'    probe cmd "/opt/svc-{k:03d}/bin/published ${{version}}" attempts 3 every 10s',
        '    phase "preflight"',
        "  }",
        "",
    ]
    decl.insert(decl.index('  guard "service is up" error_rate(version) < 5% for 1m else rollback') - 1,
                f"  metric cpu = prom.query(\"100 * avg(rate(cpu_seconds_total{{service='svc-{k:03d}'}}[2m]))\") unit %")
    body = header(k, rnd) + decl + preflight + stages(k, rnd)
    at_ramp = body.index("  ramp traffic {")
    body = body[:at_ramp] + testers + body[at_ramp:] + settle + rollback()
    body.insert(body.index('    on breach rollback'), '    guard "canary CPU" cpu < 80% for 3m')
    notes = [f"#   {line}" for line in ["deploy   the canary host, with its undo;",
                                          "verify   health and a test account, then test users by header;",
                                          "ramp     5-50% -> 100% while the guards watch;",
                                          "align    the stable hosts, one at a time;",
                                          "rollback traffic off first, then undo what really happened."]]
    for n in notes:
        if len(body) < LINES_PER_FILE:
            body.insert(2 + notes.index(n), n)
    padding = [f"# owner: team {k % 7}; on call: #svc-{k:03d}-oncall", f"# runbook: RB-{k:03d}; dashboards: svc-{k:03d}/canary"]
    while len(body) < LINES_PER_FILE:
        body.insert(2, padding[len(body) % 2])
    assert len(body) == LINES_PER_FILE, len(body)
    return "\n".join(body) + "\n"


def big(rnd):
    lines = [line for line in header(0, rnd) if "canary.gray" not in line] + declarations(0, rnd)
    i = 0
    while len(lines) < BIG_LINES - 6 - 36:
        lines += stages(0, rnd, suffix=f"_{i:04d}")
        i += 1
    lines += rollback()
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    many = os.path.join(a.out, "many")
    single = os.path.join(a.out, "single")
    os.makedirs(many, exist_ok=True)
    os.makedirs(single, exist_ok=True)
    for d in (many, single):
        with open(os.path.join(d, "gray.json"), "w") as f:
            f.write("{}\n")
    for k in range(FILES):
        with open(os.path.join(many, f"svc-{k:03d}.gray"), "w") as f:
            f.write(small(k, rnd))
    with open(os.path.join(single, "big.gray"), "w") as f:
        f.write(big(rnd))


if __name__ == "__main__":
    main()
