#include "plugins/registry/holds.h"

namespace gray::plugins::registry {

bool Holds::paused(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  return items_.count(name) > 0;
}

void Holds::pause(const InstanceRef& ref, bool absent_now, bool held_now) {
  std::lock_guard<std::mutex> lock(mu_);
  items_[ref.name] = Item{ref, absent_now || held_now, held_now};
}

std::optional<Holds::Item> Holds::resume(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = items_.find(name);
  if (it == items_.end()) return std::nullopt;
  Item item = it->second;
  items_.erase(it);
  return item;
}

std::vector<Holds::Item> Holds::items() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Item> out;
  for (const auto& [name, item] : items_) out.push_back(item);
  return out;
}

void Holds::update(const std::string& name, bool seen_absent, bool held) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = items_.find(name);
  if (it == items_.end()) return;  // resumed meanwhile
  it->second.seen_absent = seen_absent;
  it->second.held = held;
}

}  // namespace gray::plugins::registry
