// SHA-256 (FIPS 180-4): names that must not collide (the idempotency markers the hosts drivers
// leave on a host) and content digests (an image manifest's digest is the hash of its bytes).
#pragma once

#include <string>
#include <string_view>

namespace gray::plugins {

// The digest of `data` as 64 lowercase hex digits.
std::string sha256_hex(std::string_view data);

}  // namespace gray::plugins
