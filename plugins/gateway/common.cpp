#include "plugins/gateway/common.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace gray::plugins::gateway {

// ---- arguments ---------------------------------------------------------------------------

std::string text_arg(const Call& c, const std::string& name) {
  auto it = c.args.find(name);
  if (it == c.args.end() || it->second.is_null()) return "";
  return it->second.text();
}

bool percent_arg(const Call& c, const std::string& name, double& out, std::string& why) {
  auto it = c.args.find(name);
  if (it == c.args.end() || (it->second.kind != Value::Kind::Percent && it->second.kind != Value::Kind::Number)) {
    why = name + " must be a percentage such as 20%";
    return false;
  }
  out = it->second.num;
  if (!std::isfinite(out) || out < 0 || out > 100) {
    why = name + " must be between 0% and 100%, not " + it->second.text();
    return false;
  }
  return true;
}

bool count_arg(const Call& c, const std::string& name, int& out, std::string& why) {
  auto it = c.args.find(name);
  if (it == c.args.end() || !it->second.is_numeric() || it->second.num < 0 || it->second.num > 100000 ||
      it->second.num != std::floor(it->second.num)) {
    why = name + " must be a whole number of servers";
    return false;
  }
  out = static_cast<int>(it->second.num);
  return true;
}

std::string record_addr(const Call& c) { return text_arg(c, "addr"); }

std::string record_address(const Call& c) {
  std::string addr = record_addr(c);
  auto port = c.args.find("port");
  if (addr.empty() || port == c.args.end() || !port->second.is_numeric() || port->second.num <= 0) return "";
  bool v6 = addr.find(':') != std::string::npos;
  return (v6 ? "[" + addr + "]" : addr) + ":" + std::to_string(static_cast<long>(port->second.num));
}

std::string format_percent(double p) {
  char buf[32];
  if (std::fabs(p - std::round(p)) < 0.005) {
    std::snprintf(buf, sizeof buf, "%.0f%%", p);
  } else {
    std::snprintf(buf, sizeof buf, "%.2f", p);
    std::string s = buf;
    while (s.back() == '0') s.pop_back();
    return s + "%";
  }
  return buf;
}

// ---- routing rules -------------------------------------------------------------------------

