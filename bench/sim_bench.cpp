// Simulation benchmark: what `gray simulate` costs, on inputs this program writes itself.
//
//   gray_sim_bench OUT_DIR [--gray PATH] [--runs N] [--hosts N] [--repeat N]
//
// 1. long holds: the plain canary pipeline (pipelines/canary.gray) with every ramp step held
//    30 minutes, so one run spans two hours of virtual time with guards every 30 s. One
//    `simulate` (parse, check, run, timeline) in-process, best and median of --repeat.
//    Target: under 5 ms.
// 2. runs per second: `simulate --runs N` of the plain canary pipeline against its default
//    scenario. Target: at least 2,000 runs/s.
// 3. align: a generated fleet of --hosts simulated hosts (one canary, the rest aligned with
//    `batch 50`: drain, install, health check, restore) behind one gateway. Orchestration
//    overhead per host (target under 1 ms) and peak memory of the CLI (target under 50 MB).
//
// Times are printed as CPU time of this thread and as wall time: on a shared machine the wall
// time also counts waits for a core. With --gray, each case is also run as a separate `gray`
// process (start-up included), for its wall time and peak RSS. Every run must end the way the
// scenario says (promoted), or the benchmark fails: a fast wrong answer is not a result.
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/cli.h"

namespace fs = std::filesystem;

namespace {

double thread_cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

double wall_ms() {
  using namespace std::chrono;
  return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

struct Timing {
  double cpu_ms = 0;
  double wall_ms = 0;
};

[[noreturn]] void die(const std::string& why) {
  std::cerr << "gray_sim_bench: " << why << "\n";
  std::exit(1);
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) die("cannot read " + p.string());
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream f(p, std::ios::binary);
  if (!(f << text)) die("cannot write " + p.string());
}

// Runs the CLI in this process; dies unless it exits `want_rc` and its output has `must_contain`.
Timing cli(const std::vector<std::string>& args, const std::string& must_contain, int want_rc = 0) {
  std::ostringstream out, err;
  double c0 = thread_cpu_ms(), w0 = wall_ms();
  int rc = gray::run_cli(args, out, err);
  Timing t{thread_cpu_ms() - c0, wall_ms() - w0};
  if (rc != want_rc || out.str().find(must_contain) == std::string::npos) {
    std::string cmd;
    for (const std::string& a : args) cmd += a + " ";
    die("'" + cmd + "' exited " + std::to_string(rc) + " without \"" + must_contain + "\":\n" + out.str() + err.str());
  }
  return t;
}

struct Process {
  double wall_ms = 0;
  double cpu_ms = 0;  // user + system
  long max_rss_kb = 0;
  int rc = -1;
};

// Runs `gray` as a child process with its output thrown away: wall time and peak RSS.
Process spawn(const std::string& gray, const std::vector<std::string>& args) {
  std::vector<std::string> argv_s = {gray};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  double w0 = wall_ms();
  pid_t pid = fork();
  if (pid < 0) die("fork failed");
  if (pid == 0) {
    FILE* devnull = std::fopen("/dev/null", "w");
    if (devnull) dup2(fileno(devnull), STDOUT_FILENO);
    execv(gray.c_str(), argv.data());
    _exit(127);
  }
  int status = 0;
  rusage ru{};
  if (wait4(pid, &status, 0, &ru) < 0) die("wait4 failed");
  Process p;
  p.wall_ms = wall_ms() - w0;
  auto ms = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) * 1e3 + static_cast<double>(tv.tv_usec) / 1e3; };
  p.cpu_ms = ms(ru.ru_utime) + ms(ru.ru_stime);
  p.max_rss_kb = ru.ru_maxrss;
  p.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return p;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

const char* verdict(bool ok) { return ok ? "ok" : "MISSED"; }

// --- inputs -----------------------------------------------------------------------------------

// The plain canary pipeline with each of its four ramp steps held 30 minutes (two hours).
fs::path write_long_holds(const fs::path& src, const fs::path& out) {
  std::string text = slurp(src / "pipelines/canary.gray");
  std::string longer = std::regex_replace(text, std::regex(R"(\n(\s*)hold 10m\n)"), "\n$1hold 30m\n");
  if (longer == text) die("pipelines/canary.gray has no 'hold 10m' to lengthen");
  fs::path dir = out / "long-holds";
  write(dir / "canary-long.gray", "# Generated by gray_sim_bench: pipelines/canary.gray held 30m per step.\n" + longer);
  write(dir / "inventory/checkout.json", slurp(src / "pipelines/inventory/checkout.json"));
  return dir / "canary-long.gray";
}

