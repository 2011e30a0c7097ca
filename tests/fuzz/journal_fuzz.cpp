// libFuzzer target: the run journal's loader and replay (runtime/journal.cpp).
//
// Each input is used three ways:
//   1. as a journal file, as is;
//   2. as a program of structured mutations (truncate, duplicate, swap, delete, garbage lines,
//      byte flips, seq and type edits) applied to a valid journal: a built-in one, and the
//      input's own records when it loaded;
//   3. as a program of events (few keys, so they collide) replayed in memory, then written out
//      and loaded back.
//
// Invariants (a violation aborts, which libFuzzer reports as a crash):
//   - no exception escapes; a result is either records (error empty) or an error naming the
//     file and a line, never both;
//   - a loaded journal replays cleanly; written out again it loads to the same text (a fixed
//     point), and its good prefix loads with no warning;
//   - a torn tail is reported exactly when bytes were dropped, and every prefix of a valid
//     journal that keeps the header loads, with one record per whole line;
//   - a duplicated record, two swapped records, or a deleted record in the middle is an error,
//     never silently accepted;
//   - replay in memory and the loader agree: a sequence replay refuses fails to load with the
//     same message at the same record, and one it accepts loads back to the same state.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/journal.h"

namespace {

using namespace gray;
using namespace gray::journal;

[[noreturn]] void fail(const char* what, std::string_view detail) {
  std::fprintf(stderr, "journal_fuzz: %s\n%.*s\n", what, static_cast<int>(detail.size()), detail.data());
  std::abort();
}

// Reads the input a byte (or a number) at a time; zeros once it runs out.
class Bytes {
 public:
  Bytes(const uint8_t* d, size_t n) : d_(d), n_(n) {}
  bool empty() const { return i_ >= n_; }
  uint8_t byte() { return i_ < n_ ? d_[i_++] : 0; }
  size_t num(size_t bound) {  // 0 .. bound-1
    if (bound == 0) return 0;
    size_t v = byte();
    v = v << 8 | byte();
    return v % bound;
  }
  // ASCII, control characters included: the writer replaces invalid UTF-8, which would make the
  // in-memory and loaded states differ for a reason that is not a bug.
  std::string text(size_t max) {
    size_t len = num(max + 1);
    std::string s;
    while (len-- && !empty()) s += static_cast<char>(byte() & 0x7f);
    return s;
  }
  std::string raw(size_t max) {
    size_t len = num(max + 1);
    std::string s;
    while (len-- && !empty()) s += static_cast<char>(byte());
    return s;
  }

 private:
  const uint8_t* d_;
  size_t n_;
  size_t i_ = 0;
};

std::string serialize(const LoadResult& r) {
  std::string s = format_header(r.header);
  for (const Record& rec : r.records) s += format_record(rec);
  return s;
}

std::vector<std::string> split_lines(const std::string& text) {  // each with its newline, if it had one
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    size_t end = nl == std::string::npos ? text.size() : nl + 1;
    out.push_back(text.substr(pos, end - pos));
    pos = end;
  }
  return out;
}

std::string join(const std::vector<std::string>& lines) {
  std::string s;
  for (const std::string& l : lines) s += l;
  return s;
}

