#include "plugins/nginx/nginx_conf.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>

namespace gray::plugins::nginx {

using gateway::Route;
using json = nlohmann::json;

namespace {

const std::string kStateMark = "# gray-state ";
constexpr int kMaxWeight = 1000;

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// A double-quoted nginx string: nginx reads \\ as \ and \" as ".
std::string nginx_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    out += c;
  }
  return out + "\"";
}

// Every character but letters and digits as \xHH: literal in a PCRE pattern.
std::string literal(const std::string& s) {
  std::string out;
  char buf[8];
  for (unsigned char c : s) {
    if (std::isalnum(c)) {
      out += static_cast<char>(c);
    } else {
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

bool only(const std::string& s, const char* extra) {
  return std::all_of(s.begin(), s.end(), [&](char c) { return std::isalnum(static_cast<unsigned char>(c)) || std::strchr(extra, c); });
}

json route_json(const Route& r) { return {{"match", r.match}, {"name", r.name}, {"op", r.op}, {"value", r.value}, {"target", r.target}}; }

// The nginx variable a header or cookie rule reads.
bool source_variable(const Route& r, std::string& var, std::string& why) {
  if (r.match == "header") {
    if (!only(r.name, "-_")) {
      why = "route: nginx reads headers by variables, so a header name may hold only letters, digits, - and _ (\"" + r.name + "\")";
      return false;
    }
    std::string n = lower(r.name);
    std::replace(n.begin(), n.end(), '-', '_');
    var = "$http_" + n;
    return true;
  }
  if (!only(r.name, "_")) {
    why = "route: nginx reads cookies by variables, so a cookie name may hold only letters, digits and _ (\"" + r.name + "\")";
    return false;
  }
  var = "$cookie_" + r.name;
  return true;
}

// One rule: a variable that is the rule's target when the request matches, else "".
bool render_rule(const Route& r, const std::string& var, std::string& out, std::string& why) {
  if (r.match == "ip") {
    out += "geo " + var + " {\n    default \"\";\n";
    for (const std::string& range : r.ranges()) {
      gateway::Cidr c;
      if (!gateway::parse_cidr(range, c, why)) return false;
      out += "    " + range + " " + r.target + ";\n";
    }
    out += "}\n";
    return true;
  }
  std::string source;
  if (!source_variable(r, source, why)) return false;
  // String keys of a map ignore case; a regular expression compares exactly.
  std::string pattern = r.op == "==" ? "~^" + literal(r.value) + "$" : "~" + r.value;
  if (r.op == "~" && !r.value.empty() && r.value[0] == '*') {
    why = "route: \"" + r.value + "\" is not a regular expression";
    return false;
  }
  out += "map " + source + " " + var + " {\n    default \"\";\n    " + nginx_string(pattern) + " " + r.target + ";\n}\n";
  return true;
}

std::string server_line(const std::string& server, bool down, int weight) {
  return "    server " + server + (down ? " down" : " weight=" + std::to_string(weight)) + ";\n";
}

}  // namespace

std::string variable_name(const std::string& upstream) {
  std::string v = upstream;
  for (char& c : v)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') c = '_';
  return v;
}

std::string State::state_of(const std::string& server) const {
  auto it = states.find(server);
  return it == states.end() ? "ready" : it->second;
}

void State::remember(const std::string& digest) {
  keys.erase(std::remove(keys.begin(), keys.end(), digest), keys.end());
  keys.push_back(digest);
  if (keys.size() > 32) keys.erase(keys.begin());
}

std::optional<State> parse_state(const std::string& text) {
  if (text.rfind(kStateMark, 0) != 0) return std::nullopt;
  std::string line = text.substr(kStateMark.size(), text.find('\n') - kStateMark.size());
  json j = json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.value("v", 0) != 1) return std::nullopt;
  State s;
  try {
    s.generation = j.at("generation").get<int>();
    s.canary = j.at("canary").get<double>();
    for (const auto& [k, v] : j.at("states").items()) s.states[k] = v.get<std::string>();
    for (const json& r : j.at("routes"))
      s.routes.push_back({r.at("match").get<std::string>(), r.at("name").get<std::string>(), r.at("op").get<std::string>(),
                          r.at("value").get<std::string>(), r.at("target").get<std::string>()});
    for (const json& k : j.at("keys")) s.keys.push_back(k.get<std::string>());
  } catch (const json::exception&) {
    return std::nullopt;
  }
  return s;
}

gateway::Split split_for(const Layout& l, const State& s) {
  int nc = 0, ns = 0;
  for (const std::string& srv : l.canary) nc += s.state_of(srv) == "ready";
  for (const std::string& srv : l.stable) ns += s.state_of(srv) == "ready";
  return gateway::best_split(nc, ns, s.canary, kMaxWeight);
}

double effective_share(const Layout& l, const State& s) {
  int ready = 0;
  for (const auto* group : {&l.stable, &l.canary})
    for (const std::string& srv : *group) ready += s.state_of(srv) == "ready";
  return ready == 0 ? 0 : split_for(l, s).share;
}

bool render(const Layout& l, const State& s, std::string& text, std::string& why) {
  const std::string v = variable_name(l.upstream);
  json j = {{"v", 1}, {"generation", s.generation}, {"canary", s.canary}, {"states", s.states}, {"routes", json::array()}, {"keys", s.keys}};
  for (const Route& r : s.routes) j["routes"].push_back(route_json(r));
  gateway::Split split = split_for(l, s);

  std::string out = kStateMark + j.dump() + "\n";
  out += "# Written by gray for the gateway \"" + l.instance + "\" (upstream " + l.upstream + "): changes made here are overwritten.\n";
  out += "# canary " + gateway::format_percent(s.canary) + ", generation " + std::to_string(s.generation) + ".\n\n";

  auto upstream = [&](const std::string& name, bool stable, bool canary, bool weighted) {
    out += "upstream " + name + " {\n    zone gray_" + variable_name(name) + " 64k;\n";
    for (const auto& [group, is_canary] : {std::pair{&l.stable, false}, std::pair{&l.canary, true}}) {
      if (is_canary ? !canary : !stable) continue;
      int w = is_canary ? split.canary : split.stable;
      for (const std::string& srv : *group) out += server_line(srv, s.state_of(srv) != "ready" || (weighted && w == 0), weighted ? w : 1);
    }
    out += "}\n";
  };
  upstream(l.upstream, true, true, true);
  upstream(l.upstream + "_stable", true, false, false);
  upstream(l.upstream + "_canary", false, true, false);
  out += "\n";

  std::string sources;
  for (size_t i = 0; i < s.routes.size(); ++i) {
    std::string var = "$gray_" + v + "_r" + std::to_string(i);
    if (!render_rule(s.routes[i], var, out, why)) return false;
    sources += (i ? "," : "") + var;
  }
  // The first rule, in order, that matched: its target follows only empty answers.
  if (s.routes.empty()) out += "map $host $gray_route_" + v + " {\n    default \"\";\n}\n";
  else out += "map \"" + sources + "\" $gray_route_" + v + " {\n    default \"\";\n    \"~^,*(canary|stable)\" $1;\n}\n";
  out += "map $gray_route_" + v + " $gray_upstream_" + v + " {\n    default " + l.upstream + ";\n    canary " + l.upstream +
         "_canary;\n    stable " + l.upstream + "_stable;\n}\n";
  out += "map $host $gray_generation_" + v + " {\n    default \"" + std::to_string(s.generation) + "\";\n}\n";
  text = out;
  return true;
}

}  // namespace gray::plugins::nginx
