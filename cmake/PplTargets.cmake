# Helpers shared by every layer.
#
# One precompiled header (torch, json, fmt) is built once, in ppl_pch, and
# reused by every library, test and tool: torch's headers dominate build time.

add_library(ppl_pch OBJECT ${PROJECT_SOURCE_DIR}/cmake/pch.cpp)
target_link_libraries(ppl_pch PUBLIC ${TORCH_LIBRARIES} nlohmann_json::nlohmann_json ${PPL_FMT})
# Clang in C++20 instantiates the constexpr destructor of std::vector<IValue>
# while libtorch 1.13's ATen/core/List.h still sees IValue incomplete (a hard
# error); ivalue.h included first completes it before any other header.
set(_ppl_pch_first "")
if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  set(_ppl_pch_first "<ATen/core/ivalue.h>")
endif()
target_precompile_headers(ppl_pch PRIVATE ${_ppl_pch_first}
  <torch/torch.h> <nlohmann/json.hpp> <fmt/format.h> <fmt/ranges.h>
  <vector> <string> <memory> <optional> <functional> <map> <unordered_map>
  <stdexcept> <source_location>)
target_compile_options(ppl_pch PRIVATE -Winvalid-pch)

# ppl_target_defaults(TARGET): warnings, the shared PCH and the config header.
function(ppl_target_defaults target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wno-unused-parameter -Winvalid-pch>)
  target_precompile_headers(${target} REUSE_FROM ppl_pch)
  target_include_directories(${target} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_BINARY_DIR}/include>)
endfunction()

# ppl_add_test(NAME SOURCES... LIBS ...): one Catch2 executable, its cases
# registered with ctest one by one. Catch2's main (and the rest of its
# implementation) is compiled once, in ppl_catch_main, without torch's
# precompiled header, which it does not need. Test code is compiled at -O1:
# the work of a test is in the libraries (built with the project's flags) and
# libtorch, and -O3 on Catch2's expanded assertions costs build time only.
function(ppl_add_test name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS" ${ARGN})
  if(NOT TARGET ppl_catch_main)
    add_library(ppl_catch_main STATIC ${PROJECT_SOURCE_DIR}/tests/catch_main.cpp)
    target_link_libraries(ppl_catch_main PUBLIC Catch2::Catch2)
  endif()
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} ppl_catch_main)
  ppl_target_defaults(${name})
  target_compile_options(${name} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-O1>)
  # Test files keep their helpers (kF64, Case, model, ...) file-local under
  # the same names, so they are not batched into unity units.
  set_target_properties(${name} PROPERTIES UNITY_BUILD OFF)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/tests)
  if(PPL_SANITIZE)
    # An instrumented process takes 3-6 s to start (libtorch's libraries are
    # mapped and registered with the sanitizer runtime), so under the
    # sanitizers each executable runs its cases in one process rather than
    # one process per case.
    add_test(NAME ${name} COMMAND ${name} WORKING_DIRECTORY ${PROJECT_BINARY_DIR})
    set_tests_properties(${name} PROPERTIES TIMEOUT 2400)
  else()
    catch_discover_tests(${name} TEST_PREFIX "${name}:" PROPERTIES TIMEOUT 600
      WORKING_DIRECTORY ${PROJECT_BINARY_DIR})
  endif()
endfunction()
