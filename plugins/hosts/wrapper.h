// The shell wrapper both hosts drivers run a command through, on this machine (local) or on the
// target host (ssh), and the reading of its report.
//
// The wrapper (a POSIX sh script, given as `sh -c SCRIPT gray-run ARGS...`):
//   - with a marker name, looks for STATE_DIR/MARKER: when present the command finished before
//     under the same idempotency key, and the wrapper replays its exit code and output instead
//     of running it again;
//   - runs the command with SHELL -c, stdin from /dev/null, stdout and stderr into files under
//     STATE_DIR (so a daemon the command starts cannot hold gray's pipe or the ssh channel open);
//   - with a limit, ends the command's process group after that many seconds (a timeout on a
//     remote host, where killing the local ssh client would leave the command running);
//   - after the command ends, writes STATE_DIR/MARKER ("EXIT OUTLEN ERRLEN") atomically (a
//     rename), keeping the output next to it in STATE_DIR/MARKER.d;
//   - prints one header line "gray-result NONCE STATUS ..." and then the output bytes.
// Output of login scripts before the header is ignored; the nonce keeps it from posing as one.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "plugins/api.h"

namespace gray::plugins::hosts {

struct WrapperArgs {
  std::string command;
  std::string marker;      // empty: no idempotency marker (no key)
  std::string state_dir;   // empty: $HOME/.gray/done on the host
  std::string shell;       // empty: /bin/sh
  int limit_s = 0;         // 0: no watchdog (the caller kills the process group itself)
  size_t cap = 1u << 20;   // at most this many bytes of each stream come back (the last ones)
  std::string nonce;
  // Exported to the command as GRAY_HOST, GRAY_HOST_ADDR, GRAY_HOST_PORT.
  std::string host, addr;
  int port = 0;
};

// {"/bin/sh", "-c", SCRIPT, "gray-run", ARGS...}: for running the wrapper on this machine.
std::vector<std::string> wrapper_argv(const WrapperArgs& a);
// The same as one line of POSIX shell text (every part quoted), for a remote login shell.
std::string wrapper_command_line(const WrapperArgs& a);

// The marker name for a command with idempotency key `key` on host `host`: the SHA-256 of both,
// so two inventory hosts behind one address (two instances on one machine) keep apart.
std::string marker_name(const std::string& host, const std::string& key);
// 16 random hex digits.
std::string new_nonce();

struct Report {
  enum class Kind {
    Missing,   // no header: the wrapper never ran (ssh could not connect, no /bin/sh)
    Done,      // the command ran now
    Replayed,  // the command had finished before under this key; its result again
    Timeout,   // the wrapper's watchdog ended the command
    Setup,     // the wrapper could not prepare (state directory not writable); see message
    Short,     // the header came but not all of the output (connection lost)
  };
  Kind kind = Kind::Missing;
  int exit_code = 0;
  std::string out, err, message;
};

Report parse_report(const std::string& stdout_text, const std::string& nonce);

// The driver's answer for a Done or Replayed report: Ok with {stdout, stderr, exit_code}, or
// Failed for a non-zero exit ("WHO: exit code 3: first line of stderr"). Output of a command
// that holds a secret is marked secret and kept out of the message.
Result command_result(const Report& r, const std::string& who, bool secret);

// `who: timed out after 10s`.
Result timeout_result(const std::string& who, double timeout_ms);

// The last non-empty line of `text`, trimmed, at most 300 bytes.
std::string last_line(const std::string& text);

}  // namespace gray::plugins::hosts
