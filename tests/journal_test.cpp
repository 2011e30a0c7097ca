// The run journal as a resuming run meets it: what is on disk, what a crash leaves, what every
// kind of corruption says, and what replay hands back.
#include "runtime/journal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;
using namespace gray;
using namespace gray::journal;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    std::string t = (fs::temp_directory_path() / "gray-journal-test-XXXXXX").string();
    REQUIRE(::mkdtemp(t.data()) != nullptr);
    path = t;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string str() const { return path.string(); }
  std::string file() const { return (path / kJournalFileName).string(); }
};

std::string slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

void spit(const std::string& p, const std::string& text) { std::ofstream(p, std::ios::binary | std::ios::trunc) << text; }

JournalHeader header() {
  JournalHeader h;
  h.run = "r1";
  h.pipeline = "pipelines/checkout.gray";
  h.source_hash = hash_hex("pipeline text");
  h.params = {{"version", Value::string("2.4.1")}, {"token", Value::string("hunter2-token", true)}};
  h.params_hash = hash_params(h.params);
  h.started_at = "2024-11-22T02:51:00.000Z";
  h.clock = JournalHeader::Clock::Virtual;
  return h;
}

Call weight_call(double pct) { return Call{"edge", "weight", {{"canary", Value::percent(pct)}}, ""}; }

Started started(const std::string& key, Call c = weight_call(5)) { return Started{key, "traffic/step", std::move(c)}; }

Completed completed(const std::string& key, std::optional<Call> undo = std::nullopt) {
  return Completed{key, Value::number(1), undo};
}

std::unique_ptr<Journal> make(const TempDir& d) {
  JournalOpen o = Journal::create(d.str(), header());
  REQUIRE(o.error == "");
  REQUIRE(o.journal);
  return std::move(o.journal);
}

void ok(std::optional<std::string> e) {
  INFO(e.value_or(""));
  REQUIRE(!e);
}

// A header line and then the given record lines, for corruption tests.
std::string with_header(const std::string& records) { return format_header(header()) + records; }

std::string load_error(const std::string& text) {
  LoadResult r = parse_journal(text, "j");
  CHECK(r.records.empty());
  return r.error;
}

}  // namespace

TEST_CASE("journal: the file is one JSON line per record, in a fixed key order", "[journal]") {
  TempDir d;
  auto j = make(d);
  ok(j->append(0, Phase{"gray"}));
  ok(j->append(1500,
               started("r1:canary/run@v2-a", Call{"fleet", "run", {{"command", Value::string("deploy.sh 2.4.1")}}, "v2-a"})));
  ok(j->append(2500.5, Completed{"r1:canary/run@v2-a", Value::number(0),
                                 Call{"fleet", "run", {{"command", Value::string("deploy.sh 2.4.0")}}, "v2-a"}}));
  ok(j->append(3000, Outcome{Outcome::Kind::RolledBack, "error_rate 3% >= 1%"}));
  j.reset();

  const std::string expected =
      R"({"t":"header","format":"gray-journal","version":1,"run":"r1","pipeline":"pipelines/checkout.gray",)"
      R"("source_hash":")" +
      hash_hex("pipeline text") + R"(","params_hash":")" + hash_params(header().params) +
      R"(","params":{"token":{"secret":true},"version":"2.4.1"},"started_at":"2024-11-22T02:51:00.000Z","clock":"virtual"})"
      "\n"
      R"({"seq":1,"t":"phase","at":0,"name":"gray"})"
      "\n"
      R"({"seq":2,"t":"started","at":1500,"key":"r1:canary/run@v2-a","step":"traffic/step","plugin":"fleet","op":"run",)"
      R"("args":{"command":"deploy.sh 2.4.1"},"host":"v2-a"})"
      "\n"
      R"({"seq":3,"t":"completed","at":2500.5,"key":"r1:canary/run@v2-a","result":0.0,)"
      R"("undo":{"args":{"command":"deploy.sh 2.4.0"},"host":"v2-a","op":"run","plugin":"fleet"}})"
      "\n"
      R"({"seq":4,"t":"outcome","at":3000,"outcome":"rolled-back","reason":"error_rate 3% >= 1%"})"
      "\n";
  CHECK(slurp(d.file()) == expected);
}

