#include "runtime/journal.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iterator>
#include <limits>
#include <nlohmann/json.hpp>

namespace gray {

using json = nlohmann::json;

// ---------------------------------------------------------------------------------------------
// Names.

namespace journal {

namespace {
const char* const kTypes[] = {"started", "completed", "failed",  "guard", "phase",  "stage",   "weights",
                              "undone",  "approval",  "outcome", "note",  "signal", "rollback"};
static_assert(std::size(kTypes) == std::variant_size_v<Event>);
const char* const kVerdicts[] = {"pass", "fail", "inconclusive", "error"};
const char* const kStageEvents[] = {"entered", "left"};
const char* const kApprovalEvents[] = {"waiting", "answered"};
const char* const kOutcomes[] = {"promoted", "rolled-back", "aborted", "failed", "paused", "needs-attention", "stopped"};
}  // namespace

const char* type_name(const Event& e) { return kTypes[e.index()]; }
const char* verdict_name(Guard::Verdict v) { return kVerdicts[static_cast<int>(v)]; }
const char* stage_event_name(Stage::Event e) { return kStageEvents[static_cast<int>(e)]; }
const char* approval_event_name(Approval::Event e) { return kApprovalEvents[static_cast<int>(e)]; }
const char* outcome_name(Outcome::Kind k) { return kOutcomes[static_cast<int>(k)]; }

}  // namespace journal

namespace {

std::string json_quote(std::string_view s) { return json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace); }

std::string errno_text(int e) { return std::strerror(e); }

// Whole numbers as integers ("1500", not nlohmann's "1500.0"); others in the shortest exact form.
std::string number_text(double v) {
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 9007199254740992.0)
    return std::to_string(static_cast<long long>(v));
  return json(v).dump();
}

// ---------------------------------------------------------------------------------------------
// Writing lines. Keys are written in a fixed order (seq, t, at first) so the file reads well.

void scrub_json(json& j, const SecretScrubber& s) {
  if (j.is_string()) {
    j = s.scrub(j.get<std::string>());
  } else if (j.is_structured()) {
    for (auto& v : j) scrub_json(v, s);
  }
}

class LineWriter {
 public:
  explicit LineWriter(const SecretScrubber* scrub) : scrub_(scrub && !scrub->empty() ? scrub : nullptr) {}

  void raw(const char* name, std::string_view text) {
    out_ += out_.size() > 1 ? ",\"" : "\"";
    out_ += name;
    out_ += "\":";
    out_ += text;
  }
  // Free text, scrubbed of secrets.
  void str(const char* name, const std::string& v) { raw(name, json_quote(scrub_ ? scrub_->scrub(v) : v)); }
  // Keys are matched on resume, so they are written exactly (Journal::append refuses a key that
  // holds a secret).
  void key(const std::string& v) { raw("key", json_quote(v)); }
  void j(const char* name, json v) {
    if (scrub_) scrub_json(v, *scrub_);
    raw(name, v.dump(-1, ' ', false, json::error_handler_t::replace));
  }
  void value(const char* name, const Value& v) { j(name, to_json(v)); }
  void args(const char* name, const Map& m) { j(name, map_json(m)); }
  void call(const char* name, const journal::Call& c) { j(name, call_json(c)); }
  std::string done() { return out_ + "}\n"; }

  static json map_json(const Map& m) {
    json o = json::object();
    for (const auto& [k, v] : m) o[k] = to_json(v);
    return o;
  }
  static json call_json(const journal::Call& c) {
    // nlohmann's object sorts its keys; that is fine inside a field.
    return json{{"plugin", c.plugin}, {"op", c.op}, {"args", map_json(c.args)}, {"host", c.host}};
  }

 private:
  const SecretScrubber* scrub_;
  std::string out_ = "{";
};

}  // namespace

std::string format_header(const JournalHeader& h, const SecretScrubber* scrub) {
  LineWriter w(scrub);
  w.raw("t", "\"header\"");
  w.raw("format", json_quote(kJournalFormat));
  w.raw("version", std::to_string(kJournalVersion));
  w.str("run", h.run);
  w.str("pipeline", h.pipeline);
  w.str("source_hash", h.source_hash);
  w.str("params_hash", h.params_hash);
  w.args("params", h.params);
  w.str("started_at", h.started_at);
  w.raw("clock", h.clock == JournalHeader::Clock::Virtual ? "\"virtual\"" : "\"real\"");
  return w.done();
}

