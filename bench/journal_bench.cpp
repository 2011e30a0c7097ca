// Journal benchmark: what one journaled side effect costs (a `started` + `completed` pair, each
// appended with one write() and an fdatasync), against a bare write()+fdatasync() of the very
// same bytes, on the filesystem of the current directory.
//
//   gray_journal_bench [--pairs N] [--rounds R]
//
// Rounds alternate journal and bare, so both see the same disk weather; the figures are the
// medians over the rounds. Also prints the CPU-only cost of preparing a record (format, checks,
// replay state) with no I/O, which is all the journal adds on top of the disk. Exits 1 when the
// ratio is over the 1.5x target.
#include <fcntl.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "runtime/journal.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace gray;
using namespace gray::journal;

namespace {

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "gray_journal_bench: %s\n", why.c_str());
  std::exit(1);
}

JournalHeader bench_header() {
  JournalHeader h;
  h.run = "bench-run";
  h.pipeline = "pipelines/checkout.gray";
  h.source_hash = hash_hex("source");
  h.params = {{"version", Value::string("2.4.1")}, {"previous", Value::string("2.4.0")}};
  h.params_hash = hash_params(h.params);
  h.started_at = iso8601_utc(1732243860000);
  return h;
}

// A typical pair: a deploy command on one host, and its result with the undo command.
std::pair<Event, Event> pair_for(size_t i) {
  const std::string host = "v2-" + std::to_string(i % 16);
  const std::string key = "bench-run:align/rest/run#1@" + host + "/" + std::to_string(i);
  Started s{key, "align/rest/run#1",
            Call{"fleet",
                 "run",
                 {{"command", Value::string("deploy.sh 2.4.1 --mode gray")}, {"timeout", Value::duration_ms(30000)}},
                 host}};
  Completed c{key, Value::of_map({{"exit", Value::number(0)}, {"stdout", Value::string("deployed 2.4.1 on " + host)}}),
              Call{"fleet", "run", {{"command", Value::string("deploy.sh 2.4.0")}}, host}};
  return {std::move(s), std::move(c)};
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double run_journal(const fs::path& dir, size_t pairs) {
  fs::remove_all(dir);
  JournalOpen o = Journal::create(dir.string(), bench_header());
  if (!o.journal) die(o.error);
  auto t0 = Clock::now();
  for (size_t i = 0; i < pairs; ++i) {
    auto [s, c] = pair_for(i);
    if (auto e = o.journal->append(static_cast<double>(2 * i), std::move(s))) die(*e);
    if (auto e = o.journal->append(static_cast<double>(2 * i + 1), std::move(c))) die(*e);
  }
  return seconds_since(t0);
}

double run_bare(const fs::path& dir, const std::vector<std::string>& lines) {
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string path = (dir / kJournalFileName).string();
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) die("cannot create " + path + ": " + std::strerror(errno));
  auto t0 = Clock::now();
  for (const std::string& l : lines) {
    if (::write(fd, l.data(), l.size()) != static_cast<ssize_t>(l.size())) die("write failed");
    if (::fdatasync(fd) != 0) die("fdatasync failed");
  }
  double t = seconds_since(t0);
  ::close(fd);
  return t;
}

// Preparing records without any I/O: formatting and the replay-state checks.
double run_cpu_only(size_t pairs) {
  ReplayState st;
  size_t bytes = 0;
  auto t0 = Clock::now();
  uint64_t seq = 0;
  for (size_t i = 0; i < pairs; ++i) {
    auto [s, c] = pair_for(i);
    for (Event* e : {&s, &c}) {
      Record r{++seq, static_cast<double>(seq), std::move(*e)};
      bytes += format_record(r).size();
      if (st.apply(r)) die("replay refused a bench record");
    }
  }
  double t = seconds_since(t0);
  if (bytes == 0) die("nothing formatted");
  return t;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

const char* fs_name(long type) {
  switch (static_cast<unsigned long>(type)) {
    case 0xEF53:
      return "ext4";
    case 0x58465342:
      return "xfs";
    case 0x9123683E:
      return "btrfs";
    case 0x01021994:
      return "tmpfs";
    case 0x794C7630:
      return "overlayfs";
    case 0x6969:
      return "nfs";
    case 0x2FC12FC1:
      return "zfs";
    default:
      return "other";
  }
}

}  // namespace

int main(int argc, char** argv) {
  size_t pairs = 500, rounds = 5;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--pairs" && i + 1 < argc)
      pairs = std::strtoul(argv[++i], nullptr, 10);
    else if (a == "--rounds" && i + 1 < argc)
      rounds = std::strtoul(argv[++i], nullptr, 10);
    else
      die("usage: gray_journal_bench [--pairs N] [--rounds R]");
  }
  if (pairs == 0 || rounds == 0) die("--pairs and --rounds must be at least 1");

  const fs::path base = fs::current_path() / ("gray-journal-bench." + std::to_string(::getpid()));
  struct statfs sfs;
  const char* fsn = ::statfs(fs::current_path().c_str(), &sfs) == 0 ? fs_name(sfs.f_type) : "unknown";

  // The exact bytes the journal writes, for the bare run.
  std::vector<std::string> lines;
  {
    uint64_t seq = 0;
    for (size_t i = 0; i < pairs; ++i) {
      auto [s, c] = pair_for(i);
      lines.push_back(format_record(Record{++seq, static_cast<double>(2 * i), std::move(s)}));
      lines.push_back(format_record(Record{++seq, static_cast<double>(2 * i + 1), std::move(c)}));
    }
  }
  size_t bytes = 0;
  for (const std::string& l : lines) bytes += l.size();

  std::printf("journal bench: %zu pairs (%zu records, %.0f bytes per pair) x %zu rounds, in %s (%s)\n", pairs, lines.size(),
              double(bytes) / double(pairs), rounds, fs::current_path().c_str(), fsn);
  (void)run_journal(base / "warm", std::min<size_t>(pairs, 20));  // first-touch costs out of the way
  std::vector<double> journal_t, bare_t;
  for (size_t r = 0; r < rounds; ++r) {
    journal_t.push_back(run_journal(base / ("j" + std::to_string(r)), pairs));
    bare_t.push_back(run_bare(base / ("b" + std::to_string(r)), lines));
  }
  const double cpu = run_cpu_only(pairs * 20) / double(pairs * 20);
  fs::remove_all(base);

  const double j = median(journal_t) / double(pairs), b = median(bare_t) / double(pairs);
  std::printf("  journal (append started + completed): %9.1f us per pair  (%7.1f us per record)\n", j * 1e6, j * 5e5);
  std::printf("  bare write+fdatasync, same bytes:     %9.1f us per pair  (%7.1f us per record)\n", b * 1e6, b * 5e5);
  std::printf("  ratio journal / bare:                 %9.2fx  (target: at most 1.5x)\n", j / b);
  std::printf("  CPU only (format + checks, no I/O):   %9.1f us per pair\n", cpu * 1e6);
  std::printf("  rounds, us per pair:");
  for (size_t r = 0; r < rounds; ++r)
    std::printf(" j=%.0f/b=%.0f", journal_t[r] / double(pairs) * 1e6, bare_t[r] / double(pairs) * 1e6);
  std::printf("\n");
  return j / b <= 1.5 ? 0 : 1;
}