TEST_CASE("journal: every record type round-trips through the file", "[journal]") {
  TempDir d;
  std::vector<Event> events = {
      Phase{"gray"},
      Stage{"traffic", Stage::Event::Entered},
      Started{"k1", "traffic/weight",
              Call{"edge",
                   "weight",
                   {{"canary", Value::percent(5)},
                    {"hosts", Value::of_list({Value::named(Value::Kind::Host, "a")}, Value::Kind::Hosts)}},
                   ""}},
      Completed{"k1", Value::of_map({{"ok", Value::boolean(true)}, {"took", Value::duration_ms(1500)}}), weight_call(0)},
      Weights{"edge", 5},
      Guard{"error_rate", Value::percent(0.4), Guard::Verdict::Pass, "traffic"},
      Guard{"p99", Value::null(), Guard::Verdict::Inconclusive, "traffic"},
      Approval{"traffic/approve", Approval::Event::Waiting, "", ""},
      Approval{"traffic/approve", Approval::Event::Answered, "promote", "alice"},
      Started{"k2", "traffic/run", Call{"fleet", "run", {}, "v2-a"}},
      Failed{"k2", "exit status 3", "failed"},
      Undone{"k1"},
      Note{"resumed by bob — \"quoted\" \\ and unicode ✓"},
      Signal{"SIGTERM"},
      Outcome{Outcome::Kind::Paused, "stop requested"},
      Stage{"traffic", Stage::Event::Left},
      Started{"k3", "traffic/step2", weight_call(20), weight_call(5)},  // with its compensation, written ahead
      Rollback{"guard error_rate breached in stage traffic: 2%"},
  };
  {
    auto j = make(d);
    double at = 0;
    for (const Event& e : events) ok(j->append(at += 250, e));
  }
  LoadResult r = load_journal(d.file());
  REQUIRE(r.error == "");
  CHECK(r.warnings.empty());
  CHECK(r.header.run == "r1");
  CHECK(r.header.clock == JournalHeader::Clock::Virtual);
  CHECK(r.header.params.at("version") == Value::string("2.4.1"));
  CHECK(r.header.params.at("token").secret());  // comes back redacted
  CHECK(r.header.params.at("token").str == "<secret>");
  REQUIRE(r.records.size() == events.size());
  double at = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    Record want{i + 1, at += 250, events[i]};
    CHECK(format_record(r.records[i]) == format_record(want));
  }
  // What a resume needs of the last two: the in-flight step's compensation, and the decision.
  ReplayState st = replay(r.records);
  REQUIRE(st.in_flight.size() == 1);
  REQUIRE(st.in_flight[0].started.undo);
  CHECK(st.in_flight[0].started.undo->args.at("canary") == Value::percent(5));
  REQUIRE(st.rollback);
  CHECK(st.rollback->reason == "guard error_rate breached in stage traffic: 2%");
}

TEST_CASE("journal: create refuses an existing journal and leaves no temporary file", "[journal]") {
  TempDir d;
  make(d);
  JournalOpen again = Journal::create(d.str(), header());
  CHECK(!again.journal);
  CHECK(again.error == d.file() + " already exists: this run has a journal (resume it with gray resume)");
  size_t files = 0;
  for (auto& e : fs::directory_iterator(d.path)) files += (void(e), 1);
  CHECK(files == 1);
}

TEST_CASE("journal: a torn last line is dropped at every byte offset, and append truncates it", "[journal]") {
  TempDir d;
  {
    auto j = make(d);
    ok(j->append(10, started("k1")));
    ok(j->append(20, completed("k1", weight_call(0))));
    ok(j->append(30, started("k2", Call{"fleet", "run", {{"command", Value::string("deploy.sh 2.4.1 --mode gray")}}, "v2-a"})));
  }
  const std::string full = slurp(d.file());
  const size_t last_start = full.rfind('\n', full.size() - 2) + 1;
  const size_t last_len = full.size() - last_start;  // includes its newline

  for (size_t k = 0; k <= last_len; ++k) {
    INFO("kept " << k << " of " << last_len << " bytes of the last line");
    const std::string text = full.substr(0, last_start + k);
    LoadResult r = parse_journal(text, "j");
    REQUIRE(r.error == "");
    if (k == last_len) {
      CHECK(r.records.size() == 3);
      CHECK(r.warnings.empty());
      CHECK(!r.torn());
    } else if (k == 0) {
      CHECK(r.records.size() == 2);
      CHECK(r.warnings.empty());
    } else {
      CHECK(r.records.size() == 2);
      REQUIRE(r.warnings.size() == 1);
      CHECK(r.warnings[0] ==
            "j:4: dropped a torn last record (" + std::to_string(k) + " bytes) — the process died while writing it");
      CHECK(r.good_size == last_start);
      CHECK(r.torn());
    }
    // The torn step never started as far as the journal knows: resume runs it.
    CHECK(replay(r.records).is_completed("k1"));
    CHECK(replay(r.records).in_flight.size() == (k == last_len ? 1u : 0u));
  }

  // Reopening for append cuts the torn bytes; the next record reuses the dropped seq.
  spit(d.file(), full.substr(0, last_start + 17));
  LoadResult r = load_journal(d.file());
  REQUIRE(r.ok());
  JournalOpen o = Journal::open_for_append(d.str(), r);
  REQUIRE(o.error == "");
  REQUIRE(o.notes.size() == 1);
  CHECK(o.notes[0] == "truncated " + d.file() + " to its last whole record (dropped 17 bytes)");
  CHECK(fs::file_size(d.file()) == last_start);
  ok(o.journal->append(40, started("k2")));
  o.journal.reset();
  LoadResult again = load_journal(d.file());
  REQUIRE(again.error == "");
  CHECK(again.warnings.empty());
  REQUIRE(again.records.size() == 3);
  CHECK(again.records[2].seq == 3);
}

