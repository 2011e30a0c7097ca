// Content digests, the form registries use: a manifest's digest is the hash of its exact bytes.
// Used when a registry answers without a Docker-Content-Digest header, and by the tests to push
// blobs.
#pragma once

#include <string>
#include <string_view>

#include "plugins/sha256.h"

namespace gray::plugins::docker_registry {

using plugins::sha256_hex;

// "sha256:<hex>".
inline std::string content_digest(std::string_view data) { return "sha256:" + sha256_hex(data); }

}  // namespace gray::plugins::docker_registry
