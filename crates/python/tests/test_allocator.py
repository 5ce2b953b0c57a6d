"""The extension keeps freed memory (mimalloc's purge delay -1) unless MIMALLOC_PURGE_DELAY says
otherwise; option 15, which src/allocator.rs sets, must be that purge delay."""

import os
import subprocess
import sys

CODE = "import fathom._fathom as f; print(f._mimalloc_purge_delay())"


def purge_delay(env_value):
    env = {k: v for k, v in os.environ.items() if k != "MIMALLOC_PURGE_DELAY"}
    if env_value is not None:
        env["MIMALLOC_PURGE_DELAY"] = env_value
    out = subprocess.run([sys.executable, "-c", CODE], env=env, check=True, capture_output=True, text=True)
    return int(out.stdout.strip())


def test_freed_memory_is_kept_by_default():
    assert purge_delay(None) == -1


def test_mimalloc_purge_delay_overrides_it():
    # mimalloc reads MIMALLOC_PURGE_DELAY into the same option that src/allocator.rs sets.
    assert purge_delay("10") == 10
    assert purge_delay("250") == 250