std::string format_record(const Record& r, const SecretScrubber* scrub) {
  using namespace journal;
  LineWriter w(scrub);
  w.raw("seq", std::to_string(r.seq));
  w.raw("t", json_quote(type_name(r.event)));
  w.raw("at", number_text(r.at_ms));
  if (auto* e = std::get_if<Started>(&r.event)) {
    w.key(e->key);
    w.str("step", e->step);
    w.str("plugin", e->call.plugin);
    w.str("op", e->call.op);
    w.args("args", e->call.args);
    w.str("host", e->call.host);
    if (e->undo) w.call("undo", *e->undo);
  } else if (auto* e = std::get_if<Completed>(&r.event)) {
    w.key(e->key);
    w.value("result", e->result);
    if (e->undo)
      w.call("undo", *e->undo);
    else
      w.raw("undo", "null");
  } else if (auto* e = std::get_if<Failed>(&r.event)) {
    w.key(e->key);
    w.str("message", e->message);
    w.str("status", e->status);
  } else if (auto* e = std::get_if<Guard>(&r.event)) {
    w.str("guard", e->guard);
    w.value("value", e->value);
    w.raw("verdict", json_quote(verdict_name(e->verdict)));
    w.str("stage", e->stage);
  } else if (auto* e = std::get_if<Phase>(&r.event)) {
    w.str("name", e->name);
  } else if (auto* e = std::get_if<Stage>(&r.event)) {
    w.str("name", e->name);
    w.raw("event", json_quote(stage_event_name(e->event)));
  } else if (auto* e = std::get_if<Weights>(&r.event)) {
    w.str("gateway", e->gateway);
    w.raw("canary", number_text(e->canary));
  } else if (auto* e = std::get_if<Undone>(&r.event)) {
    w.key(e->key);
  } else if (auto* e = std::get_if<Approval>(&r.event)) {
    w.str("gate", e->gate);
    w.raw("event", json_quote(approval_event_name(e->event)));
    w.str("answer", e->answer);
    w.str("who", e->who);
  } else if (auto* e = std::get_if<Outcome>(&r.event)) {
    w.raw("outcome", json_quote(outcome_name(e->kind)));
    w.str("reason", e->reason);
  } else if (auto* e = std::get_if<Note>(&r.event)) {
    w.str("text", e->text);
  } else if (auto* e = std::get_if<Signal>(&r.event)) {
    w.str("signal", e->name);
  } else if (auto* e = std::get_if<Rollback>(&r.event)) {
    w.str("reason", e->reason);
  }
  return w.done();
}

// ---------------------------------------------------------------------------------------------
// Secrets.

void SecretScrubber::add(std::string secret) {
  if (secret.size() >= kMinLength) secrets_.insert(std::move(secret));
}

std::string SecretScrubber::scrub(std::string text) const {
  // Longest first, so a secret that contains another is replaced whole.
  std::vector<const std::string*> order;
  for (const std::string& s : secrets_) order.push_back(&s);
  std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->size() > b->size(); });
  for (const std::string* s : order) {
    for (size_t at = text.find(*s); at != std::string::npos; at = text.find(*s, at + 8)) text.replace(at, s->size(), "<secret>");
  }
  return text;
}

bool SecretScrubber::contains_secret(std::string_view text) const {
  for (const std::string& s : secrets_)
    if (text.find(s) != std::string_view::npos) return true;
  return false;
}

// ---------------------------------------------------------------------------------------------
// Replay.

const ReplayState::Flying* ReplayState::in_flight_step(const std::string& key) const {
  for (const Flying& f : in_flight)
    if (f.started.key == key) return &f;
  return nullptr;
}

namespace {

std::string line_of(uint64_t seq) { return "line " + std::to_string(seq + 1); }

// Checks that a record can follow the state; empty when it can.
std::string refuse(const ReplayState& st, const Record& r) {
  using namespace journal;
  const std::string type = type_name(r.event);
  if (st.last_seq == 0 && r.seq != 1) return "the first record has seq " + std::to_string(r.seq) + ", expected 1";
  if (r.seq == st.last_seq) return "seq " + std::to_string(r.seq) + " repeats the previous record's seq (a duplicated record)";
  if (r.seq < st.last_seq)
    return "seq " + std::to_string(r.seq) + " after seq " + std::to_string(st.last_seq) + ": records out of order";
  if (r.seq != st.last_seq + 1)
    return "seq " + std::to_string(r.seq) + " after seq " + std::to_string(st.last_seq) + ": records are missing or out of order";
  if (!std::isfinite(r.at_ms) || r.at_ms < 0) return "\"at\" must be a time in milliseconds, 0 or more";

  const std::string* key = nullptr;
  if (auto* e = std::get_if<Started>(&r.event)) key = &e->key;
  if (auto* e = std::get_if<Completed>(&r.event)) key = &e->key;
  if (auto* e = std::get_if<Failed>(&r.event)) key = &e->key;
  if (auto* e = std::get_if<Undone>(&r.event)) key = &e->key;
  if (key && key->empty()) return "\"" + type + "\" record with an empty key";

  if (key) {
    auto done = st.completed.find(*key);
    const bool flying = st.in_flight_step(*key) != nullptr;
    const std::string k = json_quote(*key);
    if (std::holds_alternative<Started>(r.event)) {
      if (done != st.completed.end())
        return "\"started\" for key " + k + ", which completed on " + line_of(done->second.seq) +
               ": a side effect would run twice";
    } else if (std::holds_alternative<Completed>(r.event)) {
      if (done != st.completed.end()) return "key " + k + " completed twice (first on " + line_of(done->second.seq) + ")";
      if (st.failed.count(*key)) return "\"completed\" for key " + k + " after it failed, without a new \"started\"";
      if (!flying) return "\"completed\" for key " + k + " without a preceding \"started\"";
    } else if (std::holds_alternative<Failed>(r.event)) {
      if (done != st.completed.end()) return "\"failed\" for key " + k + ", which completed on " + line_of(done->second.seq);
      if (st.failed.count(*key)) return "key " + k + " failed twice without a new \"started\"";
      if (!flying) return "\"failed\" for key " + k + " without a preceding \"started\"";
    } else {  // Undone
      if (done == st.completed.end()) return "\"undone\" for key " + k + ", which has not completed";
      if (!done->second.undo) return "\"undone\" for key " + k + ", whose step has no undo";
      if (st.undone.count(*key)) return "key " + k + " undone twice";
    }
  }
  if (auto* e = std::get_if<Weights>(&r.event)) {
    if (!std::isfinite(e->canary) || e->canary < 0 || e->canary > 100)
      return "canary weight must be between 0 and 100 (found " + number_text(e->canary) + ")";
  }
  return "";
}

}  // namespace

