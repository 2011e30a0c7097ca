#include "lang/load.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "lang/codes.h"
#include "lang/parse.h"
#include "lang/text.h"

namespace fs = std::filesystem;

namespace gray {

bool DiskReader::read(const std::string& path, std::string& out, std::string& error) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    error = "is a directory";
    return false;
  }
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    error = std::strerror(errno);
    return false;
  }
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) {
    error = "read error";
    return false;
  }
  out = std::move(ss).str();
  return true;
}

bool DiskReader::exists(const std::string& path) {
  std::error_code ec;
  return fs::exists(path, ec);
}

namespace {

std::string normal_abs(const std::string& p) {
  std::error_code ec;
  fs::path a = fs::absolute(fs::path(p), ec);
  if (ec) a = fs::path(p);
  return a.lexically_normal().string();
}

bool is_within(const std::string& abs_file, const std::string& root) {
  if (root.empty()) return true;
  fs::path rel = fs::path(abs_file).lexically_relative(root);
  if (rel.empty()) return false;
  auto first = *rel.begin();
  return first != "..";
}

// A path as the user would type it from the working directory.
std::string shown_path(const std::string& abs) {
  std::error_code ec;
  fs::path rel = fs::path(abs).lexically_relative(fs::current_path(ec));
  if (ec || rel.empty()) return abs;
  std::string r = rel.string();
  return r == "." ? "the current directory" : r;
}

}  // namespace

std::string default_alias(const std::string& import_path) {
  std::string stem = fs::path(import_path).stem().string();
  std::string out;
  for (char c : stem) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '_') ? c : '_';
  if (out.empty() || std::isdigit(static_cast<unsigned char>(out[0]))) out = "_" + out;
  return out;
}

Project::Project(LoadOptions opts, FileReader& reader) : opts_(std::move(opts)), reader_(reader) {
  stdlib_dir_ = opts_.stdlib_dir;
  if (stdlib_dir_.empty())
    if (const char* env = std::getenv("GRAY_STDLIB"); env && *env) stdlib_dir_ = env;
#ifdef GRAY_STDLIB_DIR
  if (stdlib_dir_.empty()) stdlib_dir_ = GRAY_STDLIB_DIR;
#endif
  if (!opts_.root.empty()) opts_.root = normal_abs(opts_.root);
}

std::string Project::root_for(const std::string& abs_file) {
  if (!opts_.root.empty()) return opts_.root;
  fs::path dir = fs::path(abs_file).parent_path();
  auto cached = root_cache_.find(dir.string());
  if (cached != root_cache_.end()) return cached->second;
  std::string root = dir.string();
  for (fs::path p = dir; !p.empty(); p = p.parent_path()) {
    if (reader_.exists((p / "gray.json").string()) || reader_.exists((p / ".git").string())) {
      root = p.string();
      break;
    }
    if (p == p.parent_path()) break;
  }
  root_cache_[dir.string()] = root;
  return root;
}

int Project::load(const std::string& path, Diagnostics& diags) { return load_file(path, normal_abs(path), diags, {}); }

