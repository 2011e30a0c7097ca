#pragma once

namespace gray {
inline constexpr const char* kVersion = "0.1.0";
}
