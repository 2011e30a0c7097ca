#include <iostream>
#include <string>
#include <vector>

#include "runtime/cli.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  std::ios::sync_with_stdio(false);
  int rc = gray::run_cli(args, std::cout, std::cerr);
  std::cout.flush();
  return rc;
}
