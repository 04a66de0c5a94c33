/* A process-level AVX2-only CPU, for benchmarks/avx2_only.py: loaded with LD_PRELOAD, it hides
 * AVX-512 (every subset), AVX-VNNI and AMX from the process, so that every library in it
 * (PyTorch's ATen and oneDNN, ONNX Runtime's MLAS, OpenVINO, glibc with GLIBC_TUNABLES) picks
 * the kernels it would pick on a CPU that has AVX2 and FMA and nothing newer, and runs them at
 * this CPU's own speed (no emulation: only the answers to CPUID change).
 *
 * How: Linux's CPUID faulting (arch_prctl ARCH_SET_CPUID 0, the cpuid_fault flag in
 * /proc/cpuinfo) makes every user-space CPUID instruction raise SIGSEGV; the handler runs the
 * real instruction with faulting briefly off for its own thread, clears the feature bits, and
 * steps over it. The setting is per thread and inherited by threads and forks made after it,
 * so it is switched on in a constructor, before any library is loaded. Reads of /proc/cpuinfo
 * through open/openat/fopen (and their _FORTIFY_SOURCE forms; lscpu opens "cpuinfo" relative
 * to /proc) get a copy with the same flags removed, so code that reads the flags (deepres's
 * runtime/precision.py, lscpu) sees the same CPU as code that asks the CPU.
 *
 * Not a CPU: the microarchitecture (caches, clocks, port counts) stays this machine's.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#define ARCH_SET_CPUID_ 0x1012

static struct sigaction previous; /* the SIGSEGV handler behind ours */
static int (*real_sigaction)(int, const struct sigaction *, struct sigaction *);
static int installed;
static volatile long traps;

static long set_cpuid(int enabled) { return syscall(SYS_arch_prctl, ARCH_SET_CPUID_, enabled); }

/* Feature bits of CPUID leaf 7 (Intel SDM vol. 2A, "CPUID"; AMD APM vol. 3, appendix E). */
static void hide(unsigned leaf, unsigned sub, unsigned r[4]) {
    if (leaf == 7 && sub == 0) {
        /* EBX: AVX512F 16, DQ 17, IFMA 21, PF 26, ER 27, CD 28, BW 30, VL 31 */
        r[1] &= ~((1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) | (1u << 27) | (1u << 28) |
                  (1u << 30) | (1u << 31));
        /* ECX: VBMI 1, VBMI2 6, VNNI 11, BITALG 12, VPOPCNTDQ 14 */
        r[2] &= ~((1u << 1) | (1u << 6) | (1u << 11) | (1u << 12) | (1u << 14));
        /* EDX: 4VNNIW 2, 4FMAPS 3, VP2INTERSECT 8, AMX-BF16 22, FP16 23, AMX-TILE 24,
         * AMX-INT8 25 */
        r[3] &= ~((1u << 2) | (1u << 3) | (1u << 8) | (1u << 22) | (1u << 23) | (1u << 24) |
                  (1u << 25));
    } else if (leaf == 7 && sub == 1) {
        /* EAX: AVX-VNNI 4, AVX512-BF16 5, AMX-FP16 21, AVX-IFMA 23 */
        r[0] &= ~((1u << 4) | (1u << 5) | (1u << 21) | (1u << 23));
        /* EDX: AVX-VNNI-INT8 4, AVX-NE-CONVERT 5, AMX-COMPLEX 8, AVX-VNNI-INT16 10, AVX10 19 */
        r[3] &= ~((1u << 4) | (1u << 5) | (1u << 8) | (1u << 10) | (1u << 19));
    } else if (leaf == 0xD && sub == 0) {
        /* XCR0 components offered: opmask 5, ZMM_Hi256 6, Hi16_ZMM 7, AMX 17-18 */
        r[0] &= ~((1u << 5) | (1u << 6) | (1u << 7) | (1u << 17) | (1u << 18));
    } else if (leaf == 0x1D || leaf == 0x1E || leaf == 0x24) {
        r[0] = r[1] = r[2] = r[3] = 0; /* AMX tile and AVX10 description leaves */
    }
}

