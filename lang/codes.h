// Stable ids of the front end's diagnostics. Documented in docs/errors.md.
#pragma once

#include <string_view>

namespace gray {

namespace code {
inline constexpr const char* kSyntax = "syntax";
inline constexpr const char* kBadUnit = "bad-unit";
inline constexpr const char* kEncoding = "encoding";
inline constexpr const char* kIo = "io";
inline constexpr const char* kImportNotFound = "import-not-found";
inline constexpr const char* kImportCycle = "import-cycle";
inline constexpr const char* kImportEscapes = "import-escapes-root";
inline constexpr const char* kModuleShape = "module-shape";
inline constexpr const char* kUnknownName = "unknown-name";
inline constexpr const char* kDuplicateName = "duplicate-name";
inline constexpr const char* kType = "type-mismatch";
inline constexpr const char* kUnit = "unit-mismatch";
inline constexpr const char* kUnknownDriver = "unknown-driver";
inline constexpr const char* kUnknownField = "unknown-field";
inline constexpr const char* kMissingField = "missing-field";
inline constexpr const char* kFieldType = "field-type";
inline constexpr const char* kConflict = "conflicting-fields";
inline constexpr const char* kArguments = "bad-arguments";
inline constexpr const char* kInterpolation = "bad-interpolation";
inline constexpr const char* kPlacement = "misplaced";
inline constexpr const char* kClause = "bad-clause";
inline constexpr const char* kValue = "bad-value";
inline constexpr const char* kInternal = "internal";
}  // namespace code

struct CodeInfo {
  const char* id;
  const char* summary;
  const char* help_uri;
};

// nullptr for an unknown id.
const CodeInfo* find_code(std::string_view id);

}  // namespace gray