// The invariants every result must meet. Returns the result for further checks.
LoadResult check(const std::string& text) {
  LoadResult r;
  try {
    r = parse_journal(text, "fuzz");
  } catch (const std::exception& e) {
    fail("parse_journal threw", e.what());
  }
  if (!r.ok()) {
    if (!r.records.empty() || !r.warnings.empty()) fail("an error came with records or warnings", r.error);
    if (r.error.rfind("fuzz:", 0) != 0 || r.error_line == 0) fail("the error does not name the file and line", r.error);
    if (r.error.rfind("fuzz:" + std::to_string(r.error_line) + ": ", 0) != 0)
      fail("error_line disagrees with the message", r.error);
    return r;
  }
  if (r.file_size != text.size() || r.good_size > r.file_size) fail("sizes out of range", text);
  if (r.good_size == 0 || text[r.good_size - 1] != '\n') fail("the good prefix does not end a line", text);
  if (r.torn() != (r.warnings.size() == 1) || r.warnings.size() > 1) fail("a torn tail and its warning disagree", text);

  ReplayResult rep = replay_checked(r.records);
  if (!rep.error.empty()) fail("loaded records do not replay", rep.error);
  if (rep.state.last_seq != r.records.size()) fail("seq does not count the records", text);

  // The good prefix alone loads the same, quietly.
  LoadResult good = parse_journal(std::string_view(text).substr(0, r.good_size), "fuzz");
  if (!good.ok() || !good.warnings.empty() || good.records.size() != r.records.size())
    fail("the good prefix loads differently", text);

  // Written out again, it loads to a fixed point.
  const std::string once = serialize(r);
  LoadResult again = parse_journal(once, "fuzz");
  if (!again.ok()) fail("a rewritten journal does not load", again.error + "\n" + once);
  if (!again.warnings.empty() || again.records.size() != r.records.size()) fail("a rewritten journal loads differently", once);
  if (serialize(again) != once) fail("rewriting is not a fixed point", once + "\n---\n" + serialize(again));
  return r;
}

// Every prefix of a valid, untorn journal that keeps its header loads, with one record per whole
// line; a cut inside the header is an error.
void check_prefix(const std::string& text, size_t records, size_t cut) {
  const size_t header_end = text.find('\n') + 1;
  const std::string p = text.substr(0, cut);
  LoadResult r = parse_journal(p, "fuzz");
  if (cut < header_end) {
    if (r.ok()) fail("a cut header loaded", p);
    return;
  }
  if (!r.ok()) fail("a prefix of a valid journal did not load", r.error + "\n" + p);
  size_t lines = 0;
  for (char c : p) lines += c == '\n';
  if (r.records.size() != lines - 1 || r.records.size() > records) fail("a prefix kept the wrong number of records", p);
  if (r.torn() != (p.back() != '\n')) fail("a prefix's torn tail is misreported", p);
}

// Mutations of a valid, untorn journal with `n` records, driven by the input.
void mutate(const std::string& text, size_t n, Bytes& in) {
  if (n == 0) return;
  std::vector<std::string> lines = split_lines(text);  // lines[0] is the header, lines[i] is seq i
  const size_t op = in.byte() % 9;
  const size_t i = 1 + in.num(n), j = 1 + in.num(n);
  switch (op) {
    case 0:
      check_prefix(text, n, in.num(text.size() + 1));
      return;
    case 1: {  // a duplicated record, anywhere after itself: always an error
      const size_t at = i + 1 + in.num(lines.size() - i);
      lines.insert(lines.begin() + static_cast<long>(at), lines[i]);
      if (check(join(lines)).ok()) fail("a duplicated record was accepted", join(lines));
      return;
    }
    case 2: {  // two records swapped: always an error
      if (i == j) return;
      std::swap(lines[i], lines[j]);
      if (check(join(lines)).ok()) fail("swapped records were accepted", join(lines));
      return;
    }
    case 3: {  // a record deleted: an error unless it was the last
      lines.erase(lines.begin() + static_cast<long>(i));
      LoadResult r = check(join(lines));
      if (r.ok() != (i == n))
        fail(i == n ? "deleting the last record broke the journal" : "a deleted record went unnoticed", join(lines));
      return;
    }
    case 4: {  // a garbage line somewhere
      const size_t at = 1 + in.num(lines.size());
      std::string g = in.raw(64);
      for (char& c : g)
        if (c == '\n') c = ' ';
      lines.insert(lines.begin() + static_cast<long>(at), g + "\n");
      check(join(lines));
      return;
    }
    case 5: {  // a few bytes changed anywhere
      std::string t = text;
      for (int k = 0, m = 1 + in.byte() % 4; k < m && !t.empty(); ++k) t[in.num(t.size())] = static_cast<char>(in.byte());
      check(t);
      return;
    }
    case 6: {  // seq edited
      std::string& l = lines[i];
      size_t at = l.find("\"seq\":");
      if (at == std::string::npos) return;
      size_t end = l.find(',', at);
      l.replace(at + 6, end - at - 6, std::to_string(in.num(n + 3)));
      check(join(lines));
      return;
    }
    case 7: {  // type edited
      static const char* const types[] = {"started", "completed", "failed",  "guard", "phase",  "stage",  "weights",
                                          "undone",  "approval",  "outcome", "note",  "signal", "header", "bogus"};
      std::string& l = lines[i];
      size_t at = l.find("\"t\":\"");
      if (at == std::string::npos) return;
      size_t end = l.find('"', at + 5);
      l.replace(at + 5, end - at - 5, types[in.byte() % std::size(types)]);
      check(join(lines));
      return;
    }
    case 8: {  // a record's newline lost (two records on one line, or a torn end)
      std::string& l = lines[i];
      if (!l.empty() && l.back() == '\n') l.pop_back();
      LoadResult r = check(join(lines));
      if (i < n && r.ok()) fail("two records on one line were accepted", join(lines));
      if (i == n && (!r.ok() || r.records.size() != n - 1))
        fail("a last record without its newline was not dropped", join(lines));
      return;
    }
  }
}

