#include "plugins/hosts/wrapper.h"

#include <charconv>
#include <random>

#include "plugins/driver.h"
#include "plugins/hosts/quote.h"
#include "plugins/sha256.h"

namespace gray::plugins::hosts {

namespace {

// Arguments: $1 command, $2 marker, $3 state dir, $4 shell, $5 limit (s), $6 cap (bytes),
// $7 nonce, $8 host, $9 addr, ${10} port. Always exits 0: the command's exit code travels in
// the header, so a non-zero exit of the transport (ssh's 255) cannot be mistaken for it.
constexpr const char* kScript = R"SH(cmd=$1 marker=$2 dir=${3:-${HOME:-.}/.gray/done} shell=${4:-/bin/sh} limit=$5 cap=$6 nonce=$7
GRAY_HOST=$8 GRAY_HOST_ADDR=$9 GRAY_HOST_PORT=${10}
export GRAY_HOST GRAY_HOST_ADDR GRAY_HOST_PORT
say() { printf 'gray-result %s %s\n' "$nonce" "$*"; }
number() { case $1 in ''|*[!0-9]*) return 1;; esac; }
emit() {
  o=$4 e=$5
  [ -f "$3/stdout" ] || o=0
  [ -f "$3/stderr" ] || e=0
  if [ "$o" -gt "$cap" ]; then o=$cap; fi
  if [ "$e" -gt "$cap" ]; then e=$cap; fi
  say "$1" "$2" "$o" "$e"
  if [ "$o" -gt 0 ]; then tail -c "$o" "$3/stdout"; fi
  if [ "$e" -gt 0 ]; then tail -c "$e" "$3/stderr"; fi
}
if [ -n "$marker" ] && [ -f "$dir/$marker" ]; then
  read code o e <"$dir/$marker"
  if number "$code" && number "$o" && number "$e"; then emit replayed "$code" "$dir/$marker.d" "$o" "$e"
  else say setup "the marker $dir/$marker is damaged; remove it to run the command again"; fi
  exit 0
fi
mkdir -p "$dir" 2>/dev/null || { say setup "cannot create the state directory $dir"; exit 0; }
if [ -n "$marker" ]; then work=$dir/$marker.d; else work=$dir/run.$nonce; fi
rm -rf "$work"
mkdir "$work" 2>/dev/null || { say setup "cannot create $work"; exit 0; }
late=0
trap 'late=1' TERM
"$shell" -c "$cmd" </dev/null >"$work/stdout" 2>"$work/stderr" &
pid=$!
if [ "$limit" -gt 0 ]; then
  ( n=0
    while [ "$n" -lt "$limit" ] && kill -0 "$pid" 2>/dev/null; do sleep 1; n=$((n+1)); done
    if kill -0 "$pid" 2>/dev/null; then kill -TERM 0; fi ) </dev/null >/dev/null 2>&1 &
fi
wait "$pid"
code=$?
if [ "$late" = 1 ]; then
  kill -KILL "$pid" 2>/dev/null
  if [ -z "$marker" ]; then rm -rf "$work"; fi
  say timeout
  exit 0
fi
o=$(($(wc -c <"$work/stdout")))
e=$(($(wc -c <"$work/stderr")))
if [ -n "$marker" ]; then
  if printf '%s %s %s\n' "$code" "$o" "$e" >"$dir/$marker.tmp" && mv -f "$dir/$marker.tmp" "$dir/$marker"; then :
  else say setup "the command exited with $code but the marker $dir/$marker could not be written"; exit 0; fi
  emit done "$code" "$work" "$o" "$e"
else
  emit done "$code" "$work" "$o" "$e"
  rm -rf "$work"
fi
exit 0
)SH";

std::vector<std::string> script_args(const WrapperArgs& a) {
  return {a.command,         a.marker, a.state_dir, a.shell, std::to_string(a.limit_s), std::to_string(a.cap), a.nonce, a.host,
          a.addr,            std::to_string(a.port)};
}

