// One conversation with a Nacos server: the open API's two dialects (v1 plain text and query
// parameters; v2 form bodies and {code,message,data} envelopes), the login token (refreshed
// before it runs out, renewed once when the server answers 403) and the Nacos 3 answer 410 Gone.
// One session per thread.
#pragma once

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "plugins/http/http.h"

namespace gray::plugins::nacos {

using Params = std::vector<std::pair<std::string, std::string>>;

struct SessionConfig {
  std::string base;  // e.g. http://127.0.0.1:8848/nacos
  bool v2 = false;
  std::string username;  // empty: no login
  std::string password;
};

struct Reply {
  enum class Kind { Ok, Refused, Unreachable, Garbage };
  Kind kind = Kind::Ok;
  long status = 0;
  nlohmann::json data;  // reads: the JSON (v2: the envelope's data)
  std::string message;  // for people; the caller names the server and the operation

  bool ok() const { return kind == Kind::Ok; }
};

class Session {
 public:
  enum class Expect {
    Done,     // a write: v1 answers "ok", v2 an envelope whose data is "ok" (source) or true (docs)
    Json,     // a read: v1 JSON, v2 an envelope around it
    RawJson,  // the heartbeat: JSON without an envelope in both versions
  };

  Session(SessionConfig config, std::function<void(double ms)> sleep);

  // `path` below the base, e.g. "/v1/ns/instance". v1 sends parameters in the query string, v2
  // sends those of POST, PUT and DELETE as a form body.
  Reply send(const std::string& method, const std::string& path, Params params, Expect expect, double timeout_ms);
  bool v2() const { return config_.v2; }
  std::string where() const { return "nacos at " + config_.base; }

 private:
  Reply exchange(const std::string& method, const std::string& path, const Params& params, Expect expect, double timeout_ms);
  Reply login(double timeout_ms);
  Reply interpret(const http::Response& resp, const http::Request& req, const std::string& method, const std::string& path,
                  Expect expect) const;

  SessionConfig config_;
  http::Client http_;
  std::string token_;
  std::chrono::steady_clock::time_point refresh_at_{};
};

}  // namespace gray::plugins::nacos
