// abgate: one binary, many subcommands. See src/cli/cli.h.
#include "cli/cli.h"

int main(int argc, char** argv) { return abgate::cli::Main(argc, argv); }
