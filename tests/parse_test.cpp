#include <catch2/catch.hpp>

#include "lang/parse.h"

TEST_CASE("the grammar has no PEGTL analysis problems") { REQUIRE(gray::analyze_grammar(false) == 0); }