std::optional<std::string> ReplayState::apply(const Record& r) {
  using namespace journal;
  if (std::string why = refuse(*this, r); !why.empty()) return why;
  last_seq = r.seq;
  last_at_ms = std::max(last_at_ms, r.at_ms);
  // Anything but a note, signal or outcome after an outcome means the run went on (resumed).
  const bool quiet = std::holds_alternative<Outcome>(r.event) || std::holds_alternative<Signal>(r.event) ||
                     std::holds_alternative<Note>(r.event);
  if (!quiet) {
    outcome.reset();
    stop.reset();
  }

  if (auto* e = std::get_if<Started>(&r.event)) {
    failed.erase(e->key);
    bool again = false;
    for (Flying& f : in_flight)
      if (f.started.key == e->key) f.started = *e, again = true;  // re-entered after a restart
    if (!again) in_flight.push_back({*e, r.at_ms});
  } else if (auto* e = std::get_if<Completed>(&r.event)) {
    auto it = std::find_if(in_flight.begin(), in_flight.end(), [&](const Flying& f) { return f.started.key == e->key; });
    Done d{it->started.step, e->result, e->undo, r.seq, it->started_at_ms, r.at_ms};
    if (e->undo) undo_stack.push_back({e->key, it->started.step, *e->undo});
    in_flight.erase(it);
    completed.emplace(e->key, std::move(d));
  } else if (auto* e = std::get_if<Failed>(&r.event)) {
    in_flight.erase(std::find_if(in_flight.begin(), in_flight.end(), [&](const Flying& f) { return f.started.key == e->key; }));
    failed[e->key] = *e;
  } else if (auto* e = std::get_if<Guard>(&r.event)) {
    guards[e->guard].push_back({e->verdict, e->value, e->stage, r.seq, r.at_ms});
  } else if (auto* e = std::get_if<Phase>(&r.event)) {
    phase = e->name;
  } else if (auto* e = std::get_if<Stage>(&r.event)) {
    if (e->event == Stage::Event::Entered)
      stage = StageState{e->name, r.at_ms, false};
    else if (stage && stage->name == e->name)
      stage->left = true;
  } else if (auto* e = std::get_if<Weights>(&r.event)) {
    weights[e->gateway] = {e->canary, r.at_ms};
  } else if (auto* e = std::get_if<Undone>(&r.event)) {
    undone.insert(e->key);
    undo_stack.erase(std::remove_if(undo_stack.begin(), undo_stack.end(), [&](const UndoEntry& u) { return u.key == e->key; }),
                     undo_stack.end());
  } else if (auto* e = std::get_if<Approval>(&r.event)) {
    ApprovalState& a = approvals[e->gate];
    if (e->event == Approval::Event::Waiting) {
      a = ApprovalState{false, "", "", r.at_ms};
    } else {
      a.answered = true;
      a.answer = e->answer;
      a.who = e->who;
    }
  } else if (auto* e = std::get_if<Outcome>(&r.event)) {
    outcome = *e;
  } else if (auto* e = std::get_if<Signal>(&r.event)) {
    stop = *e;
  } else if (auto* e = std::get_if<Rollback>(&r.event)) {
    rollback = *e;
  }
  return std::nullopt;
}

ReplayResult replay_checked(const std::vector<Record>& records) {
  ReplayResult out;
  for (const Record& r : records) {
    if (auto why = out.state.apply(r)) {
      out.error = "seq " + std::to_string(r.seq) + ": " + *why;
      break;
    }
  }
  return out;
}

ReplayState replay(const std::vector<Record>& records) { return replay_checked(records).state; }

