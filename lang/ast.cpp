#include "lang/ast.h"

namespace gray::ast {

const char* stmt_kind_name(StmtKind k) {
  switch (k) {
    case StmtKind::Import: return "import";
    case StmtKind::Template: return "template";
    case StmtKind::Pipeline: return "pipeline";
    case StmtKind::Param: return "param";
    case StmtKind::Let: return "let";
    case StmtKind::Metric: return "metric";
    case StmtKind::Plugin: return "plugin";
    case StmtKind::Stage: return "stage";
    case StmtKind::Guard: return "guard";
    case StmtKind::On: return "on";
    case StmtKind::Setting: return "setting";
    case StmtKind::Run: return "run";
    case StmtKind::Probe: return "probe";
    case StmtKind::Wait: return "wait";
    case StmtKind::WaitUntil: return "wait until";
    case StmtKind::Approve: return "approve";
    case StmtKind::Route: return "route";
    case StmtKind::Drain: return "drain";
    case StmtKind::Restore: return "restore";
    case StmtKind::Scale: return "scale";
    case StmtKind::Phase: return "phase";
    case StmtKind::Undo: return "undo";
    case StmtKind::Abort: return "abort";
    case StmtKind::If: return "if";
    case StmtKind::Use: return "use";
    case StmtKind::Call: return "call";
  }
  return "?";
}

}  // namespace gray::ast
