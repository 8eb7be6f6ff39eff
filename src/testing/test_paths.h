// Where this build's tree, test data and `abgate` binary are, for tests. The paths live in one
// generated file (test_paths.cc, configured by CMake into the build folder) rather than in
// -D flags on every test's command line, so a test's object code does not depend on where the
// tree was cloned and ccache serves it to a clone in another folder (CI's clean clone).
// Constants: thread-safe.
#pragma once

namespace abgate::testing {

extern const char* const kTestDataDir;  // <source>/tests/data
extern const char* const kSourceDir;    // <source>
extern const char* const kAbgateBinary; // <build>/abgate

}  // namespace abgate::testing

#define ABGATE_TEST_DATA_DIR ::abgate::testing::kTestDataDir
#define ABGATE_SOURCE_DIR ::abgate::testing::kSourceDir
#define ABGATE_BINARY ::abgate::testing::kAbgateBinary
