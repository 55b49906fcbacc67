# CMake toolchain file for Cortex-M firmware built by arm-none-eabi-gcc against libstopwire.a.
#
#   cmake -S firmware/c-only -B build -DCMAKE_TOOLCHAIN_FILE=firmware/c-only/arm-none-eabi.cmake \
#         -DSW_RUST_TARGET=thumbv7m-none-eabi -DSTOPWIRE_LIBRARY=/path/to/libstopwire.a
#
# SW_RUST_TARGET names the Rust target the library was built for; the CPU and float-ABI flags
# follow from it, so that the C objects and the library always agree (a hard-float library does
# not link with soft-float C objects).

set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_ASM_COMPILER arm-none-eabi-gcc)
# No C library and no start files to link a test program with: compile-check only.
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES SW_RUST_TARGET)

set(SW_RUST_TARGET "thumbv7m-none-eabi" CACHE STRING
    "the Rust target libstopwire.a was built for (thumbv6m-none-eabi, thumbv7m-none-eabi, thumbv7em-none-eabihf, thumbv8m.main-none-eabi)")

if(SW_RUST_TARGET STREQUAL "thumbv6m-none-eabi")
    set(SW_CPU_FLAGS "-mcpu=cortex-m0 -mthumb -mfloat-abi=soft")
elseif(SW_RUST_TARGET STREQUAL "thumbv7m-none-eabi")
    set(SW_CPU_FLAGS "-mcpu=cortex-m3 -mthumb -mfloat-abi=soft")
elseif(SW_RUST_TARGET STREQUAL "thumbv7em-none-eabihf")
    set(SW_CPU_FLAGS "-mcpu=cortex-m4 -mthumb -mfpu=fpv4-sp-d16 -mfloat-abi=hard")
elseif(SW_RUST_TARGET STREQUAL "thumbv8m.main-none-eabi")
    set(SW_CPU_FLAGS "-mcpu=cortex-m33+nofp -mthumb -mfloat-abi=soft")
else()
    message(FATAL_ERROR "SW_RUST_TARGET: no CPU flags for '${SW_RUST_TARGET}'")
endif()

set(CMAKE_C_FLAGS_INIT "${SW_CPU_FLAGS}")
set(CMAKE_ASM_FLAGS_INIT "${SW_CPU_FLAGS}")
set(CMAKE_EXE_LINKER_FLAGS_INIT "${SW_CPU_FLAGS}")

set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
