// A client of HAProxy's runtime API (the "stats socket" CLI), over a unix socket or TCP. It
// keeps one connection open in `prompt` mode, so that a command costs one round trip instead
// of a connect, and reconnects when HAProxy has closed it (the CLI closes idle connections
// after `stats timeout`, 10s by default).
#pragma once

#include <string>

namespace gray::plugins::haproxy {

class RuntimeApi {
 public:
  // Exactly one of `socket_path` and `address` ("host:port") is non-empty.
  RuntimeApi(std::string socket_path, std::string address);
  ~RuntimeApi();
  RuntimeApi(const RuntimeApi&) = delete;
  RuntimeApi& operator=(const RuntimeApi&) = delete;

  struct Reply {
    bool delivered = false;  // HAProxy answered; `text` is its answer
    std::string text;        // the answer without the prompt, trailing newlines removed
    std::string error;       // when not delivered: what went wrong, for people
  };

  // Sends one command line and reads HAProxy's answer. A command that fails on a connection
  // HAProxy had already closed is sent again on a fresh one when that cannot apply it twice:
  // when it never reached HAProxy, or when `repeatable` says applying it twice is harmless.
  Reply run(const std::string& command, bool repeatable, double timeout_ms);

  // "haproxy at /run/haproxy.sock" or "haproxy at 127.0.0.1:9999", for messages.
  std::string where() const;
  // A command argument as the CLI needs it: backslashes, spaces and semicolons escaped.
  static std::string escape(const std::string& arg);

 private:
  enum class Attempt { Done, NotSent, NoAnswer };
  Attempt attempt(const std::string& line, double deadline_ms, Reply& reply);
  bool open(double deadline_ms, std::string& error);
  void close();
  bool closed_by_peer() const;
  bool send_all(const std::string& data, double deadline_ms, std::string& error);
  // Reads until the prompt that ends an answer. `got_any` says whether any byte came.
  bool read_answer(double deadline_ms, std::string& out, bool& got_any, std::string& error);

  std::string socket_path_;
  std::string address_;
  int fd_ = -1;
};

}  // namespace gray::plugins::haproxy
