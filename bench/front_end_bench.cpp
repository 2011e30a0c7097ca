// Front-end benchmark: parse + check throughput on generated pipelines (bench/gen.py).
//
//   gray_bench OUT_DIR [--runs N]
//
// OUT_DIR is what bench/gen.py wrote: single/lines-*.gray and many/*.gray. For each single
// file it times parse+check in-process from memory (best of N runs, after one warm-up run),
// and parse alone; then it checks the 1,000 files of many/ in one Project from disk, as
// `gray check DIR` does; then it times the text rendering of 8,000 diagnostics that all sit on
// one long line (each is shown with a window of that line); and prints peak RSS. Every
// generated input must check clean: a diagnostic means the generator and the checker
// disagree, and the benchmark fails.
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "lang/check.h"
#include "lang/diag.h"
#include "lang/load.h"
#include "lang/parse.h"

namespace fs = std::filesystem;

// Times are CPU time of this thread: on a shared machine wall time also counts the waits for a
// core. Both are printed for the many-files run.
struct CpuClock {
  using time_point = double;  // milliseconds
  static time_point now() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
  }
};
using Clock = CpuClock;
using Wall = std::chrono::steady_clock;

namespace {

class MemoryReader : public gray::FileReader {
 public:
  std::map<std::string, std::string> files;
  bool read(const std::string& path, std::string& out, std::string& error) override {
    auto it = files.find(path);
    if (it == files.end()) {
      error = "no such file";
      return false;
    }
    out = it->second;
    return true;
  }
  bool exists(const std::string& path) override { return files.count(path) != 0; }
};

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    std::fprintf(stderr, "gray_bench: cannot read %s\n", path.c_str());
    std::exit(2);
  }
  std::ostringstream ss;
  ss << f.rdbuf();
  return std::move(ss).str();
}

size_t count_lines(const std::string& s) { return static_cast<size_t>(std::count(s.begin(), s.end(), '\n')); }

double ms_since(Clock::time_point t0) { return Clock::now() - t0; }
double wall_ms_since(Wall::time_point t0) { return std::chrono::duration<double, std::milli>(Wall::now() - t0).count(); }

void fail_on_diagnostics(const gray::SourceMap& sources, gray::Diagnostics& diags, const std::string& what) {
  if (diags.list().empty()) return;
  diags.sort();
  std::string text = gray::render_text(sources, diags.list(), {});
  std::fprintf(stderr, "gray_bench: %s does not check clean (%zu diagnostics):\n%.4000s\n", what.c_str(), diags.list().size(),
               text.c_str());
  std::exit(1);
}

// parse + check of one file held in memory, as `gray check FILE` does after reading it.
double parse_and_check(const std::string& text, bool verify) {
  MemoryReader reader;
  reader.files["/bench/gray.json"] = "{}";
  reader.files["/bench/input.gray"] = text;
  gray::LoadOptions opts;
  opts.root = "/bench";
  gray::Diagnostics diags;
  auto t0 = Clock::now();
  double ms;
  {
    gray::Project project(opts, reader);
    project.load("/bench/input.gray", diags);
    gray::check_project(project, diags);
    ms = ms_since(t0);  // freeing the AST and sources afterwards is not counted
    if (verify) fail_on_diagnostics(project.sources(), diags, "input");
  }
  return ms;
}

// parse alone: SourceFile construction (line index) + grammar + lowering to the AST.
double parse_only(const std::string& text) {
  gray::Diagnostics diags;
  auto t0 = Clock::now();
  gray::SourceFile file(1, "input.gray", text);
  gray::ast::Module mod = gray::parse(file, diags);
  double ms = ms_since(t0);
  if (!diags.list().empty()) {
    std::fprintf(stderr, "gray_bench: parse reported %zu diagnostics\n", diags.list().size());
    std::exit(1);
  }
  return ms;
}

