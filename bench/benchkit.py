# SPDX-License-Identifier: Apache-2.0
"""What the benchmarks in bench/ share: their error and progress lines, building and running a C
driver, bench/crypto's ping-pong (where the hypervisor placed two vCPUs), the child processes'
interpreter and parent-death signal, the host facts every report states (CPU model, how two CPUs
share hardware, steal time), the options every benchmark has, and the common end of `main`.

A benchmark is an executable without `.py`; it imports this module from its own directory:

  sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
  import benchkit

Standard library only, so that a benchmark which runs under any python3 can import it too.
Nothing here exits the process: a failure raises BenchError, which `main` turns into the exit
status; argument errors go through the benchmark's own ArgumentParser.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import pathlib
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NoReturn

BENCH_DIR = pathlib.Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
INCLUDE = ROOT / "native" / "include"
LIBSYNTH = ROOT / "native" / "build" / "libsynth.a"
CRYPTO_SOURCE = BENCH_DIR / "crypto_bench.c"  # bench/crypto's driver: its rtt and pingpong modes


class BenchError(Exception):
    """A failure that makes the figures meaningless: report it and exit 1."""


class Progress:
    """Progress lines on stderr, each with the benchmark's tag and the seconds since it started
    (`[provider-bench   1.2s] ...`); results go to stdout."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.start = time.monotonic()

    def __call__(self, msg: str) -> None:
        print(f"[{self.tag} {self.elapsed():5.1f}s] {msg}", file=sys.stderr, flush=True)

    def elapsed(self) -> float:
        """Seconds since the benchmark started."""
        return time.monotonic() - self.start

    def warn(self, msg: str, warnings: list[str]) -> None:
        """Keep msg for the report (its `warnings`) and say it now."""
        warnings.append(msg)
        self(f"warning: {msg}")


# ---- build ----

def newest_mtime(paths: Iterable[pathlib.Path]) -> float:
    """The newest modification time of those paths that exist (0 when none does)."""
    return max((p.stat().st_mtime for p in paths if p.exists()), default=0.0)


def make(target: str, product: pathlib.Path, progress: Progress) -> None:
    """`make target` in the top directory; BenchError unless it succeeds and product exists."""
    progress(f"building {product.relative_to(ROOT)} (make {target})")
    r = subprocess.run(["make", "-s", "-C", str(ROOT), target], capture_output=True, text=True)
    if r.returncode != 0 or not product.is_file():
        raise BenchError(f"make {target} failed:\n{r.stdout}{r.stderr}")


def out_dir() -> pathlib.Path:
    """Where compiled drivers go: bench/out, or a directory of this user's under the temporary
    directory when bench/out cannot be written."""
    d = BENCH_DIR / "out"
    try:
        d.mkdir(exist_ok=True)
        probe = d / f".w{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError:
        d = pathlib.Path(tempfile.gettempdir()) / f"libvirt-synth-bench-{os.getuid()}"
        d.mkdir(exist_ok=True)
    return d


OPENSSL_NEEDS = "gcc and the OpenSSL 3 headers: apt-get install gcc libssl-dev"


