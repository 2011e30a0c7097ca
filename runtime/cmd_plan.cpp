#include <ostream>

#include "runtime/cli.h"
#include "runtime/interp.h"
#include "runtime/plan.h"

namespace gray {

// `--set name=value`, repeatable.
std::map<std::string, std::string> set_params(const ParsedArgs& a) {
  std::map<std::string, std::string> out;
  for (const std::string& s : a.all("--set")) {
    auto eq = s.find('=');
    if (eq == std::string::npos || eq == 0) throw UsageError{"--set takes name=value, got '" + s + "'"};
    out[s.substr(0, eq)] = s.substr(eq + 1);
  }
  return out;
}

// Loads one pipeline file and checks it; prints diagnostics and returns -1 when it is not clean.
int load_pipeline(FrontEnd& fe, const std::string& file, std::ostream& out, std::ostream& err, const std::string& color) {
  if (fe.unreadable || fe.diags.has_errors()) {
    emit_diagnostics(fe, Format::Text, color, out, err);
    return -1;
  }
  return fe.roots.at(0);
}

void report_setup_error(FrontEnd& fe, const SetupError& e, const std::string& color, std::ostream& out, std::ostream& err) {
  if (e.span.valid()) {
    fe.diags.error("run-setup", e.span, e.message);
    emit_diagnostics(fe, Format::Text, color, out, err);
  } else {
    err << "gray: " << e.message << "\n";
  }
}

int cmd_plan(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  OptionSpec spec;
  add_front_end_options(spec);
  spec["--set"] = true;
  ParsedArgs a = parse_args(args, 2, spec);
  Format format = parse_format(a.get("--format", "text"), false);
  if (format == Format::Sarif) throw UsageError{"plan prints text or json"};
  if (a.positional.size() != 1) throw UsageError{"plan takes one pipeline file"};
  auto params = set_params(a);
  const std::string color = a.get("--color", "auto");
  auto fe = load_and_check(a.positional, load_options(a));
  int m = load_pipeline(*fe, a.positional[0], out, err, color);
  if (m < 0) return fe->unreadable ? kExitUsage : kExitFindings;
  try {
    nlohmann::json plan = build_plan(*fe->project, m, params);
    if (format == Format::Json) out << plan.dump(2) << "\n";
    else out << render_plan_text(plan);
  } catch (const SetupError& e) {
    report_setup_error(*fe, e, color, out, err);
    return e.usage ? kExitUsage : kExitFindings;
  }
  return kExitOk;
}

}  // namespace gray