long peak_rss_kib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;  // KiB on Linux
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: gray_bench OUT_DIR [--runs N]\n");
    return 2;
  }
  const std::string out = argv[1];
  int runs = 5;
  for (int i = 2; i < argc; ++i)
    if (std::string(argv[i]) == "--runs" && i + 1 < argc) runs = std::max(1, std::atoi(argv[++i]));

  // ---- single files of growing size ----
  std::vector<std::string> singles;
  for (const auto& e : fs::directory_iterator(out + "/single"))
    if (e.path().extension() == ".gray") singles.push_back(e.path().string());
  std::sort(singles.begin(), singles.end(), [](const std::string& a, const std::string& b) {
    return fs::file_size(a) < fs::file_size(b);
  });

  std::printf("gray front-end benchmark: best of %d runs, one thread, CPU time, input from memory\n\n", runs);
  std::printf("%9s %11s | %10s %9s %12s | %10s %9s\n", "lines", "bytes", "check ms", "MB/s", "lines/s", "parse ms", "MB/s");
  std::printf("%9s %11s | %10s %9s %12s | %10s %9s\n", "", "", "(parse+chk)", "", "", "(only)", "");
  double worst_mbs = 1e9;
  for (const std::string& path : singles) {
    std::string text = slurp(path);
    const size_t lines = count_lines(text);
    parse_and_check(text, /*verify=*/true);  // warm-up, and the input must check clean
    double best = 1e300, best_parse = 1e300;
    for (int r = 0; r < runs; ++r) best = std::min(best, parse_and_check(text, false));
    for (int r = 0; r < runs; ++r) best_parse = std::min(best_parse, parse_only(text));
    const double mb = static_cast<double>(text.size()) / 1e6;
    const double mbs = mb / (best / 1e3), pmbs = mb / (best_parse / 1e3);
    if (text.size() > 100000) worst_mbs = std::min(worst_mbs, mbs);
    std::printf("%9zu %11zu | %10.3f %9.1f %12.0f | %10.3f %9.1f\n", lines, text.size(), best, mbs,
                static_cast<double>(lines) / (best / 1e3), best_parse, pmbs);
  }

  // ---- many typical files in one Project, from disk ----
  std::vector<std::string> many;
  for (const auto& e : fs::recursive_directory_iterator(out + "/many"))
    if (e.is_regular_file() && e.path().extension() == ".gray") many.push_back(e.path().string());
  std::sort(many.begin(), many.end());
  size_t many_bytes = 0, many_lines = 0;
  for (const std::string& p : many) {
    std::string t = slurp(p);
    many_bytes += t.size();
    many_lines += count_lines(t);
  }
  double best_many = 1e300, best_many_wall = 1e300;
  size_t modules = 0;
  for (int r = 0; r < runs + 1; ++r) {  // the first run is the warm-up (and the clean check)
    gray::Diagnostics diags;
    gray::DiskReader reader;
    auto t0 = Clock::now();
    auto w0 = Wall::now();
    gray::Project project({}, reader);
    for (const std::string& p : many) project.load(p, diags);
    gray::check_project(project, diags);
    double ms = ms_since(t0), wall = wall_ms_since(w0);
    if (r == 0) {
      fail_on_diagnostics(project.sources(), diags, out + "/many");
    } else {
      best_many = std::min(best_many, ms);
      best_many_wall = std::min(best_many_wall, wall);
    }
    modules = project.module_count();
  }
  std::printf("\n%zu files (%zu modules, %zu lines, %zu bytes) in one Project, from disk (page cache):\n", many.size(), modules,
              many_lines, many_bytes);
  std::printf("  load+parse+check: %.1f ms CPU total (%.1f ms wall), %.0f files/s, %.1f MB/s\n", best_many, best_many_wall,
              static_cast<double>(many.size()) / (best_many / 1e3), static_cast<double>(many_bytes) / 1e6 / (best_many / 1e3));

  // ---- many diagnostics on one long line: rendering must not cost the line per diagnostic ----
  {
    const int errors = 8000;
    std::string line = "  let names = [";
    for (int i = 0; i < errors; ++i) line += (i ? ", undefined_" : "undefined_") + std::to_string(i);
    const std::string text = "pipeline \"p\" {\n  param version\n" + line + "]\n}\n";
    double best = 1e300;
    size_t shown = 0, rendered_bytes = 0;
    for (int r = 0; r < runs; ++r) {
      MemoryReader reader;
      reader.files["/bench/gray.json"] = "{}";
      reader.files["/bench/long-line.gray"] = text;
      gray::LoadOptions opts;
      opts.root = "/bench";
      gray::Diagnostics diags;
      gray::Project project(opts, reader);
      project.load("/bench/long-line.gray", diags);
      gray::check_project(project, diags);
      diags.sort();
      auto t0 = Clock::now();
      std::string out = gray::render_text(project.sources(), diags.list(), {});
      best = std::min(best, ms_since(t0));
      shown = diags.list().size();
      rendered_bytes = out.size();
    }
    if (shown < static_cast<size_t>(errors)) {
      std::fprintf(stderr, "gray_bench: expected %d diagnostics on the long line, got %zu\n", errors, shown);
      return 1;
    }
    std::printf("\n%zu diagnostics on one line of %zu bytes: render_text %.1f ms (%zu bytes of text)\n", shown, line.size(), best,
                rendered_bytes);
  }

  std::printf("\npeak RSS: %.1f MiB\n", static_cast<double>(peak_rss_kib()) / 1024.0);

  const bool ok_rate = worst_mbs >= 20.0, ok_many = best_many < 1000.0;
  std::printf("\ntargets: >= 20 MB/s on one core (files over 100 KB): %s (worst %.1f MB/s); 1,000 files well under 1 s: %s (%.0f ms)\n",
              ok_rate ? "met" : "MISSED", worst_mbs, ok_many ? "met" : "MISSED", best_many);
  return 0;
}
