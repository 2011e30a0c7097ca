// The run journal: an append-only JSON-lines file per run (<run-dir>/journal.jsonl), the
// authoritative record of what a release did. Every side effect is journaled `started` before it
// begins and `completed`/`failed` after, so a killed run resumes without repeating an effect and
// without forgetting what must be undone.
//
//   writing:  Journal::create / Journal::open_for_append, then append(at, event)
//   reading:  load_journal(path) -> LoadResult (records, or an error naming the line)
//   resuming: replay(records) -> ReplayState
//
// Like ninja's build log: a version header, one record per line, a torn tail dropped on load, a
// wrong version refused. Unlike it, every append is fdatasync'd before it returns.
//
// The file, one JSON object per line, keys in this order:
//   {"t":"header","format":"gray-journal","version":1,"run":ID,"pipeline":PATH,"source_hash":HEX,
//    "params_hash":HEX,"params":{NAME:VALUE...},"started_at":"2024-11-22T02:51:00.000Z","clock":"real"}
//   {"seq":1,"t":"started","at":MS,"key":K,"step":PATH,"plugin":P,"op":OP,"args":{...},"host":H}
//   {"seq":2,"t":"completed","at":MS,"key":K,"result":VALUE,"undo":null|{"plugin","op","args","host"}}
//   {"seq":3,"t":"failed","at":MS,"key":K,"message":TEXT,"status":TEXT}
//   {"seq":4,"t":"guard","at":MS,"guard":ID,"value":VALUE,"verdict":"pass|fail|inconclusive|error","stage":S}
//   {"seq":5,"t":"phase","at":MS,"name":N}
//   {"seq":6,"t":"stage","at":MS,"name":S,"event":"entered|left"}
//   {"seq":7,"t":"weights","at":MS,"gateway":G,"canary":PERCENT}
//   {"seq":8,"t":"undone","at":MS,"key":K}
//   {"seq":9,"t":"approval","at":MS,"gate":PATH,"event":"waiting|answered","answer":A,"who":W}
//   {"seq":10,"t":"outcome","at":MS,"outcome":"promoted|rolled-back|aborted|failed|paused|needs-attention|stopped",
//    "reason":R}
//   {"seq":11,"t":"note","at":MS,"text":T}
//   {"seq":12,"t":"signal","at":MS,"signal":"SIGTERM"}
// VALUE is runtime/value.h's to_json (secrets as {"secret":true}); MS is a number >= 0 (an integer
// unless the clock gave a fraction); seq counts 1, 2, 3... with no gaps, so record N is on line N+1.
// Unknown fields are ignored; unknown record types are errors.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "runtime/value.h"

namespace gray {

inline constexpr const char* kJournalFormat = "gray-journal";
inline constexpr int kJournalVersion = 1;
inline constexpr const char* kJournalFileName = "journal.jsonl";

// The first line of every journal: what the run is pinned to.
struct JournalHeader {
  enum class Clock { Virtual, Real };

