"""Everything the lessons and README need from a GPU machine, in one command of at most 9 minutes.

    python tools/gpu_run.py --out $OUT                 # on the GPU machine: benchmarks, then the GPU-scale trainings
    python tools/gpu_run.py --dry-run --out /tmp/gpu   # here, on the CPU: every row at a tiny size (CI runs this)
    python tools/gpu_run.py --fetch-wheels data/wheels # here, before a GPU session: the wheels the machine lacks

The GPU machine has its own Python with torch but no fastprogress or fastcore and no internet: the project runs from
the checkout (on `PYTHONPATH`, nothing to build) and its missing pure-Python dependencies are installed from the
wheels in `--wheels`, carried there with the working tree. The anime faces come from `data/anime-faces-64.zip` and the
CycleGAN domains from `data/selfie2anime-128.zip` (or `$GANIME_ANIME_FACES`, `$GANIME_SELFIE2ANIME`); a row whose
data is missing is recorded as skipped. The wheels (8 MB: fastprogress brings fasthtml's web stack) and both zips
exceed the 64 MiB that travel with one call, so the first call carries the anime faces and a second one
(`--rows cyclegan-128`) the selfies.

Each row of `ROWS` runs in its own process with its own time budget. A training row that reaches its budget is
interrupted (SIGINT), which keeps its finished epochs; its result then says how many epochs it finished. What comes
back is three files in `--out`: `results.md` (one RESULTS.md row per row: command, machine, date, wall time, the
row's last lines), `gpu_run.log` (every row's whole output) and `outputs.tar` (the trainings' sample grids and loss
curves; the showcase figure and the lessons' notebooks wait for the lessons' `gpu` scale).
"""
import argparse, datetime, os, platform, shlex, signal, subprocess, sys, tarfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ANIME = os.environ.get('GANIME_ANIME_FACES', 'data/anime-faces-64.zip')
SELFIE = os.environ.get('GANIME_SELFIE2ANIME', 'data/selfie2anime-128.zip')
GANIME = [sys.executable, '-m', 'ganime_nb.cli']
GPU_TRAIN = ['--precision', 'auto', '--channels-last', '--compile']
TINY_TRAIN = ['--device', 'cpu', '--data', 'toy:64', '--size', '32', '--width', '8', '--epochs', '1', '--batch-size', '8']

# name, budget in seconds, data it needs, the GPU command, the same row at a tiny size on the CPU, expected time.
# Benchmarks first, then the rows that need the GPU most. The budgets add up to 500 s, which leaves 40 s for the
# wheels and start-up within 9 minutes. Expected times are estimates (no GPU run yet), from a guess of about 8 s of
# compiling per benchmark row and the speed target of 20,000 images/s for DCGAN at 64×64.
ROWS = [
    ('bench-gan', 150, None, ['bench/bench_gan.py', '--batch-sizes', '64', '128', '512'],
     ['bench/bench_gan.py', '--device', 'cpu', '--methods', 'dcgan', '--batch-sizes', '8', '--steps', '2', '--width', '8',
      '--size', '32', '--ref-images', '32'],
     '12 rows × (one compile, about 8 s, plus 50 steps) + the reference: about 130 s'),
    ('bench-cyclegan', 50, None, ['bench/bench_cyclegan.py', '--device', 'cuda', '--size', '128', '--batch-sizes', '1,2,4,8', '--steps', '50'],
     ['bench/bench_cyclegan.py', '--device', 'cpu', '--size', '32', '--batch-sizes', '1', '--steps', '2', '--warmup', '1', '--width', '8'],
     '4 batch sizes × 55 steps, eager: about 40 s'),
    ('dcgan-64', 90, ANIME, ['train', 'dcgan', '--data', ANIME, '--size', '64', '--epochs', '25', '--batch-size', '128', '--ema', '0.999', *GPU_TRAIN],
     ['train', 'dcgan', *TINY_TRAIN], '25 epochs of 10,000 faces at 5,000–20,000 images/s: 15–50 s plus compiling'),
    ('wgan-gp-64', 80, ANIME, ['train', 'wgan-gp', '--data', ANIME, '--size', '64', '--epochs', '20', '--batch-size', '64', '--ema', '0.999', *GPU_TRAIN],
     ['train', 'wgan-gp', *TINY_TRAIN], '20 epochs with 5 critic steps each: about 60 s'),
    ('resgan-64', 80, ANIME, ['train', 'resgan', '--data', ANIME, '--size', '64', '--epochs', '20', '--batch-size', '64', '--ema', '0.999', *GPU_TRAIN],
     ['train', 'resgan', *TINY_TRAIN], '20 epochs: about 60 s'),
    ('cyclegan-128', 50, SELFIE, ['train', 'cyclegan', '--data', SELFIE, '--size', '128', '--epochs', '3', '--batch-size', '4', '--precision', 'auto'],
     ['train', 'cyclegan', '--device', 'cpu', '--data', 'toy:8', '--size', '32', '--width', '8', '--epochs', '1', '--batch-size', '4'],
     '3 epochs of 1,500 pairs at batch 4 (1,125 steps), about 25 steps/s: about 45 s'),
]


def log(out:Path, text:str):
    "Print a line and keep it in the log."
    print(text, flush=True)
    with open(out / 'gpu_run.log', 'a') as f: f.write(text + '\n')


def ensure_dependencies(wheels:Path, out:Path):
    "Install fastprogress and fastcore from local wheels when this Python lacks them (the GPU machine does)."
    try: import fastprogress, fastcore  # noqa: F401
    except ImportError:
        if not wheels.is_dir(): sys.exit(f'gpu_run: fastprogress or fastcore is missing and there is no wheel folder {wheels} (make it with --fetch-wheels)')
        log(out, f'installing fastprogress and fastcore from {wheels}')
        subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '--no-index', '--find-links', str(wheels), 'fastprogress', 'fastcore'], check=True)


