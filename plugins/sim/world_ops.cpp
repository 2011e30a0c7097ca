// The plugin operations of the simulated world: the common call path (faults, latency,
// idempotency keys), and the hosts and images operations. Gateways, registries, metrics,
// commands and probes have files of their own.
#include <algorithm>
#include <cstdio>

#include "plugins/sim/args.h"
#include "plugins/sim/world.h"

namespace gray::sim {

using namespace detail;
using plugins::Kind;

namespace {

// Operations beyond the catalog that the simulated gateway understands: routing rules and
// scaling (see drivers.h for their arguments).
bool gateway_extension(const std::string& op) {
  return op == "route" || op == "unroute" || op == "clear_routes" || op == "set_routes" || op == "scale";
}

bool is_effect(Kind kind, const std::string& op) {
  if (kind == Kind::Hosts) return op == "run";
  if (kind == Kind::Gateway && gateway_extension(op)) return true;
  const plugins::OpSpec* spec = plugins::find_op(kind, op);
  return spec && spec->effect;
}

std::string describe(const Call& c) {
  std::string out = c.op;
  for (const auto& [k, v] : c.args) out += " " + k + "=" + (v.secret() ? std::string("<secret>") : v.text());
  return out;
}

}  // namespace

Result World::call(Kind kind, const std::string& instance, const Call& c, double now) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  advance_to(now);
  const std::string k = plugins::kind_name(kind);
  double latency = 0;
  const CallFault* fault = pick_fault(k, instance, c.op, latency);
  auto unreachable = [&](const std::string& what) {
    Result r = error(fault->message.empty() ? k + " " + instance + ": " + what + " (simulated fault)" : fault->message);
    r.elapsed_ms = std::min(latency, c.timeout_ms);
    return r;
  };
  if (fault && !fault->lost_reply) return unreachable("unreachable");

  const bool effect = is_effect(kind, c.op);
  KeyRecord* rec = nullptr;
  if (effect && !c.key.empty()) {
    rec = &keys_[c.key];
    rec->calls++;
  }
  Result r;
  if (rec && rec->applied > 0) {
    // Applied before under this key: do nothing, answer as the first time did, once the
    // effect has finished (a run resumed during a long command waits for the rest of it).
    r.value = rec->value;
    r.undo = rec->undo;
    r.elapsed_ms = std::max(0.0, rec->done_at - now_);
    r.replayed = true;
    replays_++;
  } else if (rec && !rec->failed.empty()) {
    // Ran and failed under this key (a command exited non-zero): the same answer again, as a
    // real hosts driver does from its marker, so a resumed run meets the failure it missed.
    r = failed(rec->failed);
    r.replayed = true;
    replays_++;
  } else {
    r = dispatch(kind, instance, c);
    if (rec && r.status == Result::Status::Failed) rec->failed = r.message;
    // Only a successful call counts as applied.
    if (effect && r.ok()) {
      if (rec) {
        rec->applied++;
        rec->value = r.value;
        rec->undo = r.undo;
        rec->done_at = now_ + r.elapsed_ms;
      }
      effects_.push_back({now_, k, instance, c.op, describe(c), c.key});
    }
  }
  const bool timed_out = latency > c.timeout_ms || r.elapsed_ms > c.timeout_ms;
  r.elapsed_ms += latency;
  // The effect happened, but the answer never came back: exactly what idempotency keys are for.
  if (fault) return unreachable("reply lost");
  if (timed_out) {
    Result t = error(k + " " + instance + ": " + c.op + " timed out after " + format_duration(c.timeout_ms));
    t.elapsed_ms = c.timeout_ms;
    return t;
  }
  return r;
}

Result World::dispatch(Kind kind, const std::string& instance, const Call& c) {
  switch (kind) {
    case Kind::Gateway: {
      Gateway* g = find_gateway(instance);
      if (!g) return error("no simulated gateway \"" + instance + "\"");
      return gateway_op(*g, c);
    }
    case Kind::Registry: {
      Registry* r = find_registry(instance);
      if (!r) return error("no simulated registry \"" + instance + "\"");
      return registry_op(*r, c);
    }
    case Kind::Hosts:
      return hosts_op(c);
    case Kind::Metrics:
      return metrics_op(c);
    case Kind::Images:
      return images_op(c);
  }
  return error("unknown plugin kind");
}

// --- hosts ----------------------------------------------------------------------------------

namespace {

Value host_value(const Host& h) {
  List tags;
  for (const std::string& t : h.tags) tags.push_back(Value::string(t));
  Value v = Value::named(Value::Kind::Host, h.name);
  v.map = std::make_shared<const Map>(Map{{"name", Value::string(h.name)},
                                          {"addr", Value::string(h.addr)},
                                          {"port", Value::number(h.port)},
                                          {"tags", Value::of_list(std::move(tags))}});
  return v;
}

bool has_tag(const Host& h, const std::string& tag) { return std::find(h.tags.begin(), h.tags.end(), tag) != h.tags.end(); }

}  // namespace

Result World::hosts_op(const Call& c) {
  const std::string& op = c.op;
  if (op == "run") {
    const Value* h = arg(c, "host");
    return run_command(h ? *h : Value::null(), arg_text(c, "command"), c);
  }
  std::string tag = arg_text(c, "tag");
  std::string name = arg_text(c, "name");
  List out;
  for (const Host& h : hosts_)
    if ((op == "all") || (op == "tagged" && has_tag(h, tag)) || (op == "named" && h.name == name) ||
        (op == "count" && (tag.empty() || has_tag(h, tag))))
      out.push_back(host_value(h));
  if (op == "count") return ok(Value::number(static_cast<double>(out.size())));
  if (op == "all" || op == "tagged" || op == "named") return ok(Value::of_list(std::move(out), Value::Kind::Hosts));
  return error("the simulated hosts have no operation \"" + op + "\"");
}

// --- images ---------------------------------------------------------------------------------

std::string World::digest_of(const std::string& tag) {
  auto it = sc_.digests.find(tag);
  std::string digest;
  if (it != sc_.digests.end()) {
    digest = it->second;
  } else {
    // A stable made-up digest: FNV-1a of the tag, four times salted, as 64 hex digits.
    digest = "sha256:";
    for (unsigned salt = 0; salt < 4; ++salt) {
      std::uint64_t x = 1469598103934665603ULL ^ salt;
      for (unsigned char ch : tag) x = (x ^ ch) * 1099511628211ULL;
      char buf[17];
      std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(x));
      digest += buf;
    }
  }
  digest_tags_[digest] = tag;
  return digest;
}

Result World::images_op(const Call& c) {
  std::string ref = arg_text(c, "ref");
  std::string tag = resolve_version(ref);
  bool missing = std::count(sc_.missing_images.begin(), sc_.missing_images.end(), ref) ||
                 std::count(sc_.missing_images.begin(), sc_.missing_images.end(), tag);
  if (c.op == "exists") return ok(Value::boolean(!missing));
  if (c.op == "digest") {
    if (missing) return failed("manifest unknown: " + ref);
    return ok(Value::string(digest_of(tag)));
  }
  return error("the simulated image registry has no operation \"" + c.op + "\"");
}

}  // namespace gray::sim