def compile_c(cc: str, source: pathlib.Path, name: str, inputs: list[pathlib.Path], progress: Progress,
              warnings: list[str], link: tuple[str, ...] = ("-lcrypto",),
              needs: str | None = OPENSSL_NEEDS) -> pathlib.Path:
    """source, with inputs (more C files, libsynth.a) and link (-l options), -> out_dir()/name,
    unless that is newer than everything it is built from (and the project's headers); compiler
    warnings become report warnings. needs: what a failed build says to install."""
    if not source.is_file():
        raise BenchError(f"{source} is missing")
    exe = out_dir() / name
    deps = [source, *inputs, *sorted((INCLUDE / "synth").glob("*.h")), *sorted(BENCH_DIR.glob("*.h"))]
    if exe.is_file() and exe.stat().st_mtime >= newest_mtime(deps):
        return exe
    progress(f"compiling {source.relative_to(ROOT)} -> {exe}")
    tmp = exe.with_name(f"{exe.name}.{os.getpid()}.tmp")
    cmd = [cc, "-O2", "-g", "-Wall", "-Wextra", "-std=gnu11", "-D_GNU_SOURCE", f"-I{INCLUDE}",
           str(source), *map(str, inputs), *link, "-o", str(tmp)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise BenchError(f"compiling {source.name} failed ({' '.join(cmd)}):\n{r.stderr}"
                         + (f"\n(needs {needs})" if needs else ""))
    if r.stderr.strip():
        progress.warn(f"compiler warnings ({source.name}):\n{r.stderr.strip()}", warnings)
    os.replace(tmp, exe)
    return exe


def crypto_bench(cc: str, progress: Progress, warnings: list[str]) -> pathlib.Path:
    """libsynth (make) and bench/crypto's driver with OpenSSL alone (bench/out/crypto_bench), for its
    pingpong and rtt modes. bench/crypto itself builds a variant with intel-ipsec-mb."""
    make("libsynth", LIBSYNTH, progress)
    return compile_c(cc, CRYPTO_SOURCE, "crypto_bench", [LIBSYNTH], progress, warnings)


def check_backend_fresh(progress: Progress, warnings: list[str], who: str = "the device") -> None:
    """who (the device, the backend, the daemon) runs libvirt_synth._native (built by pip): warn if
    it predates the C sources. Nothing to compare when it is installed elsewhere (site-packages)."""
    mods = list((ROOT / "libvirt_synth").glob("_native*.so"))
    if not mods:
        return
    srcs = [*(ROOT / "native" / "src").rglob("*.c"), *(ROOT / "native" / "src").rglob("*.h"),
            *(INCLUDE / "synth").glob("*.h")]
    if max(m.stat().st_mtime for m in mods) < newest_mtime(srcs):
        progress.warn(f"libvirt_synth/_native*.so is older than native/src: {who} may run stale code "
                      "(rebuild it: make setup, or pip install -e .)", warnings)


# ---- processes ----

PR_SET_PDEATHSIG = 1


def venv_python() -> str:
    """The project's virtualenv interpreter (for a backend or daemon child), else this one."""
    py = ROOT / ".venv" / "bin" / "python"
    return str(py) if py.exists() else sys.executable


def die_with_parent() -> None:
    """preexec_fn: SIGTERM the child when this benchmark dies, however it dies, so that nothing is
    left behind."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


# ---- the C drivers ----

def run_c(exe: pathlib.Path, *args: object, env: dict[str, str] | None = None, timeout: float = 120.0,
          with_stderr: bool = False) -> dict[str, Any]:
    """Run one mode of a C driver (its arguments as text); return the JSON line it printed last,
    which must say "checked" (the driver verified its own results); with_stderr, its stderr too
    (as "stderr")."""
    cmd = [str(exe), *map(str, args)]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, env=env)
    except subprocess.TimeoutExpired:
        raise BenchError(f"{' '.join(cmd)} took more than {timeout:.0f} s") from None
    if r.returncode != 0:
        raise BenchError(f"{' '.join(cmd)} failed (status {r.returncode}):\n{r.stderr.strip()}")
    lines = [ln for ln in r.stdout.splitlines() if ln.strip()]
    try:
        doc = json.loads(lines[-1])
    except (IndexError, ValueError):
        raise BenchError(f"{' '.join(cmd)} printed no JSON result:\n{r.stdout}{r.stderr}") from None
    if not isinstance(doc, dict) or not doc.get("checked"):
        raise BenchError(f"{' '.join(cmd)}: result not checked: {doc}")
    if with_stderr:
        doc["stderr"] = r.stderr.strip()
    return dict(doc)


#: A round's placement from its ping-pong p50: "near" below this many ns, "far" from there on. Machines
#: of this kind show clusters at 80-140 ns (near), 200-250 ns and 380-440 ns or more (far).
NEAR_NS = 170.0
PLACEMENTS = ("near", "far")


def placement_of(pingpong_p50_ns: float, near_ns: float = NEAR_NS) -> str:
    return "near" if pingpong_p50_ns < near_ns else "far"


def pingpong(exe: pathlib.Path, where: str | pathlib.Path, samples: int, a: int, b: int,
             mode: str = "mailbox", timeout: float = 60.0) -> dict[str, Any]:
    """Where the hypervisor placed CPUs a and b: a raw shared-memory ping-pong between them
    (crypto_bench's pingpong mode, its file under where); its result, with p50_ns and p99_ns."""
    return run_c(exe, "pingpong", where, samples, a, b, mode, timeout=timeout)


# ---- host facts ----

def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo)."""
    with contextlib.suppress(OSError):
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def cpu_relation(a: int, b: int) -> str:
    """How two CPUs share hardware, as the (virtual) topology tells it."""
    def read(cpu: int, what: str) -> str:
        with contextlib.suppress(OSError):
            return pathlib.Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/{what}").read_text().strip()
        return "?"
    if read(a, "physical_package_id") != read(b, "physical_package_id"):
        return "different sockets"
    if read(a, "core_id") == read(b, "core_id") and read(a, "core_id") != "?":
        return "SMT siblings of one core"
    return "different cores of one socket"


def cpu_times() -> dict[int, list[int]]:
    """/proc/stat: per CPU, its time counters (user nice system idle iowait irq softirq steal ...)."""
    out: dict[int, list[int]] = {}
    with contextlib.suppress(OSError, ValueError):
        for line in pathlib.Path("/proc/stat").read_text().splitlines():
            f = line.split()
            if f and f[0].startswith("cpu") and f[0] != "cpu":
                out[int(f[0][3:])] = [int(x) for x in f[1:]]
    return out


def steal_pct(t0: dict[int, list[int]], t1: dict[int, list[int]], cpu: int) -> float | None:
    """Share of cpu's time the hypervisor gave to others between two cpu_times() (a VM's noise)."""
    if cpu not in t0 or cpu not in t1 or len(t1[cpu]) < 8:
        return None
    d = [y - x for x, y in zip(t0[cpu], t1[cpu], strict=False)]
    total = sum(d[:8])
    return 100.0 * d[7] / total if total > 0 else None


def steal_by_cpu(t0: dict[int, list[int]], t1: dict[int, list[int]], cpus: Iterable[int]) -> dict[str, float | None]:
    """steal_pct of each CPU, in the order given, keyed by the CPU's number as text (a JSON key)."""
    return {str(c): steal_pct(t0, t1, c) for c in cpus}


