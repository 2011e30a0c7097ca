// Name resolution and checking: scopes, imports, templates, types and units, placement of
// statements, and plugin configurations against each driver's schema.
#pragma once

#include "lang/diag.h"
#include "lang/load.h"

namespace gray {

// Checks every module loaded into the project (each once): its templates and its pipeline.
// Modules with syntax errors are skipped; their errors are already reported.
void check_project(const Project& project, Diagnostics& diags);

}  // namespace gray
