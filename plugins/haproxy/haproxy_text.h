// Reading HAProxy's runtime API answers (`show servers state`, `show stat`, `show map`) and
// writing the map entries that carry gray's routing rules.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "plugins/gateway/common.h"

namespace gray::plugins::haproxy {

// ---- servers -------------------------------------------------------------------------------

enum class Admin { Ready, Drain, Maint };
const char* admin_name(Admin a);
bool parse_admin(const std::string& s, Admin& out);

struct Server {
  std::string name;
  std::string addr;
  int port = 0;
  int op_state = 0;     // 0 stopped, 1 starting, 2 running, 3 stopping
  int admin_flags = 0;  // SRV_ADMF_* bits
  int weight = 0;       // the user weight, 0..256

  Admin admin() const;
  bool takes_traffic() const { return admin() == Admin::Ready && (op_state == 1 || op_state == 2); }
};

// Parses `show servers state <backend>`: a version line, a "# name name ..." header, rows.
// False when the text is not such a table (then it is HAProxy's refusal, such as "Can't find
// backend.").
bool parse_servers_state(const std::string& text, const std::string& backend, std::vector<Server>& out);

// Parses `show stat` CSV: the header line names the columns. Rows as column -> value.
bool parse_stat_csv(const std::string& text, std::vector<std::map<std::string, std::string>>& rows);

// ---- map entries ---------------------------------------------------------------------------

struct MapEntry {
  std::string ref;    // 0x... as shown by `show map`
  std::string key;
  std::string value;
};
// Parses `show map <map>` lines ("0xREF key value"). False when the text is not a listing.
bool parse_map_listing(const std::string& text, std::vector<MapEntry>& out);

// A map entry written by gray: its rule and the digest of the key of the call that added it.
struct GrayEntry {
  gateway::Route route;
  std::string digest;
  std::string key;  // the map key as stored
};
// The key and value of the map entry for a rule: a PCRE pattern matched against
// "gray-src: <client address>\r\n" followed by the request's headers (see README.md), with a
// comment that records the rule itself so that it can be read back.
bool route_entry(const gateway::Route& r, const std::string& digest, std::string& key, std::string& why);
std::optional<GrayEntry> read_gray_entry(const MapEntry& e);

}  // namespace gray::plugins::haproxy