int Project::load_file(const std::string& display, const std::string& abs, Diagnostics& diags, Span from) {
  if (auto it = by_path_.find(abs); it != by_path_.end()) return it->second;

  std::string text, error;
  if (!reader_.read(abs, text, error)) {
    if (from.valid()) {
      Diagnostic& d = diags.error(code::kImportNotFound, from, "cannot import '" + display + "': " + error);
      // Suggest a sibling file with a similar name.
      std::vector<std::string> names;
      std::error_code ec;
      fs::path dir = fs::path(abs).parent_path();
      for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
        if (it->path().extension() == ".gray") names.push_back(it->path().filename().string());
      std::string best = closest_word(fs::path(abs).filename().string(), names);
      if (!best.empty()) d.help = "did you mean '" + (fs::path(display).parent_path() / best).string() + "'?";
    } else {
      diags.error(code::kIo, {}, "cannot read '" + display + "': " + error);
    }
    return -1;
  }
  if (text.size() > opts_.max_file_bytes) {
    diags.error(code::kIo, from, "'" + display + "' is larger than " + std::to_string(opts_.max_file_bytes >> 20) + " MiB");
    return -1;
  }

  const int index = static_cast<int>(modules_.size());
  auto mod = std::make_unique<LoadedModule>();
  mod->path = display;
  mod->abs_path = abs;
  const SourceFile& file = sources_.add(display, std::move(text));
  size_t before = diags.error_count();
  mod->ast = parse(file, diags);
  mod->syntax_ok = diags.error_count() == before;
  modules_.push_back(std::move(mod));
  by_path_[abs] = index;

  loading_.push_back(index);
  const std::string root = root_for(abs);
  const fs::path dir = fs::path(abs).parent_path();
  const fs::path display_dir = fs::path(display).parent_path();
  for (const ast::StmtPtr& item : modules_[static_cast<size_t>(index)]->ast.items) {
    if (item->kind != ast::StmtKind::Import) continue;
    Import imp;
    imp.span = item->span;
    imp.alias = item->name.empty() ? default_alias(item->str) : item->name.text;
    if (item->name.empty() && is_reserved(imp.alias)) {
      Diagnostic& d = diags.error(code::kSyntax, item->str_span,
                                  "this module would be named '" + imp.alias + "', which is a reserved word");
      d.help = "give it a name: import \"" + item->str + "\" as NAME";
    }
    std::string target_abs, target_display;
    const std::string& p = item->str;
    if (p.empty()) {
      diags.error(code::kImportNotFound, item->str_span, "the import path is empty");
      modules_[static_cast<size_t>(index)]->imports.push_back(imp);
      continue;
    }
    if (p.rfind("std/", 0) == 0) {
      target_abs = normal_abs((fs::path(stdlib_dir_) / p.substr(4)).string());
      target_display = p;
      if (!is_within(target_abs, normal_abs(stdlib_dir_))) {
        diags.error(code::kImportEscapes, item->str_span, "'" + p + "' leaves the standard library");
        modules_[static_cast<size_t>(index)]->imports.push_back(imp);
        continue;
      }
    } else {
      if (fs::path(p).is_absolute()) {
        target_abs = fs::path(p).lexically_normal().string();
        target_display = target_abs;
      } else {
        target_abs = (dir / p).lexically_normal().string();
        target_display = (display_dir / p).lexically_normal().string();
      }
      if (!opts_.allow_outside_root && !is_within(target_abs, root)) {
        Diagnostic& d = diags.error(code::kImportEscapes, item->str_span, "import '" + p + "' leaves the project root");
        d.notes.push_back("the project root is " + shown_path(root));
        d.help = "move the module into the project, or pass --allow-outside-root";
        modules_[static_cast<size_t>(index)]->imports.push_back(imp);
        continue;
      }
    }
    if (auto it = by_path_.find(target_abs); it != by_path_.end()) {
      auto chain_it = std::find(loading_.begin(), loading_.end(), it->second);
      if (chain_it != loading_.end()) {
        std::string chain;
        for (auto c = chain_it; c != loading_.end(); ++c) chain += modules_[static_cast<size_t>(*c)]->path + " -> ";
        chain += modules_[static_cast<size_t>(it->second)]->path;
        Diagnostic& d = diags.error(code::kImportCycle, item->span, "import cycle: " + chain);
        d.help = "move what both modules need into a third module";
        modules_[static_cast<size_t>(index)]->imports.push_back(imp);
        continue;
      }
    }
    imp.module = load_file(target_display, target_abs, diags, item->str_span);
    modules_[static_cast<size_t>(index)]->imports.push_back(imp);
  }
  loading_.pop_back();
  return index;
}

}  // namespace gray
