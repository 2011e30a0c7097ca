// gray fmt: rewrite .gray files in the one canonical layout (lang/format.h).
//
//   gray fmt FILE|DIR...          rewrite the files that are not formatted
//   gray fmt --check FILE|DIR...  list them on stdout and exit 1; change nothing
//   gray fmt --diff FILE|DIR...   print what would change as a unified diff and exit 1
//   gray fmt -                    format standard input to standard output
//
// A file with syntax errors is left alone (its errors go to stderr, exit 1). Before anything is
// written, the output is parsed again and compared with the input's tree and comments: if they
// differ, that is a bug in the formatter, reported as an internal error (exit 3).
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "lang/ast_equal.h"
#include "lang/format.h"
#include "lang/parse.h"
#include "runtime/cli.h"
#include "runtime/version.h"

namespace fs = std::filesystem;

namespace gray {
namespace {

struct FormatError {
  std::string message;
};

std::vector<std::string> comment_texts(const ast::Module& m) {
  std::vector<std::string> out;
  for (const ast::Comment& c : m.comments) {
    std::string t(m.file->slice(c.span));
    while (!t.empty() && (t.back() == ' ' || t.back() == '\t' || t.back() == '\r')) t.pop_back();
    out.push_back(std::move(t));
  }
  return out;
}

// Formats one file's text. Returns false when it has syntax errors (rendered into `diag_text`).
bool format_text(const std::string& display, std::string text, bool color, std::string& formatted, std::string& diag_text) {
  SourceMap sources;
  Diagnostics diags;
  const SourceFile& file = sources.add(display, std::move(text));
  ast::Module m = parse(file, diags);
  if (diags.has_errors()) {
    RenderOptions ro;
    ro.color = color;
    ro.tool_version = kVersion;
    diags.sort();
    diag_text = render_text(sources, diags.list(), ro);
    return false;
  }
  formatted = format_module(m);
  // The formatter must not change what the file means, nor lose a comment.
  Diagnostics again;
  const SourceFile& out_file = sources.add(display + " (formatted)", formatted);
  ast::Module n = parse(out_file, again);
  std::string why;
  if (again.has_errors()) {
    again.sort();
    throw FormatError{"the formatted text of '" + display + "' does not parse: " + again.list().front().message};
  }
  if (!ast::equal(m, n, &why)) throw FormatError{"formatting '" + display + "' would change its meaning: " + why};
  if (comment_texts(m) != comment_texts(n)) throw FormatError{"formatting '" + display + "' would lose or move a comment"};
  return true;
}

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> out;
  size_t b = 0;
  while (b < s.size()) {
    size_t e = s.find('\n', b);
    if (e == std::string::npos) e = s.size();
    out.push_back(s.substr(b, e - b));
    b = e + 1;
  }
  return out;
}

// A unified diff of two texts, three lines of context (Myers' algorithm; for very different
// texts, one hunk that replaces everything).
std::string unified_diff(const std::string& name, const std::string& before, const std::string& after) {
  const std::vector<std::string> a = split_lines(before), b = split_lines(after);
  const int n = static_cast<int>(a.size()), m = static_cast<int>(b.size());
  // ops: ' ' keep, '-' delete from a, '+' insert from b.
  std::string ops;
  const int max_d = std::min(n + m, 4000);
  std::vector<std::vector<int>> trace;
  std::vector<int> v(static_cast<size_t>(2 * max_d + 3), 0);
  const int off = max_d + 1;
  int found = -1;
  for (int d = 0; d <= max_d && found < 0; ++d) {
    trace.push_back(v);
    for (int k = -d; k <= d; k += 2) {
      int x = (k == -d || (k != d && v[static_cast<size_t>(off + k - 1)] < v[static_cast<size_t>(off + k + 1)]))
                  ? v[static_cast<size_t>(off + k + 1)]
                  : v[static_cast<size_t>(off + k - 1)] + 1;
      int y = x - k;
      while (x < n && y < m && a[static_cast<size_t>(x)] == b[static_cast<size_t>(y)]) ++x, ++y;
      v[static_cast<size_t>(off + k)] = x;
      if (x >= n && y >= m) {
        found = d;
        break;
      }
    }
  }
  if (found < 0) {
    ops = std::string(static_cast<size_t>(n), '-') + std::string(static_cast<size_t>(m), '+');
  } else {
    int x = n, y = m;
    for (int d = found; d > 0; --d) {
      const std::vector<int>& pv = trace[static_cast<size_t>(d)];
      int k = x - y;
      int pk = (k == -d || (k != d && pv[static_cast<size_t>(off + k - 1)] < pv[static_cast<size_t>(off + k + 1)])) ? k + 1 : k - 1;
      int px = pv[static_cast<size_t>(off + pk)], py = px - pk;
      while (x > px && y > py) ops += ' ', --x, --y;
      ops += x == px ? '+' : '-';
      x = px, y = py;
    }
    while (x > 0 && y > 0) ops += ' ', --x, --y;
    std::reverse(ops.begin(), ops.end());
  }
  // Hunks with three lines of context.
  // git's a/ and b/ prefixes, for relative paths (patch -p1 applies it).
  const bool relative = !name.empty() && name[0] != '/' && name[0] != '<';
  std::string out = "--- " + std::string(relative ? "a/" : "") + name + "\n+++ " + (relative ? "b/" : "") + name + "\n";
  const int ctx = 3;
  size_t i = 0;
  int ai = 0, bi = 0;  // line numbers (0-based) at ops[i]
  while (i < ops.size()) {
    if (ops[i] == ' ') {
      ++i, ++ai, ++bi;
      continue;
    }
    // A hunk starts `ctx` lines before this change and ends after the last change that is
    // within 2*ctx lines of the next one.
    size_t start = i;
    int back = 0;
    while (start > 0 && back < ctx && ops[start - 1] == ' ') --start, ++back;
    size_t end = i;
    int quiet = 0;
    size_t last_change = i;
    for (size_t j = i; j < ops.size(); ++j) {
      if (ops[j] != ' ') {
        last_change = j;
        quiet = 0;
      } else if (++quiet > 2 * ctx) {
        break;
      }
    }
    end = std::min(ops.size(), last_change + 1 + ctx);
    int a0 = ai - back, b0 = bi - back, na = 0, nb = 0;
    std::string body;
    int x = a0, y = b0;
    for (size_t j = start; j < end; ++j) {
      if (ops[j] == ' ') {
        body += " " + a[static_cast<size_t>(x)] + "\n";
        ++x, ++y, ++na, ++nb;
      } else if (ops[j] == '-') {
        body += "-" + a[static_cast<size_t>(x)] + "\n";
        ++x, ++na;
      } else {
        body += "+" + b[static_cast<size_t>(y)] + "\n";
        ++y, ++nb;
      }
    }
    out += "@@ -" + std::to_string(na ? a0 + 1 : a0) + "," + std::to_string(na) + " +" + std::to_string(nb ? b0 + 1 : b0) + "," +
           std::to_string(nb) + " @@\n" + body;
    ai = x, bi = y, i = end;
  }
  return out;
}

std::vector<std::string> expand(const std::vector<std::string>& in, std::ostream& err, bool& unreadable) {
  std::vector<std::string> out;
  for (const std::string& f : in) {
    std::error_code ec;
    if (f != "-" && fs::is_directory(f, ec)) {
      std::vector<std::string> found;
      for (auto it = fs::recursive_directory_iterator(f, fs::directory_options::skip_permission_denied, ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
        if (it->is_regular_file(ec) && it->path().extension() == ".gray") found.push_back(it->path().string());
      if (ec) {
        err << "gray: cannot list '" << f << "': " << ec.message() << "\n";
        unreadable = true;
      }
      std::sort(found.begin(), found.end());
      out.insert(out.end(), found.begin(), found.end());
    } else {
      out.push_back(f);
    }
  }
  return out;
}

bool read_file(const std::string& path, std::string& text) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  std::ostringstream ss;
  ss << f.rdbuf();
  text = std::move(ss).str();
  return !f.bad();
}

// Replaces the file by writing a sibling and renaming it over, so a crash leaves either text.
bool write_file(const std::string& path, const std::string& text, std::string& error) {
  fs::path tmp = fs::path(path).concat(".gray-fmt.tmp");
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << text;
    f.flush();
    if (!f) {
      error = "cannot write " + tmp.string();
      return false;
    }
  }
  std::error_code ec;
  fs::permissions(tmp, fs::status(path, ec).permissions(), ec);
  fs::rename(tmp, path, ec);
  if (ec) {
    error = ec.message();
    fs::remove(tmp, ec);
    return false;
  }
  return true;
}

}  // namespace

