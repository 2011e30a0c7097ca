// Image references as the images operations take them ("2.4.1", "team/app:2.4.1",
// "team/app@sha256:...", "registry.example.com:5000/team/app:2.4.1"), read against the driver's
// configured repository and registry. See README.md here for the rules.
#pragma once

#include <string>

namespace gray::plugins::docker_registry {

struct ImageRef {
  std::string repository;  // "team/app"
  std::string tag;         // "2.4.1"; empty when the reference is a digest
  std::string digest;      // "sha256:<hex>"; empty when the reference is a tag

  // What goes after /manifests/: the digest when there is one, else the tag.
  const std::string& reference() const { return digest.empty() ? tag : digest; }
  // "team/app:2.4.1" or "team/app@sha256:...", for messages.
  std::string shown() const { return repository + (digest.empty() ? ":" + tag : "@" + digest); }
};

// Reads `text`. `default_repository` serves a bare tag or digest; `registry_host` ("host:port" of
// the driver's URL) is the only registry a full reference may name. False, with a message for
// people in `error`, when `text` is not a reference this driver can look up.
bool parse_image_ref(const std::string& text, const std::string& default_repository, const std::string& registry_host,
                     ImageRef& out, std::string& error);

// The distribution spec's grammar: path components of [a-z0-9] separated by '.', '_', '__' or
// runs of '-'; at most 255 characters in all.
bool valid_repository(const std::string& name);
// [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
bool valid_tag(const std::string& tag);
// "sha256:" and 64 hex digits, or "sha512:" and 128 (lower case).
bool valid_digest(const std::string& digest);

// "host:port" (lower case) of an http(s) URL, "" when there is none.
std::string url_authority(const std::string& url);

}  // namespace gray::plugins::docker_registry
