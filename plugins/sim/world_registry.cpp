// The simulated registry's operations: membership, metadata, weights and the node agents'
// self-registration. Each change answers with its compensation and bumps the registry's
// generation, which the clients' caches pick up at their next poll.
#include <algorithm>

#include "plugins/sim/args.h"
#include "plugins/sim/world.h"

namespace gray::sim {

using namespace detail;

std::string World::instance_id(const Value& v) const {
  if (v.kind == Value::Kind::Host) {
    auto addr = v.fields().find("addr");
    auto port = v.fields().find("port");
    if (addr != v.fields().end() && port != v.fields().end()) return addr->second.text() + ":" + port->second.text();
  }
  int h = find_host(v.text());
  // A host's name stands for its instance; "addr:port" is the instance itself.
  if (h >= 0 && v.text().find(':') == std::string::npos) return hosts_[static_cast<size_t>(h)].id();
  return v.text();
}

Result World::registry_op(Registry& r, const Call& c) {
  const std::string& op = c.op;
  if (op == "weight") {
    const Value* p = arg(c, "canary");
    double before = r.canary_percent;
    r.canary_percent = p && p->is_numeric() ? std::clamp(p->num, 0.0, 100.0) : -1;
    touch(r);
    Result res = ok();
    res.undo = make_call("weight", {{"canary", before < 0 ? Value::null() : Value::percent(before)}});
    return res;
  }
  if (op == "count") {
    const Value* v = arg(c, "version");
    double n = 0;
    for (const Member& m : r.members) {
      if (!m.registered) continue;
      auto it = m.metadata.find("version");
      if (!v || v->is_null() || (it != m.metadata.end() && it->second.text() == v->text())) n++;
    }
    return ok(Value::number(n));
  }

  const Value* inst = arg(c, "instance");
  if (!inst) return failed(op + ": instance is required");
  const std::string id = instance_id(*inst);
  if (op == "registered") {
    auto it = r.by_id.find(id);
    return ok(Value::boolean(it != r.by_id.end() && r.members[it->second].registered));
  }
  Member& m = member(r, id);
  const bool was_registered = m.registered;
  const Map before = m.metadata;
  Result res = ok();
  auto undo = [&](const std::string& uop, std::map<std::string, Value> extra = {}) {
    extra["instance"] = *inst;
    res.undo = make_call(uop, std::move(extra));
  };
  auto register_back = [&] {
    if (was_registered)
      undo("register", {{"metadata", Value::of_map(before)}});
    else
      undo("deregister");
  };

  if (op == "register") {
    const Value* meta = arg(c, "metadata");
    if (meta && meta->kind == Value::Kind::Map) m.metadata = meta->fields();
    if (!m.metadata.count("version") && m.host >= 0)
      m.metadata["version"] = Value::string(hosts_[static_cast<size_t>(m.host)].version);
    m.registered = true;
    m.reregister_at = kForever;
    register_back();
  } else if (op == "deregister") {
    m.registered = false;
    // Unless told otherwise, the node's agent puts it back (method 5's trap).
    m.reregister_at = m.paused ? kForever : now_ + r.spec.self_register_ms;
    if (was_registered) undo("register", {{"metadata", Value::of_map(before)}});
  } else if (op == "enable" || op == "disable") {
    bool was = m.enabled;
    m.enabled = op == "enable";
    undo(was ? "enable" : "disable");
  } else if (op == "set_weight") {
    const Value* w = arg(c, "weight");
    if (!w || !w->is_numeric() || w->num < 0) return failed("set_weight: weight must be a number of at least 0");
    double was = m.weight;
    m.weight = w->num;
    undo("set_weight", {{"weight", Value::number(was)}});
  } else if (op == "tag") {
    const Value* meta = arg(c, "metadata");
    if (!meta || meta->kind != Value::Kind::Map) return failed("tag: metadata must be a map");
    // Merge; a null value removes the key. The undo puts back exactly the keys it touched.
    Map previous;
    for (const auto& [k, v] : meta->fields()) {
      auto it = m.metadata.find(k);
      previous[k] = it == m.metadata.end() ? Value::null() : it->second;
      if (v.is_null())
        m.metadata.erase(k);
      else
        m.metadata[k] = v;
    }
    undo("tag", {{"metadata", Value::of_map(std::move(previous))}});
  } else if (op == "pause_registration" || op == "resume_registration") {
    bool was = m.paused;
    m.paused = op == "pause_registration";
    if (m.paused)
      m.reregister_at = kForever;
    else if (!m.registered)
      m.reregister_at = now_ + r.spec.self_register_ms;
    undo(was ? "pause_registration" : "resume_registration");
  } else {
    return error("the simulated registry has no operation \"" + op + "\"");
  }
  touch(r);
  return res;
}

}  // namespace gray::sim
