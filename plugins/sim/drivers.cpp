#include "plugins/sim/drivers.h"

#include <algorithm>

namespace gray::sim {

using plugins::Kind;

namespace {

std::vector<std::string> string_list(const Value& config, const char* field) {
  std::vector<std::string> out;
  auto it = config.fields().find(field);
  if (it != config.fields().end())
    for (const Value& v : it->second.items()) out.push_back(v.text());
  return out;
}

class SimDriver : public plugins::Driver {
 public:
  SimDriver(Kind kind, std::string name, World& world, NowFn now)
      : kind_(kind), name_(std::move(name)), world_(world), now_(std::move(now)) {}
  Kind kind() const override { return kind_; }
  Result call(const Call& c) override { return world_.call(kind_, name_, c, now_()); }

 private:
  Kind kind_;
  std::string name_;
  World& world_;
  NowFn now_;
};

class SimHosts : public plugins::HostsDriver {
 public:
  SimHosts(std::string name, std::vector<std::string> only, World& world, NowFn now)
      : name_(std::move(name)), only_(std::move(only)), world_(world), now_(std::move(now)) {}
  Result call(const Call& c) override { return world_.call(Kind::Hosts, name_, c, now_()); }
  std::vector<plugins::HostRecord> inventory() override {
    std::vector<plugins::HostRecord> all = world_.inventory();
    if (only_.empty()) return all;
    std::erase_if(all,
                  [&](const plugins::HostRecord& h) { return std::find(only_.begin(), only_.end(), h.name) == only_.end(); });
    return all;
  }

 private:
  std::string name_;
  std::vector<std::string> only_;
  World& world_;
  NowFn now_;
};

class SimProber : public plugins::Prober {
 public:
  SimProber(World& world, NowFn now) : world_(world), now_(std::move(now)) {}
  Result http(const std::string& url, const std::vector<std::string>& headers, double timeout_ms) override {
    return world_.probe_http(url, headers, timeout_ms, now_());
  }
  Result tcp(const std::string& address, double timeout_ms) override { return world_.probe_tcp(address, timeout_ms, now_()); }

 private:
  World& world_;
  NowFn now_;
};

}  // namespace

std::unique_ptr<plugins::HostsDriver> make_sim_hosts(const std::string& instance_name, const Value& config, World& world,
                                                     NowFn now) {
  auto inv = config.fields().find("inventory");
  if (inv != config.fields().end() && world.scenario().hosts.empty()) {
    std::string ignored;  // no inventory file: the world has the hosts it has
    world.add_inventory(inv->second.text(), ignored);
  }
  std::vector<std::string> only = string_list(config, "hosts");
  for (const std::string& name : only) {
    HostSpec h;
    h.name = name;
    world.add_host(h);
  }
  return std::make_unique<SimHosts>(instance_name, std::move(only), world, std::move(now));
}

std::unique_ptr<plugins::Driver> make_sim_driver(Kind kind, const std::string& instance_name, const Value& config, World& world,
                                                 NowFn now) {
  switch (kind) {
    case Kind::Gateway:
      world.add_gateway(instance_name, string_list(config, "stable"), string_list(config, "canary"));
      break;
    case Kind::Registry:
      world.add_registry(instance_name);
      break;
    case Kind::Hosts:
      return make_sim_hosts(instance_name, config, world, std::move(now));
    case Kind::Metrics:
    case Kind::Images:
      break;
  }
  return std::make_unique<SimDriver>(kind, instance_name, world, std::move(now));
}

std::unique_ptr<plugins::Prober> make_sim_prober(World& world, NowFn now) {
  return std::make_unique<SimProber>(world, std::move(now));
}

}  // namespace gray::sim
