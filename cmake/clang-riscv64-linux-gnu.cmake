set(CROSS_TRIPLE riscv64-linux-gnu)
set(CROSS_PROCESSOR riscv64)
set(CROSS_QEMU /usr/bin/qemu-riscv64)
include(${CMAKE_CURRENT_LIST_DIR}/clang-cross-common.cmake)