int cmd_fmt(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  OptionSpec spec{{"--check", false}, {"--diff", false}, {"--color", true}};
  ParsedArgs a = parse_args(args, 2, spec);
  (void)load_options(a);  // validates --color
  const bool check = a.has("--check"), diff = a.has("--diff");
  const bool color = use_color(a.get("--color", "auto"));
  if (a.positional.empty()) throw UsageError{"fmt needs at least one file or directory, or '-' for standard input"};
  bool unreadable = false, findings = false;
  for (const std::string& path : expand(a.positional, err, unreadable)) {
    const bool is_stdin = path == "-";
    const std::string display = is_stdin ? "<stdin>" : path;
    std::string text;
    if (is_stdin) {
      text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    } else if (!read_file(path, text)) {
      err << "gray: cannot read '" << path << "': " << std::strerror(errno) << "\n";
      unreadable = true;
      continue;
    }
    std::string formatted, diag_text;
    try {
      if (!format_text(display, text, color, formatted, diag_text)) {
        err << diag_text;
        findings = true;
        continue;
      }
    } catch (const FormatError& e) {
      err << "gray: internal error: " << e.message << "; the file is left as it is. Please report this.\n";
      return kExitInternal;
    }
    // The tree is compared, so a file whose only difference is a byte order mark or CRLF
    // line ends counts as changed: the canonical form has neither.
    const bool changed = formatted != text;
    if (is_stdin && !check && !diff) {
      out << formatted;
      continue;
    }
    if (!changed) continue;
    if (diff) out << unified_diff(display, text, formatted);
    else if (check) out << display << "\n";
    if (check || diff) {
      findings = true;
      continue;
    }
    std::string error;
    if (!write_file(path, formatted, error)) {
      err << "gray: cannot write '" << path << "': " << error << "\n";
      unreadable = true;
    }
  }
  if (unreadable) return kExitUsage;
  return findings ? kExitFindings : kExitOk;
}

}  // namespace gray
