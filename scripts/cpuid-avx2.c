// An AVX2-only x86-64 CPU, as every library in one process sees it: preloaded
// (LD_PRELOAD=cpuid-avx2.so), it makes the CPUID instruction fault and answers it with the
// AVX-512, AMX and VNNI feature bits cleared. Benchmarks use it to measure on an AVX-512 machine
// what a laptop or VM with AVX2 and FMA only gets, for every tool in the same way: PyTorch,
// oneDNN, ONNX Runtime's MLAS, OpenBLAS and Rust's `is_x86_feature_detected!` all pick their
// kernels from CPUID, and most have no switch of their own (ONNX Runtime has none).
//
//   cc -O2 -shared -fPIC -o cpuid-avx2.so scripts/cpuid-avx2.c      (scripts/bench-embed.sh does)
//   LD_PRELOAD=$PWD/cpuid-avx2.so CPUID_AVX2_CHECK=1 python3 -c ''   (says whether it took effect)
//
// How: Linux's arch_prctl(ARCH_SET_CPUID, 0) turns on CPUID faulting for the calling thread (a
// CPU feature on Intel, emulated for guests by KVM and Firecracker); threads started afterwards
// inherit it, and execve turns it off (the environment carries LD_PRELOAD into child processes,
// so each turns it on again). The SIGSEGV handler below runs the real CPUID with faulting off for
// that moment, clears the bits and steps over the instruction. Any other SIGSEGV goes to the
// handler installed before this one, or kills the process as it would have.
//
// Limits, which the benchmarks say when they use it: code that ran CPUID before this library's
// constructor keeps what it saw (the dynamic loader's choice of glibc string functions: pass
// GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX512F,... for those); a library that replaces the SIGSEGV
// handler without chaining to it would crash on its next CPUID (Rust's runtime keeps an existing
// handler; Python installs none unless faulthandler is enabled); the OS still saves AVX-512
// state (XCR0), which is harmless since every library checks CPUID before it. Where faulting
// is not available, the constructor says so on stderr and changes nothing.
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <cpuid.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

static struct sigaction previous;

static int set_cpuid(int on) { return (int)syscall(SYS_arch_prctl, ARCH_SET_CPUID, on); }

// Clears what an AVX2-and-FMA-only CPU lacks from one CPUID answer (r = eax, ebx, ecx, edx).
static void avx2_only(uint32_t leaf, uint32_t sub, uint32_t r[4]) {
    if (leaf == 7 && sub == 0) {
        // EBX: AVX512F 16, DQ 17, IFMA 21, PF 26, ER 27, CD 28, BW 30, VL 31.
        r[1] &= ~((1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) | (1u << 27) | (1u << 28) |
                  (1u << 30) | (1u << 31));
        // ECX: VBMI 1, VBMI2 6, VNNI 11, BITALG 12, VPOPCNTDQ 14.
        r[2] &= ~((1u << 1) | (1u << 6) | (1u << 11) | (1u << 12) | (1u << 14));
        // EDX: 4VNNIW 2, 4FMAPS 3, VP2INTERSECT 8, AMX-BF16 22, FP16 23, AMX-TILE 24, AMX-INT8 25.
        r[3] &= ~((1u << 2) | (1u << 3) | (1u << 8) | (1u << 22) | (1u << 23) | (1u << 24) |
                  (1u << 25));
    } else if (leaf == 7 && sub == 1) {
        // EAX: AVX-VNNI 4, AVX512-BF16 5, AMX-FP16 21, AVX-IFMA 23.
        r[0] &= ~((1u << 4) | (1u << 5) | (1u << 21) | (1u << 23));
        // EDX: AVX-VNNI-INT8 4, AVX-NE-CONVERT 5, AVX-VNNI-INT16 10, AVX10 19.
        r[3] &= ~((1u << 4) | (1u << 5) | (1u << 10) | (1u << 19));
    } else if (leaf == 0x24) {
        // AVX10's own leaf: no AVX10.
        r[0] = r[1] = r[2] = r[3] = 0;
    }
}

static void on_segv(int sig, siginfo_t *info, void *context) {
    ucontext_t *uc = context;
    greg_t *regs = uc->uc_mcontext.gregs;
    const uint8_t *ip = (const uint8_t *)regs[REG_RIP];
    // A fault at an unmapped RIP faults again here; SIGSEGV is blocked in this handler, so the
    // kernel then ends the process with it, as the first fault would have.
    if (info->si_code == SI_KERNEL && ip[0] == 0x0f && ip[1] == 0xa2) {
        uint32_t leaf = (uint32_t)regs[REG_RAX], sub = (uint32_t)regs[REG_RCX], r[4];
        set_cpuid(1);
        __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]);
        set_cpuid(0);
        avx2_only(leaf, sub, r);
        regs[REG_RAX] = r[0];
        regs[REG_RBX] = r[1];
        regs[REG_RCX] = r[2];
        regs[REG_RDX] = r[3];
        regs[REG_RIP] += 2;
        return;
    }
    if ((previous.sa_flags & SA_SIGINFO) && previous.sa_sigaction) {
        previous.sa_sigaction(sig, info, context);
    } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
        previous.sa_handler(sig);
    } else {
        // Returning re-runs the faulting instruction, which now gets the default action.
        signal(sig, SIG_DFL);
    }
}

__attribute__((constructor)) static void start(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_segv;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGSEGV, &action, &previous) != 0 || set_cpuid(0) != 0) {
        sigaction(SIGSEGV, &previous, NULL);
        fprintf(stderr, "cpuid-avx2: CPUID faulting is not available here; the CPU is unchanged\n");
        return;
    }
    if (getenv("CPUID_AVX2_CHECK")) {
        uint32_t a, b, c, d;
        __cpuid_count(7, 0, a, b, c, d);
        fprintf(stderr, "cpuid-avx2: avx2 %s, avx512f %s\n", (b >> 5) & 1 ? "yes" : "no",
                (b >> 16) & 1 ? "yes" : "no");
    }
}