  std::string run;          // run id
  std::string pipeline;     // path of the pipeline file, as given
  std::string source_hash;  // hash_hex of the pipeline source (and its imports)
  std::string params_hash;  // hash_params of the run parameters
  Map params;               // written redacted (to_json); secrets come back as "<secret>"
  std::string started_at;   // ISO 8601 UTC, iso8601_utc()
  Clock clock = Clock::Real;
};

// The events the interpreter journals. Each becomes one line {"seq":N,"t":TYPE,"at":MS,...}.
// Strings are free text; anything that could hold a secret is a Value (written through to_json,
// which redacts) or is scrubbed of the secrets registered with Journal::add_secret.
namespace journal {

// A call to a plugin: what a started step does, and what undoes a completed one.
struct Call {
  std::string plugin;  // plugin instance name ("edge", "fleet")
  std::string op;      // operation ("weight", "run")
  Map args;
  std::string host;  // empty when not on a host
};

// A side effect is about to happen. Must be on disk before the effect begins.
struct Started {
  std::string key;   // idempotency key: run id + step path + host
  std::string step;  // step path ("canary/run#1")
  Call call;
  // The compensation read from the world before the effect (Driver::undo_for), written ahead of
  // it: a run killed after the effect but before `completed` still knows what to undo.
  std::optional<Call> undo = std::nullopt;
};
// The effect happened; `undo` is the compensating call, if the step declared one.
struct Completed {
  std::string key;
  Value result;
  std::optional<Call> undo;
};
// The effect failed (or could not run). A failed key may be started again (a retry).
struct Failed {
  std::string key;
  std::string message;
  std::string status;  // "failed", "error", "timeout", ...
};
struct Guard {
  enum class Verdict { Pass, Fail, Inconclusive, Error };
  std::string guard;  // guard id
  Value value;        // the observed value; null when there was no data
  Verdict verdict = Verdict::Pass;
  std::string stage;
};
struct Phase {
  std::string name;
};
struct Stage {
  enum class Event { Entered, Left };
  std::string name;
  Event event = Event::Entered;
};
struct Weights {
  std::string gateway;
  double canary = 0;  // percent, 0..100
};
// The undo of a completed step ran; the step leaves the undo stack.
struct Undone {
  std::string key;
};
struct Approval {
  enum class Event { Waiting, Answered };
  std::string gate;  // step path of the approve
  Event event = Event::Waiting;
  std::string answer;  // Answered: "approve", "reject", "timeout-default", ...
  std::string who;     // Answered: who answered
};
struct Outcome {
  enum class Kind { Promoted, RolledBack, Aborted, Failed, Paused, NeedsAttention, Stopped };
  Kind kind = Kind::Failed;
  std::string reason;
};
struct Note {
  std::string text;
};
// A stop was requested (SIGINT/SIGTERM); the run stops at the next safe point.
struct Signal {
  std::string name;  // "SIGTERM"
};
// The run decided to roll back (a breach, a failure, an operator). Written before the first
// compensation: a run killed while rolling back resumes its rollback, not its way forward.
struct Rollback {
  std::string reason;
};

using Event =
    std::variant<Started, Completed, Failed, Guard, Phase, Stage, Weights, Undone, Approval, Outcome, Note, Signal, Rollback>;

// Names as written in the file ("started", "rolled-back", "inconclusive", ...).
const char* type_name(const Event& e);
const char* verdict_name(Guard::Verdict v);
const char* stage_event_name(Stage::Event e);
const char* approval_event_name(Approval::Event e);
const char* outcome_name(Outcome::Kind k);

}  // namespace journal

struct Record {
  uint64_t seq = 0;  // 1, 2, 3, ... with no gaps
  double at_ms = 0;  // the run's clock (virtual or real, see the header), in milliseconds; >= 0
  journal::Event event;
};

// ---------------------------------------------------------------------------------------------
// What a run needs to resume, derived from its records.

struct ReplayState {
  struct Flying {
    journal::Started started;  // the latest `started` of the key
    double started_at_ms = 0;  // its first `started`: a resumed hold keeps its remaining time
  };
  struct Done {
    std::string step;
    Value result;
    std::optional<journal::Call> undo;
    uint64_t seq = 0;
    double started_at_ms = 0;
    double at_ms = 0;
  };
  struct UndoEntry {
    std::string key;
    std::string step;
    journal::Call undo;
  };
  struct Verdict {
    journal::Guard::Verdict verdict;
    Value value;
    std::string stage;
    uint64_t seq = 0;
    double at_ms = 0;
  };
  struct Split {
    double canary = 0;
    double at_ms = 0;
  };
  struct StageState {
    std::string name;
    double entered_at_ms = 0;
    bool left = false;
  };
  struct ApprovalState {
    bool answered = false;
    std::string answer, who;
    double waiting_since_ms = 0;
  };

  std::map<std::string, Done> completed;               // by key
  std::vector<Flying> in_flight;                       // started, neither completed nor failed; oldest first
  std::map<std::string, journal::Failed> failed;       // last failure of keys not since started again
  std::vector<UndoEntry> undo_stack;                   // completion order; roll back from the end
  std::string phase;                                   // the current phase ("" before the first)
  std::map<std::string, Split> weights;                // last canary split per gateway
  std::optional<StageState> stage;                     // the last stage entered
  std::map<std::string, std::vector<Verdict>> guards;  // verdict history per guard id
  std::map<std::string, ApprovalState> approvals;      // by gate
  // How the run ended. A later record other than a note or signal clears it: the run resumed.
  std::optional<journal::Outcome> outcome;
  std::optional<journal::Signal> stop;  // a stop was requested; cleared the same way
  std::optional<journal::Rollback> rollback;  // the run decided to roll back (never cleared)
  double last_at_ms = 0;                // the newest `at`: a virtual clock resumes from here
  uint64_t last_seq = 0;

  std::set<std::string> undone;  // keys whose undo ran

  bool is_completed(const std::string& key) const { return completed.count(key) != 0; }
  const Flying* in_flight_step(const std::string& key) const;