static void on_segv(int sig, siginfo_t *info, void *context) {
    ucontext_t *uc = context;
    greg_t *g = uc->uc_mcontext.gregs;
    const unsigned char *ip = (const unsigned char *)g[REG_RIP];
    /* A faulting CPUID arrives as a general-protection fault: si_code SI_KERNEL. */
    if (info->si_code == SI_KERNEL && ip[0] == 0x0F && ip[1] == 0xA2) {
        unsigned r[4], leaf = (unsigned)g[REG_RAX], sub = (unsigned)g[REG_RCX];
        set_cpuid(1);
        __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
                         : "a"(leaf), "c"(sub));
        set_cpuid(0);
        hide(leaf, sub, r);
        g[REG_RAX] = r[0];
        g[REG_RBX] = r[1];
        g[REG_RCX] = r[2];
        g[REG_RDX] = r[3];
        g[REG_RIP] += 2;
        __atomic_fetch_add(&traps, 1, __ATOMIC_RELAXED);
        return;
    }
    /* Not ours: hand it to whoever asked for the signal, or die of it as usual. */
    if ((previous.sa_flags & SA_SIGINFO) && previous.sa_sigaction) {
        previous.sa_sigaction(sig, info, context);
    } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
        previous.sa_handler(sig);
    } else {
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        real_sigaction(SIGSEGV, &dfl, NULL);
        raise(SIGSEGV); /* blocked until this handler returns, then fatal */
    }
}

/* Handlers that others install for SIGSEGV later (Python's faulthandler, say) go behind ours,
 * so that CPUID keeps being answered: we pass them every fault that is not a CPUID. */
int sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
    if (!real_sigaction) real_sigaction = dlsym(RTLD_NEXT, "sigaction");
    if (sig != SIGSEGV || !installed) return real_sigaction(sig, act, old);
    struct sigaction was = previous;
    if (act) previous = *act;
    if (old) *old = was;
    return 0;
}

sighandler_t signal(int sig, sighandler_t handler) {
    struct sigaction act, old;
    memset(&act, 0, sizeof act);
    act.sa_handler = handler;
    act.sa_flags = SA_RESTART;
    sigemptyset(&act.sa_mask);
    return sigaction(sig, &act, &old) == 0 ? old.sa_handler : SIG_ERR;
}

static int is_hidden_flag(const char *w, size_t n) {
    static const char *prefixes[] = {"avx512", "amx", "avx_vnni", "avx_ifma", "avx_ne_convert",
                                     "avx10", NULL};
    for (int i = 0; prefixes[i]; i++) {
        size_t k = strlen(prefixes[i]);
        if (n >= k && strncmp(w, prefixes[i], k) == 0) return 1;
    }
    return 0;
}

/* One line of /proc/cpuinfo into out: a "flags" line loses the hidden flags. */
static size_t filter_line(const char *line, char *out) {
    const char *colon = strchr(line, ':');
    if (strncmp(line, "flags", 5) != 0 || !colon) {
        strcpy(out, line);
        return strlen(line);
    }
    size_t used = (size_t)(colon - line) + 1;
    memcpy(out, line, used);
    for (const char *p = colon + 1; *p;) {
        p += strspn(p, " \t\n");
        size_t n = strcspn(p, " \t\n");
        if (n && !is_hidden_flag(p, n)) {
            out[used++] = ' ';
            memcpy(out + used, p, n);
            used += n;
        }
        p += n;
    }
    out[used++] = '\n';
    return used;
}

/* A copy of /proc/cpuinfo without the hidden flags, as a memfd at offset 0. */
static int filtered_cpuinfo(int flags) {
    int src = (int)syscall(SYS_openat, AT_FDCWD, "/proc/cpuinfo", O_RDONLY | O_CLOEXEC);
    if (src < 0) return src;
    int out = memfd_create("cpuinfo", (flags & O_CLOEXEC) ? MFD_CLOEXEC : 0);
    FILE *in = fdopen(src, "r");
    char line[16384], kept[16384];
    while (in && out >= 0 && fgets(line, sizeof line, in)) {
        if (write(out, kept, filter_line(line, kept)) < 0) break;
    }
    if (in) fclose(in);
    if (out >= 0) lseek(out, 0, SEEK_SET);
    return out;
}

