// Paused self-registration in registries that have no flag a node's agent could watch (Nacos,
// Consul, Eureka): gray keeps the instance out itself. While an instance is paused, whenever it
// shows up again (its node re-registered it), the driver's keeper takes it out at once (disable,
// maintenance, OUT_OF_SERVICE) and remembers that it did; resume lets it back in. The pause lives
// as long as the driver, that is, for the gray process that made it.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "plugins/registry/registry.h"

namespace gray::plugins::registry {

class Holds {
 public:
  struct Item {
    InstanceRef ref;
    bool seen_absent = false;  // it was out of the registry since the pause: a return is a re-registration
    bool held = false;         // gray took it out and must let it back in on resume
  };

  bool paused(const std::string& name) const;
  void pause(const InstanceRef& ref, bool absent_now, bool held_now);
  // Ends the pause; the item says whether gray is holding the instance out.
  std::optional<Item> resume(const std::string& name);
  std::vector<Item> items() const;
  void update(const std::string& name, bool seen_absent, bool held);

  // Held while taking an instance out or letting it back in, by the keeper and by pause/resume
  // calls alike, so a resume cannot slip between the keeper's look and its hold.
  std::unique_lock<std::mutex> lock_io() { return std::unique_lock<std::mutex>(io_mu_); }

 private:
  std::mutex io_mu_;
  mutable std::mutex mu_;
  std::map<std::string, Item> items_;
};

}  // namespace gray::plugins::registry
