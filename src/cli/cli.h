// The abgate command line: one binary, one subcommand per file.
#pragma once

namespace abgate::cli {

// Dispatches argv to a subcommand; returns the process exit code.
int Main(int argc, char** argv);

}  // namespace abgate::cli