TEST_CASE("journal: a whole last line that is not JSON is torn too", "[journal]") {
  // What a filesystem can leave after a crash: the start of a record, then zeros.
  std::string bad = "{\"seq\":2,\"t\":\"no" + std::string(3, '\0') + "\n";
  REQUIRE(bad.size() == 20);
  LoadResult r = parse_journal(with_header(R"({"seq":1,"t":"phase","at":0,"name":"gray"})"
                                           "\n" +
                                           bad),
                               "j");
  REQUIRE(r.error == "");
  CHECK(r.records.size() == 1);
  REQUIRE(r.warnings.size() == 1);
  CHECK(r.warnings[0] == "j:3: dropped a torn last record (20 bytes) — the process died while writing it");
}

TEST_CASE("journal: each kind of corruption is an error naming the line", "[journal]") {
  const std::string phase1 = R"({"seq":1,"t":"phase","at":0,"name":"gray"})"
                             "\n";
  const std::string phase2 = R"({"seq":2,"t":"phase","at":0,"name":"gray"})"
                             "\n";

  SECTION("empty file") { CHECK(load_error("") == "j:1: the journal is empty: it has no header line"); }
  SECTION("header cut short") {
    std::string h = format_header(header());
    CHECK(load_error(h.substr(0, 20)) == "j:1: the header line is incomplete (no newline at its end)");
  }
  SECTION("first line not JSON") {
    CHECK(load_error("hello\n") == "j:1: not a gray journal: the first line is not valid JSON (column 1)");
  }
  SECTION("no header: the first line is a record") {
    CHECK(load_error(phase1) == "j:1: not a gray journal: expected the header on line 1, found a \"phase\" record");
  }
  SECTION("not a header at all") {
    CHECK(load_error("{\"hello\":1}\n") == "j:1: not a gray journal: the first line is not a header record");
  }
  SECTION("another format") {
    CHECK(load_error("{\"t\":\"header\",\"format\":\"ninja-log\",\"version\":1}\n") ==
          "j:1: not a gray journal: format \"ninja-log\" (expected \"gray-journal\")");
  }
  SECTION("a newer version") {
    std::string h = format_header(header());
    h.replace(h.find("\"version\":1"), 11, "\"version\":2");
    CHECK(load_error(h + phase1) == "j:1: journal version 2 was written by a newer gray; this gray reads version 1");
  }
  SECTION("an older, unknown version") {
    std::string h = format_header(header());
    h.replace(h.find("\"version\":1"), 11, "\"version\":0");
    CHECK(load_error(h) == "j:1: unsupported journal version 0 (this gray reads version 1)");
  }
  SECTION("header field missing") {
    std::string h = format_header(header());
    h.replace(h.find("\"clock\":\"virtual\""), 17, "\"klock\":\"virtual\"");
    CHECK(load_error(h) == "j:1: header: field \"clock\" is missing");
  }
  SECTION("header clock unknown") {
    std::string h = format_header(header());
    h.replace(h.find("\"clock\":\"virtual\""), 17, "\"clock\":\"sundial\"");
    CHECK(load_error(h) == "j:1: header: field \"clock\" must be virtual or real, found \"sundial\"");
  }
  SECTION("invalid JSON in the middle") {
    CHECK(load_error(with_header("{\"seq\":1,\"t\":\"ph\n" + phase2)) ==
          "j:2: not valid JSON (column 17); only the last line of a journal can be torn, this one is followed by 1 more");
  }
  SECTION("an empty line in the middle") {
    CHECK(load_error(with_header(phase1 + "\n" + phase2)) ==
          "j:3: not valid JSON (column 1); only the last line of a journal can be torn, this one is followed by 1 more");
  }
  SECTION("a duplicated record") {
    CHECK(load_error(with_header(phase1 + phase1)) == "j:3: seq 1 repeats the previous record's seq (a duplicated record)");
  }
  SECTION("records out of order") {
    const std::string phase3 = R"({"seq":3,"t":"phase","at":0,"name":"x"})"
                               "\n";
    CHECK(load_error(with_header(phase1 + phase2 + phase3 + phase2)) == "j:5: seq 2 after seq 3: records out of order");
    CHECK(load_error(with_header(phase1 + phase3 + phase2)) == "j:3: seq 3 after seq 1: records are missing or out of order");
  }
  SECTION("a record missing") {
    const std::string phase3 = R"({"seq":3,"t":"phase","at":0,"name":"x"})"
                               "\n";
    CHECK(load_error(with_header(phase1 + phase3)) == "j:3: seq 3 after seq 1: records are missing or out of order");
  }
  SECTION("the first record is not seq 1") {
    CHECK(load_error(with_header(phase2)) == "j:2: the first record has seq 2, expected 1");
  }
  SECTION("unknown record type") {
    CHECK(load_error(with_header(R"({"seq":1,"t":"teleport","at":0})"
                                 "\n")) == "j:2: unknown record type \"teleport\" (written by a newer gray?)");
  }
  SECTION("a second header") {
    CHECK(load_error(with_header(phase1 + format_header(header()))) == "j:3: a second header record (the header is line 1)");
  }
  SECTION("completed without started") {
    CHECK(load_error(with_header(R"({"seq":1,"t":"completed","at":0,"key":"k","result":null,"undo":null})"
                                 "\n")) == "j:2: \"completed\" for key \"k\" without a preceding \"started\"");
  }
  SECTION("failed without started") {
    CHECK(load_error(with_header(R"({"seq":1,"t":"failed","at":0,"key":"k","message":"m","status":"error"})"
                                 "\n")) == "j:2: \"failed\" for key \"k\" without a preceding \"started\"");
  }
  SECTION("a key completed twice") {
    Record s{1, 0, started("k")}, c{2, 0, completed("k")}, s2{3, 0, started("k")}, c2{4, 0, completed("k")};
    // A second `started` for a completed key is the first thing wrong.
    CHECK(load_error(with_header(format_record(s) + format_record(c) + format_record(s2) + format_record(c2))) ==
          "j:4: \"started\" for key \"k\", which completed on line 3: a side effect would run twice");
    Record c3{3, 0, completed("k")};
    CHECK(load_error(with_header(format_record(s) + format_record(c) + format_record(c3))) ==
          "j:4: key \"k\" completed twice (first on line 3)");
  }
  SECTION("completed after failed, without a new started") {
    Record s{1, 0, started("k")}, f{2, 0, Failed{"k", "boom", "error"}}, c{3, 0, completed("k")};
    CHECK(load_error(with_header(format_record(s) + format_record(f) + format_record(c))) ==
          "j:4: \"completed\" for key \"k\" after it failed, without a new \"started\"");
  }
  SECTION("undone for a step without an undo") {
    Record s{1, 0, started("k")}, c{2, 0, completed("k")}, u{3, 0, Undone{"k"}};
    CHECK(load_error(with_header(format_record(s) + format_record(c) + format_record(u))) ==
          "j:4: \"undone\" for key \"k\", whose step has no undo");
  }
  SECTION("undone twice") {
    Record s{1, 0, started("k")}, c{2, 0, completed("k", weight_call(0))}, u{3, 0, Undone{"k"}}, u2{4, 0, Undone{"k"}};
    CHECK(load_error(with_header(format_record(s) + format_record(c) + format_record(u) + format_record(u2))) ==
          "j:5: key \"k\" undone twice");
  }
  SECTION("missing required field") {
    CHECK(load_error(with_header(R"({"seq":1,"t":"started","at":0,"step":"s","plugin":"p","op":"o","args":{},"host":""})"
                                 "\n")) == "j:2: \"started\" record: field \"key\" is missing");
  }
  SECTION("missing seq") {
    CHECK(load_error(with_header(R"({"t":"phase","at":0,"name":"gray"})"
                                 "\n")) == "j:2: \"phase\" record: field \"seq\" is missing");
  }
  SECTION("field of the wrong type") {
    CHECK(load_error(with_header(R"({"seq":1,"t":"phase","at":0,"name":7})"
                                 "\n")) == "j:2: \"phase\" record: field \"name\" must be a string, found a number");
    CHECK(load_error(with_header(R"({"seq":1,"t":"phase","at":-5,"name":"x"})"
                                 "\n")) == "j:2: \"phase\" record: field \"at\" must be a time in milliseconds, 0 or more");
    CHECK(load_error(with_header(R"({"seq":-1,"t":"phase","at":0,"name":"x"})"
                                 "\n")) == "j:2: \"phase\" record: field \"seq\" must be a positive integer, found a number");
  }
  SECTION("an enum out of range") {
    CHECK(load_error(with_header(R"({"seq":1,"t":"guard","at":0,"guard":"g","value":null,"verdict":"maybe","stage":"s"})"
                                 "\n")) ==
          "j:2: \"guard\" record: field \"verdict\" must be pass, fail, inconclusive or error, found \"maybe\"");
  }
  SECTION("a value gray never writes") {
    CHECK(load_error(with_header(R"({"seq":1,"t":"guard","at":0,"guard":"g","value":{"a":1,"b":2},"verdict":"pass","stage":"s"})"
                                 "\n")) ==
          "j:2: \"guard\" record: field \"value\" is not a value gray writes: {\"a\":1,\"b\":2}");
    CHECK(
        load_error(with_header(R"({"seq":1,"t":"guard","at":0,"guard":"g","value":{"secret":false},"verdict":"pass","stage":"s"})"
                               "\n")) == "j:2: \"guard\" record: field \"value\" is not a value gray writes: {\"secret\":false}");
  }
  SECTION("a malformed undo") {
    Record s{1, 0, started("k")};
    CHECK(load_error(with_header(format_record(s) +
                                 R"({"seq":2,"t":"completed","at":0,"key":"k","result":null,"undo":{"op":"x"}})"
                                 "\n")) == "j:3: \"completed\" record: field \"undo\": field \"plugin\" is missing");
  }
  SECTION("a weight out of range") {
    CHECK(load_error(with_header(R"({"seq":1,"t":"weights","at":0,"gateway":"edge","canary":140})"
                                 "\n")) == "j:2: canary weight must be between 0 and 100 (found 140)");
  }
  SECTION("a lost newline at the end is corruption, not a tear") {
    const std::string two = phase1.substr(0, phase1.size() - 1) + phase2;  // records 1 and 2 on one line
    CHECK(load_error(with_header(two)) == "j:2: a record and more on one line (84 bytes): a lost newline, not a torn write");
    CHECK(load_error(with_header(two.substr(0, two.size() - 5))) ==
          "j:2: a record and more on one line (80 bytes): a lost newline, not a torn write");
  }
  SECTION("not an object") {
    CHECK(load_error(with_header("[1,2]\n" + phase1)) == "j:2: expected a record (a JSON object), found an array");
  }
  SECTION("absurd nesting") {
    CHECK(load_error(with_header(std::string(100, '[') + std::string(100, ']') + "\n" + phase1)) ==
          "j:2: nested more than 64 levels deep; only the last line of a journal can be torn, this one is followed by 1 more");
  }
}

