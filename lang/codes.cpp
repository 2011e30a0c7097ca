#include "lang/codes.h"

namespace gray {

namespace {
constexpr CodeInfo kCodes[] = {
    {code::kSyntax, "The text does not follow the .gray grammar", ""},
    {code::kBadUnit, "A number has a unit suffix that gray does not know", ""},
    {code::kEncoding, "The file is not UTF-8 text", ""},
    {code::kIo, "A file could not be read", ""},
    {code::kImportNotFound, "An imported file does not exist", ""},
    {code::kImportCycle, "Modules import each other in a cycle", ""},
    {code::kImportEscapes, "An import leaves the project root", ""},
    {code::kModuleShape, "A file holds something its role does not allow", ""},
    {code::kUnknownName, "A name is used that is not declared", ""},
    {code::kDuplicateName, "A name is declared twice in one scope", ""},
    {code::kType, "A value has the wrong type", ""},
    {code::kUnit, "Values with incompatible units are compared or combined", ""},
    {code::kUnknownDriver, "A plugin names a driver that does not exist for its kind", ""},
    {code::kUnknownField, "A plugin configuration has a field its driver does not define", ""},
    {code::kMissingField, "A plugin configuration lacks a required field", ""},
    {code::kConflict, "A plugin configuration gives two fields of which only one is allowed", ""},
    {code::kFieldType, "A plugin configuration field has the wrong type", ""},
    {code::kArguments, "A call has missing, unknown or ill-typed arguments", ""},
    {code::kInterpolation, "A ${...} interpolation names something that cannot be used there", ""},
    {code::kPlacement, "A statement appears where it has no meaning", ""},
    {code::kClause, "A statement has a clause it does not take, or one twice", ""},
    {code::kValue, "A value is outside the range its place allows", ""},
    {code::kInternal, "gray failed internally", ""},
};
}  // namespace

const CodeInfo* find_code(std::string_view id) {
  for (const CodeInfo& c : kCodes)
    if (id == c.id) return &c;
  return nullptr;
}

}  // namespace gray
