# Install rules: the CLI, the core library (static) with its headers, and a CMake package, so that
#   find_package(neurontrace) + target_link_libraries(app neurontrace::core)
# works from the install prefix (examples/consumer/, tested by tests/test_install.cpp).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS neurontrace RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS neurontrace_core EXPORT neurontrace-targets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
# (The include folder matches the library's INSTALL_INTERFACE include directories.)
install(DIRECTORY ${CMAKE_SOURCE_DIR}/src/ DESTINATION include/neurontrace FILES_MATCHING PATTERN "*.h")

set(NT_PACKAGE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/neurontrace)
install(EXPORT neurontrace-targets NAMESPACE neurontrace:: DESTINATION ${NT_PACKAGE_DIR})
configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/neurontrace-config.cmake.in
  ${CMAKE_BINARY_DIR}/neurontrace-config.cmake INSTALL_DESTINATION ${NT_PACKAGE_DIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/neurontrace-config-version.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/neurontrace-config.cmake ${CMAKE_BINARY_DIR}/neurontrace-config-version.cmake
  DESTINATION ${NT_PACKAGE_DIR})
