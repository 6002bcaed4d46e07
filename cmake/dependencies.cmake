# Debian 12 packages only; see ../shared/toolchain.md for why each line looks the way it does.
find_package(Threads REQUIRED)
find_package(prometheus-cpp CONFIG REQUIRED)   # no version file on bookworm: no version argument
find_package(CURL REQUIRED)
find_package(yaml-cpp CONFIG REQUIRED)
find_package(SQLite3 REQUIRED)
find_package(spdlog CONFIG REQUIRED)
find_package(fmt CONFIG REQUIRED)
find_package(doctest CONFIG REQUIRED)
find_package(nlohmann_json 3.11 CONFIG REQUIRED)
find_package(CLI11 CONFIG REQUIRED)
find_package(OpenSSL REQUIRED)
find_package(benchmark CONFIG QUIET)
find_package(PkgConfig REQUIRED)
pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)
pkg_check_modules(SYSTEMD REQUIRED IMPORTED_TARGET libsystemd)
pkg_check_modules(XCRYPT REQUIRED IMPORTED_TARGET libxcrypt)   # bcrypt for --web.config.file
pkg_check_modules(RE2 REQUIRED IMPORTED_TARGET re2)   # bookworm's re2.pc says version 0.0.0

if(TARGET yaml-cpp::yaml-cpp)
  set(MODELPULSE_YAML_TARGET yaml-cpp::yaml-cpp)
else()
  set(MODELPULSE_YAML_TARGET yaml-cpp)
endif()

# tl::expected (libexpected-dev) is header-only and ships no CMake package on bookworm.
find_path(TL_EXPECTED_INCLUDE_DIR tl/expected.hpp REQUIRED)

function(modelpulse_module name)
  target_include_directories(${name} PUBLIC ${MODELPULSE_SOURCE_ROOT})
  target_compile_features(${name} PUBLIC cxx_std_20)
  add_library(modelpulse::${name} ALIAS ${name})
endfunction()

# One doctest executable per module: tests/<module>/*_test.cpp, one ctest entry per TEST_CASE.
# Discovery passes each name to --test-case=, so an entry that runs no case or several (a name
# with ';' split into fragments, or a wildcard or case-insensitive match) fails instead of
# passing; scripts/check-test-counts.py cross-checks the counts. A case that prints the marker
# of tests/required_peer.h and otherwise succeeds is reported as Skipped.
function(modelpulse_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${MODELPULSE_SOURCE_ROOT}/tests/doctest_main.cpp ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE doctest::doctest ${ARG_LIBS})
  target_include_directories(${name} PRIVATE ${MODELPULSE_SOURCE_ROOT})
  # Tests find shipped files (configs, rules, scenarios) from the source root, not from
  # __FILE__, which a compiler cache may have made relative.
  target_compile_definitions(${name} PRIVATE MODELPULSE_SOURCE_ROOT="${MODELPULSE_SOURCE_ROOT}")
  doctest_discover_tests(${name} ADD_LABELS 0 PROPERTIES LABELS unit
    FAIL_REGULAR_EXPRESSION "test cases: +([02-9]|[1-9][0-9]+) [|]"
    SKIP_REGULAR_EXPRESSION "MODELPULSE SKIPPED: .*Status: SUCCESS!")
endfunction()