// ---------------------------------------------------------------------------------------------
// Reading.

namespace {

const char* json_kind(const json& j) {
  switch (j.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::object:
      return "an object";
    case json::value_t::array:
      return "an array";
    case json::value_t::string:
      return "a string";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
      return "a number";
    default:
      return "something else";
  }
}

// nlohmann's parser recurses; refuse absurd nesting before it sees the line.
constexpr int kMaxDepth = 64;
bool too_deep(std::string_view line) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxDepth) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

// Parses one line; on failure says why in `why`.
bool parse_line(std::string_view line, json& out, std::string& why) {
  if (too_deep(line)) {
    why = "nested more than " + std::to_string(kMaxDepth) + " levels deep";
    return false;
  }
  try {
    out = json::parse(line.begin(), line.end());
    return true;
  } catch (const json::parse_error& e) {
    why = "not valid JSON (column " + std::to_string(e.byte) + ")";
  } catch (const std::exception& e) {
    why = "not valid JSON";
  }
  return false;
}

// Does the line begin with a whole JSON value (whatever follows it)? A torn write leaves a prefix of
// a record, never a record with more after it: that is a lost newline, and corruption.
bool starts_with_value(std::string_view line) {
  struct Accept : nlohmann::json_sax<json> {
    bool null() override { return true; }
    bool boolean(bool) override { return true; }
    bool number_integer(number_integer_t) override { return true; }
    bool number_unsigned(number_unsigned_t) override { return true; }
    bool number_float(number_float_t, const string_t&) override { return true; }
    bool string(string_t&) override { return true; }
    bool binary(binary_t&) override { return true; }
    bool start_object(std::size_t) override { return true; }
    bool key(string_t&) override { return true; }
    bool end_object() override { return true; }
    bool start_array(std::size_t) override { return true; }
    bool end_array() override { return true; }
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }
  } accept;
  if (too_deep(line)) return false;
  return json::sax_parse(line.begin(), line.end(), &accept, json::input_format_t::json, /*strict=*/false);
}

// Reads the fields of one record or header; the first problem wins.
class Fields {
 public:
  Fields(const json& j, std::string what) : j_(j), what_(std::move(what)) {}

  const std::string& error() const { return error_; }
  bool ok() const { return error_.empty(); }

  bool has(const char* name) const { return j_.contains(name); }
  const json* get(const char* name) {
    if (!ok()) return nullptr;
    auto it = j_.find(name);
    if (it == j_.end()) {
      fail(std::string("field \"") + name + "\" is missing");
      return nullptr;
    }
    return &*it;
  }
  void str(const char* name, std::string& out) {
    if (const json* v = get(name)) {
      if (v->is_string())
        out = v->get<std::string>();
      else
        fail(std::string("field \"") + name + "\" must be a string, found " + json_kind(*v));
    }
  }
  void value(const char* name, Value& out) {
    if (const json* v = get(name)) {
      if (!value_of(*v, out)) fail(std::string("field \"") + name + "\" is not a value gray writes: " + clip(*v));
    }
  }
  void args(const char* name, Map& out) {
    if (const json* v = get(name)) args_of(name, *v, out);
  }
  void call(const char* name, std::optional<journal::Call>& out, bool nullable) {
    const json* v = get(name);
    if (!v) return;
    if (v->is_null() && nullable) {
      out.reset();
      return;
    }
    if (!v->is_object()) {
      fail(std::string("field \"") + name + "\" must be " + (nullable ? "null or " : "") + "an object, found " + json_kind(*v));
      return;
    }
    Fields c(*v, "");
    journal::Call call;
    c.str("plugin", call.plugin);
    c.str("op", call.op);
    c.args("args", call.args);
    c.str("host", call.host);
    if (!c.ok()) return fail(std::string("field \"") + name + "\": " + c.error());
    out = std::move(call);
  }
  template <class E, size_t N>
  void choice(const char* name, const char* const (&names)[N], E& out) {
    std::string s;
    str(name, s);
    if (!ok()) return;
    for (size_t i = 0; i < N; ++i)
      if (s == names[i]) {
        out = static_cast<E>(i);
        return;
      }
    std::string list;
    for (size_t i = 0; i < N; ++i) list += (i ? (i + 1 == N ? " or " : ", ") : "") + std::string(names[i]);
    fail(std::string("field \"") + name + "\" must be " + list + ", found " + json_quote(s));
  }
  void number(const char* name, double& out) {
    if (const json* v = get(name)) {
      if (v->is_number())
        out = v->get<double>();
      else
        fail(std::string("field \"") + name + "\" must be a number, found " + json_kind(*v));
    }
  }
  void fail(std::string why) {
    if (ok()) error_ = what_.empty() ? why : what_ + ": " + why;
  }