  // Applies one record. Returns an error (and changes nothing) when the record cannot follow the
  // ones before: the rules load_journal enforces and Journal::append refuses to break.
  std::optional<std::string> apply(const Record& r);
};

// Replays records in order. Records from load_journal always replay cleanly; for any other
// sequence, replay stops at the first record that cannot follow and says so in `error`.
struct ReplayResult {
  ReplayState state;
  std::string error;  // empty when every record applied
};
ReplayResult replay_checked(const std::vector<Record>& records);
ReplayState replay(const std::vector<Record>& records);

// ---------------------------------------------------------------------------------------------
// Loading.

struct LoadResult {
  std::string error;  // "PATH:LINE: message"; empty when the journal loaded
  size_t error_line = 0;
  std::vector<std::string> warnings;  // "PATH:LINE: dropped a torn last record (N bytes) — ..."
  JournalHeader header;
  std::vector<Record> records;
  size_t good_size = 0;  // bytes up to the end of the last whole line (the torn tail starts here)
  size_t file_size = 0;

  bool ok() const { return error.empty(); }
  bool torn() const { return good_size != file_size; }
};

// Reads and checks a journal file. A torn last line (no newline, or not JSON at the very end) is
// dropped with a warning; anything else malformed is an error. Never throws.
LoadResult load_journal(const std::string& path);
// The same over text in memory; `name` stands for the path in messages.
LoadResult parse_journal(std::string_view text, const std::string& name);

// One line of the file, newline included. `scrub` (may be null) replaces secret texts.
class SecretScrubber;
std::string format_header(const JournalHeader& h, const SecretScrubber* scrub = nullptr);
std::string format_record(const Record& r, const SecretScrubber* scrub = nullptr);

// Replaces registered secret texts in free-text strings with "<secret>". Texts shorter than
// kMinLength are ignored: replacing them would garble ordinary words, and Values that hold them are
// redacted by to_json anyway.
class SecretScrubber {
 public:
  static constexpr size_t kMinLength = 4;
  void add(std::string secret);
  std::string scrub(std::string text) const;
  bool contains_secret(std::string_view text) const;
  bool empty() const { return secrets_.empty(); }

 private:
  std::set<std::string> secrets_;
};

// ---------------------------------------------------------------------------------------------
// Writing.

class Journal;
struct JournalOpen {
  std::unique_ptr<Journal> journal;
  std::string error;
  std::vector<std::string> notes;  // things worth telling the user (the torn tail was truncated)
};

class Journal {
 public:
  // Creates <dir>/journal.jsonl holding only the header, atomically (a journal that exists always
  // has a whole header), and durably (file and directory synced). Fails if it exists.
  static JournalOpen create(const std::string& dir, const JournalHeader& header);
  // Reopens a journal that load_journal read successfully: truncates a torn tail, checks that the
  // file has not changed since it was loaded, and continues the seq.
  static JournalOpen open_for_append(const std::string& dir, const LoadResult& loaded);

  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Secrets whose text must never reach the file (values of env(), once evaluated).
  void add_secret(std::string secret);

  // Writes one record as one line with a single write(), then fdatasync; returns when it is on
  // disk. Refuses (writes nothing) a record that cannot follow the ones before (a `completed`
  // without its `started`, ...), and after a write error refuses everything: the file's state is
  // unknown, so the run must stop. Thread-safe.
  std::optional<std::string> append(double at_ms, journal::Event event);

  const ReplayState& state() const { return state_; }  // not to be read while another thread appends
  const JournalHeader& header() const { return header_; }
  const std::string& path() const { return path_; }
  uint64_t last_seq() const { return state_.last_seq; }

 private:
  Journal(int fd, std::string path, JournalHeader header, uint64_t size);

  int fd_ = -1;
  std::string path_;
  JournalHeader header_;
  uint64_t size_ = 0;  // bytes known to be on disk
  ReplayState state_;
  SecretScrubber scrub_;
  std::string broken_;  // set after a write error
  std::mutex mu_;
};

// ---------------------------------------------------------------------------------------------
// Pinning a run to its source and parameters.

// 64-bit FNV-1a, as 16 lowercase hex digits. Stable across platforms and versions.
std::string hash_hex(std::string_view bytes);
// The hash of the parameters as journaled (redacted, keys sorted): rotating a secret does not
// change it.
std::string hash_params(const Map& params);

// Compares a journal's pins with the pipeline and parameters now. Empty when they match;
// otherwise a message saying what changed and that --force resumes anyway.
std::string check_pinned(const JournalHeader& h, std::string_view source_hash, std::string_view params_hash);

// Milliseconds since the Unix epoch as "2024-11-22T02:51:00.123Z", and back (nullopt if the text
// is not exactly that shape).
std::string iso8601_utc(int64_t ms);
std::optional<int64_t> parse_iso8601_utc(std::string_view s);

}  // namespace gray