def steal_text(steal: dict[str, float | None]) -> str:
    """`; steal CPU 0 1.2 %` for each CPU with a figure: the tail of a report's placement line."""
    return "".join(f"; steal CPU {c} {v:.1f} %" for c, v in steal.items() if v is not None)


# ---- front end ----

def verdict(ok: bool | None) -> str:
    """A target's verdict as the reports print it: PASS, MISS, or nothing where none applies."""
    return "" if ok is None else ("PASS" if ok else "MISS")


def add_json_quick(p: argparse.ArgumentParser, quick_help: str) -> None:
    """The two options every benchmark has: --json, and --quick (quick_help says what it runs)."""
    p.add_argument("--json", action="store_true", help="print the results as one JSON document")
    p.add_argument("--quick", action="store_true", help=quick_help)


def add_cc(p: argparse.ArgumentParser) -> None:
    """--cc, the compiler of the C drivers."""
    p.add_argument("--cc", default=os.environ.get("CC", "gcc"), help="C compiler (default $CC or gcc)")


def cpu_pair(p: argparse.ArgumentParser, app: int | None, backend: int | None, needs: str) -> tuple[int, int]:
    """The application CPU and the device worker's CPU: the first two this process may use unless
    given; an argparse error (needs: what the two CPUs are for) when there is one CPU only or a
    given one is not allowed. Whether they must differ, the caller says."""
    allowed = sorted(os.sched_getaffinity(0))
    if app is None:
        app = allowed[0]
    if backend is None:
        others = [c for c in allowed if c != app]
        if not others:
            p.error(f"needs two CPUs ({needs}); this process may use only {allowed}")
        backend = others[0]
    check_cpus(p, app, backend)
    return app, backend


def check_cpus(p: argparse.ArgumentParser, *cpus: int) -> None:
    """An argparse error when one of cpus is not available to this process."""
    allowed = sorted(os.sched_getaffinity(0))
    for c in cpus:
        if c not in allowed:
            p.error(f"CPU {c} is not available to this process (allowed: {allowed})")


@contextlib.contextmanager
def region_dir(prefix: str = "synth-bench-") -> Iterator[str]:
    """A directory for regions (under /dev/shm where it can be written), removed afterwards."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    d = tempfile.mkdtemp(prefix=prefix, dir=base)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def sigterm_to_exit(*_: object) -> NoReturn:
    """A signal handler: the signal unwinds like Ctrl-C, so that cleanups run."""
    raise KeyboardInterrupt


def main(prog: str, run: Callable[[], dict[str, Any]], print_text: Callable[[dict[str, Any]], None],
         as_json: bool, progress: Progress, errors: tuple[type[BaseException], ...] = (),
         fail_on_miss: bool = False, after: Callable[[dict[str, Any]], None] | None = None) -> int:
    """The end every benchmark's main shares: SIGTERM unwinds as Ctrl-C; run(); a BenchError (or
    one of errors, whose messages say what to do) is printed and gives 1, an interrupt 130;
    else the results on stdout, one JSON document (as_json) or print_text's report, then after(doc)
    (e.g. a chart), and 0, or 3 with fail_on_miss when the document's targets_met is short of its
    targets_total."""
    caught: tuple[type[BaseException], ...] = (BenchError, *errors)
    signal.signal(signal.SIGTERM, sigterm_to_exit)
    try:
        doc = run()
    except caught as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    progress(f"done in {doc['elapsed_s']} s")
    if as_json:
        print(json.dumps(doc, indent=2))
    else:
        print_text(doc)
    if after is not None:
        after(doc)
    if fail_on_miss and doc["targets_met"] < doc["targets_total"]:
        return 3
    return 0