 private:
  // A value is accepted only in the exact shape to_json writes, so nothing is silently changed.
  static bool value_of(const json& j, Value& out) {
    out = from_json(j);
    return to_json(out) == j;
  }
  void args_of(const char* name, const json& v, Map& out) {
    if (!v.is_object()) return fail(std::string("field \"") + name + "\" must be an object, found " + json_kind(v));
    for (const auto& [k, x] : v.items()) {
      Value val;
      if (!value_of(x, val))
        return fail(std::string("field \"") + name + "\": \"" + k + "\" is not a value gray writes: " + clip(x));
      out[k] = std::move(val);
    }
  }
  static std::string clip(const json& j) {
    std::string s = j.dump(-1, ' ', false, json::error_handler_t::replace);
    return s.size() > 60 ? s.substr(0, 57) + "..." : s;
  }

  const json& j_;
  std::string what_;
  std::string error_;
};

// Decodes a record line (already JSON). Empty string on success.
std::string decode_record(const json& j, Record& r) {
  using namespace journal;
  if (!j.is_object()) return std::string("expected a record (a JSON object), found ") + json_kind(j);
  auto t = j.find("t");
  if (t == j.end()) return "the record has no type (field \"t\" is missing)";
  if (!t->is_string()) return std::string("field \"t\" must be a string, found ") + json_kind(*t);
  const std::string type = t->get<std::string>();
  if (type == "header") return "a second header record (the header is line 1)";
  size_t index = std::size(kTypes);
  for (size_t i = 0; i < std::size(kTypes); ++i)
    if (type == kTypes[i]) index = i;
  if (index == std::size(kTypes)) return "unknown record type " + json_quote(type) + " (written by a newer gray?)";

  Fields f(j, "\"" + type + "\" record");
  if (const json* seq = f.get("seq")) {
    if (seq->is_number_unsigned())
      r.seq = seq->get<uint64_t>();
    else
      f.fail("field \"seq\" must be a positive integer, found " + std::string(json_kind(*seq)));
  }
  if (const json* at = f.get("at")) {
    if (at->is_number() && std::isfinite(at->get<double>()) && at->get<double>() >= 0)
      r.at_ms = at->get<double>();
    else
      f.fail("field \"at\" must be a time in milliseconds, 0 or more");
  }
  switch (index) {
    case 0: {
      Started e;
      f.str("key", e.key);
      f.str("step", e.step);
      f.str("plugin", e.call.plugin);
      f.str("op", e.call.op);
      f.args("args", e.call.args);
      f.str("host", e.call.host);
      if (f.has("undo")) f.call("undo", e.undo, false);
      r.event = std::move(e);
      break;
    }
    case 1: {
      Completed e;
      f.str("key", e.key);
      f.value("result", e.result);
      f.call("undo", e.undo, true);
      r.event = std::move(e);
      break;
    }
    case 2: {
      Failed e;
      f.str("key", e.key);
      f.str("message", e.message);
      f.str("status", e.status);
      r.event = std::move(e);
      break;
    }
    case 3: {
      Guard e;
      f.str("guard", e.guard);
      f.value("value", e.value);
      f.choice("verdict", kVerdicts, e.verdict);
      f.str("stage", e.stage);
      r.event = std::move(e);
      break;
    }
    case 4: {
      Phase e;
      f.str("name", e.name);
      r.event = std::move(e);
      break;
    }
    case 5: {
      Stage e;
      f.str("name", e.name);
      f.choice("event", kStageEvents, e.event);
      r.event = std::move(e);
      break;
    }
    case 6: {
      Weights e;
      f.str("gateway", e.gateway);
      f.number("canary", e.canary);
      r.event = std::move(e);
      break;
    }
    case 7: {
      Undone e;
      f.str("key", e.key);
      r.event = std::move(e);
      break;
    }
    case 8: {
      Approval e;
      f.str("gate", e.gate);
      f.choice("event", kApprovalEvents, e.event);
      f.str("answer", e.answer);
      f.str("who", e.who);
      r.event = std::move(e);
      break;
    }
    case 9: {
      Outcome e;
      f.choice("outcome", kOutcomes, e.kind);
      f.str("reason", e.reason);
      r.event = std::move(e);
      break;
    }
    case 10: {
      Note e;
      f.str("text", e.text);
      r.event = std::move(e);
      break;
    }
    case 11: {
      Signal e;
      f.str("signal", e.name);
      r.event = std::move(e);
      break;
    }
    case 12: {
      Rollback e;
      f.str("reason", e.reason);
      r.event = std::move(e);
      break;
    }
  }
  return f.error();
}

