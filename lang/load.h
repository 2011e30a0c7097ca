// Loading a pipeline and the modules it imports: path resolution, the project root, cycles.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "lang/ast.h"
#include "lang/diag.h"

namespace gray {

// Where file contents come from; tests and the fuzzer supply their own.
class FileReader {
 public:
  virtual ~FileReader() = default;
  // Reads a whole file. On failure returns false and a short reason ("no such file").
  virtual bool read(const std::string& path, std::string& out, std::string& error) = 0;
  virtual bool exists(const std::string& path) = 0;
};

class DiskReader : public FileReader {
 public:
  bool read(const std::string& path, std::string& out, std::string& error) override;
  bool exists(const std::string& path) override;
};

struct LoadOptions {
  std::string root;                 // project root; empty: found from each file (gray.json or .git)
  bool allow_outside_root = false;  // let imports leave the project root
  std::string stdlib_dir;           // where "std/..." imports resolve; empty: $GRAY_STDLIB or the built-in path
  size_t max_file_bytes = 64u << 20;
};

struct Import {
  std::string alias;
  Span span;        // the import statement
  int module = -1;  // index into Project::modules, -1 when it failed to load
};

struct LoadedModule {
  std::string path;      // as shown to users
  std::string abs_path;  // normalised absolute path, the identity of the module
  ast::Module ast;
  bool syntax_ok = true;
  std::vector<Import> imports;
};

class Project {
 public:
  Project(LoadOptions opts, FileReader& reader);

  // Loads a file and, recursively, its imports. Returns the module index, or -1 if the file
  // itself could not be read. Loading the same file twice returns the same index.
  int load(const std::string& path, Diagnostics& diags);

  SourceMap& sources() { return sources_; }
  const SourceMap& sources() const { return sources_; }
  const LoadedModule& module(int i) const { return *modules_[static_cast<size_t>(i)]; }
  size_t module_count() const { return modules_.size(); }
  const std::string& stdlib_dir() const { return stdlib_dir_; }

 private:
  int load_file(const std::string& display, const std::string& abs, Diagnostics& diags, Span from);
  std::string root_for(const std::string& abs_file);

  LoadOptions opts_;
  FileReader& reader_;
  std::string stdlib_dir_;
  SourceMap sources_;
  std::vector<std::unique_ptr<LoadedModule>> modules_;
  std::map<std::string, int> by_path_;
  std::vector<int> loading_;  // the import chain being loaded, to report cycles
  std::map<std::string, std::string> root_cache_;
};

// Reads every file's text as a module name: "std/canary.gray" -> "canary".
std::string default_alias(const std::string& import_path);

}  // namespace gray