static int is_cpuinfo(const char *path) { return path && strcmp(path, "/proc/cpuinfo") == 0; }

/* "cpuinfo" opened relative to a descriptor of /proc (util-linux's lscpu does that). */
static int is_cpuinfo_at(int dir, const char *path) {
    if (is_cpuinfo(path)) return 1;
    if (!path || strcmp(path, "cpuinfo") != 0 || dir == AT_FDCWD) return 0;
    char link[64], target[16];
    snprintf(link, sizeof link, "/proc/self/fd/%d", dir);
    ssize_t n = readlink(link, target, sizeof target - 1);
    return n == 5 && memcmp(target, "/proc", 5) == 0;
}

/* open's and openat's optional mode argument, present only with O_CREAT or O_TMPFILE (GNU C:
 * a statement expression in the variadic function that uses it). */
#define MODE_ARG(flags)                                                              \
    ({                                                                               \
        mode_t mode_ = 0;                                                            \
        if ((flags) & (O_CREAT | O_TMPFILE)) {                                       \
            va_list ap_;                                                             \
            va_start(ap_, flags);                                                    \
            mode_ = va_arg(ap_, mode_t);                                             \
            va_end(ap_);                                                             \
        }                                                                            \
        mode_;                                                                       \
    })

int openat(int dir, const char *path, int flags, ...) {
    mode_t mode = MODE_ARG(flags);
    if (is_cpuinfo_at(dir, path)) return filtered_cpuinfo(flags);
    static int (*real)(int, const char *, int, ...);
    if (!real) real = dlsym(RTLD_NEXT, "openat");
    return real(dir, path, flags, mode);
}

/* open(path) is openat(AT_FDCWD, path): one place decides. */
int open(const char *path, int flags, ...) {
    return openat(AT_FDCWD, path, flags, MODE_ARG(flags));
}

int open64(const char *path, int flags, ...) __attribute__((alias("open")));

int openat64(int dir, const char *path, int flags, ...) __attribute__((alias("openat")));

/* The _FORTIFY_SOURCE entry points (no mode argument: O_CREAT is refused there). */
int __open_2(const char *path, int flags) { return open(path, flags); }
int __open64_2(const char *path, int flags) __attribute__((alias("__open_2")));
int __openat_2(int dir, const char *path, int flags) { return openat(dir, path, flags); }
int __openat64_2(int dir, const char *path, int flags) __attribute__((alias("__openat_2")));

FILE *fopen(const char *path, const char *mode) {
    if (is_cpuinfo(path)) {
        int fd = filtered_cpuinfo(O_CLOEXEC);
        return fd < 0 ? NULL : fdopen(fd, mode);
    }
    static FILE *(*real)(const char *, const char *);
    if (!real) real = dlsym(RTLD_NEXT, "fopen");
    return real(path, mode);
}

FILE *fopen64(const char *path, const char *mode) __attribute__((alias("fopen")));

__attribute__((constructor)) static void start(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    real_sigaction = dlsym(RTLD_NEXT, "sigaction");
    real_sigaction(SIGSEGV, &sa, &previous);
    installed = 1;
    if (set_cpuid(0) != 0) {
        fputs("hide_avx512: this kernel or CPU has no CPUID faulting (no cpuid_fault flag); "
              "cannot hide AVX-512 from this process\n", stderr);
        _exit(3);
    }
}

__attribute__((destructor)) static void stop(void) {
    if (getenv("HIDE_AVX512_VERBOSE"))
        fprintf(stderr, "hide_avx512: answered %ld CPUID instructions in pid %d\n", traps,
                getpid());
}