std::string decode_header(const json& j, JournalHeader& h) {
  if (!j.is_object()) return "not a gray journal: the first line is not a header record";
  auto t = j.find("t");
  if (t == j.end() || *t != "header") {
    if (t != j.end() && t->is_string() && j.contains("seq"))
      return "not a gray journal: expected the header on line 1, found a " + json_quote(t->get<std::string>()) + " record";
    return "not a gray journal: the first line is not a header record";
  }
  auto format = j.find("format");
  if (format == j.end() || !format->is_string()) return "not a gray journal: the header has no \"format\"";
  if (*format != kJournalFormat)
    return "not a gray journal: format " + json_quote(format->get<std::string>()) + " (expected \"gray-journal\")";
  auto version = j.find("version");
  if (version == j.end() || !version->is_number_integer()) return "the header's \"version\" is missing or not an integer";
  if (version->get<int64_t>() > kJournalVersion)
    return "journal version " + std::to_string(version->get<int64_t>()) +
           " was written by a newer gray; this gray reads version " + std::to_string(kJournalVersion);
  if (version->get<int64_t>() != kJournalVersion)
    return "unsupported journal version " + std::to_string(version->get<int64_t>()) + " (this gray reads version " +
           std::to_string(kJournalVersion) + ")";

  Fields f(j, "header");
  f.str("run", h.run);
  f.str("pipeline", h.pipeline);
  f.str("source_hash", h.source_hash);
  f.str("params_hash", h.params_hash);
  f.args("params", h.params);
  f.str("started_at", h.started_at);
  if (f.ok() && !parse_iso8601_utc(h.started_at))
    f.fail("field \"started_at\" is not a UTC time like \"2024-11-22T02:51:00.000Z\"");
  const char* const clocks[] = {"virtual", "real"};
  f.choice("clock", clocks, h.clock);
  return f.error();
}

}  // namespace

LoadResult parse_journal(std::string_view text, const std::string& name) {
  LoadResult r;
  r.file_size = text.size();
  auto fail = [&](size_t line, const std::string& why) {
    r.error = name + ":" + std::to_string(line) + ": " + why;
    r.error_line = line;
    r.records.clear();
    r.header = JournalHeader{};
    r.good_size = 0;
    return r;
  };

  // Whole lines (without their newline), and what follows the last newline.
  std::vector<std::string_view> lines;
  size_t pos = 0;
  for (size_t nl; (nl = text.find('\n', pos)) != std::string_view::npos; pos = nl + 1)
    lines.push_back(text.substr(pos, nl - pos));
  const std::string_view tail = text.substr(pos);
  size_t good = pos;

  // The header is written whole (Journal::create renames it into place), so it is never torn.
  if (lines.empty()) {
    if (tail.empty()) return fail(1, "the journal is empty: it has no header line");
    return fail(1, "the header line is incomplete (no newline at its end)");
  }
  json j;
  std::string why;
  if (!parse_line(lines[0], j, why)) return fail(1, "not a gray journal: the first line is " + why);
  if (std::string e = decode_header(j, r.header); !e.empty()) return fail(1, e);

  ReplayState state;
  size_t torn_bytes = tail.size(), torn_line = lines.size() + 1;
  auto lost_newline = [&](size_t line, std::string_view bytes) {
    return fail(line,
                "a record and more on one line (" + std::to_string(bytes.size()) + " bytes): a lost newline, not a torn write");
  };
  for (size_t i = 1; i < lines.size(); ++i) {
    const size_t line = i + 1;
    if (!parse_line(lines[i], j, why)) {
      if (i + 1 == lines.size() && tail.empty()) {  // the very end of the file: torn
        if (starts_with_value(lines[i])) return lost_newline(line, lines[i]);
        torn_bytes = lines[i].size() + 1;
        torn_line = line;
        good -= torn_bytes;
        break;
      }
      return fail(line, why + "; only the last line of a journal can be torn, this one is followed by " +
                            std::to_string(lines.size() - i - 1 + (tail.empty() ? 0 : 1)) + " more");
    }
    Record rec;
    if (std::string e = decode_record(j, rec); !e.empty()) return fail(line, e);
    if (auto e = state.apply(rec)) return fail(line, *e);
    r.records.push_back(std::move(rec));
  }
  if (!tail.empty() && starts_with_value(tail)) {
    json whole;
    std::string ignored;
    if (!parse_line(tail, whole, ignored)) return lost_newline(torn_line, tail);
  }
  if (torn_bytes > 0)
    r.warnings.push_back(name + ":" + std::to_string(torn_line) + ": dropped a torn last record (" + std::to_string(torn_bytes) +
                         " bytes) — the process died while writing it");
  r.good_size = good;
  return r;
}

LoadResult load_journal(const std::string& path) {
  LoadResult r;
  std::string text;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    r.error = path + ": cannot read the journal: " + errno_text(errno);
    return r;
  }
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      r.error = path + ": cannot read the journal: " + errno_text(errno);
      ::close(fd);
      return r;
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return parse_journal(text, path);
}

// ---------------------------------------------------------------------------------------------
// Writing.

