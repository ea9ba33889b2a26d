# find_package(ppl) from the build tree: exports ppl::ppl (all layers).
include(CMakePackageConfigHelpers)
export(EXPORT ppl-targets NAMESPACE ppl:: FILE ${PROJECT_BINARY_DIR}/pplTargets.cmake)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/pplConfig.cmake.in
  ${PROJECT_BINARY_DIR}/pplConfig.cmake
  INSTALL_DESTINATION ${PROJECT_BINARY_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/pplConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
