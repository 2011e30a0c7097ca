// One external plugin process and the conversation with it: start and handshake, one request
// line out and one response line back at a time, the plugin's stderr forwarded as notes, and
// stopping it (or killing it when it hangs, dies or writes garbage; the next request starts it
// again).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "plugins/external/protocol.h"
#include "plugins/hosts/subprocess.h"

namespace gray::plugins::external {

struct LinkSettings {
  Kind kind = Kind::Gateway;
  std::string instance;
  std::vector<std::string> argv;  // program (resolved) and arguments
  std::string cwd;
  std::string shown_command;      // for messages: the command with secrets hidden
  nlohmann::json config;          // passed in the handshake
  std::vector<std::string> config_secret_pointers, secret_texts;
  std::function<void(const std::string&)> note;
  double hello_timeout_ms = 10000;
  double stop_grace_ms = 2000;    // after closing stdin, before SIGTERM
};

class Link {
 public:
  explicit Link(LinkSettings s) : s_(std::move(s)) {}
  ~Link() { stop(); }
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;

  // Starts the plugin and shakes hands unless it is running. False and `error` otherwise.
  bool ensure_started(std::string& error);
  // Sends `request` (given an id here) and returns the matching response object, or nullopt and
  // `error` ("did not answer weight within 5s", "exited with code 3 during weight", "wrote
  // something that is not a protocol message: ..."). Any failure stops the plugin.
  std::optional<nlohmann::json> exchange(nlohmann::json request, double timeout_ms, std::string& error);
  // Closes its stdin, waits for it to exit, then ends it.
  void stop();

  bool running() const { return running_; }
  const Hello& hello() const { return hello_; }
  // How often the plugin was started (1 after the first start).
  int starts() const { return starts_; }
  const std::string& who() const { return who_; }
  std::vector<std::string>& secret_texts() { return s_.secret_texts; }

 private:
  enum class Read { Line, Timeout, Closed, TooLong };
  bool start(std::string& error);
  bool write_line(const std::string& line, double deadline_ms, std::string& error);
  Read read_line(double deadline_ms, std::string& line);
  void pump_stderr(bool final_flush);
  void forward(const std::string& line);
  std::string death_notice(const std::string& during);
  void kill_now();
  double now_ms() const;

  LinkSettings s_;
  std::string who_ = "plugin " + s_.instance + " (" + s_.shown_command + ")";
  proc::Child child_;
  bool running_ = false;
  Hello hello_;
  long long next_id_ = 1;
  int starts_ = 0;
  std::string out_buf_, err_buf_, last_err_line_;
};

}  // namespace gray::plugins::external
