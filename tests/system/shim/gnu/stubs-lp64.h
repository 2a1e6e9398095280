/* Empty: the riscv64 cross glibc ships only stubs-lp64d.h, but the bare-metal images build with
   the soft-float lp64 ABI (sstatus.FS is off under OpenSBI) and use no glibc function. */
