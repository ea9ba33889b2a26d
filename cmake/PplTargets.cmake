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
# registered with ctest one by one.
function(ppl_add_test name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${T_SOURCES} ${PROJECT_SOURCE_DIR}/tests/catch_main.cpp)
  target_link_libraries(${name} PRIVATE ${T_LIBS} Catch2::Catch2)
  ppl_target_defaults(${name})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/tests)
  catch_discover_tests(${name} TEST_PREFIX "${name}:" PROPERTIES TIMEOUT 600
    WORKING_DIRECTORY ${PROJECT_BINARY_DIR})
endfunction()