def fetch_wheels(folder:Path):
    "Download the wheels the GPU machine's Python 3.12 lacks (run on a machine that reaches the package registry)."
    subprocess.run([sys.executable, '-m', 'pip', 'download', '--only-binary=:all:', '--python-version', '3.12',
                    '--platform', 'manylinux2014_x86_64', '-d', str(folder), 'fastprogress>=1.0.3', 'fastcore>=1.7'], check=True)


def command(args:list, run_folder:Path) -> list:
    "The full command line of a row: a training writes into its own run folder."
    if args[0] == 'train': return [*GANIME, *args, '--out', str(run_folder)]
    return [sys.executable, *args]


def _default_sigint():
    "A shell's background job inherits SIGINT ignored; the row needs it back to stop cleanly at its budget."
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_row(cmd:list, budget:float, env:dict) -> tuple:
    "Run `cmd` for at most `budget` seconds (then SIGINT, then a kill); its wall time, return code and output."
    start = time.time()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, preexec_fn=_default_sigint)
    stopped = False
    try: output, _ = proc.communicate(timeout=budget)
    except subprocess.TimeoutExpired:
        stopped = True
        os.killpg(proc.pid, signal.SIGINT)  # the CLI keeps the finished epochs on an interrupt
        try: output, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
    return time.time() - start, proc.returncode, stopped, output


def epochs_done(run_folder:Path) -> int:
    "Epochs a training finished, from its log."
    path = run_folder / 'log.jsonl'
    return len(path.read_text().splitlines()) if path.exists() else 0


def result_text(rc, stopped, output, run_folder:Path, is_training:bool) -> str:
    "The row's result in a few words: its last lines, and for a training how far it got."
    lines = [l.strip() for l in output.splitlines() if l.strip() and not l.startswith('\r')]
    last = ' / '.join(lines[-3:]).replace('|', '\\|')
    if is_training: last = f'{epochs_done(run_folder)} epochs finished{" (stopped at its budget)" if stopped else ""}; {last}'
    elif stopped: last = f'stopped at its budget, unfinished; {last}'
    if rc not in (0, None) and not stopped: last = f'failed (exit {rc}); {last}'
    return last


def machine() -> str:
    "The machine in words: the GPU's name where there is one."
    try:
        import torch
        if torch.cuda.is_available(): return f'{torch.cuda.get_device_name(0)}, torch {torch.__version__}'
    except ImportError: pass
    return f'{platform.processor() or platform.machine()} CPU, {os.cpu_count()} cores'


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out', type=Path, default=Path(os.environ.get('OUT', 'gpu_out')), help='where the three result files go (default: $OUT, else gpu_out)')
    p.add_argument('--dry-run', action='store_true', help='every row at a tiny size on the CPU')
    p.add_argument('--rows', nargs='+', choices=[r[0] for r in ROWS], help='only these rows (default: all, in order)')
    p.add_argument('--budget-scale', type=float, default=1.0, help="multiply every row's budget")
    p.add_argument('--wheels', type=Path, default=ROOT / 'data' / 'wheels', help='local wheels to install missing dependencies from')
    p.add_argument('--fetch-wheels', type=Path, metavar='FOLDER', help='only download the wheels into FOLDER, then stop')
    args = p.parse_args(argv)
    if args.fetch_wheels: return fetch_wheels(args.fetch_wheels)
    if args.budget_scale <= 0: p.error('--budget-scale must be positive')
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / 'gpu_run.log').write_text('')
    ensure_dependencies(args.wheels, out)
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]).rstrip(os.pathsep)}
    when, where = datetime.date.today().isoformat(), machine() + (' (dry run)' if args.dry_run else '')
    rows, runs = [], out / 'runs'
    for name, budget, data, gpu_args, tiny_args, expected in ROWS:
        if args.rows and name not in args.rows: continue
        row_args, budget = (tiny_args if args.dry_run else gpu_args), budget * args.budget_scale
        cmd, run_folder = command(row_args, runs / name), runs / name
        shown = shlex.join(['ganime', *row_args] if row_args[0] == 'train' else ['python', *row_args])
        if data and not args.dry_run and not (ROOT / data).exists():  # an absolute path stays itself under ROOT
            rows.append(f'| {name} | `{shown}` | {where} | {when} | — | skipped: no data at {data} |')
            log(out, f'== {name}: skipped, no data at {data}')
            continue
        log(out, f'== {name} (budget {budget:.0f} s; expected: {expected}): {shown}')
        wall, rc, stopped, output = run_row(cmd, budget, env)
        log(out, output.rstrip())
        result = result_text(rc, stopped, output, run_folder, row_args[0] == 'train')
        log(out, f'== {name}: {wall:.0f} s; {result}')
        rows.append(f'| {name} | `{shown}` | {where} | {when} | {wall:.0f} s of {budget:.0f} | {result} |')
    (out / 'results.md').write_text('| what | command | machine | date | wall time | result |\n|---|---|---|---|---|---|\n' + '\n'.join(rows) + '\n')
    with tarfile.open(out / 'outputs.tar', 'w') as tar:  # the figures only: checkpoints stay behind
        for path in sorted(runs.rglob('*.png')) if runs.exists() else []: tar.add(path, arcname=path.relative_to(runs))
    log(out, f'wrote {out / "results.md"}, {out / "outputs.tar"} and {out / "gpu_run.log"}')


if __name__ == '__main__': main()