namespace {

// RFC 9110 token characters: what header and cookie names may contain.
bool is_token(const std::string& s) {
  if (s.empty()) return false;
  for (unsigned char c : s)
    if (!(std::isalnum(c) || std::strchr("!#$%&'*+-.^_`|~", c))) return false;
  return true;
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.erase(0, 1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s;
}

std::string value_text(const Value& v) {
  if (v.kind != Value::Kind::List && v.kind != Value::Kind::Hosts) return v.text();
  std::string out;
  for (const Value& item : v.items()) out += (out.empty() ? "" : ",") + item.text();
  return out;
}

}  // namespace

std::string Route::describe() const {
  if (match == "ip") return "ip " + value + " -> " + target;
  return match + " " + name + " " + op + " \"" + value + "\" -> " + target;
}

std::vector<std::string> Route::ranges() const {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= value.size()) {
    size_t comma = value.find(',', pos);
    std::string part = trim(value.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos));
    if (!part.empty()) out.push_back(part);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

bool route_from_args(const std::map<std::string, Value>& args, Route& r, std::string& why) {
  auto text = [&](const char* k) {
    auto it = args.find(k);
    return it == args.end() || it->second.is_null() ? std::string() : value_text(it->second);
  };
  r = Route{text("match"), text("name"), text("op"), text("value"), text("target")};
  if (r.match != "header" && r.match != "cookie" && r.match != "ip") {
    why = "route: match must be header, cookie or ip, not \"" + r.match + "\"";
    return false;
  }
  if (r.op.empty()) r.op = "==";
  if (r.op != "==" && r.op != "~") {
    why = "route: op must be == or ~, not \"" + r.op + "\"";
    return false;
  }
  if (r.target != "canary" && r.target != "stable") {
    why = "route: a gateway routes to its groups canary or stable, not to \"" + r.target +
          "\" (routing to a version by its tag needs a registry)";
    return false;
  }
  if (r.value.empty()) {
    why = "route: a value to match is required";
    return false;
  }
  if (r.value.find_first_of(std::string("\r\n\0", 3)) != std::string::npos) {
    why = "route: the value must not contain line breaks or NUL characters";
    return false;
  }
  if (r.match == "ip") {
    r.name.clear();
    r.op = "==";
    std::vector<std::string> ranges = r.ranges();
    if (ranges.empty()) {
      why = "route: an ip rule needs an address range such as \"10.0.0.0/8\"";
      return false;
    }
    for (const std::string& range : ranges) {
      Cidr c;
      if (!parse_cidr(range, c, why)) return false;
    }
    return true;
  }
  if (!is_token(r.name)) {
    why = "route: a " + r.match + " rule needs a " + r.match + " name made of letters, digits and !#$%&'*+-.^_`|~, not \"" + r.name + "\"";
    return false;
  }
  return true;
}

std::map<std::string, Value> route_args(const Route& r) {
  std::map<std::string, Value> m = {{"match", Value::string(r.match)}, {"value", Value::string(r.value)}, {"target", Value::string(r.target)}};
  if (r.match != "ip") {
    m["name"] = Value::string(r.name);
    m["op"] = Value::string(r.op);
  }
  return m;
}

Value route_value(const Route& r) { return Value::of_map(route_args(r)); }

bool routes_from_call(const Call& c, std::vector<Route>& out, std::string& why) {
  out.clear();
  auto it = c.args.find("routes");
  if (it == c.args.end() || it->second.kind != Value::Kind::List) {
    why = "set_routes: routes must be a list of rules";
    return false;
  }
  for (const Value& item : it->second.items()) {
    if (item.kind != Value::Kind::Map) {
      why = "set_routes: each rule must be a map with match, name, op, value and target";
      return false;
    }
    Route r;
    if (!route_from_args(item.fields(), r, why)) return false;
    out.push_back(r);
  }
  return true;
}

Value routes_value(const std::vector<Route>& routes) {
  List items;
  for (const Route& r : routes) items.push_back(route_value(r));
  return Value::of_list(std::move(items));
}

// ---- address ranges ------------------------------------------------------------------------

bool parse_cidr(const std::string& text, Cidr& out, std::string& why) {
  std::string addr = text;
  int prefix = -1;
  size_t slash = text.find('/');
  if (slash != std::string::npos) {
    addr = text.substr(0, slash);
    std::string p = text.substr(slash + 1);
    if (p.empty() || p.size() > 3 || !std::all_of(p.begin(), p.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
      why = "route: \"" + text + "\" is not an address range (expected 10.0.0.0/8 or 2001:db8::/32)";
      return false;
    }
    prefix = std::stoi(p);
  }
  out = Cidr{};
  if (::inet_pton(AF_INET, addr.c_str(), out.addr.data()) == 1) {
    out.v6 = false;
    out.prefix = prefix < 0 ? 32 : prefix;
    if (out.prefix > 32) {
      why = "route: \"" + text + "\": an IPv4 prefix is at most /32";
      return false;
    }
  } else if (::inet_pton(AF_INET6, addr.c_str(), out.addr.data()) == 1) {
    out.v6 = true;
    out.prefix = prefix < 0 ? 128 : prefix;
    if (out.prefix > 128) {
      why = "route: \"" + text + "\": an IPv6 prefix is at most /128";
      return false;
    }
  } else {
    why = "route: \"" + text + "\" is not an address range (expected 10.0.0.0/8 or 2001:db8::/32)";
    return false;
  }
  return true;
}

std::string ipv4_regex(const Cidr& c) {
  // Each octet is fixed (inside the prefix), any value (outside it), or, for the octet the
  // prefix ends in, one of the 2^k values that share its leading bits.
  std::string out;
  for (int i = 0; i < 4; ++i) {
    if (i) out += "\\.";
    int bits = std::clamp(c.prefix - 8 * i, 0, 8);
    if (bits == 8) {
      out += std::to_string(c.addr[i]);
    } else if (bits == 0) {
      out += "[0-9]{1,3}";
    } else {
      int base = c.addr[i] & (0xff << (8 - bits)) & 0xff;
      int span = 1 << (8 - bits);
      out += "(?:";
      for (int v = base + span - 1; v >= base; --v) out += std::to_string(v) + (v > base ? "|" : "");
      out += ")";
    }
  }
  return out;
}

// ---- weights -------------------------------------------------------------------------------

double share_of(double canary_weight_sum, double stable_weight_sum) {
  double total = canary_weight_sum + stable_weight_sum;
  return total > 0 ? 100.0 * canary_weight_sum / total : 0;
}

Split best_split(int canary_servers, int stable_servers, double percent, int max_weight) {
  const int hundred = std::min(100, max_weight);
  if (percent <= 0 || (stable_servers > 0 && canary_servers == 0)) return {0, hundred, 0, percent <= 0};
  if (percent >= 100 || stable_servers == 0) return {hundred, 0, 100, percent >= 100};
  const double nc = canary_servers, ns = stable_servers, target = percent / 100.0;
  Split best{1, 1, 0, false};
  double best_err = 2;
  for (int wc = 1; wc <= max_weight; ++wc) {
    // The stable weight that gives the share exactly, and its integer neighbours.
    double ideal = nc * wc * (1 - target) / (ns * target);
    for (double cand : {std::floor(ideal), std::ceil(ideal)}) {
      int ws = static_cast<int>(std::clamp(cand, 1.0, static_cast<double>(max_weight)));
      double err = std::fabs(nc * wc / (nc * wc + ns * ws) - target);
      if (err < best_err - 1e-12) {
        best_err = err;
        best = {wc, ws, 0, false};
      }
    }
    if (best_err < 1e-12) break;  // the first exact pair is the smallest
  }
  int scale = std::max(1, hundred / std::max(best.canary, best.stable));
  best.canary *= scale;
  best.stable *= scale;
  best.share = share_of(nc * best.canary, ns * best.stable);
  best.exact = best_err < 1e-9;
  return best;
}

// ---- idempotency ---------------------------------------------------------------------------

std::string key_digest(const std::string& key) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char ch : key) {
    h ^= ch;
    h *= 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return std::string(buf, 12);
}

void AppliedKeys::add(const std::string& key) {
  if (key.empty() || !keys_.insert(key).second) return;
  order_.push_back(key);
  if (order_.size() > 4096) {
    keys_.erase(order_.front());
    order_.erase(order_.begin());
  }
}

}  // namespace gray::plugins::gateway