std::string host_name(int i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "host-%04d", i);
  return buf;
}

// A fleet of `hosts` hosts: host-0001 is the canary, the others are aligned 50 at a time.
fs::path write_fleet(const fs::path& out, int hosts) {
  fs::path dir = out / "fleet";
  std::string inventory = "{\n  \"hosts\": [\n";
  std::string stable;
  for (int i = 1; i <= hosts; ++i) {
    char line[160];
    std::snprintf(line, sizeof line, "    {\"name\": \"%s\", \"addr\": \"10.1.%d.%d\", \"port\": 8080, \"tags\": [\"%s\"]}%s\n",
                  host_name(i).c_str(), i / 250, i % 250 + 1, i == 1 ? "canary" : "stable", i == hosts ? "" : ",");
    inventory += line;
    if (i > 1) stable += std::string(stable.empty() ? "" : ", ") + "\"" + host_name(i) + "\"";
  }
  inventory += "  ]\n}\n";
  write(dir / "inventory.json", inventory);

  std::string pipeline = R"GRAY(# Generated by gray_sim_bench: one canary, then the rest of the fleet in batches of 50.
import "std/checks.gray" as checks

pipeline "fleet" {
  param version
  param previous = "1.0.0"

  gateway edge = haproxy {
    socket: "/run/haproxy/admin.sock"
    backend: "fleet"
    stable: [)GRAY" + stable + R"GRAY(]
    canary: ["host-0001"]
  }
  hosts fleet = ssh { inventory: "inventory.json", user: "deploy" }
  metrics prom = prometheus { url: "http://prometheus.internal:9090" }
  metric error_rate(v: string) = prom.query(
    "sum(rate(http_requests_total{version='${v}',code=~'5..'}[1m])) / sum(rate(http_requests_total{version='${v}'}[1m]))"
  )

  guard "fleet is not on fire" error_rate(version) < 5% for 1m else rollback

  deploy canary {
    on fleet.tagged("canary")
    run "/opt/app/bin/deploy.sh ${version}" timeout 10m
    undo "/opt/app/bin/deploy.sh ${previous}"
  }

  align rest {
    on fleet.tagged("stable")
    batch 50
    drain edge
    run "/opt/app/bin/deploy.sh ${version}" timeout 10m
    undo "/opt/app/bin/deploy.sh ${previous}"
    use checks.http(url: "http://${host.addr}:${host.port}/health")
    restore edge
  }

  rollback {
    undo all
  }
}
)GRAY";
  write(dir / "fleet.gray", pipeline);

  write(dir / "scenario.json", R"JSON({
  "description": "A fleet on 1.0.0 behind one gateway; the new version behaves like the old one.",
  "seed": 1,
  "noise": 0.02,
  "version": "1.0.0",
  "versions": {"1.0.0": {"error_rate": 0.002, "latency_ms": 120}, "default": {"error_rate": 0.002, "latency_ms": 125}},
  "traffic": {"rps": 2000},
  "metrics": {"error_rate": {"measure": "error_rate", "version": "$v"}},
  "commands": [
    {"match": "^/opt/app/bin/deploy\\.sh (\\S+)$", "action": "install", "version": "$1", "duration": "45s"}
  ],
  "call_latency": "50ms"
}
)JSON");
  return dir / "fleet.gray";
}

struct Options {
  fs::path out;
  std::string gray;
  int runs = 2000;
  int hosts = 1000;
  int repeat = 20;
};

