// SHA-256 (FIPS 180-4), for content digests: a manifest's digest is the hash of its exact bytes.
// Used when a registry answers without a Docker-Content-Digest header, and by the tests to push
// blobs.
#pragma once

#include <string>
#include <string_view>

namespace gray::plugins::docker_registry {

// The hash as 64 lower-case hex digits.
std::string sha256_hex(std::string_view data);

// "sha256:<hex>", the form registries use.
inline std::string content_digest(std::string_view data) { return "sha256:" + sha256_hex(data); }

}  // namespace gray::plugins::docker_registry