// A valid journal using every record type.
const std::string& seed_journal() {
  static const std::string text = [] {
    JournalHeader h;
    h.run = "r1";
    h.pipeline = "p.gray";
    h.source_hash = hash_hex("src");
    h.params = {{"version", Value::string("2.4.1")}, {"token", Value::string("x", true)}};
    h.params_hash = hash_params(h.params);
    h.started_at = "2024-11-22T02:51:00.000Z";
    Call undo{"edge", "weight", {{"canary", Value::percent(0)}}, ""};
    std::vector<Event> evs = {
        Phase{"gray"},
        Stage{"canary", Stage::Event::Entered},
        Started{"r1:a", "canary/a",
                Call{"fleet", "run", {{"command", Value::string("deploy.sh")}, {"t", Value::duration_ms(1500)}}, "h1"}},
        Completed{"r1:a", Value::number(0), Call{"fleet", "run", {{"command", Value::string("deploy.sh old")}}, "h1"}},
        Started{"r1:w", "canary/w", Call{"edge", "weight", {{"canary", Value::percent(5)}}, ""}},
        Completed{"r1:w", Value::null(), undo},
        Weights{"edge", 5},
        Guard{"err", Value::percent(0.5), Guard::Verdict::Pass, "canary"},
        Guard{"err", Value::null(), Guard::Verdict::Inconclusive, "canary"},
        Started{"r1:b", "canary/b", Call{"fleet", "run", {}, "h2"}},
        Failed{"r1:b", "exit 1", "failed"},
        Approval{"canary/ok", Approval::Event::Waiting, "", ""},
        Approval{"canary/ok", Approval::Event::Answered, "promote", "alice"},
        Undone{"r1:w"},
        Signal{"SIGTERM"},
        Rollback{"guard err breached in stage canary"},
        Outcome{Outcome::Kind::Paused, "stop"},
        Note{"résumé ✓"},
        Started{
            "r1:c", "canary/c",
            Call{"fleet", "run", {{"hosts", Value::of_list({Value::named(Value::Kind::Host, "h1")}, Value::Kind::Hosts)}}, "h3"}},
    };
    std::string s = format_header(h);
    uint64_t seq = 0;
    for (Event& e : evs) s += format_record(Record{++seq, 1000.0 * static_cast<double>(seq) + (seq % 3 ? 0 : 0.5), std::move(e)});
    return s;
  }();
  return text;
}