TEST_CASE("journal: a missing file is an error, not a crash", "[journal]") {
  LoadResult r = load_journal("/nonexistent/journal.jsonl");
  CHECK(r.error == "/nonexistent/journal.jsonl: cannot read the journal: No such file or directory");
}

TEST_CASE("journal: append refuses a record that cannot follow, and writes nothing", "[journal]") {
  TempDir d;
  auto j = make(d);
  const auto before = fs::file_size(d.file());
  CHECK(j->append(0, completed("k")) ==
        "refusing to journal completed: \"completed\" for key \"k\" without a preceding \"started\"");
  CHECK(j->append(0, Weights{"edge", std::nan("")}) ==
        "refusing to journal weights: canary weight must be between 0 and 100 (found null)");
  CHECK(j->append(-1, Phase{"x"}) == "refusing to journal phase: \"at\" must be a time in milliseconds, 0 or more");
  CHECK(j->append(0, Undone{""}) == "refusing to journal undone: \"undone\" record with an empty key");
  CHECK(fs::file_size(d.file()) == before);
  ok(j->append(0, started("k")));
  ok(j->append(0, completed("k")));
  CHECK(j->append(0, started("k")) ==
        "refusing to journal started: \"started\" for key \"k\", which completed on line 3: a side effect would run twice");
  CHECK(j->last_seq() == 2);
}