bool to_int(std::string_view s, long long& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

std::vector<std::string_view> split_spaces(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find(' ', i);
    if (j == std::string_view::npos) j = s.size();
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

// Where the header starts: at the beginning of a line (login scripts may print before it).
size_t find_header(const std::string& text, const std::string& tag) {
  size_t pos = text.find(tag);
  while (pos != std::string::npos && pos != 0 && text[pos - 1] != '\n') pos = text.find(tag, pos + 1);
  return pos;
}

std::string first_line(const std::string& text) {
  size_t start = text.find_first_not_of(" \t\r\n");
  if (start == std::string::npos) return "";
  std::string line = text.substr(start, text.find('\n', start) - start);
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  return line.size() > 300 ? line.substr(0, 300) + "..." : line;
}

}  // namespace

std::vector<std::string> wrapper_argv(const WrapperArgs& a) {
  std::vector<std::string> argv = {"/bin/sh", "-c", kScript, "gray-run"};
  for (std::string& s : script_args(a)) argv.push_back(std::move(s));
  return argv;
}

std::string wrapper_command_line(const WrapperArgs& a) {
  std::string line = "exec /bin/sh -c " + shell_quote(kScript) + " gray-run";
  for (const std::string& s : script_args(a)) line += " " + shell_quote(s);
  return line;
}

std::string marker_name(const std::string& host, const std::string& key) { return sha256_hex(host + "\n" + key); }

std::string new_nonce() {
  static thread_local std::mt19937_64 gen{std::random_device{}()};
  static const char* hex = "0123456789abcdef";
  uint64_t v = gen();
  std::string out;
  for (int i = 0; i < 16; ++i) out += hex[(v >> (4 * i)) & 0xf];
  return out;
}

Report parse_report(const std::string& text, const std::string& nonce) {
  Report r;
  const std::string tag = "gray-result " + nonce + " ";
  size_t pos = find_header(text, tag);
  if (pos == std::string::npos) return r;
  size_t eol = text.find('\n', pos);
  if (eol == std::string::npos) {
    r.kind = Report::Kind::Short;
    return r;
  }
  std::string_view line(text.data() + pos + tag.size(), eol - pos - tag.size());
  std::vector<std::string_view> f = split_spaces(line);
  const std::string_view status = f.empty() ? std::string_view() : f[0];
  if (status == "setup") {
    r.kind = Report::Kind::Setup;
    r.message = std::string(line.substr(std::min(line.size(), size_t(6))));
    return r;
  }
  if (status == "timeout") {
    r.kind = Report::Kind::Timeout;
    return r;
  }
  long long code = 0, out_len = 0, err_len = 0;
  if ((status != "done" && status != "replayed") || f.size() != 4 || !to_int(f[1], code) || !to_int(f[2], out_len) ||
      !to_int(f[3], err_len) || out_len < 0 || err_len < 0) {
    r.kind = Report::Kind::Short;
    r.message = "unreadable result line: " + std::string(line.substr(0, 200));
    return r;
  }
  const size_t body = eol + 1;
  if (text.size() - body < static_cast<size_t>(out_len + err_len)) {
    r.kind = Report::Kind::Short;
    return r;
  }
  r.kind = status == "done" ? Report::Kind::Done : Report::Kind::Replayed;
  r.exit_code = static_cast<int>(code);
  r.out = text.substr(body, static_cast<size_t>(out_len));
  r.err = text.substr(body + static_cast<size_t>(out_len), static_cast<size_t>(err_len));
  return r;
}

Result command_result(const Report& rep, const std::string& who, bool secret) {
  Result r = ok_result(Value::of_map({{"exit_code", Value::number(rep.exit_code)},
                                      {"stdout", Value::string(rep.out, secret)},
                                      {"stderr", Value::string(rep.err, secret)}}));
  r.replayed = rep.kind == Report::Kind::Replayed;
  if (rep.exit_code != 0) {
    r.status = Result::Status::Failed;
    r.message = who + ": exit code " + std::to_string(rep.exit_code);
    std::string detail = first_line(rep.err);
    if (secret) r.message += " (output withheld: the command holds a secret)";
    else if (!detail.empty()) r.message += ": " + detail;
    if (r.replayed) r.message += " (the result of the earlier run under the same key; not run again)";
  }
  return r;
}

Result timeout_result(const std::string& who, double timeout_ms) {
  return error_result(who + ": timed out after " + format_duration(timeout_ms));
}

std::string last_line(const std::string& text) {
  size_t end = text.find_last_not_of(" \t\r\n");
  if (end == std::string::npos) return "";
  size_t start = text.rfind('\n', end);
  start = start == std::string::npos ? 0 : start + 1;
  std::string line = text.substr(start, end + 1 - start);
  return line.size() > 300 ? line.substr(0, 300) + "..." : line;
}

}  // namespace gray::plugins::hosts