// Events from the input, over a few keys, replayed in memory and through the file.
void replay_program(Bytes& in) {
  static const char* const keys[] = {"k1", "k2", "k3", ""};
  std::vector<Record> rs;
  uint64_t seq = 0;
  while (!in.empty() && rs.size() < 64) {
    const uint8_t op = in.byte();
    const std::string key = keys[in.byte() % 4];
    Record r;
    // Mostly the right seq, sometimes not.
    r.seq = (op & 0xe0) == 0xe0 ? in.byte() % 8 : ++seq;
    r.at_ms = in.byte() * 10.0;
    switch (op % 14) {
      case 0:
        r.event = Started{key, "s/" + key, Call{"p", "op", {{"a", Value::number(in.byte())}}, "h"}};
        break;
      case 1:
        r.event = Completed{key, Value::string(in.text(8)),
                            in.byte() & 1 ? std::optional<Call>(Call{"p", "undo", {}, ""}) : std::nullopt};
        break;
      case 2:
        r.event = Failed{key, in.text(8), "error"};
        break;
      case 3:
        r.event = Guard{key, Value::percent(in.byte()), static_cast<Guard::Verdict>(in.byte() % 4), "s"};
        break;
      case 4:
        r.event = Phase{in.text(8)};
        break;
      case 5:
        r.event = Stage{key, static_cast<Stage::Event>(in.byte() % 2)};
        break;
      case 6:
        r.event = Weights{key, static_cast<double>(in.byte()) - 20};
        break;
      case 7:
        r.event = Undone{key};
        break;
      case 8:
        r.event = Approval{key, static_cast<Approval::Event>(in.byte() % 2), in.text(4), in.text(4)};
        break;
      case 9:
        r.event = Outcome{static_cast<Outcome::Kind>(in.byte() % 7), in.text(8)};
        break;
      case 10:
        r.event = Note{in.text(16)};
        break;
      case 11:
        r.event = Signal{"SIGINT"};
        break;
      case 12:
        r.event = Started{key, "", Call{}};
        break;
      case 13:
        r.event = Rollback{in.text(8)};
        break;
    }
    rs.push_back(std::move(r));
  }
  ReplayResult rep = replay_checked(rs);

  JournalHeader h;
  h.run = "r";
  h.started_at = "2024-11-22T02:51:00Z";
  std::string text = format_header(h);
  // The records replay accepted, plus the one it refused.
  ReplayState probe;
  size_t k = 0;
  for (; k < rs.size(); ++k) {
    text += format_record(rs[k]);
    if (probe.apply(rs[k])) break;
  }
  LoadResult r = check(text);
  if (rep.error.empty()) {
    if (!r.ok()) fail("records replay accepted did not load", r.error + "\n" + text);
    ReplayState s = replay(r.records);
    if (s.last_seq != rep.state.last_seq || s.completed.size() != rep.state.completed.size() ||
        s.in_flight.size() != rep.state.in_flight.size() || s.undo_stack.size() != rep.state.undo_stack.size() ||
        s.failed.size() != rep.state.failed.size() || s.phase != rep.state.phase || s.last_at_ms != rep.state.last_at_ms ||
        s.outcome.has_value() != rep.state.outcome.has_value())
      fail("the loaded state differs from the replayed one", text);
  } else {
    if (r.ok()) fail("records replay refused loaded", rep.error + "\n" + text);
    // "seq N: why" from replay, "fuzz:LINE: why" from the loader, for the same record.
    const std::string why = rep.error.substr(rep.error.find(": ") + 2);
    const std::string line = std::to_string(k + 2);
    if (r.error != "fuzz:" + line + ": " + why) fail("replay and the loader disagree", rep.error + "\n" + r.error + "\n" + text);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (1u << 16)) return 0;
  const std::string input(reinterpret_cast<const char*>(data), size);

  // 1. The input as a journal.
  LoadResult own = check(input);

  // 2. Structured mutations of valid journals, driven by the input.
  {
    Bytes in(data, size);
    const std::string& seed = seed_journal();
    static const size_t n = parse_journal(seed, "seed").records.size();
    mutate(seed, n, in);
    if (own.ok() && !own.records.empty()) {
      const std::string canon = serialize(own);
      check_prefix(canon, own.records.size(), in.num(canon.size() + 1));
      mutate(canon, own.records.size(), in);
    }
  }

  // 3. Events replayed in memory and through the file.
  {
    Bytes in(data, size);
    replay_program(in);
  }
  return 0;
}
