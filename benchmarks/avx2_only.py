"""Run a command as if on an AVX2-only CPU, on a CPU that has AVX-512: for benchmarks whose
question is how deepres's engines do on the many machines (Zen 3 and older AMD, older Xeons,
many laptops) that have AVX2 and FMA but no AVX-512, VNNI or AMX.

    .venv/bin/python benchmarks/avx2_only.py -- .venv/bin/python benchmarks/engines.py
    .venv/bin/python benchmarks/engines.py --avx2-only        # the same, from engines.py

The child runs with avx2_only/hide_avx512.c preloaded (compiled here with gcc on first use):
CPUID faulting hides the newer features from every library, /proc/cpuinfo's flags say the
same, and glibc is told by GLIBC_TUNABLES. The libraries run their AVX2 kernels at this
CPU's native speed; what stays this machine's is the microarchitecture (clocks, caches), so
figures are a proxy for an AVX2-only CPU, and ratios between engines in one run are the
figures to quote. `avx512_state_report()` reads the kernel's record of AVX-512 register use
(/proc/PID/task/*/arch_status), the check that nothing ran AVX-512 code after start-up.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from deepres.runtime.cpu import cpu_flags

SOURCE = Path(__file__).resolve().parent / "avx2_only" / "hide_avx512.c"
MARKER = "DEEPRES_AVX2_ONLY"
GLIBC_HIDE = "glibc.cpu.hwcaps=-AVX512F,-AVX512VL,-AVX512BW,-AVX512DQ,-AVX512CD"


class Unavailable(RuntimeError):
    """This machine cannot hide AVX-512 from a process (the message says why)."""


def shim(cache: str | None = None) -> Path:
    """The compiled preload library, built once per source version under ``cache`` (default
    $XDG_CACHE_HOME or ~/.cache)/deepres."""
    flags = cpu_flags()  # this process's view: call it before the shim is loaded
    if "cpuid_fault" not in flags:
        raise Unavailable("this kernel or CPU offers no CPUID faulting (no cpuid_fault flag in "
                          "/proc/cpuinfo): run the benchmark on a real AVX2-only CPU instead")
    if "avx512f" not in flags:
        raise Unavailable("this CPU has no AVX-512 to hide: run the benchmark without "
                          "--avx2-only, it is already an AVX2-only CPU")
    if shutil.which("gcc") is None:
        raise Unavailable("gcc is needed to build benchmarks/avx2_only/hide_avx512.c")
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:12]
    out = Path(cache or Path.home() / ".cache") / "deepres" / f"hide_avx512-{digest}.so"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(f".{os.getpid()}.tmp")
        done = subprocess.run(["gcc", "-O2", "-Wall", "-shared", "-fPIC", "-o", str(tmp),
                               str(SOURCE), "-ldl"], capture_output=True, text=True)
        if done.returncode != 0:
            raise Unavailable(f"gcc could not build {SOURCE.name}: {done.stderr.strip()[-300:]}")
        tmp.replace(out)
    return out


def environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default os.environ) with the preload, the glibc tunables and the marker."""
    env = dict(os.environ if base is None else base)
    lib = shim(env.get("XDG_CACHE_HOME"))
    env["LD_PRELOAD"] = " ".join(p for p in (str(lib), env.get("LD_PRELOAD", "")) if p)
    env["GLIBC_TUNABLES"] = ":".join(t for t in (env.get("GLIBC_TUNABLES", ""), GLIBC_HIDE) if t)
    env[MARKER] = f"{time.time():.3f}"  # when the exec under the shim began
    return env


def active() -> bool:
    return bool(os.environ.get(MARKER))


def reexec(argv: list[str]) -> None:
    """Replace this process with ``argv`` under the shim (does not return)."""
    try:
        env = environment()
    except Unavailable as exc:
        sys.exit(f"--avx2-only: {exc}")
    os.execve(argv[0], argv, env)


def _age_ms() -> float:
    """Milliseconds since this program began: its exec under the shim, else the process's
    start (a thread keeps its stamp across exec, so use before the exec must not count)."""
    if active():
        return (time.time() - float(os.environ[MARKER])) * 1000
    start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
    uptime_s = float(Path("/proc/uptime").read_text().split()[0])
    return (uptime_s - start_ticks / os.sysconf("SC_CLK_TCK")) * 1000


def avx512_state_report() -> str:
    """One line: did any thread of this process hold AVX-512 register state after start-up?

    The kernel stamps a thread when it finds AVX-512 state (opmask or upper ZMM registers) in
    use at a context switch; arch_status gives the time since (-1: never). Every process on
    the AMD EPYC this was written on shows one stamp from exec itself, so only use later than
    the first second of the program's life counts."""
    age_ms = _age_ms()
    recent, never, threads = [], 0, 0
    for status in Path("/proc/self/task").glob("*/arch_status"):
        try:
            ms = int(status.read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
        threads += 1
        if ms < 0:
            never += 1
        elif ms < age_ms - 1000:
            recent.append(ms)
    if not threads:
        return "AVX-512 use: not recorded by this kernel (no /proc/self/task/*/arch_status)"
    if recent:
        return (f"AVX-512 use: {len(recent)} of {threads} threads held AVX-512 state after "
                f"start-up (latest {min(recent)} ms ago)")
    return (f"AVX-512 use: none after start-up in {threads} threads ({never} never, the rest "
            f"only at exec), over {age_ms / 1000:.0f} s")


def main() -> None:
    argv = sys.argv[1:]
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        sys.exit("usage: avx2_only.py -- COMMAND [ARG...]")
    path = shutil.which(argv[0])
    if path is None:
        sys.exit(f"avx2_only.py: {argv[0]!r} not found")
    reexec([path, *argv[1:]])


if __name__ == "__main__":
    main()