TEST_CASE("journal: secrets never reach the file", "[journal]") {
  TempDir d;
  auto j = make(d);
  j->add_secret("s3cr3t-value");
  j->add_secret("abc");  // too short to scrub from free text
  ok(j->append(0, Started{"k", "deploy/run",
                          Call{"fleet",
                               "run",
                               {{"token", Value::string("s3cr3t-value", true)}, {"cmd", Value::string("curl -H s3cr3t-value")}},
                               "h"}}));
  ok(j->append(0, Failed{"k", "curl -H s3cr3t-value: exit 7 (abc)", "failed"}));
  ok(j->append(0, Note{"token was s3cr3t-value"}));
  CHECK(j->append(0, started("key-with-s3cr3t-value")) == "refusing to journal a key that contains a secret");
  j.reset();
  const std::string text = slurp(d.file());
  CHECK(text.find("s3cr3t-value") == std::string::npos);
  CHECK(text.find("hunter2") == std::string::npos);  // the secret parameter in the header
  CHECK(text.find(R"("token":{"secret":true})") != std::string::npos);
  CHECK(text.find(R"("cmd":"curl -H <secret>")") != std::string::npos);
  CHECK(text.find(R"x("message":"curl -H <secret>: exit 7 (abc)")x") != std::string::npos);
}

