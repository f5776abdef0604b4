"Shared helpers for ganime's tests: run the command line in a fresh process, in a temporary folder."
import os, shutil, subprocess, sys
from pathlib import Path

import pytest


def run_ganime(*args, cwd, env=None, check=None, timeout=600):
    "Run `python -m ganime_nb.cli ARGS` in `cwd`; returns the CompletedProcess (text stdout/stderr)."
    full_env = {**os.environ, 'GANIME_DATA': str(Path(cwd) / 'data'), **(env or {})}
    proc = subprocess.run([sys.executable, '-m', 'ganime_nb.cli', *map(str, args)], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
    if check is not None and proc.returncode != check:
        raise AssertionError(f'exit {proc.returncode}, expected {check}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}')
    return proc


@pytest.fixture(scope='session')
def trained_models(tmp_path_factory):
    "A data folder's models/ with the toy-attribute classifier for 32x32 faces, trained once per test session."
    from ganime_nb.metrics import attribute_classifier
    folder = tmp_path_factory.mktemp('data')
    attribute_classifier(32, data_dir=folder, device='cpu', verbose=False)
    return folder / 'models'


@pytest.fixture
def ganime(tmp_path, trained_models):
    "Run the CLI in a temporary folder: ganime('train', 'ae', ..., check=0)."
    shutil.copytree(trained_models, tmp_path / 'data' / 'models')  # runs on toy faces end by reading their samples' hair colours
    def run(*args, **kw): return run_ganime(*args, cwd=tmp_path, **kw)
    run.cwd = tmp_path
    return run
