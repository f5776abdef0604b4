"Shared helpers for ganime's tests: run the command line in a fresh process, in a temporary folder."
import os, subprocess, sys
from pathlib import Path

import pytest

# Tests compare runs bit for bit, so no run changes its thread count for another process on the machine (a test that
# checks the sharing turns it back on).
os.environ['GANIME_SHARE_CPU'] = '0'


def run_ganime(*args, cwd, env=None, check=None, timeout=600):
    "Run `python -m ganime_nb.cli ARGS` in `cwd`; returns the CompletedProcess (text stdout/stderr)."
    full_env = {**os.environ, 'GANIME_DATA': str(Path(cwd) / 'data'), **(env or {})}
    proc = subprocess.run([sys.executable, '-m', 'ganime_nb.cli', *map(str, args)], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
    if check is not None and proc.returncode != check:
        raise AssertionError(f'exit {proc.returncode}, expected {check}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}')
    return proc


@pytest.fixture
def ganime(tmp_path):
    "Run the CLI in a temporary folder: ganime('train', 'ae', ..., check=0)."
    def run(*args, **kw): return run_ganime(*args, cwd=tmp_path, **kw)
    run.cwd = tmp_path
    return run