TEST_CASE("journal: replay hands back what a resumed run needs", "[journal][replay]") {
  std::vector<Record> rs;
  auto add = [&](double at, Event e) { rs.push_back(Record{rs.size() + 1, at, std::move(e)}); };

  SECTION("a step in flight") {
    add(100, Phase{"gray"});
    add(200, Stage{"canary", Stage::Event::Entered});
    add(300, started("a"));
    add(400, completed("a"));
    add(500, started("b"));
    ReplayState s = replay(rs);
    CHECK(s.is_completed("a"));
    CHECK(!s.is_completed("b"));
    REQUIRE(s.in_flight.size() == 1);
    CHECK(s.in_flight[0].started.key == "b");
    CHECK(s.in_flight[0].started_at_ms == 500);
    CHECK(s.completed.at("a").started_at_ms == 300);
    CHECK(s.completed.at("a").at_ms == 400);
    CHECK(s.phase == "gray");
    REQUIRE(s.stage);
    CHECK(s.stage->name == "canary");
    CHECK(!s.stage->left);
    CHECK(s.last_at_ms == 500);
    CHECK(s.last_seq == 5);
    CHECK(!s.outcome);

    // Re-entered after a restart: the step is still in flight, and keeps its first start time (a
    // resumed hold keeps its remaining time).
    add(900, started("b"));
    s = replay(rs);
    REQUIRE(s.in_flight.size() == 1);
    CHECK(s.in_flight[0].started_at_ms == 500);
    CHECK(s.in_flight_step("b") != nullptr);
  }

  SECTION("parallel steps in flight") {
    add(0, started("x@h1"));
    add(0, started("x@h2"));
    add(0, completed("x@h1"));
    add(0, started("x@h3"));
    ReplayState s = replay(rs);
    REQUIRE(s.in_flight.size() == 2);
    CHECK(s.in_flight[0].started.key == "x@h2");
    CHECK(s.in_flight[1].started.key == "x@h3");
  }

  SECTION("a failure, then a retry") {
    add(0, started("a"));
    add(0, Failed{"a", "exit 1", "failed"});
    ReplayState s = replay(rs);
    CHECK(s.failed.count("a") == 1);
    CHECK(s.in_flight.empty());
    add(0, started("a"));
    s = replay(rs);
    CHECK(s.failed.count("a") == 0);
    CHECK(s.in_flight.size() == 1);
  }

  SECTION("the undo stack, minus what was undone") {
    add(0, started("a"));
    add(0, completed("a", weight_call(0)));
    add(0, started("b"));
    add(0, completed("b"));  // no undo: not on the stack
    add(0, started("c"));
    add(0, completed("c", Call{"fleet", "run", {{"command", Value::string("deploy.sh 2.4.0")}}, "v2-a"}));
    add(0, started("d"));
    add(0, completed("d", weight_call(5)));
    add(0, Undone{"d"});
    ReplayState s = replay(rs);
    REQUIRE(s.undo_stack.size() == 2);
    CHECK(s.undo_stack[0].key == "a");
    CHECK(s.undo_stack[1].key == "c");
    CHECK(s.undo_stack[1].undo.host == "v2-a");
    CHECK(s.undo_stack[1].undo.args.at("command") == Value::string("deploy.sh 2.4.0"));
    CHECK(s.undone.count("d") == 1);
  }

  SECTION("weights, guards, approvals and the outcome") {
    add(10, Weights{"edge", 5});
    add(20, Guard{"error_rate", Value::percent(0.2), Guard::Verdict::Pass, "traffic"});
    add(30, Weights{"edge", 20});
    add(40, Guard{"error_rate", Value::null(), Guard::Verdict::Inconclusive, "traffic"});
    add(50, Guard{"error_rate", Value::percent(3), Guard::Verdict::Fail, "traffic"});
    add(60, Weights{"other", 50});
    add(70, Approval{"gate", Approval::Event::Waiting, "", ""});
    add(80, Signal{"SIGTERM"});
    add(90, Outcome{Outcome::Kind::Paused, "stopped by SIGTERM"});
    add(95, Note{"bye"});
    ReplayState s = replay(rs);
    CHECK(s.weights.at("edge").canary == 20);
    CHECK(s.weights.at("edge").at_ms == 30);
    CHECK(s.weights.at("other").canary == 50);
    REQUIRE(s.guards.at("error_rate").size() == 3);
    CHECK(s.guards.at("error_rate")[1].verdict == Guard::Verdict::Inconclusive);
    CHECK(s.guards.at("error_rate")[2].value == Value::percent(3));
    CHECK(!s.approvals.at("gate").answered);
    CHECK(s.approvals.at("gate").waiting_since_ms == 70);
    REQUIRE(s.outcome);
    CHECK(s.outcome->kind == Outcome::Kind::Paused);
    REQUIRE(s.stop);
    CHECK(s.stop->name == "SIGTERM");
    CHECK(s.last_at_ms == 95);

    // The run resumed: the old outcome and stop no longer describe it.
    add(100, Approval{"gate", Approval::Event::Answered, "promote", "alice"});
    s = replay(rs);
    CHECK(!s.outcome);
    CHECK(!s.stop);
    CHECK(s.approvals.at("gate").answered);
    CHECK(s.approvals.at("gate").answer == "promote");
    CHECK(s.approvals.at("gate").who == "alice");
    CHECK(s.approvals.at("gate").waiting_since_ms == 70);
  }

  SECTION("a sequence that cannot be replayed says where") {
    add(0, started("a"));
    add(0, completed("a"));
    add(0, completed("a"));
    ReplayResult r = replay_checked(rs);
    CHECK(r.error == "seq 3: key \"a\" completed twice (first on line 3)");
    CHECK(r.state.last_seq == 2);
  }
}

