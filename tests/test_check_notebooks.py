"tools/check_notebooks.py: nbdev-test under other CPU kernels and seeds, with a table of what passed."
import subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / 'tools' / 'check_notebooks.py'


def run_tool(*args):
    return subprocess.run([sys.executable, str(TOOL), *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_a_notebook_under_emulated_kernels_and_two_seeds():
    run = run_tool('nbs/index.ipynb', '--kernels', 'default', 'avx2', '--seeds', '0', '3')
    assert run.returncode == 0, run.stdout + run.stderr
    assert 'seed 3, kernels default (ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41): passed' in run.stdout
    assert '| seed | default | avx2 |' in run.stdout and '| 3 | passed | passed |' in run.stdout


def test_a_missing_notebook_is_an_error_before_any_run():
    run = run_tool('nbs/no_such.ipynb')
    assert run.returncode != 0 and 'no such notebook: nbs/no_such.ipynb' in run.stderr and 'seed' not in run.stdout
