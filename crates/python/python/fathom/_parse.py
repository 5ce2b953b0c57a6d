"""The parser child of ``isolate=True`` (``python -m fathom._parse FORMAT``): reads a file on
stdin, writes its located text as JSON on stdout, exits 0 (or 2 with the reason on stderr).
The parent kills it past its time or memory budget, as the CLI does with its own child."""

import sys

from ._fathom import _parse_helper

if __name__ == "__main__":
    sys.exit(_parse_helper(sys.argv[-1] if len(sys.argv) > 1 else ""))
