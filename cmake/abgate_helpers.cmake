# abgate_cc_library(NAME n [HDRS ...] [SRCS ...] [DEPS ...])
#   Defines target abgate_<n> with alias abgate::<n>. Header-only when SRCS is empty.
function(abgate_cc_library)
  cmake_parse_arguments(ARG "" "NAME" "HDRS;SRCS;DEPS" ${ARGN})
  set(target abgate_${ARG_NAME})
  if(ARG_SRCS)
    add_library(${target} STATIC ${ARG_SRCS} ${ARG_HDRS})
    target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR}/src)
    target_link_libraries(${target} PUBLIC ${ARG_DEPS})
  else()
    add_library(${target} INTERFACE ${ARG_HDRS})
    target_include_directories(${target} INTERFACE ${PROJECT_SOURCE_DIR}/src)
    target_link_libraries(${target} INTERFACE ${ARG_DEPS})
  endif()
  add_library(abgate::${ARG_NAME} ALIAS ${target})
endfunction()

# abgate_cc_test(NAME n SRCS ... [DEPS ...] [LABELS ...] [SERIAL])
#   One GoogleTest binary per component, registered through gtest_discover_tests.
function(abgate_cc_test)
  cmake_parse_arguments(ARG "SERIAL" "NAME" "SRCS;DEPS;LABELS" ${ARGN})
  if(NOT ABGATE_BUILD_TESTS)
    return()
  endif()
  add_executable(${ARG_NAME} ${ARG_SRCS})
  # Paths come from testing/test_paths.h (one generated file), not -D flags: a test's object
  # code then does not depend on where the tree is, and ccache hits across clones. The header
  # is force-included, so ABGATE_BINARY & co. work in every test as the -D flags did (but they
  # are no longer string literals: std::string(ABGATE_TEST_DATA_DIR) + "/x", not "..." "/x").
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS} abgate::test_paths GTest::gtest GTest::gmock
                        GTest::gtest_main)
  target_compile_options(${ARG_NAME} PRIVATE -include testing/test_paths.h)
  # SERIAL: each test runs with nothing beside it (floods of connections or descriptors that
  # would starve a neighbour's sockets under ctest -j).
  # The property list is built so that an empty LABELS never shifts it: `LABELS "" RUN_SERIAL
  # TRUE` reached ctest as LABELS=RUN_SERIAL, and the fault suite ran beside other tests.
  set(properties RUN_SERIAL FALSE)
  if(ARG_SERIAL)
    set(properties RUN_SERIAL TRUE)
  endif()
  if(ARG_LABELS)
    list(APPEND properties LABELS ${ARG_LABELS})
  endif()
  gtest_discover_tests(${ARG_NAME}
    WORKING_DIRECTORY ${PROJECT_BINARY_DIR}
    PROPERTIES ${properties}
    DISCOVERY_TIMEOUT 30)
endfunction()