TEST_CASE("journal: the live state matches a replay of the file", "[journal][replay]") {
  TempDir d;
  auto j = make(d);
  ok(j->append(1, started("a")));
  ok(j->append(2, completed("a", weight_call(0))));
  ok(j->append(3, started("b")));
  CHECK(j->state().undo_stack.size() == 1);
  CHECK(j->state().in_flight.size() == 1);
  j.reset();
  LoadResult r = load_journal(d.file());
  REQUIRE(r.ok());
  ReplayState s = replay(r.records);
  CHECK(s.undo_stack.size() == 1);
  CHECK(s.in_flight.size() == 1);
  JournalOpen o = Journal::open_for_append(d.str(), r);
  REQUIRE(o.journal);
  CHECK(o.journal->state().in_flight.size() == 1);
  ok(o.journal->append(4, completed("b")));
  CHECK(o.journal->last_seq() == 4);
}

TEST_CASE("journal: reopening checks the file is the one loaded and not in use", "[journal]") {
  TempDir d;
  make(d);
  LoadResult r = load_journal(d.file());
  REQUIRE(r.ok());
  SECTION("a second writer") {
    JournalOpen a = Journal::open_for_append(d.str(), r);
    REQUIRE(a.journal);
    JournalOpen b = Journal::open_for_append(d.str(), r);
    CHECK(!b.journal);
    CHECK(b.error == d.file() + ": another gray process has this journal open for writing");
  }
  SECTION("changed since loaded") {
    {
      JournalOpen a = Journal::open_for_append(d.str(), r);
      ok(a.journal->append(0, Note{"x"}));
    }
    JournalOpen b = Journal::open_for_append(d.str(), r);
    CHECK(!b.journal);
    CHECK(b.error.find(" changed since it was loaded (") != std::string::npos);
  }
  SECTION("a journal that did not load") {
    LoadResult bad = parse_journal("", "j");
    JournalOpen b = Journal::open_for_append(d.str(), bad);
    CHECK(b.error == "cannot append to a journal that did not load: j:1: the journal is empty: it has no header line");
  }
}

