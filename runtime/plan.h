// `gray plan`: what a run would do, without doing it.
#pragma once

#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "lang/load.h"

namespace gray {

// The plan of a checked pipeline: {"format":"gray-plan","version":1,"stages":[...],...}.
// Throws SetupError for a missing or unknown parameter.
nlohmann::json build_plan(const Project& project, int module, const std::map<std::string, std::string>& params);
std::string render_plan_text(const nlohmann::json& plan);

}  // namespace gray