namespace {

bool write_all(int fd, std::string_view bytes, int& err) {
  // One write() in practice; a regular file only writes short when the disk is full, and then the
  // next write reports why.
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      err = errno;
      return false;
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool sync_fd(int fd, bool data_only, int& err) {
  int rc;
  do rc = data_only ? ::fdatasync(fd) : ::fsync(fd);
  while (rc < 0 && errno == EINTR);
  if (rc < 0) err = errno;
  return rc == 0;
}

// Makes a directory entry durable (a created or renamed file).
bool sync_dir(const std::string& dir, int& err) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    err = errno;
    return false;
  }
  bool ok = sync_fd(fd, false, err);
  ::close(fd);
  return ok;
}

bool lock_fd(int fd) { return ::flock(fd, LOCK_EX | LOCK_NB) == 0; }

const char* kBusy = "another gray process has this journal open for writing";

bool valid_utf8(std::string_view s) {
  try {
    (void)json(std::string(s)).dump();
    return true;
  } catch (const json::exception&) {
    return false;
  }
}

}  // namespace

Journal::Journal(int fd, std::string path, JournalHeader header, uint64_t size)
    : fd_(fd), path_(std::move(path)), header_(std::move(header)), size_(size) {}

Journal::~Journal() {
  if (fd_ >= 0) ::close(fd_);
}

JournalOpen Journal::create(const std::string& dir, const JournalHeader& header) {
  JournalOpen out;
  const std::string path = dir + "/" + kJournalFileName;
  if (header.run.empty()) return {nullptr, "cannot create " + path + ": the header has no run id", {}};
  if (!parse_iso8601_utc(header.started_at))
    return {nullptr,
            "cannot create " + path + ": started_at " + json_quote(header.started_at) + " is not a UTC time from iso8601_utc()",
            {}};

  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return {nullptr, "cannot create the run directory " + dir + ": " + ec.message(), {}};
  struct stat st;
  if (::stat(path.c_str(), &st) == 0)
    return {nullptr, path + " already exists: this run has a journal (resume it with gray resume)", {}};

  // Written beside, synced, then linked into place: a journal that exists has its whole header.
  const std::string tmp = dir + "/." + kJournalFileName + "." + std::to_string(::getpid()) + ".tmp";
  ::unlink(tmp.c_str());  // left by a dead process that had our pid
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return {nullptr, "cannot create " + tmp + ": " + errno_text(errno), {}};
  auto give_up = [&](const std::string& what, int err) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return JournalOpen{nullptr, what + ": " + errno_text(err), {}};
  };
  if (!lock_fd(fd)) return give_up("cannot lock " + tmp, errno);
  const std::string line = format_header(header);
  int err = 0;
  if (!write_all(fd, line, err) || !sync_fd(fd, false, err)) return give_up("cannot write " + tmp, err);
  if (::link(tmp.c_str(), path.c_str()) != 0) {
    if (errno == EEXIST) return give_up(path + " already exists: this run has a journal (resume it with gray resume)", EEXIST);
    // A filesystem without hard links: rename instead. The run lock keeps a second creator away.
    if (::rename(tmp.c_str(), path.c_str()) != 0) return give_up("cannot create " + path, errno);
  } else {
    ::unlink(tmp.c_str());
  }
  if (!sync_dir(dir, err)) {
    ::close(fd);
    return {nullptr, "cannot sync the run directory " + dir + ": " + errno_text(err), {}};
  }
  out.journal.reset(new Journal(fd, path, header, line.size()));
  return out;
}

JournalOpen Journal::open_for_append(const std::string& dir, const LoadResult& loaded) {
  JournalOpen out;
  const std::string path = dir + "/" + kJournalFileName;
  if (!loaded.ok()) return {nullptr, "cannot append to a journal that did not load: " + loaded.error, {}};
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd < 0) return {nullptr, "cannot open " + path + ": " + errno_text(errno), {}};
  auto give_up = [&](const std::string& why) {
    ::close(fd);
    return JournalOpen{nullptr, why, {}};
  };
  if (!lock_fd(fd)) return give_up(path + ": " + kBusy);
  struct stat st;
  if (::fstat(fd, &st) != 0) return give_up("cannot stat " + path + ": " + errno_text(errno));
  if (static_cast<uint64_t>(st.st_size) != loaded.file_size)
    return give_up(path + " changed since it was loaded (" + std::to_string(loaded.file_size) + " bytes then, " +
                   std::to_string(st.st_size) + " now): load it again");
  ReplayResult rep = replay_checked(loaded.records);
  if (!rep.error.empty()) return give_up(path + ": " + rep.error);
  if (loaded.torn()) {
    int err = 0;
    if (::ftruncate(fd, static_cast<off_t>(loaded.good_size)) != 0 || !sync_fd(fd, false, err))
      return give_up("cannot truncate the torn last record of " + path + ": " + errno_text(err ? err : errno));
    out.notes.push_back("truncated " + path + " to its last whole record (dropped " +
                        std::to_string(loaded.file_size - loaded.good_size) + " bytes)");
  }
  out.journal.reset(new Journal(fd, path, loaded.header, loaded.good_size));
  out.journal->state_ = std::move(rep.state);
  return out;
}