TEST_CASE("journal: a write error stops all further appends", "[journal]") {
  if (::access("/dev/full", W_OK) != 0) return;
  TempDir d;
  auto j = make(d);
  // Point the journal's descriptor at /dev/full: the next write fails with ENOSPC.
  int full = ::open("/dev/full", O_WRONLY);
  REQUIRE(full >= 0);
  struct stat want, st;
  REQUIRE(::stat(d.file().c_str(), &want) == 0);
  int fd = -1;
  for (int i = 3; i < 1024 && fd < 0; ++i)
    if (i != full && ::fstat(i, &st) == 0 && st.st_dev == want.st_dev && st.st_ino == want.st_ino) fd = i;
  REQUIRE(fd >= 0);
  REQUIRE(::dup2(full, fd) == fd);
  ::close(full);
  auto e = j->append(0, Note{"x"});
  REQUIRE(e);
  CHECK(e->find("writing " + d.file() + " failed: No space left on device; the run must stop") == 0);
  CHECK(j->append(0, Note{"y"})->find("the journal is unusable after an earlier write error") == 0);
}

TEST_CASE("journal: pinning to the source and parameters", "[journal][pin]") {
  CHECK(hash_hex("") == "cbf29ce484222325");
  CHECK(hash_hex("a") == "af63dc4c8601ec8c");
  CHECK(hash_hex("foobar") == "85944171f73967e8");

  Map p = {{"version", Value::string("2.4.1")}, {"token", Value::string("one", true)}};
  Map q = {{"token", Value::string("two", true)}, {"version", Value::string("2.4.1")}};
  CHECK(hash_params(p) == hash_params(q));  // rotating a secret is not a change
  q["version"] = Value::string("2.4.2");
  CHECK(hash_params(p) != hash_params(q));

  JournalHeader h = header();
  CHECK(check_pinned(h, h.source_hash, h.params_hash) == "");
  CHECK(check_pinned(h, "0000000000000000", h.params_hash) ==
        "the pipeline source changed since run r1 started (source " + h.source_hash +
            " then, 0000000000000000 now); the journal's steps may not match the pipeline any more. Resume with the original "
            "pipeline, or pass --force to resume anyway");
  CHECK(check_pinned(h, h.source_hash, "1111111111111111") ==
        "the run parameters changed since run r1 started (parameters " + h.params_hash +
            " then, 1111111111111111 now); the journal's steps may not match the pipeline any more. Resume with the original "
            "parameters, or pass --force to resume anyway");
  CHECK(check_pinned(h, "0000000000000000", "1111111111111111").find("the pipeline source and the run parameters changed") == 0);
}

TEST_CASE("journal: ISO 8601 times", "[journal]") {
  CHECK(iso8601_utc(0) == "1970-01-01T00:00:00.000Z");
  CHECK(iso8601_utc(1732243860123) == "2024-11-22T02:51:00.123Z");
  CHECK(iso8601_utc(-1) == "1969-12-31T23:59:59.999Z");
  CHECK(parse_iso8601_utc("2024-11-22T02:51:00.123Z") == 1732243860123);
  CHECK(parse_iso8601_utc("2024-11-22T02:51:00Z") == 1732243860000);
  CHECK(!parse_iso8601_utc("2024-02-30T00:00:00Z"));
  CHECK(!parse_iso8601_utc("2024-11-22 02:51:00Z"));
  CHECK(!parse_iso8601_utc("2024-11-22T02:51:00.12Z"));
  CHECK(!parse_iso8601_utc("2024-11-22T02:51:00.123"));
  CHECK(!parse_iso8601_utc(""));
}
