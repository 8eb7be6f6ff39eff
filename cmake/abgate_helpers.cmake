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
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  target_compile_definitions(${ARG_NAME} PRIVATE
    ABGATE_TEST_DATA_DIR="${PROJECT_SOURCE_DIR}/tests/data"
    ABGATE_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    ABGATE_BINARY="${PROJECT_BINARY_DIR}/abgate")
  # SERIAL: each test runs with nothing beside it (floods of connections or descriptors that
  # would starve a neighbour's sockets under ctest -j).
  set(serial FALSE)
  if(ARG_SERIAL)
    set(serial TRUE)
  endif()
  gtest_discover_tests(${ARG_NAME}
    WORKING_DIRECTORY ${PROJECT_BINARY_DIR}
    PROPERTIES LABELS "${ARG_LABELS}" RUN_SERIAL ${serial}
    DISCOVERY_TIMEOUT 30)
endfunction()