void Journal::add_secret(std::string secret) {
  std::lock_guard<std::mutex> g(mu_);
  scrub_.add(std::move(secret));
}

std::optional<std::string> Journal::append(double at_ms, journal::Event event) {
  std::lock_guard<std::mutex> g(mu_);
  if (!broken_.empty()) return "the journal is unusable after an earlier write error (" + broken_ + "); the run must stop";
  Record r{state_.last_seq + 1, at_ms, std::move(event)};
  const std::string* key = nullptr;
  if (auto* e = std::get_if<journal::Started>(&r.event)) key = &e->key;
  if (auto* e = std::get_if<journal::Completed>(&r.event)) key = &e->key;
  if (auto* e = std::get_if<journal::Failed>(&r.event)) key = &e->key;
  if (auto* e = std::get_if<journal::Undone>(&r.event)) key = &e->key;
  if (key && scrub_.contains_secret(*key)) return "refusing to journal a key that contains a secret";
  if (key && !valid_utf8(*key)) return "refusing to journal a key that is not valid UTF-8: " + json_quote(*key);

  const std::string line = format_record(r, &scrub_);
  if (auto why = state_.apply(r)) return "refusing to journal " + std::string(journal::type_name(r.event)) + ": " + *why;
  int err = 0;
  if (!write_all(fd_, line, err) || !sync_fd(fd_, true, err)) {
    // Take back a partial line if we can; either way nothing more may be written.
    (void)!::ftruncate(fd_, static_cast<off_t>(size_));
    broken_ = "writing " + path_ + " failed: " + errno_text(err);
    return broken_ + "; the run must stop";
  }
  size_ += line.size();
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Pinning and time.

std::string hash_hex(std::string_view bytes) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::string hash_params(const Map& params) {
  return hash_hex(LineWriter::map_json(params).dump(-1, ' ', false, json::error_handler_t::replace));
}

std::string check_pinned(const JournalHeader& h, std::string_view source_hash, std::string_view params_hash) {
  const bool src = h.source_hash != source_hash, par = h.params_hash != params_hash;
  if (!src && !par) return "";
  std::string what;
  if (src && par)
    what = "the pipeline source and the run parameters changed since run " + h.run + " started (source " + h.source_hash +
           " then, " + std::string(source_hash) + " now; parameters " + h.params_hash + " then, " + std::string(params_hash) +
           " now)";
  else if (src)
    what = "the pipeline source changed since run " + h.run + " started (source " + h.source_hash + " then, " +
           std::string(source_hash) + " now)";
  else
    what = "the run parameters changed since run " + h.run + " started (parameters " + h.params_hash + " then, " +
           std::string(params_hash) + " now)";
  return what + "; the journal's steps may not match the pipeline any more. Resume with the original " +
         (src ? "pipeline" : "parameters") + ", or pass --force to resume anyway";
}

std::string iso8601_utc(int64_t ms) {
  int64_t secs = ms / 1000, rem = ms % 1000;
  if (rem < 0) rem += 1000, secs -= 1;
  std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  if (!gmtime_r(&t, &tm)) return "";
  char buf[96];  // room for any int, so the compiler can see nothing is cut
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                tm.tm_min, tm.tm_sec, static_cast<int>(rem));
  return buf;
}

std::optional<int64_t> parse_iso8601_utc(std::string_view s) {
  // Exactly YYYY-MM-DDTHH:MM:SS(.mmm)?Z
  auto digits = [&](size_t at, size_t n, int& out) {
    if (at + n > s.size()) return false;
    out = 0;
    for (size_t i = at; i < at + n; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      out = out * 10 + (s[i] - '0');
    }
    return true;
  };
  int y, mo, d, h, mi, sec, frac = 0;
  if (!(digits(0, 4, y) && s.size() > 4 && s[4] == '-' && digits(5, 2, mo) && s.size() > 7 && s[7] == '-' && digits(8, 2, d) &&
        s.size() > 10 && s[10] == 'T' && digits(11, 2, h) && s.size() > 13 && s[13] == ':' && digits(14, 2, mi) &&
        s.size() > 16 && s[16] == ':' && digits(17, 2, sec)))
    return std::nullopt;
  size_t at = 19;
  if (s.size() > at && s[at] == '.') {
    if (!digits(at + 1, 3, frac)) return std::nullopt;
    at += 4;
  }
  if (s.size() != at + 1 || s[at] != 'Z') return std::nullopt;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  const std::time_t t = timegm(&tm);
  // timegm normalises out-of-range fields (Feb 30 -> Mar 2); such a text is not a time.
  std::tm back{};
  if (!gmtime_r(&t, &back) || back.tm_year != tm.tm_year || back.tm_mon != mo - 1 || back.tm_mday != d || back.tm_hour != h ||
      back.tm_min != mi || back.tm_sec != sec)
    return std::nullopt;
  return static_cast<int64_t>(t) * 1000 + frac;
}

}  // namespace gray
