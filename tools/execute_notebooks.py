"""Run lesson notebooks top to bottom and save their outputs in place, so the docs show real results.

    python tools/execute_notebooks.py nbs/10_autoencoder.ipynb            # tiny run: skips `#| slow` cells
    GANIME_SCALE=cpu python tools/execute_notebooks.py --slow nbs/21_dcgan.ipynb  # the real-face section too, at cpu scale

Cells flagged `#| slow` (or `#| notest`) keep their previous outputs unless `--slow` is given, so a tiny CPU run
never erases the results of an earlier GPU run. With `--keep-toy-outputs` every cell runs (the real-face section
needs the lesson's definitions) but only the slow cells' new outputs are saved: the toy cells keep the outputs their
prose was written from, even on another CPU. Afterwards run `nbdev-clean`.
"""
import argparse, re, sys, time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

FLAG = re.compile(r'^\s*#\s*\|\s*(slow|notest)\b', re.M)
NO_EVAL = re.compile(r'^\s*#\s*\|\s*eval:\s*false\b', re.M)  # never run, as in nbdev-test


def execute(path: Path, run_slow: bool, timeout: int, keep_toy_outputs: bool = False) -> None:
    nb = nbformat.read(path, as_version=4)
    saved = {cell.id: (cell.get('outputs'), cell.get('execution_count')) for cell in nb.cells if cell.cell_type == 'code'}
    client = NotebookClient(nb, timeout=timeout, kernel_name='python3', resources={'metadata': {'path': str(path.parent)}})
    start = time.time()
    with client.setup_kernel():
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != 'code' or NO_EVAL.search(cell.source) or (FLAG.search(cell.source) and not run_slow): continue
            client.execute_cell(cell, i)
    if keep_toy_outputs:
        for cell in nb.cells:
            if cell.cell_type == 'code' and not FLAG.search(cell.source): cell.outputs, cell.execution_count = saved[cell.id]
    nbformat.write(nb, path)
    print(f'{path}: {time.time() - start:.0f}s')


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('notebooks', nargs='+', type=Path)
    p.add_argument('--slow', action='store_true', help='also run cells flagged slow or notest')
    p.add_argument('--keep-toy-outputs', action='store_true', help='save only the slow cells\' new outputs')
    p.add_argument('--timeout', type=int, default=3600, help='seconds allowed per cell')
    args = p.parse_args()
    for nb_path in args.notebooks: execute(nb_path, args.slow, args.timeout, args.keep_toy_outputs)
    sys.exit(0)
