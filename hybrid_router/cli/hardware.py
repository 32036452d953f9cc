"""What memory this machine has for local models, and which model profile it holds.

Memory means GPU memory when a GPU can hold a profile, else system RAM (CPU inference):

- NVIDIA: `nvidia-smi --query-gpu=name,memory.total --format=csv,noheader,nounits` (MiB per GPU;
  Ollama spreads a model over several GPUs, so their sum counts).
- Apple silicon: `sysctl -n hw.memsize` is the unified memory; Metal lets the GPU use only part
  of it (`recommendedMaxWorkingSetSize`): measured at 2/3 on a 32 GB Mac (21,845 MB, ollama/ollama
  issue 434), about 3/4 on 64 GB (llama.cpp issue 1870) and 0.84 on 128 GiB (antirez/ds4 PR 893).
  We take 2/3 up to 36 GiB and 3/4 above, or `iogpu.wired_limit_mb` when the user raised it.
- RAM: `/proc/meminfo` (MemTotal), `sysctl -n hw.memsize` on macOS, else `os.sysconf`; CPU
  inference keeps a quarter of it (at least 4 GB) for the system, Claude Code and the editor.

Sizes are GB of 10^9 bytes, as Ollama's library and the profiles state them. Every probe fails
soft: a missing or broken `nvidia-smi` means "no NVIDIA GPU", never an error. Tests put stand-in
executables on PATH and point `MEMINFO` at a fake file.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass

from ..config.profiles import GB, Profile, largest_fitting, selectable

MEMINFO = "/proc/meminfo"
MIB = 1024 * 1024
GIB = 1024 * MIB
PROBE_TIMEOUT_SECONDS = 5.0
APPLE_SMALL_SHARE = 2 / 3  # up to APPLE_SHARE_THRESHOLD of unified memory
APPLE_LARGE_SHARE = 3 / 4
APPLE_SHARE_THRESHOLD = 36 * GIB
RAM_RESERVE_SHARE = 0.25
RAM_RESERVE_MIN_GB = 4.0


@dataclass(frozen=True)
class Gpu:
    name: str
    memory_gb: float


@dataclass(frozen=True)
class Hardware:
    """What detection found. `ram_gb` is None only when nothing could be read."""

    ram_gb: float | None
    ram_source: str
    nvidia: tuple[Gpu, ...] = ()
    apple_unified_gb: float | None = None  # Apple silicon: the whole unified memory
    apple_gpu_gb: float | None = None  # the part Metal lets the GPU use
    apple_gpu_source: str = ""

    @property
    def gpu_gb(self) -> float | None:
        if self.nvidia:
            return sum(gpu.memory_gb for gpu in self.nvidia)
        return self.apple_gpu_gb

    def gpu_description(self) -> str | None:
        if len(self.nvidia) == 1:
            return f"{self.nvidia[0].name}: {self.gpu_gb:.1f} GB VRAM (nvidia-smi)"
        if self.nvidia:
            names = ", ".join(gpu.name for gpu in self.nvidia)
            return (
                f"{len(self.nvidia)} GPUs ({names}): {self.gpu_gb:.1f} GB VRAM in total "
                "(nvidia-smi)"
            )
        if self.apple_gpu_gb is not None and self.apple_unified_gb is not None:
            return (
                f"Apple silicon: {self.apple_gpu_gb:.1f} GB of {self.apple_unified_gb:.1f} GB "
                f"unified memory for the GPU ({self.apple_gpu_source})"
            )
        return None

    @property
    def cpu_gb(self) -> float | None:
        """RAM left for models under CPU inference."""
        if self.ram_gb is None:
            return None
        return max(0.0, self.ram_gb - self.ram_reserve_gb)

    @property
    def ram_reserve_gb(self) -> float:
        return max(RAM_RESERVE_MIN_GB, RAM_RESERVE_SHARE * (self.ram_gb or 0.0))

    def lines(self) -> list[str]:
        """A readable summary (for `setup`)."""
        gpu = self.gpu_description()
        found = [f"GPU: {gpu}" if gpu else "GPU: no NVIDIA or Apple GPU found"]
        if self.ram_gb is not None:
            found.append(
                f"RAM: {self.ram_gb:.1f} GB ({self.ram_source}); {self.cpu_gb:.1f} GB for models "
                f"under CPU inference ({self.ram_reserve_gb:.1f} GB kept for the system)"
            )
        else:
            found.append(f"RAM: unknown ({self.ram_source})")
        return found


@dataclass(frozen=True)
class Choice:
    """The profile detection picked, the memory it compared, and why, in one line."""

    profile: Profile
    memory_gb: float
    memory_kind: str  # "gpu" or "ram"
    fits: bool
    line: str


def _run(command: list[str], environ: Mapping[str, str]) -> str | None:
    executable = shutil.which(command[0], path=environ.get("PATH", os.defpath))
    if executable is None:
        return None
    try:
        done = subprocess.run(
            [executable, *command[1:]],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_SECONDS,
            env=dict(environ),
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def nvidia_gpus(environ: Mapping[str, str]) -> tuple[Gpu, ...]:
    output = _run(
        ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"], environ
    )
    gpus: list[Gpu] = []
    for line in (output or "").splitlines():
        name, _, mib = line.rpartition(",")
        try:
            gpus.append(Gpu(name.strip() or "GPU", float(mib.strip()) * MIB / GB))
        except ValueError:
            continue
    return tuple(gpu for gpu in gpus if gpu.memory_gb > 0)


def _sysctl_int(name: str, environ: Mapping[str, str]) -> int | None:
    output = _run(["sysctl", "-n", name], environ)
    try:
        return int((output or "").strip())
    except ValueError:
        return None


def meminfo_gb(path: str = MEMINFO) -> float | None:
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024 / GB  # the figure is in KiB
    except (OSError, ValueError, IndexError):
        return None
    return None


def _sysconf_gb() -> float | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GB
    except (AttributeError, ValueError, OSError):
        return None


def detect(
    environ: Mapping[str, str] | None = None,
    system: str | None = None,
    machine: str | None = None,
    meminfo: str | None = None,
) -> Hardware:
    """Read this machine's memory. `system`/`machine` default to `platform`'s answers."""
    env = os.environ if environ is None else environ
    system = system or platform.system()
    machine = machine or platform.machine()
    nvidia = nvidia_gpus(env)
    if system == "Darwin":
        memsize = _sysctl_int("hw.memsize", env)
        if memsize:
            ram_gb = memsize / GB
            apple_gpu_gb = apple_gpu_source = None
            if machine == "arm64" and not nvidia:
                wired_mb = _sysctl_int("iogpu.wired_limit_mb", env)
                if wired_mb:
                    apple_gpu_gb = wired_mb * MIB / GB
                    apple_gpu_source = f"iogpu.wired_limit_mb = {wired_mb}"
                else:
                    share = (
                        APPLE_SMALL_SHARE
                        if memsize <= APPLE_SHARE_THRESHOLD
                        else (APPLE_LARGE_SHARE)
                    )
                    apple_gpu_gb = ram_gb * share
                    apple_gpu_source = f"{'2/3' if share < 0.7 else '3/4'}, macOS's default share"
            return Hardware(
                ram_gb,
                "sysctl hw.memsize",
                nvidia,
                ram_gb if apple_gpu_gb is not None else None,
                apple_gpu_gb,
                apple_gpu_source or "",
            )
    ram = meminfo_gb(meminfo or MEMINFO)
    if ram is not None:
        return Hardware(ram, "/proc/meminfo", nvidia)
    ram = _sysconf_gb()
    return Hardware(ram, "os.sysconf" if ram is not None else "not readable", nvidia)


def choose(hardware: Hardware, profiles: Mapping[str, Profile]) -> Choice:
    """The largest profile the GPU holds; else the largest the RAM holds for CPU inference;
    else the smallest one, flagged as not fitting. `line` says which memory and why."""
    options = selectable(profiles)
    gpu_gb = hardware.gpu_gb
    gpu_text = hardware.gpu_description()
    if gpu_gb is not None and gpu_text is not None:
        fit = largest_fitting(profiles, gpu_gb)
        if fit is not None:
            return Choice(fit, gpu_gb, "gpu", True, _line(gpu_text, fit, options))
        gpu_note = f"{gpu_text} holds no profile"
    else:
        gpu_note = "no NVIDIA or Apple GPU found"
    cpu_gb = hardware.cpu_gb
    if cpu_gb is None:
        smallest = options[0]
        return Choice(
            smallest,
            0.0,
            "ram",
            False,
            f"memory: {gpu_note} and RAM could not be read ({hardware.ram_source}); chose the "
            f"smallest profile, {smallest.name} (needs {smallest.required_gb:.1f} GB)",
        )
    ram_text = (
        f"{gpu_note}; RAM {hardware.ram_gb:.1f} GB ({hardware.ram_source}), {cpu_gb:.1f} GB for "
        f"CPU inference after {hardware.ram_reserve_gb:.1f} GB kept for the system"
    )
    fit = largest_fitting(profiles, cpu_gb)
    if fit is not None:
        return Choice(fit, cpu_gb, "ram", True, _line(ram_text, fit, options))
    smallest = options[0]
    return Choice(
        smallest,
        cpu_gb,
        "ram",
        False,
        f"memory: {ram_text}: no profile fits; chose the smallest, {smallest.name}, which needs "
        f"{smallest.required_gb:.1f} GB (expect slow answers and fallbacks to the cloud)",
    )


@dataclass(frozen=True)
class Fit:
    """Whether a given need fits this machine, and with which memory."""

    fits: bool
    memory_gb: float | None
    description: str


def fit_of(hardware: Hardware, required_gb: float) -> Fit:
    """GPU memory when the GPU holds `required_gb`, else RAM for CPU inference."""
    gpu_gb = hardware.gpu_gb
    gpu_text = hardware.gpu_description()
    if gpu_gb is not None and gpu_text is not None and gpu_gb >= required_gb:
        return Fit(True, gpu_gb, gpu_text)
    cpu_gb = hardware.cpu_gb
    if cpu_gb is None:
        return Fit(False, None, f"RAM could not be read ({hardware.ram_source})")
    where = f"{gpu_text} is too small; " if gpu_text else ""
    return Fit(
        cpu_gb >= required_gb,
        cpu_gb,
        f"{where}{cpu_gb:.1f} GB of RAM for CPU inference ({hardware.ram_gb:.1f} GB, "
        f"{hardware.ram_reserve_gb:.1f} GB kept for the system)",
    )


def _line(found: str, chosen: Profile, options: list[Profile]) -> str:
    larger = [p for p in options if p.required_gb > chosen.required_gb]
    following = f"; {larger[0].name} would need {larger[0].required_gb:.1f} GB" if larger else ""
    return (
        f"memory: {found} -> profile {chosen.name} (needs {chosen.required_gb:.1f} GB{following})"
    )
