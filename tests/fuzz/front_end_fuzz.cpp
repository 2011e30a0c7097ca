// libFuzzer target: the whole front end on one input file.
//
// The input is the pipeline /proj/fuzz.gray. It is loaded through a Project with an in-memory
// FileReader that also holds a few small fixed modules, so `import "m.gray"`, `import
// "lib/n.gray"`, `import "std/canary.gray"`, a broken module and an import cycle back to the
// input all take the import paths. Then check_project, then the three renderers.
//
// Invariants (a violation aborts, which libFuzzer reports as a crash):
//   - no exception escapes load, check or rendering;
//   - every diagnostic span, primary and secondary, names a loaded file (or none) and lies in it:
//     begin <= end <= size;
//   - after loading, a module is syntax_ok exactly when parsing reported no error in its file
//     (every error there but the loader's errors about import statements);
//   - JSON and SARIF output parse back as JSON with one entry per diagnostic.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "lang/check.h"
#include "lang/codes.h"
#include "lang/diag.h"
#include "lang/load.h"

namespace {

class MemoryReader : public gray::FileReader {
 public:
  std::map<std::string, std::string> files;

  bool read(const std::string& path, std::string& out, std::string& error) override {
    auto it = files.find(path);
    if (it == files.end()) {
      error = "no such file";
      return false;
    }
    out = it->second;
    return true;
  }
  bool exists(const std::string& path) override {
    if (files.count(path)) return true;
    // Directories: any file below the path.
    std::string dir = path + "/";
    auto it = files.lower_bound(dir);
    return it != files.end() && it->first.compare(0, dir.size(), dir) == 0;
  }
};

const char* const kModuleM = R"(# m.gray: step and stage templates
template restart(gw: gateway, who: string = "canary") {
  run "systemctl restart app-${who}"
  undo "systemctl stop app-${who}"
  gw.weight(canary: 0%)
}

template ramp(gw: gateway, shares: list = [5%, 50%]) {
  ramp traffic {
    via gw
    steps 5% -> 50%
    hold 1m
  }
}
)";

const char* const kModuleN = R"(import "../m.gray" as m
template check_health(path: string = "/health", tries: number = 3) {
  probe http "http://${host}:8080${path}" expect 200 attempts tries every 5s
}
)";

const char* const kModuleBroken = R"(template broken(x: number) {
  run "a" timeout
  wait
}
)";

// Imports the fuzz input back: a cycle when the input imports it.
const char* const kModuleCycle = R"(import "fuzz.gray" as f
template loop() {
  wait 1s
}
)";

const char* const kStdCanary = R"(template judged(gw: gateway, rate: metric, v: string, base: string, tolerance: percent = 10%) {
  via gw
  steps 5% -> 20% -> 50%
  hold 1m
  guard "ceiling" rate(v) < 1% for 2m
  guard compare rate(v) vs rate(base) within tolerance samples 20
  on breach rollback
}
)";

MemoryReader& reader() {
  static MemoryReader r = [] {
    MemoryReader m;
    m.files["/proj/gray.json"] = "{}";
    m.files["/proj/m.gray"] = kModuleM;
    m.files["/proj/lib/n.gray"] = kModuleN;
    m.files["/proj/broken.gray"] = kModuleBroken;
    m.files["/proj/cycle.gray"] = kModuleCycle;
    m.files["/proj/empty.gray"] = "";
    m.files["/stdlib/canary.gray"] = kStdCanary;
    m.files["/outside/x.gray"] = "template x() {\n  wait 1s\n}\n";
    return m;
  }();
  return r;
}

[[noreturn]] void fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "INVARIANT VIOLATED: %s\n%s\n", what, detail.c_str());
  std::abort();
}

