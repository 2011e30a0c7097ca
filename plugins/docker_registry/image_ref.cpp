#include "plugins/docker_registry/image_ref.h"

#include <algorithm>
#include <cctype>

namespace gray::plugins::docker_registry {

namespace {

bool lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

bool lower_hex(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// [a-z0-9]+ ((\.|_|__|-+)[a-z0-9]+)*
bool valid_component(const std::string& c) {
  if (c.empty() || !lower_alnum(c.front()) || !lower_alnum(c.back())) return false;
  for (size_t i = 0; i < c.size();) {
    if (lower_alnum(c[i])) {
      ++i;
      continue;
    }
    size_t run = 1;
    if (c[i] == '-') {
      while (i + run < c.size() && c[i + run] == '-') ++run;
    } else if (c[i] == '_') {
      if (i + 1 < c.size() && c[i + 1] == '_') run = 2;
    } else if (c[i] != '.') {
      return false;
    }
    i += run;
    if (i >= c.size() || !lower_alnum(c[i])) return false;
  }
  return true;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool docker_hub(const std::string& host) {
  return host == "docker.io" || host == "index.docker.io" || host == "registry-1.docker.io";
}

// Docker's rule: the first component of a name with a '/' is a registry host when it has a '.'
// or a ':' or is "localhost".
bool names_host(const std::string& name, std::string& host, std::string& rest) {
  size_t slash = name.find('/');
  if (slash == std::string::npos) return false;
  std::string first = name.substr(0, slash);
  if (first.find_first_of(".:") == std::string::npos && first != "localhost") return false;
  host = lower(first);
  rest = name.substr(slash + 1);
  return true;
}

bool fail(std::string& error, const std::string& text, const std::string& why) {
  error = "\"" + text + "\" is not an image reference this driver can look up: " + why;
  return false;
}

}  // namespace

bool valid_repository(const std::string& name) {
  if (name.empty() || name.size() > 255) return false;
  size_t start = 0;
  for (;;) {
    size_t slash = name.find('/', start);
    if (!valid_component(name.substr(start, slash == std::string::npos ? std::string::npos : slash - start))) return false;
    if (slash == std::string::npos) return true;
    start = slash + 1;
  }
}

bool valid_tag(const std::string& tag) {
  if (tag.empty() || tag.size() > 128) return false;
  auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  if (!word(tag[0])) return false;
  return std::all_of(tag.begin(), tag.end(), [&](char c) { return word(c) || c == '.' || c == '-'; });
}

bool valid_digest(const std::string& digest) {
  if (digest.rfind("sha256:", 0) == 0) return digest.size() == 7 + 64 && lower_hex(digest.substr(7));
  if (digest.rfind("sha512:", 0) == 0) return digest.size() == 7 + 128 && lower_hex(digest.substr(7));
  return false;
}

std::string url_authority(const std::string& url) {
  size_t scheme = url.find("://");
  if (scheme == std::string::npos) return "";
  size_t start = scheme + 3;
  size_t end = url.find_first_of("/?#", start);
  std::string authority = url.substr(start, end == std::string::npos ? std::string::npos : end - start);
  if (size_t at = authority.rfind('@'); at != std::string::npos) authority.erase(0, at + 1);
  return lower(authority);
}

bool parse_image_ref(const std::string& text, const std::string& default_repository, const std::string& registry_host,
                     ImageRef& out, std::string& error) {
  out = ImageRef{};
  if (text.empty()) return fail(error, text, "it is empty");
  if (text.find_first_of(" \t\r\n") != std::string::npos) return fail(error, text, "it contains white space");

  std::string name;
  if (size_t at = text.find('@'); at != std::string::npos) {
    out.digest = text.substr(at + 1);
    name = text.substr(0, at);
    if (!valid_digest(out.digest)) return fail(error, text, "after '@' comes a digest, sha256: and 64 lower-case hex digits");
    // "repo:tag@digest" is allowed by Docker; the digest decides, the tag is only a label.
    size_t slash = name.rfind('/');
    if (size_t colon = name.find(':', slash == std::string::npos ? 0 : slash + 1); colon != std::string::npos) name.erase(colon);
  } else if (valid_digest(text)) {
    out.digest = text;
  } else {
    size_t slash = text.rfind('/');
    size_t colon = text.find(':', slash == std::string::npos ? 0 : slash + 1);
    if (colon != std::string::npos) {
      name = text.substr(0, colon);
      out.tag = text.substr(colon + 1);
      if (name.empty()) return fail(error, text, "nothing before ':'; write REPOSITORY:TAG or just TAG");
    } else if (slash != std::string::npos) {
      return fail(error, text, "it names a repository but no tag; write " + text + ":TAG");
    } else {
      out.tag = text;
    }
    if (!valid_tag(out.tag))
      return fail(
          error, text,
          "\"" + out.tag + "\" is not a valid tag (letters, digits, '_', '.', '-'; at most 128; not starting with '.' or '-')");
  }

  std::string host, rest;
  if (names_host(name, host, rest)) {
    bool same = host == registry_host || (docker_hub(host) && docker_hub(registry_host));
    if (!same) return fail(error, text, "it names the registry " + host + ", but this driver talks to " + registry_host);
    name = rest;
  }
  out.repository = name.empty() ? default_repository : name;
  if (!valid_repository(out.repository))
    return fail(error, text,
                "\"" + out.repository +
                    "\" is not a valid repository name (lower-case letters and digits, with '.', '_', '-' and '/' between them)");
  return true;
}

}  // namespace gray::plugins::docker_registry
