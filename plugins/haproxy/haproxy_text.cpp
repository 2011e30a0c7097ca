#include "plugins/haproxy/haproxy_text.h"

#include <cctype>
#include <cstdio>
#include <sstream>

#include "plugins/http/http.h"

namespace gray::plugins::haproxy {

using gateway::Route;

// ---- servers -------------------------------------------------------------------------------

namespace {

// HAProxy's SRV_ADMF_* flags: forced, inherited (tracking), configured (`disabled`),
// resolver and hostname maintenance; forced and inherited drain.
constexpr int kMaintFlags = 0x01 | 0x02 | 0x04 | 0x20 | 0x40;
constexpr int kDrainFlags = 0x08 | 0x10;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    out.push_back(line);
  }
  return out;
}

std::vector<std::string> words_of(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream in(line);
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

int to_int(const std::string& s) {
  try {
    return std::stoi(s);
  } catch (...) {
    return 0;
  }
}

// One CSV line, with double-quoted fields ("" is a quote inside them).
std::vector<std::string> csv_fields(const std::string& line) {
  std::vector<std::string> out(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        out.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        out.back() += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      out.emplace_back();
    } else {
      out.back() += c;
    }
  }
  return out;
}

}  // namespace

const char* admin_name(Admin a) {
  switch (a) {
    case Admin::Ready: return "ready";
    case Admin::Drain: return "drain";
    case Admin::Maint: return "maint";
  }
  return "?";
}

bool parse_admin(const std::string& s, Admin& out) {
  for (Admin a : {Admin::Ready, Admin::Drain, Admin::Maint})
    if (s == admin_name(a)) {
      out = a;
      return true;
    }
  return false;
}

Admin Server::admin() const {
  if (admin_flags & kMaintFlags) return Admin::Maint;
  if (admin_flags & kDrainFlags) return Admin::Drain;
  return Admin::Ready;
}

bool parse_servers_state(const std::string& text, const std::string& backend, std::vector<Server>& out) {
  out.clear();
  std::vector<std::string> lines = lines_of(text);
  if (lines.empty() || lines[0].empty() || !std::isdigit(static_cast<unsigned char>(lines[0][0]))) return false;
  std::map<std::string, size_t> col;
  for (size_t i = 1; i < lines.size(); ++i) {
    std::vector<std::string> w = words_of(lines[i]);
    if (w.empty()) continue;
    if (w[0] == "#") {
      for (size_t k = 1; k < w.size(); ++k) col[w[k]] = k - 1;
      continue;
    }
    for (const char* need : {"be_name", "srv_name", "srv_op_state", "srv_admin_state", "srv_uweight"})
      if (!col.count(need)) return false;
    auto field = [&](const char* name) -> std::string {
      auto it = col.find(name);
      return it != col.end() && it->second < w.size() ? w[it->second] : "";
    };
    if (field("be_name") != backend) continue;
    Server s;
    s.name = field("srv_name");
    s.addr = field("srv_addr");
    s.port = to_int(field("srv_port"));
    s.op_state = to_int(field("srv_op_state"));
    s.admin_flags = to_int(field("srv_admin_state"));
    s.weight = to_int(field("srv_uweight"));
    out.push_back(s);
  }
  return !col.empty();
}

bool parse_stat_csv(const std::string& text, std::vector<std::map<std::string, std::string>>& rows) {
  rows.clear();
  std::vector<std::string> lines = lines_of(text);
  if (lines.empty() || lines[0].rfind("# ", 0) != 0) return false;
  std::vector<std::string> header = csv_fields(lines[0].substr(2));
  for (size_t i = 1; i < lines.size(); ++i) {
    if (lines[i].empty()) continue;
    std::vector<std::string> f = csv_fields(lines[i]);
    std::map<std::string, std::string> row;
    for (size_t k = 0; k < header.size() && k < f.size(); ++k) row[header[k]] = f[k];
    rows.push_back(std::move(row));
  }
  return true;
}

// ---- map entries ---------------------------------------------------------------------------

bool parse_map_listing(const std::string& text, std::vector<MapEntry>& out) {
  out.clear();
  for (const std::string& line : lines_of(text)) {
    if (line.empty()) continue;
    if (line.rfind("0x", 0) != 0) return false;
    size_t a = line.find(' ');
    size_t b = a == std::string::npos ? std::string::npos : line.find(' ', a + 1);
    if (b == std::string::npos) return false;
    out.push_back({line.substr(0, a), line.substr(a + 1, b - a - 1), line.substr(b + 1)});
  }
  return true;
}