void check_span(const gray::SourceMap& sources, gray::Span s, const gray::Diagnostic& d, const char* which) {
  if (s.file == 0) return;  // no location
  const gray::SourceFile* f = sources.get(s.file);
  if (!f) fail("span names a file that is not loaded", std::string(which) + ": " + d.code + ": " + d.message);
  const size_t size = f->text().size();
  // A known problem can be let through while a campaign looks for others:
  // GRAY_FUZZ_ALLOW_EOF_SPAN=1 accepts a syntax error one byte past the end of the file.
  static const bool allow_eof_span = std::getenv("GRAY_FUZZ_ALLOW_EOF_SPAN") != nullptr;
  if (allow_eof_span && s.begin <= size && s.end == size + 1 && d.code == gray::code::kSyntax) return;
  if (!(s.begin <= s.end && s.end <= size))
    fail("span outside its file",
         std::string(which) + " [" + std::to_string(s.begin) + ", " + std::to_string(s.end) + ") in " + f->path() + " of " +
             std::to_string(size) + " bytes: " + d.code + ": " + d.message);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  MemoryReader& r = reader();
  r.files["/proj/fuzz.gray"] = std::string(reinterpret_cast<const char*>(data), size);

  gray::LoadOptions opts;
  opts.root = "/proj";
  opts.stdlib_dir = "/stdlib";
  gray::Diagnostics diags;
  std::string json, sarif, text;
  try {
    gray::Project project(opts, r);
    if (project.load("/proj/fuzz.gray", diags) != 0) fail("the input did not load as module 0", "");
    // syntax_ok agrees with the errors parsing reported in each module's file (the checker reports
    // some problems with the code "syntax" too, so look before it runs).
    const gray::SourceMap& sources = project.sources();
    for (size_t i = 0; i < project.module_count(); ++i) {
      const gray::LoadedModule& m = project.module(static_cast<int>(i));
      const uint32_t file = static_cast<uint32_t>(i + 1);  // modules and files are added together
      if (sources.get(file) == nullptr || sources.get(file)->path() != m.path) fail("module and file ids disagree", m.path);
      // The loader reports its own errors about import statements (not found, cycle, a default
      // alias that is a reserved word); anything else in the file comes from parsing.
      auto in_import = [&](gray::Span sp) {
        for (const gray::Import& imp : m.imports)
          if (sp.begin >= imp.span.begin && sp.end <= imp.span.end) return true;
        return false;
      };
      bool syntax = false;
      for (const gray::Diagnostic& d : diags.list())
        if (d.span.file == file && d.severity == gray::Severity::Error && d.code != gray::code::kImportNotFound &&
            d.code != gray::code::kImportCycle && d.code != gray::code::kImportEscapes && d.code != gray::code::kIo &&
            !in_import(d.span))
          syntax = true;
      if (m.syntax_ok && syntax) fail("module marked syntax_ok has an error from parsing", m.path);
      if (!m.syntax_ok && !syntax) fail("module not syntax_ok has no error in its file", m.path);
    }
    gray::check_project(project, diags);

    for (const gray::Diagnostic& d : diags.list()) {
      check_span(sources, d.span, d, "primary");
      for (const gray::Label& l : d.secondary) check_span(sources, l.span, d, "secondary");
    }
    diags.sort();
    gray::RenderOptions ro;
    ro.tool_version = "fuzz";
    text = gray::render_text(sources, diags.list(), ro);
    ro.color = true;
    text += gray::render_text(sources, diags.list(), ro);
    json = gray::render_json(sources, diags.list(), ro);
    sarif = gray::render_sarif(sources, diags.list(), ro);
    if (!diags.list().empty() && text.empty()) fail("text rendering is empty", "");
  } catch (const std::exception& e) {
    fail("exception escaped the front end", e.what());
  } catch (...) {
    fail("non-standard exception escaped the front end", "");
  }

  // The machine-readable outputs are well-formed and complete.
  nlohmann::json j = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) fail("render_json produced invalid JSON", json.substr(0, 2000));
  if (!j.contains("diagnostics") || j["diagnostics"].size() != diags.list().size())
    fail("render_json lost diagnostics", json.substr(0, 2000));
  nlohmann::json s = nlohmann::json::parse(sarif, nullptr, false);
  if (s.is_discarded()) fail("render_sarif produced invalid JSON", sarif.substr(0, 2000));
  if (s["runs"][0]["results"].size() != diags.list().size()) fail("render_sarif lost diagnostics", sarif.substr(0, 2000));
  return 0;
}
