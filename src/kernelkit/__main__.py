"""``python -m kernelkit``: the same command as ``kernelkit``."""

import sys

from kernelkit.cli import main

if __name__ == "__main__":
    sys.exit(main())
