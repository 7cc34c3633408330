"""Build the optional compiled extensions.

Every ``src/kernelkit/**/_*_ext.c`` file becomes an extension module of the
same dotted name, compiled with OpenMP. If a compiler is missing or a build
fails, the package still installs: the engine falls back to blocked NumPy and
``kernelkit.engine.fused_available()`` says so.
"""

import glob
import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    def run(self):
        try:
            super().run()
        except Exception as exc:  # pragma: no cover - depends on the machine
            print(f"WARNING: kernelkit's compiled extensions were not built ({exc}); "
                  "the NumPy backend will be used.", file=sys.stderr)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:  # pragma: no cover
            print(f"WARNING: could not build {ext.name} ({exc}); falling back to NumPy.", file=sys.stderr)


# the one compiled definition of the kernel families, shared by every extension
INCLUDE = os.path.join("src", "kernelkit", "_include")
SHARED_HEADERS = sorted(glob.glob(os.path.join(INCLUDE, "*.h")))


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
        contract = ["-ffp-contract=fast"] if name.endswith("_fused_ext") else []
        headers = sorted(glob.glob(os.path.join(os.path.dirname(path), "_*_impl.h"))) + SHARED_HEADERS
        exts.append(Extension(
            name, [path],
            depends=headers,
            include_dirs=[np.get_include(), INCLUDE],
            extra_compile_args=["-O3", "-fopenmp", "-std=c11", "-fno-math-errno", "-fno-trapping-math"] + contract,
            extra_link_args=["-fopenmp"],
        ))
    return exts


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
