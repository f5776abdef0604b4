"The GPU session's one command, tools/gpu_run.py, at a tiny size on the CPU: every row runs, and a budget stops a row cleanly."
import os, subprocess, sys, tarfile
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / 'tools' / 'gpu_run.py'
sys.path.insert(0, str(SCRIPT.parent))
import gpu_run  # noqa: E402


def gpu_run_cli(tmp_path, *args):
    env = {**os.environ, 'GANIME_DATA': str(tmp_path / 'data')}
    return subprocess.run([sys.executable, SCRIPT, '--dry-run', '--out', tmp_path / 'out', *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=900)


def test_the_budgets_fit_nine_minutes_and_every_row_has_a_tiny_version():
    assert sum(budget for _, budget, *_ in gpu_run.ROWS) <= 9 * 60 - 40  # 40 s for start-up and the wheels
    names = [r[0] for r in gpu_run.ROWS]
    assert names[:2] == ['bench-gan', 'bench-cyclegan'] and len(set(names)) == len(names)
    for name, _, _, gpu_args, tiny_args, expected in gpu_run.ROWS:
        assert gpu_args[0] == tiny_args[0] and expected, name
        if tiny_args[0] == 'train': assert 'cpu' in tiny_args and 'toy' in ' '.join(tiny_args), name


def test_dry_run_runs_every_row_and_packs_the_results(tmp_path):
    result = gpu_run_cli(tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = tmp_path / 'out'
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == ['gpu_run.log', 'outputs.tar', 'results.md']
    rows = [l for l in (out / 'results.md').read_text().splitlines() if l.startswith('| ') and not l.startswith('| what')]
    assert [r.split(' | ')[0][2:] for r in rows] == [r[0] for r in gpu_run.ROWS]
    assert not any('failed' in r or 'stopped' in r for r in rows), '\n'.join(rows)
    assert all('1 epochs finished' in r for r in rows if '`ganime train' in r)
    with tarfile.open(out / 'outputs.tar') as tar: names = tar.getnames()
    assert {f'{r}/samples/epoch_001.png' for r in ('dcgan-64', 'wgan-gp-64', 'resgan-64', 'cyclegan-128')} <= set(names), names
    assert not any(n.endswith('.pt') for n in names)


def test_a_row_that_reaches_its_budget_is_stopped_and_says_so(tmp_path):
    result = gpu_run_cli(tmp_path, '--rows', 'dcgan-64', '--budget-scale', '0.01')  # under 1 s: stopped in its first epoch
    assert result.returncode == 0, result.stderr
    row = (tmp_path / 'out' / 'results.md').read_text().splitlines()[-1]
    assert row.startswith('| dcgan-64 |') and '0 epochs finished (stopped at its budget)' in row, row
