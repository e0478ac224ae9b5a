# Cross build for 64-bit ARM Linux with Debian's g++-aarch64-linux-gnu; tests run under qemu-aarch64.
#   NT_ARM64_ROOT: a folder with the arm64 libraries the build links, unpacked from Debian packages
#   (scripts/cross-aarch64.sh makes it; the cross compiler brings libc and libstdc++).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

set(NT_ARM64_ROOT "" CACHE PATH "Unpacked arm64 Debian packages (scripts/cross-aarch64.sh)")
# (try_compile reads this file again, in the same process: it must see the same root.)
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES NT_ARM64_ROOT)
set(NT_NATIVE OFF CACHE BOOL "" FORCE)  # -march=native names the build machine's CPU

set(CMAKE_FIND_ROOT_PATH ${NT_ARM64_ROOT} /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# pkg-config reads the arm64 .pc files and prefixes their paths with the root.
set(ENV{PKG_CONFIG_LIBDIR} "${NT_ARM64_ROOT}/usr/lib/aarch64-linux-gnu/pkgconfig:${NT_ARM64_ROOT}/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_SYSROOT_DIR} "${NT_ARM64_ROOT}")

# The linker resolves the libraries' own dependencies (libcurl's libssl, ...) in the root too.
set(NT_ARM64_LIBDIRS "${NT_ARM64_ROOT}/usr/lib/aarch64-linux-gnu:${NT_ARM64_ROOT}/lib/aarch64-linux-gnu")
set(CMAKE_EXE_LINKER_FLAGS_INIT "-Wl,-rpath-link,${NT_ARM64_LIBDIRS}")

# ctest (and gtest_discover_tests at build time) run the test programs under qemu.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L /usr/aarch64-linux-gnu -E LD_LIBRARY_PATH=${NT_ARM64_LIBDIRS})
