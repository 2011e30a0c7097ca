// Inventories of the hosts drivers: the same JSON file the simulated hosts read
// (pipelines/inventory/*.json), and the catalog operations (all, tagged, named, count) answered
// from it exactly as the simulated hosts driver answers them.
//
//   {"hosts": [{"name": "app-1", "addr": "10.0.1.11", "port": 8080, "tags": ["stable"],
//               "ssh_port": 2222, "zone": "b"}]}
//
// `name` is required and unique; `addr` defaults to the name; `port` to 0; every other field is
// kept as a string in HostRecord::vars (numbers and booleans as written, anything else as JSON).
#pragma once

#include <string>
#include <vector>

#include "plugins/api.h"

namespace gray::plugins::hosts {

// Reads an inventory file. Throws DriverError naming `instance`, the file and what is wrong.
std::vector<HostRecord> read_inventory(const std::string& instance, const std::string& path);
// The same from JSON text; `where` names the text in messages.
std::vector<HostRecord> parse_inventory(const std::string& instance, const std::string& where, const std::string& text);

// The host called `name`, or null.
const HostRecord* find_host(const std::vector<HostRecord>& hosts, const std::string& name);

// A host as the language sees it: a Host value whose record holds name, addr, port, tags and the
// inventory's other fields.
Value host_value(const HostRecord& h);

// True for the operations the catalog lists for hosts plugins (all, tagged, named, count).
bool is_catalog_op(const std::string& op);
// Answers one of them from `hosts`: a Hosts list for all/tagged/named, a Number for count.
Result catalog_op(const std::vector<HostRecord>& hosts, const Call& call);

}  // namespace gray::plugins::hosts