Options parse_options(int argc, char** argv) {
  if (argc < 2) die("usage: gray_sim_bench OUT_DIR [--gray PATH] [--runs N] [--hosts N] [--repeat N]");
  Options o;
  o.out = fs::absolute(argv[1]);
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) die(a + " needs a value");
    std::string v = argv[++i];
    if (a == "--gray") o.gray = fs::absolute(v).string();
    else if (a == "--runs") o.runs = std::max(2, std::atoi(v.c_str()));
    else if (a == "--hosts") o.hosts = std::max(2, std::atoi(v.c_str()));
    else if (a == "--repeat") o.repeat = std::max(1, std::atoi(v.c_str()));
    else die("unknown option " + a);
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse_options(argc, argv);
  const fs::path src = GRAY_SOURCE_DIR;
  fs::current_path(src);  // pipelines name their inventories relative to themselves; scenarios are given as paths
  const std::string scenario = (src / "pipelines/scenarios/canary/good.json").string();

  // 1. One simulate with two hours of holds.
  const std::string long_holds = write_long_holds(src, o.out).string();
  const std::vector<std::string> long_args = {"simulate", long_holds, "--set", "version=2.4.1", "--scenario", scenario};
  std::vector<std::string> argv_long = {"gray"};
  argv_long.insert(argv_long.end(), long_args.begin(), long_args.end());
  cli(argv_long, "outcome: promoted");  // warm-up (and the check that it promotes)
  std::vector<double> cpu, wall;
  for (int i = 0; i < o.repeat; ++i) {
    Timing t = cli(argv_long, "duration: 2:");
    cpu.push_back(t.cpu_ms);
    wall.push_back(t.wall_ms);
  }
  double best_wall = *std::min_element(wall.begin(), wall.end());
  std::printf("== simulate, canary with 2 h of holds (guards every 30 s), in-process, %d times\n", o.repeat);
  std::printf("   cpu    best %.2f ms  median %.2f ms\n", *std::min_element(cpu.begin(), cpu.end()), median(cpu));
  std::printf("   wall   best %.2f ms  median %.2f ms   target < 5 ms: %s\n", best_wall, median(wall), verdict(median(wall) < 5));
  if (!o.gray.empty()) {
    Process p = spawn(o.gray, long_args);
    if (p.rc != 0) die("the gray process exited " + std::to_string(p.rc) + " on the long-holds pipeline");
    Process bare = spawn(o.gray, {"--version"});
    std::printf("   gray process (start-up included): wall %.1f ms, cpu %.1f ms, peak RSS %.1f MB; 'gray --version' alone: wall %.1f ms\n",
                p.wall_ms, p.cpu_ms, static_cast<double>(p.max_rss_kb) / 1024, bare.wall_ms);
  }

  // 2. Runs per second.
  const std::string runs = std::to_string(o.runs);
  Timing t = cli({"gray", "simulate", "pipelines/canary.gray", "--set", "version=2.4.1", "--runs", runs}, runs + " runs:");
  std::printf("\n== simulate --runs %d, plain canary, default scenario, in-process\n", o.runs);
  std::printf("   cpu    %.0f ms  = %.0f runs/s\n", t.cpu_ms, o.runs / t.cpu_ms * 1000);
  std::printf("   wall   %.0f ms  = %.0f runs/s   target >= 2000 runs/s: %s\n", t.wall_ms, o.runs / t.wall_ms * 1000,
              verdict(o.runs / t.wall_ms * 1000 >= 2000));
  if (!o.gray.empty()) {
    Process p = spawn(o.gray, {"simulate", "pipelines/canary.gray", "--set", "version=2.4.1", "--runs", runs});
    if (p.rc != 0) die("the gray process exited " + std::to_string(p.rc) + " on --runs " + runs);
    std::printf("   gray process (start-up included): wall %.0f ms = %.0f runs/s, cpu %.0f ms = %.0f runs/s\n", p.wall_ms,
                o.runs / p.wall_ms * 1000, p.cpu_ms, o.runs / p.cpu_ms * 1000);
  }

  // 3. Align over a generated fleet.
  const std::string fleet = write_fleet(o.out, o.hosts).string();
  const std::string fleet_scenario = (fs::path(fleet).parent_path() / "scenario.json").string();
  const std::vector<std::string> fleet_args = {"simulate", fleet, "--set", "version=2.0.0", "--scenario", fleet_scenario};
  std::vector<std::string> argv_fleet = {"gray"};
  argv_fleet.insert(argv_fleet.end(), fleet_args.begin(), fleet_args.end());
  Timing f = cli(argv_fleet, "outcome: promoted");
  const int aligned = o.hosts - 1;
  std::printf("\n== align %d simulated hosts with batch 50 (after a canary), in-process, one simulate\n", aligned);
  std::printf("   cpu    %.0f ms  = %.3f ms per host\n", f.cpu_ms, f.cpu_ms / aligned);
  std::printf("   wall   %.0f ms  = %.3f ms per host   target < 1 ms: %s\n", f.wall_ms, f.wall_ms / aligned, verdict(f.wall_ms / aligned < 1));
  if (!o.gray.empty()) {
    Process p = spawn(o.gray, fleet_args);
    if (p.rc != 0) die("the gray process exited " + std::to_string(p.rc) + " on the fleet pipeline");
    double mb = static_cast<double>(p.max_rss_kb) / 1024;
    std::printf("   gray process (start-up included): wall %.0f ms, cpu %.0f ms, peak RSS %.1f MB   target < 50 MB: %s\n", p.wall_ms,
                p.cpu_ms, mb, verdict(mb < 50));
  }
  return 0;
}
