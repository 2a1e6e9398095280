# baremetal.cmake - build freestanding guest images with clang and run them under qemu-system.
#
# Images are built with custom commands (one compiler invocation per source, one ld.lld link), so
# the three architectures live in one build tree next to each other. Each image becomes a ctest
# test "system.<name>" that boots it with a timeout.

find_program(HUGEPTE_GUEST_CXX NAMES clang++-19 clang++ REQUIRED)
find_program(HUGEPTE_GUEST_LD NAMES ld.lld-19 ld.lld REQUIRED)
set(HUGEPTE_GUEST_TIMEOUT 60 CACHE STRING "seconds before a hung guest is killed")

set(HUGEPTE_GUEST_COMMON_SOURCES
  ${PROJECT_SOURCE_DIR}/tests/system/guest_main.cpp
  ${PROJECT_SOURCE_DIR}/tests/system/libc.cpp)
file(GLOB HUGEPTE_SHARED_TEST_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/shared/*.cpp)
file(GLOB HUGEPTE_GUEST_TEST_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/system/cases/*.cpp)

# Per-architecture compiler flags. The linux-gnu triples let clang find the (cross) libstdc++
# headers; -ffreestanding and our own link keep glibc out.
set(HUGEPTE_GUEST_FLAGS_x86_64 --target=x86_64-linux-gnu -mno-red-zone -mno-mmx -mno-sse -mno-sse2)
set(HUGEPTE_GUEST_FLAGS_aarch64 --target=aarch64-linux-gnu -mgeneral-regs-only -mstrict-align
  -mno-outline-atomics)  # no libgcc in the image: inline LSE/LL-SC atomics
set(HUGEPTE_GUEST_FLAGS_riscv64 --target=riscv64-linux-gnu -march=rv64imac_zicsr_zifencei -mabi=lp64
  -mcmodel=medany -mno-relax -isystem ${PROJECT_SOURCE_DIR}/tests/system/shim)

# hugepte_add_guest(NAME n ARCH x86_64|aarch64|riscv64 MODE m
#                   SOURCES ... LINKER_SCRIPT f [DEFINES ...] QEMU exe [QEMU_ARGS ...])
function(hugepte_add_guest)
  cmake_parse_arguments(G "" "NAME;ARCH;MODE;LINKER_SCRIPT;QEMU" "SOURCES;DEFINES;QEMU_ARGS" ${ARGN})
  set(objdir ${CMAKE_BINARY_DIR}/guests/${G_NAME}.obj)
  # The flags of every source of an architecture's images; the mode's come on top for the
  # sources that depend on it (the cases and the arch's own files). tests/shared depends on no
  # mode, so it is compiled once per architecture and linked into each of its images.
  set(arch_flags ${HUGEPTE_GUEST_FLAGS_${G_ARCH}} -std=c++20 -ffreestanding -fno-exceptions -fno-rtti
    -fno-threadsafe-statics -fno-pic -fno-pie -fno-stack-protector -nostdlib -O2 -gline-tables-only
    -Wall -Wextra -Werror
    -I${PROJECT_SOURCE_DIR}/generic/include
    -I${PROJECT_SOURCE_DIR}/arch/include
    -I${PROJECT_SOURCE_DIR}/arch/x86/include
    -I${PROJECT_SOURCE_DIR}/arch/arm64/include
    -I${PROJECT_SOURCE_DIR}/arch/riscv/include
    -I${PROJECT_SOURCE_DIR}/tests/common
    -I${PROJECT_SOURCE_DIR}/tests/system
    -I${CMAKE_CURRENT_SOURCE_DIR}
    -DHUGEPTE_GUEST=1)
  if(HUGEPTE_INJECT_FAILURE)
    list(APPEND arch_flags -DHUGEPTE_INJECT_FAILURE=1)
  endif()
  set(flags ${arch_flags} -DHUGEPTE_GUEST_MODE="${G_MODE}")
  foreach(d IN LISTS G_DEFINES)
    list(APPEND flags -D${d})
  endforeach()

  set(objs)
  foreach(src IN LISTS G_SOURCES HUGEPTE_GUEST_COMMON_SOURCES HUGEPTE_GUEST_TEST_SOURCES)
    get_filename_component(abs ${src} ABSOLUTE)
    file(RELATIVE_PATH rel ${PROJECT_SOURCE_DIR} ${abs})
    string(REPLACE "/" "_" objname ${rel})
    set(obj ${objdir}/${objname}.o)
    add_custom_command(OUTPUT ${obj}
      COMMAND ${HUGEPTE_GUEST_CXX} ${flags} -MD -MF ${obj}.d -c ${abs} -o ${obj}
      DEPENDS ${abs}
      DEPFILE ${obj}.d
      COMMENT "guest ${G_NAME}: ${rel}"
      VERBATIM)
    list(APPEND objs ${obj})
  endforeach()
  set(shared_objdir ${CMAKE_BINARY_DIR}/guests/${G_ARCH}-shared.obj)
  foreach(src IN LISTS HUGEPTE_SHARED_TEST_SOURCES)
    get_filename_component(abs ${src} ABSOLUTE)
    file(RELATIVE_PATH rel ${PROJECT_SOURCE_DIR} ${abs})
    string(REPLACE "/" "_" objname ${rel})
    set(obj ${shared_objdir}/${objname}.o)
    get_property(have GLOBAL PROPERTY hugepte_guest_obj_${G_ARCH}_${objname})
    if(NOT have)
      add_custom_command(OUTPUT ${obj}
        COMMAND ${HUGEPTE_GUEST_CXX} ${arch_flags} -MD -MF ${obj}.d -c ${abs} -o ${obj}
        DEPENDS ${abs}
        DEPFILE ${obj}.d
        COMMENT "guest ${G_ARCH} (every mode): ${rel}"
        VERBATIM)
      set_property(GLOBAL PROPERTY hugepte_guest_obj_${G_ARCH}_${objname} TRUE)
    endif()
    list(APPEND objs ${obj})
  endforeach()

  set(elf ${CMAKE_BINARY_DIR}/guests/${G_NAME}.elf)
  add_custom_command(OUTPUT ${elf}
    COMMAND ${HUGEPTE_GUEST_LD} -nostdlib -static -T ${G_LINKER_SCRIPT} -o ${elf} ${objs}
    DEPENDS ${objs} ${G_LINKER_SCRIPT}
    COMMENT "guest ${G_NAME}: link"
    VERBATIM)
  add_custom_target(guest-${G_NAME} ALL DEPENDS ${elf})

  add_test(NAME system.${G_NAME}
    COMMAND ${PROJECT_SOURCE_DIR}/cmake/run-guest.sh
            ${CMAKE_BINARY_DIR}/guest-logs/${G_NAME}.log ${HUGEPTE_GUEST_TIMEOUT}
            ${G_QEMU} ${G_QEMU_ARGS} -kernel ${elf})
  math(EXPR backstop "${HUGEPTE_GUEST_TIMEOUT} + 15")  # ctest's own, beyond run-guest's
  set_tests_properties(system.${G_NAME} PROPERTIES
    TIMEOUT ${backstop}
    LABELS "system;${G_ARCH}")
endfunction()