namespace {

const std::string kMarker = "(?m)(?#gray1.";
const std::string kBlank = "[\\x20\\t]*";
const std::string kLineEnd = "\\r?$";

// Every character but letters and digits written as \xHH: a literal in any PCRE context, and
// never a space or semicolon, which the runtime API would split on.
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

// Where the unescaped ^ and $ and top-level | of a user's expression are.
struct Shape {
  bool starts = false, ends = false, inner_anchor = false, alternation = false;
};

Shape shape_of(const std::string& re) {
  Shape s;
  int depth = 0;
  bool in_class = false;
  for (size_t i = 0; i < re.size(); ++i) {
    char c = re[i];
    if (c == '\\') {
      ++i;
      continue;
    }
    if (in_class) {
      if (c == ']') in_class = false;
      continue;
    }
    if (c == '[') {
      in_class = true;
      if (i + 1 < re.size() && re[i + 1] == '^') ++i;
      if (i + 1 < re.size() && re[i + 1] == ']') ++i;
    } else if (c == '(') {
      ++depth;
    } else if (c == ')') {
      --depth;
    } else if (c == '|' && depth == 0) {
      s.alternation = true;
    } else if (c == '^') {
      (i == 0 ? s.starts : s.inner_anchor) = true;
    } else if (c == '$') {
      (i + 1 == re.size() ? s.ends : s.inner_anchor) = true;
    }
  }
  return s;
}

// The user's expression placed inside gray's pattern, where `^` and `$` keep their meaning of
// the start and end of the header or cookie value.
bool embed(const std::string& re, const std::string& any_before, const std::string& value_end, std::string& out,
           std::string& why) {
  Shape s = shape_of(re);
  if (s.inner_anchor || (s.alternation && (s.starts || s.ends))) {
    why = "route: in \"" + re + "\", ^ and $ may only start and end the expression (group alternatives: ^(?:a|b)$)";
    return false;
  }
  std::string body = re.substr(s.starts ? 1 : 0, re.size() - (s.starts ? 1 : 0) - (s.ends ? 1 : 0));
  out = (s.starts ? "" : any_before) + "(?:" + body + ")" + (s.ends ? value_end : "");
  return true;
}

bool ip_pattern(const Route& r, std::string& out, std::string& why) {
  std::string alts;
  for (const std::string& range : r.ranges()) {
    gateway::Cidr c;
    if (!gateway::parse_cidr(range, c, why)) return false;
    if (c.v6) {
      why = "route: the haproxy driver routes IPv4 ranges only; \"" + range + "\" is IPv6";
      return false;
    }
    alts += (alts.empty() ? "" : "|") + gateway::ipv4_regex(c);
  }
  // Clients on an IPv6 listener show IPv4 addresses in their mapped form.
  out = "\\Agray\\x2dsrc:\\x20(?:\\x3a\\x3affff\\x3a)?(?:" + alts + ")" + kLineEnd;
  return true;
}

bool header_pattern(const Route& r, std::string& out, std::string& why) {
  std::string head = "^(?i:" + literal(r.name) + "):" + kBlank;
  if (r.op == "==") {
    out = head + literal(r.value) + kBlank + kLineEnd;
    return true;
  }
  std::string body;
  if (!embed(r.value, "[^\\r\\n]*?", kBlank + kLineEnd, body, why)) return false;
  out = head + body;
  return true;
}

bool cookie_pattern(const Route& r, std::string& out, std::string& why) {
  std::string head = "^(?i:cookie):(?:[^\\r\\n]*;)?" + kBlank + literal(r.name) + "=";
  std::string end = kBlank + "(?:;|" + kLineEnd + ")";
  if (r.op == "==") {
    out = head + literal(r.value) + end;
    return true;
  }
  std::string body;
  if (!embed(r.value, "[^;\\r\\n]*?", end, body, why)) return false;
  out = head + body;
  return true;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out(1);
  for (char c : s) {
    if (c == sep) out.emplace_back();
    else out.back() += c;
  }
  return out;
}

}  // namespace

bool route_entry(const Route& r, const std::string& digest, std::string& key, std::string& why) {
  if (r.value.find_first_of(" \t;") != std::string::npos && r.op == "~") {
    // Spaces and semicolons would need CLI escapes that HAProxy keeps in regex keys: write
    // them as \x20 and \x3b instead.
    why = "route: write spaces and semicolons in a regular expression as \\x20 and \\x3b";
    return false;
  }
  std::string pattern;
  bool ok = r.match == "ip" ? ip_pattern(r, pattern, why) : r.match == "header" ? header_pattern(r, pattern, why) : cookie_pattern(r, pattern, why);
  if (!ok) return false;
  key = kMarker + r.match + "." + (r.op == "~" ? "re" : "eq") + "." + http::base64_encode(r.name) + "." +
        http::base64_encode(r.value) + "." + digest + ")" + pattern;
  return true;
}

std::optional<GrayEntry> read_gray_entry(const MapEntry& e) {
  if (e.key.rfind(kMarker, 0) != 0) return std::nullopt;
  size_t close = e.key.find(')', kMarker.size());
  if (close == std::string::npos) return std::nullopt;
  std::vector<std::string> parts = split(e.key.substr(kMarker.size(), close - kMarker.size()), '.');
  if (parts.size() != 5) return std::nullopt;
  GrayEntry g;
  g.route.match = parts[0];
  g.route.op = parts[1] == "re" ? "~" : "==";
  if (!http::base64_decode(parts[2], g.route.name) || !http::base64_decode(parts[3], g.route.value)) return std::nullopt;
  g.route.target = e.value;
  g.digest = parts[4];
  g.key = e.key;
  return g;
}

}  // namespace gray::plugins::haproxy
