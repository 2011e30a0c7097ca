// Small helpers shared by the simulated operations: reading a call's arguments and building
// results. Internal to plugins/sim.
#pragma once

#include <string>

#include "plugins/api.h"

namespace gray::sim::detail {

inline const Value* arg(const plugins::Call& c, const std::string& name) {
  auto it = c.args.find(name);
  return it == c.args.end() ? nullptr : &it->second;
}

inline std::string arg_text(const plugins::Call& c, const std::string& name) {
  const Value* v = arg(c, name);
  return v ? v->text() : "";
}

inline plugins::Result ok(Value v = {}) {
  plugins::Result r;
  r.value = std::move(v);
  return r;
}

inline plugins::Result with_status(plugins::Result::Status s, std::string message) {
  plugins::Result r;
  r.status = s;
  r.message = std::move(message);
  return r;
}

inline plugins::Result failed(std::string message) { return with_status(plugins::Result::Status::Failed, std::move(message)); }
inline plugins::Result error(std::string message) { return with_status(plugins::Result::Status::Error, std::move(message)); }
inline plugins::Result no_data(std::string message) { return with_status(plugins::Result::Status::NoData, std::move(message)); }

inline plugins::Call make_call(std::string op, std::map<std::string, Value> args) {
  plugins::Call c;
  c.op = std::move(op);
  c.args = std::move(args);
  return c;
}

}  // namespace gray::sim::detail
