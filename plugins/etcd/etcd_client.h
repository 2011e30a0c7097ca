// etcd v3 through its JSON gateway (/v3/kv/range, /v3/kv/txn, /v3/lease/*): keys and values go
// base64-encoded, 64-bit numbers come back as strings. One client per thread; it fails over
// between the configured endpoints and authenticates with a user name and password when asked.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "plugins/http/http.h"

namespace gray::plugins::etcd {

struct KeyValue {
  std::string key;
  std::string value;
  long long create_revision = 0;
  long long mod_revision = 0;
  long long lease = 0;
};

// What an exchange with etcd came to.
struct Reply {
  enum class Kind {
    Ok,
    Refused,      // etcd answered with an error: permission denied, bad request, lease not found
    Unreachable,  // no endpoint answered (refused, timeout)
    Garbage,      // an answer that is not the gateway's JSON
  };
  Kind kind = Kind::Ok;
  nlohmann::json body;
  std::string message;  // for people: what went wrong (the caller names the server and the request)

  bool ok() const { return kind == Kind::Ok; }
};

struct ClientConfig {
  std::vector<std::string> endpoints;  // base URLs without a trailing slash
  std::string username;                // empty: no authentication
  std::string password;
};

class Client {
 public:
  Client(ClientConfig config, std::function<void(double ms)> sleep);

  // One POST to the gateway. Authenticates first when a user is configured, and once more when
  // etcd says the token is no longer valid.
  Reply post(const std::string& path, const nlohmann::json& body, double timeout_ms);

  // Keys equal to `key`, or starting with it when `prefix`.
  Reply range(const std::string& key, bool prefix, double timeout_ms, std::vector<KeyValue>& out);
  Reply grant(long long ttl_seconds, double timeout_ms, long long& lease);
  // `ttl` is 0 when the lease no longer exists.
  Reply keepalive(long long lease, double timeout_ms, long long& ttl);
  // The keys the lease holds; `ttl` is -1 when the lease no longer exists.
  Reply lease_keys(long long lease, double timeout_ms, long long& ttl, std::vector<std::string>& keys);
  Reply revoke(long long lease, double timeout_ms);

  struct Compare {
    std::string key;
    long long mod_revision = 0;  // 0: the key must not exist
  };
  struct Op {
    bool put = true;  // false: delete the key
    std::string key;
    std::string value;
    long long lease = 0;
  };
  // Applies `ops` only if every compare holds. `succeeded` tells which.
  Reply txn(const std::vector<Compare>& compares, const std::vector<Op>& ops, double timeout_ms, bool& succeeded);

  // "etcd at http://127.0.0.1:2379" (the endpoint in use), for messages.
  std::string where() const;

 private:
  Reply send(const std::string& path, const nlohmann::json& body, double timeout_ms);
  Reply authenticate(double timeout_ms);

  ClientConfig config_;
  http::Client http_;
  size_t current_ = 0;
  std::string token_;
};

// The smallest key greater than every key starting with `prefix` (etcd's range_end for a prefix).
std::string prefix_end(const std::string& prefix);
// etcd's 64-bit numbers arrive as strings; 0 for anything else.
long long as_int(const nlohmann::json& j);

}  // namespace gray::plugins::etcd
