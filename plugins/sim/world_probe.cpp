// HTTP and TCP probes that gray itself makes, answered by the simulated world: a URL naming a
// host asks that host; any other URL goes through a gateway, which applies its routing rules to
// the probe's headers, cookies and client address before the weighted split.
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>

#include "plugins/sim/args.h"
#include "plugins/sim/world.h"

namespace gray::sim {

using namespace detail;

namespace {

struct Url {
  std::string host;
  int port = 0;
  std::string path = "/";
};

bool parse_url(const std::string& s, Url& u) {
  size_t scheme = s.find("://");
  if (scheme == std::string::npos) return false;
  std::string rest = s.substr(scheme + 3);
  size_t slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  if (slash != std::string::npos) u.path = rest.substr(slash, rest.find_first_of("?#", slash) - slash);
  size_t colon = hostport.rfind(':');
  u.port = s.compare(0, scheme, "https") == 0 ? 443 : 80;
  if (colon != std::string::npos) {
    try {
      u.port = std::stoi(hostport.substr(colon + 1));
    } catch (...) {
      return false;
    }
    hostport = hostport.substr(0, colon);
  }
  u.host = hostport;
  return !u.host.empty();
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t"), b = s.find_last_not_of(" \t");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

bool ipv4(const std::string& s, std::uint32_t& out) {
  unsigned a, b, c, d;
  char tail;
  if (std::sscanf(s.c_str(), "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) != 4 || a > 255 || b > 255 || c > 255 || d > 255)
    return false;
  out = (a << 24) | (b << 16) | (c << 8) | d;
  return true;
}

// "10.20.0.0/16" or a plain address; several separated by commas.
bool in_ranges(const std::string& ip, const std::string& ranges) {
  std::uint32_t addr;
  if (!ipv4(ip, addr)) return false;
  size_t start = 0;
  while (start <= ranges.size()) {
    size_t comma = ranges.find(',', start);
    std::string range = trim(ranges.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    size_t slash = range.find('/');
    std::uint32_t net;
    int bits = slash == std::string::npos ? 32 : std::atoi(range.c_str() + slash + 1);
    if (ipv4(range.substr(0, slash), net) && bits >= 0 && bits <= 32) {
      std::uint32_t mask = bits == 0 ? 0 : ~std::uint32_t{0} << (32 - bits);
      if ((addr & mask) == (net & mask)) return true;
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return false;
}

bool value_matches(const Route& r, const std::string& value) {
  if (r.op == "==") return value == r.value;
  try {
    return std::regex_search(value, std::regex(r.value));
  } catch (const std::regex_error&) {
    return false;
  }
}

std::string fill(std::string body, const std::string& key, const std::string& value) {
  for (size_t at = body.find(key); at != std::string::npos; at = body.find(key, at + value.size()))
    body.replace(at, key.size(), value);
  return body;
}

Result http_answer(int status, std::string body) {
  Result r = ok(Value::of_map({{"status", Value::number(status)}, {"body", Value::string(std::move(body))}}));
  if (status < 200 || status > 299) {
    r.status = Result::Status::Failed;
    r.message = "HTTP " + std::to_string(status);
  }
  return r;
}

}  // namespace

const CallFault* World::pick_fault(const std::string& kind, const std::string& instance, const std::string& op, double& latency) {
  latency = sc_.call_latency_ms;
  bool latency_set = false;
  const CallFault* fault = nullptr;
  for (const CallFault& f : sc_.call_faults) {
    if (!f.matches(kind, instance, op) || !f.when.contains(now_)) continue;
    if (f.latency_ms && !latency_set) {
      latency = *f.latency_ms;
      latency_set = true;
    }
    if (!fault && f.error_probability > 0 && (f.error_probability >= 1 || uniform() < f.error_probability)) fault = &f;
  }
  return fault;
}

Result World::probe_http(const std::string& url, const std::vector<std::string>& headers, double timeout_ms, double now) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  advance_to(now);
  double latency = 0;
  const CallFault* fault = pick_fault("probe", "http", "http", latency);
  auto finish = [&](Result r) {
    r.elapsed_ms = std::min(latency, timeout_ms);
    if (latency > timeout_ms) {
      r = error("GET " + url + ": timed out after " + format_duration(timeout_ms));
      r.elapsed_ms = timeout_ms;
    }
    return r;
  };
  if (fault)
    return finish(error(fault->message.empty() ? "GET " + url + ": connection failed (simulated fault)" : fault->message));
  Url u;
  if (!parse_url(url, u)) return finish(error("bad URL \"" + url + "\""));

  std::map<std::string, std::string> hdr, cookies;
  for (const std::string& h : headers) {
    size_t colon = h.find(':');
    if (colon == std::string::npos) continue;
    hdr[lower(trim(h.substr(0, colon)))] = trim(h.substr(colon + 1));
  }
  if (hdr.count("cookie")) {
    std::string jar = hdr["cookie"];
    size_t start = 0;
    while (start < jar.size()) {
      size_t semi = jar.find(';', start);
      std::string kv = trim(jar.substr(start, semi == std::string::npos ? std::string::npos : semi - start));
      size_t eq = kv.find('=');
      if (eq != std::string::npos) cookies[kv.substr(0, eq)] = kv.substr(eq + 1);
      if (semi == std::string::npos) break;
      start = semi + 1;
    }
  }
  const std::string client_ip = hdr.count("x-forwarded-for") ? hdr["x-forwarded-for"] : sc_.client_ip;

  int target = find_host(u.host + ":" + std::to_string(u.port));
  if (target < 0) target = find_host(u.host);
  if (target < 0) {
    // Not a host: a public name in front of a gateway.
    Gateway* g = nullptr;
    auto ep = sc_.endpoints.find(u.host);
    if (ep != sc_.endpoints.end())
      g = find_gateway(ep->second);
    else
      for (Gateway& cand : gateways_)
        if (!cand.servers.empty()) {
          g = &cand;
          break;
        }
    if (!g) return finish(error("GET " + url + ": could not resolve host " + u.host));
    std::string group;
    for (const Route& r : g->routes) {
      bool hit = r.match == "ip"       ? in_ranges(client_ip, r.value)
                 : r.match == "header" ? hdr.count(lower(r.name)) && value_matches(r, hdr[lower(r.name)])
                                       : cookies.count(r.name) && value_matches(r, cookies[r.name]);
      if (hit) {
        group = r.target;
        break;
      }
    }
    bool weighted = group.empty();
    if (weighted) group = uniform() < g->canary_percent / 100.0 ? "canary" : "stable";
    std::vector<const Server*> pick;
    auto collect = [&](const std::string& grp) {
      for (const Server& s : g->servers) {
        if (!in_rotation(*g, s)) continue;
        bool in = grp == "canary" || grp == "stable"
                      ? s.canary == (grp == "canary")
                      : (s.host < 0 ? sc_.version : hosts_[static_cast<size_t>(s.host)].version) == grp;
        if (in) pick.push_back(&s);
      }
    };
    collect(group);
    if (pick.empty() && weighted) collect(group == "canary" ? "stable" : "canary");
    if (g->spec.redispatch) {
      std::vector<const Server*> live;
      for (const Server* s : pick)
        if (s->host < 0 || hosts_[static_cast<size_t>(s->host)].serving()) live.push_back(s);
      if (!live.empty()) pick.swap(live);
    }
    if (pick.empty()) return finish(http_answer(503, "no server available"));
    size_t i = std::min(pick.size() - 1, static_cast<size_t>(uniform() * static_cast<double>(pick.size())));
    target = pick[i]->host;
  }

  const Host* h = target >= 0 ? &hosts_[static_cast<size_t>(target)] : nullptr;
  if (h && !h->serving()) return finish(http_answer(503, "service unavailable"));
  const VersionPoint& p = behaviour_of(target, now_);
  if (!p.healthy) return finish(http_answer(503, "unhealthy"));
  if (uniform() < p.error_rate) return finish(http_answer(500, "internal server error"));
  auto tpl = sc_.responses.find(u.path);
  std::string body = tpl != sc_.responses.end()
                         ? tpl->second
                         : "{\"status\":\"ok\",\"host\":\"${host}\",\"version\":\"${version}\",\"mode\":\"${mode}\"}";
  body = fill(body, "${host}", h ? h->name : u.host);
  body = fill(body, "${version}", h ? h->version : sc_.version);
  body = fill(body, "${mode}", h ? h->mode : "");
  return finish(http_answer(200, body));
}

Result World::probe_tcp(const std::string& address, double timeout_ms, double now) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  advance_to(now);
  double latency = 0;
  const CallFault* fault = pick_fault("probe", "tcp", "tcp", latency);
  Result r;
  int target = find_host(address);
  if (target < 0) target = find_host(address.substr(0, address.rfind(':')));
  if (fault)
    r = error(fault->message.empty() ? "connect " + address + ": failed (simulated fault)" : fault->message);
  else if (target < 0)
    r = error("connect " + address + ": could not resolve");
  else if (!hosts_[static_cast<size_t>(target)].serving())
    r = failed("connect " + address + ": connection refused");
  else
    r = ok(Value::boolean(true));
  r.elapsed_ms = std::min(latency, timeout_ms);
  return r;
}

}  // namespace gray::sim
