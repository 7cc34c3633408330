"""Build the optional compiled extensions.

Every ``src/kernelkit/**/_*_ext.c`` file becomes an extension module of the
same dotted name, compiled with OpenMP. If a compiler is missing or a build
fails, the package still installs: the engine falls back to blocked NumPy and
``kernelkit.engine.fused_available()`` says so.
"""

import glob
import os
import platform
import shutil
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    def finalize_options(self):
        super().finalize_options()
        if not self.parallel:   # the extensions are independent: compile them on every core
            self.parallel = os.cpu_count() or 1

    def run(self):
        try:
            super().run()
        except Exception as exc:  # pragma: no cover - depends on the machine
            print(f"WARNING: kernelkit's compiled extensions were not built ({exc}); "
                  "the NumPy backend will be used.", file=sys.stderr)

    def build_extension(self, ext):
        cached = _cached_build(self, ext)
        target = self.get_ext_fullpath(ext.name)
        if cached is not None and os.path.exists(cached):
            os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
            shutil.copyfile(cached, target)
            print(f"{ext.name}: reused {cached} (same sources, headers, flags and compiler)")
            return
        try:
            super().build_extension(ext)
        except Exception as exc:  # pragma: no cover
            print(f"WARNING: could not build {ext.name} ({exc}); falling back to NumPy.", file=sys.stderr)
            return
        if cached is not None and os.path.exists(target):
            os.makedirs(os.path.dirname(cached), exist_ok=True)
            tmp = f"{cached}.{os.getpid()}.tmp"
            shutil.copyfile(target, tmp)
            os.replace(tmp, cached)


def _cached_build(cmd, ext):
    """Path of this extension's compiled module in the build cache, or None when there is none.

    Only with the environment variable KERNELKIT_BUILD_CACHE (a folder; .ci/run sets it so that its
    three builds of the same sources compile once). The key hashes everything the object depends on:
    the sources and headers (their bytes), the compile and link flags, the compiler command, the
    NumPy and Python versions and the extension suffix; any change compiles afresh.
    """
    root = os.environ.get("KERNELKIT_BUILD_CACHE")
    if not root:
        return None
    import hashlib
    import sysconfig

    import numpy as np

    h = hashlib.sha256()
    for path in list(ext.sources) + sorted(ext.depends):
        with open(path, "rb") as f:
            h.update(os.path.basename(path).encode() + b"\0" + f.read() + b"\0")
    compiler = getattr(cmd.compiler, "compiler_so", None) or [type(cmd.compiler).__name__]
    for part in (ext.name, ext.extra_compile_args, ext.extra_link_args, compiler, np.__version__, sys.version,
                 sysconfig.get_config_var("EXT_SUFFIX"), platform.machine()):
        h.update(repr(part).encode() + b"\0")
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    return os.path.join(root, f"{ext.name}-{h.hexdigest()[:24]}{suffix}")


# the one compiled definition of the kernel families, shared by every extension
INCLUDE = os.path.join("src", "kernelkit", "_include")
SHARED_HEADERS = sorted(glob.glob(os.path.join(INCLUDE, "*.h")))


# instruction-set builds of the fused engine (_fused_v3_ext.c, _fused_v4_ext.c): the same source
# compiled for x86-64-v3 (AVX2 + FMA) and x86-64-v4 (AVX-512F/BW/DQ/VL, 512-bit vectors); the
# engine imports the best one the CPU supports, the baseline build everywhere else
ISA_BUILDS = {"v3": ["-march=x86-64-v3"], "v4": ["-march=x86-64-v4", "-mprefer-vector-width=512"]}
X86_64 = platform.machine().lower() in ("x86_64", "amd64")


def extensions():
    import numpy as np

    exts = []
    for path in sorted(glob.glob(os.path.join("src", "kernelkit", "**", "_*_ext.c"), recursive=True)):
        rel = os.path.relpath(path, "src")[:-2]
        name = rel.replace(os.sep, ".")
        # Both extensions want branch-free selects in their vectorised exp loops
        # (-fno-trapping-math: no FP-exception semantics; rounding is unchanged).
        # The fused engine also wants a*b+c contracted to FMA in its micro-kernel
        # (its tests bound the rounding); the thinning walk keeps strict
        # evaluation (no contraction), so its coresets match the reference.
        contract = ["-ffp-contract=fast"] if name.rsplit(".", 1)[-1].startswith("_fused") else []
        isa = []
        level = ISA_BUILDS.get(name.rsplit(".", 1)[-1].split("_")[-2])   # _fused_v3_ext -> "v3"
        if level is not None:
            if not X86_64:
                continue   # instruction-set builds exist for x86-64 only
            isa = level
        headers = sorted(glob.glob(os.path.join(os.path.dirname(path), "_*_impl.h"))) + SHARED_HEADERS
        if level is not None:   # (the v3 / v4 builds include the baseline source)
            headers.append(os.path.join(os.path.dirname(path), "_fused_ext.c"))
        exts.append(Extension(
            name, [path],
            depends=headers,
            include_dirs=[np.get_include(), INCLUDE],
            extra_compile_args=["-O3", "-fopenmp", "-std=c11", "-fno-math-errno", "-fno-trapping-math"] + contract + isa,
            extra_link_args=["-fopenmp"],
        ))
    return exts


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
