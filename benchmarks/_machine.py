"""What a benchmark prints and records about the machine it ran on: CPU model, AVX-512, cores, BLAS, load."""

from __future__ import annotations

import os
import platform
import subprocess


def _lscpu():
    try:
        return subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10,
                              env={**os.environ, "LC_ALL": "C"}).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def cpu_info():
    """``dict(model, avx512f, cpus, platform, blas, load_average)``.

    ``model``: lscpu's "Model name" (else /proc/cpuinfo's "model name"); ``avx512f``: whether the
    flag is listed (lscpu's "Flags", else /proc/cpuinfo); ``blas``: threadpoolctl's view of the BLAS
    libraries loaded so far (name, version, threads), when threadpoolctl is installed.
    """
    model, flags = None, ""
    for line in _lscpu().splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
        elif line.startswith("Flags:"):
            flags = line.split(":", 1)[1]
    if model is None or not flags:
        try:
            with open("/proc/cpuinfo") as fh:
                for line in fh:
                    if model is None and line.startswith("model name"):
                        model = line.split(":", 1)[1].strip()
                    elif not flags and line.startswith("flags"):
                        flags = line.split(":", 1)[1]
        except OSError:
            pass
    try:
        from threadpoolctl import threadpool_info
        blas = [dict(api=i.get("internal_api"), version=i.get("version"), threads=i.get("num_threads"),
                     library=os.path.basename(i.get("filepath", ""))) for i in threadpool_info()
                if i.get("user_api") == "blas"]
    except ImportError:
        blas = None
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return dict(model=model or platform.processor() or platform.machine(), avx512f="avx512f" in flags.split(),
                cpus=os.cpu_count(), platform=platform.platform(), blas=blas, load_average=load)


def cpu_line(info=None):
    """One line: ``CPU: <model>, avx512f: yes|no, <k> CPUs, load average a b c``."""
    info = cpu_info() if info is None else info
    load = " ".join(f"{x:.2f}" for x in info["load_average"]) if info["load_average"] else "unknown"
    return (f"CPU: {info['model']}, avx512f: {'yes' if info['avx512f'] else 'no'}, {info['cpus']} CPUs, "
            f"load average {load}")
