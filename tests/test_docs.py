"""The documentation site: `python tools/build_docs.py` builds it from the notebooks, headless Chromium reads it.

The browser tests drive Debian's `chromium` through Playwright (never a browser of Playwright's own) and are skipped
when either is missing. Every page must load with no request to another host, show its text, and (lesson pages)
at least one figure that the browser really decoded; every internal link and anchor must resolve. The home page's
screenshot is saved as `home.png` in the test's temporary folder (the path is printed; `pytest -s` shows it).
"""
import functools, re, shutil, subprocess, sys, threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / 'tools' / 'build_docs.py'
CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
                 '--disable-component-update', '--disable-sync']
COLAB = 'https://colab.research.google.com/github/'

# What the browser reports about one page.
PAGE_FACTS = """() => ({
  title: (document.querySelector('h1.page-title') || {}).textContent || '',
  text: (document.querySelector('main') || {innerText: ''}).innerText.length,
  cells: document.querySelectorAll('main .jp-Cell').length,
  navLinks: [...document.querySelectorAll('nav.site-nav a')].map(a => a.href),
  images: [...document.images].map(i => ({src: (i.getAttribute('src') || '').slice(0, 80), loaded: i.complete && i.naturalWidth > 0,
      figure: !i.classList.contains('colab-badge') && !!i.closest('.jp-OutputArea-output, .jp-MarkdownCell')})),
  links: [...document.querySelectorAll('a[href]')].map(a => a.href),
  ids: [...document.querySelectorAll('[id]')].map(e => e.id),
  math: [...document.querySelectorAll('math')].map(m => m.getBoundingClientRect().width),
  mathFallbacks: document.querySelectorAll('.math-fallback').length,
  scripts: document.scripts.length,
})"""


def build(nbs: Path, out: Path) -> subprocess.CompletedProcess:
    "Run the documented build command."
    return subprocess.run([sys.executable, str(BUILD), '--nbs', str(nbs), '--out', str(out)], capture_output=True,
                          text=True, timeout=1800)


class QuietHandler(SimpleHTTPRequestHandler):
    "Serve files without logging every request."
    def log_message(self, *args): pass


@pytest.fixture(scope='module')
def serve():
    "Serve folders on 127.0.0.1 for the duration of the module: serve(folder) -> base URL."
    servers = []
    def start(folder: Path) -> str:
        server = ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(QuietHandler, directory=str(folder)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f'http://127.0.0.1:{server.server_address[1]}/'
    yield start
    for server in servers: server.shutdown(); server.server_close()


@pytest.fixture(scope='module')
def browser():
    "Debian's headless Chromium under Playwright, with a fresh profile; skips when either is missing."
    if not CHROMIUM: pytest.skip('no chromium installed (apt-get install chromium)')
    sync_api = pytest.importorskip('playwright.sync_api', reason='the playwright package is not installed')
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def local_context(browser, outside: list):
    "A browser context that loads only from 127.0.0.1; requests to other hosts are refused and listed in `outside`."
    context = browser.new_context(viewport={'width': 1280, 'height': 900})
    def only_local(route):
        if urlsplit(route.request.url).hostname == '127.0.0.1': route.continue_()
        else: outside.append(route.request.url); route.abort()
    context.route('**/*', only_local)
    return context


def inspect_site(browser, base: str, site: Path) -> tuple[dict, list]:
    "Open every HTML page of `site` (served at `base`); returns ({page: facts}, [problems])."
    outside, problems = [], []
    context = local_context(browser, outside)
    page = context.new_page()
    errors = []
    page.on('pageerror', lambda e: errors.append(str(e)))
    page.on('console', lambda m: errors.append(m.text) if m.type == 'error' else None)
    facts = {}
    for path in sorted(site.rglob('*.html')):
        rel = path.relative_to(site).as_posix()
        errors.clear()
        response = page.goto(base + rel, wait_until='load')
        facts[rel] = page.evaluate(PAGE_FACTS)
        if response.status != 200: problems.append(f'{rel}: HTTP {response.status}')
        problems += [f'{rel}: browser error: {e}' for e in errors]
    context.close()
    problems += [f'request to another host: {url}' for url in outside]
    for rel, f in facts.items():
        if f['text'] < 100 or not f['cells']: problems.append(f'{rel}: almost empty ({f["cells"]} cells, {f["text"]} characters)')
        if not f['title'].strip(): problems.append(f'{rel}: no page title')
        if f['scripts']: problems.append(f'{rel}: {f["scripts"]} script tags')
        problems += [f'{rel}: image did not load: {i["src"]}' for i in f['images'] if not i['loaded']]
        problems += [f'{rel}: formula not drawn' for width in f['math'] if width <= 0]
        if f['mathFallbacks']: problems.append(f'{rel}: {f["mathFallbacks"]} formulas left as TeX')
        for url in f['links'] + f['navLinks']:
            if not url.startswith(base): continue
            parts = urlsplit(url)
            target = unquote(parts.path[len(urlsplit(base).path):]) or 'index.html'
            if target.endswith('/'): target += 'index.html'
            if not (site / target).is_file(): problems.append(f'{rel}: broken link {url}')
            elif parts.fragment and target in facts and unquote(parts.fragment) not in facts[target]['ids']:
                problems.append(f'{rel}: link to a missing anchor {url}')
    return facts, problems


def write_notebook(path: Path, cells: list) -> None:
    "Write a notebook from (cell type, source[, outputs]) tuples."
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
    nb = new_notebook(cells=[new_markdown_cell(c[1]) if c[0] == 'md' else new_code_cell(c[1], outputs=c[2] if len(c) > 2 else [])
                             for c in cells])
    nb.metadata['kernelspec'] = {'name': 'python3', 'display_name': 'python3', 'language': 'python'}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def png_output(colour: str):
    "A saved display output holding a small PNG, as a notebook stores a figure."
    import base64, io
    from PIL import Image
    buf = io.BytesIO()
    Image.new('RGB', (40, 30), colour).save(buf, format='PNG')
    from nbformat.v4 import new_output
    return new_output('display_data', {'image/png': base64.b64encode(buf.getvalue()).decode(), 'text/plain': '<Figure>'})


@pytest.fixture(scope='module')
def small_site(tmp_path_factory):
    "A two-notebook nbdev project made here, built into a site: what the builder must do with any notebook."
    root = tmp_path_factory.mktemp('small_project')
    (root / 'pyproject.toml').write_text(
        '[project]\nname = "demo"\nversion = "0.0.1"\ndescription = "A demo course"\n'
        '[project.urls]\nRepository = "https://github.com/demo-owner/demo"\n'
        'Documentation = "https://demo-owner.github.io/demo/"\n'
        '[tool.nbdev]\nlib_path = "demo_nb"\ntst_flags = "notest slow"\n')
    (root / 'NOTES.md').write_text('# notes outside the notebook folder\n')
    nbs = root / 'nbs'
    write_notebook(nbs / 'index.ipynb', [
        ('md', '# demo\n\n> A demo course'),
        ('md', 'Start with [the lesson](01_lesson.ipynb), its [idea](01_lesson.ipynb#the-big-idea), or the '
               '[notes](../NOTES.md); the [published `square`](https://demo-owner.github.io/demo/lesson.html#square).'
               '\n\n![a picture](images/pic.png)'),
    ])
    from PIL import Image
    (nbs / 'images').mkdir()
    Image.new('RGB', (40, 30), 'blue').save(nbs / 'images' / 'pic.png')
    write_notebook(nbs / '01_lesson.ipynb', [
        ('md', '# Lesson one\n\n> Squares, and why they matter'),
        ('code', '#| default_exp lesson'),
        ('md', '[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]'
               '(https://colab.research.google.com/github/demo-owner/demo/blob/main/nbs/01_lesson.ipynb)'),
        ('md', '## The big idea\n\nThe square $x^2$ of a number, and a sum:\n\n$$\\sum_{i=1}^n i = \\frac{n(n+1)}{2}$$\n\n'
               'Loss $\\mathbb E_x \\big\\| x \\big\\|^2$ for $z \\sim \\mathcal N(0, I)$.'),
        ('code', '#| export\ndef square(x:float, # the number\n          )->float: # its square\n'
                 '    "Multiply `x` by itself."\n    return x * x'),
        ('code', '#| hide\nSECRET = "hidden cell text"'),
        ('code', 'square(3)', [png_output('red')]),
        ('code', 'import math\nmath.sqrt(square(2))'),
        ('code', '#| slow\nraise RuntimeError("a slow cell ran during the docs build")'),
        ('md', 'Back [home](index.ipynb) or to [`square`](01_lesson.ipynb#square).'),
    ])
    out = root / 'site'
    result = build(nbs, out)
    return out, result


def test_small_site_builds(small_site):
    out, result = small_site
    assert result.returncode == 0, result.stdout + result.stderr
    assert '2 pages' in result.stdout
    assert "01_lesson.ipynb: a cell mixes imports with other code" in result.stderr and "'import math'" in result.stderr
    index, lesson = (out / 'index.html').read_text(), (out / 'lesson.html').read_text()
    assert 'href="lesson.html"' in index and 'href="lesson.html#the-big-idea"' in index
    assert 'href="https://github.com/demo-owner/demo/blob/main/NOTES.md"' in index and 'href="lesson.html#square"' in index
    assert (out / 'images' / 'pic.png').read_bytes() == (out.parent / 'nbs' / 'images' / 'pic.png').read_bytes()
    assert 'id="the-big-idea"' in lesson and 'id="square"' in lesson  # Pandoc's ids, as nbdev's links expect
    assert 'Multiply' in lesson and 'the number' in lesson  # show_doc of the exported function, with its docments
    assert 'hidden cell text' not in lesson and '#|' not in lesson and 'return x * x' not in lesson
    assert lesson.count('<math') == 4 and 'mfrac' in lesson and '$' not in lesson.split('<main')[1]
    assert all(c in lesson for c in '𝔼‖∼𝒩') and 'mathvariant' not in lesson and '\\|' not in lesson
    assert 'src="assets/colab-badge.svg"' in lesson and 'colab.research.google.com/assets' not in lesson
    assert '<script' not in index + lesson
    assert '<li class="current"><a href="lesson.html">Lesson one</a>' in lesson  # the sidebar marks the page


def test_slow_cell_with_import_fails_the_build(tmp_path):
    "nbdev-docs would run a slow cell that imports something (real data, a GPU): the offline build says so and fails."
    (tmp_path / 'pyproject.toml').write_text('[project]\nname = "demo"\nversion = "0.0.1"\n'
                                           '[tool.nbdev]\nlib_path = "demo_nb"\ntst_flags = "notest slow"\n')
    write_notebook(tmp_path / 'nbs' / 'index.ipynb', [
        ('md', '# demo\n\n> A demo'), ('md', 'Some prose that says what this page is about.'),
        ('code', '#| slow\nimport os\nraise RuntimeError("a slow cell ran during the docs build")')])
    result = build(tmp_path / 'nbs', tmp_path / 'site')
    assert result.returncode == 1 and '1 pages' in result.stdout
    assert "problem: index.ipynb: a slow cell imports something" in result.stderr and "'import os'" in result.stderr
    assert 'processing failed' not in result.stderr and (tmp_path / 'site' / 'index.html').exists()  # it did not run


def test_small_site_in_browser(browser, small_site, serve):
    out, result = small_site
    assert result.returncode == 0, result.stderr
    facts, problems = inspect_site(browser, serve(out), out)
    assert problems == []
    assert sorted(facts) == ['index.html', 'lesson.html']
    assert [i['figure'] for i in facts['lesson.html']['images']] == [False, True]  # the badge, then the figure
    assert len(facts['lesson.html']['math']) == 4


def test_link_check_finds_broken_pages(browser, small_site, serve, tmp_path):
    "The browser check itself: a copy of the small site with a missing image, file, anchor and remote script."
    out, _ = small_site
    broken = tmp_path / 'site'
    shutil.copytree(out, broken)
    (broken / 'images' / 'pic.png').unlink()
    lesson = (broken / 'lesson.html').read_text()
    lesson = lesson.replace('href="index.html"', 'href="missing.html"', 1).replace('#square', '#no-such-anchor')
    (broken / 'lesson.html').write_text(lesson.replace('</main>', '<img src="https://example.invalid/x.png"></main>'))
    _, problems = inspect_site(browser, serve(broken), broken)
    text = '\n'.join(problems)
    assert 'index.html: image did not load: images/pic.png' in text
    assert re.search(r'lesson.html: broken link \S+/missing.html', text)
    assert 'lesson.html: link to a missing anchor' in text and 'no-such-anchor' in text
    assert 'request to another host: https://example.invalid/x.png' in text


def lesson_notebooks() -> list[Path]:
    return sorted(p for p in (ROOT / 'nbs').glob('*.ipynb') if p.name != 'index.ipynb' and p.name[0] not in '_.')


def test_lessons_open_on_colab():
    "Each lesson has a badge opening itself on Colab, and installs ganime there before any other code runs."
    import nbformat
    from nbdev.config import get_config
    cfg = get_config(ROOT / 'nbs')
    repo, branch = cfg.git_url.rstrip('/'), cfg.branch
    owner_repo = urlsplit(repo).path.strip('/')
    problems = []
    for path in lesson_notebooks():
        nb = nbformat.read(path, as_version=4)
        text = '\n'.join(c.source for c in nb.cells if c.cell_type == 'markdown')
        badge = f'{COLAB}{owner_repo}/blob/{branch}/nbs/{path.name}'
        if f'colab-badge.svg)]({badge})' not in text: problems.append(f'{path.name}: no Colab badge linking {badge}')
        code = [c.source for c in nb.cells if c.cell_type == 'code' and not c.source.startswith('#| default_exp')]
        install = next((i for i, src in enumerate(code) if 'google.colab' in src and 'pip' in src), None)
        if install is None: problems.append(f'{path.name}: no Colab install cell')
        elif install != 0: problems.append(f'{path.name}: code runs before the Colab install cell')
        elif f'git+{repo}' not in code[0] or 'ganime' not in code[0]:
            problems.append(f'{path.name}: the install cell does not install ganime from {repo}')
    assert lesson_notebooks(), 'no lesson notebooks found'
    assert problems == []


@pytest.fixture(scope='module')
def real_site(tmp_path_factory):
    "The project's own site, built from nbs/ by the documented command."
    out = tmp_path_factory.mktemp('docs') / 'site'
    return out, build(ROOT / 'nbs', out)


def test_site_builds(real_site):
    out, result = real_site
    assert result.returncode == 0, result.stdout + result.stderr
    published = {p.stem for p in (ROOT / 'nbs').glob('*.ipynb') if p.name[0] not in '_.'}
    assert f'{len(published)} pages' in result.stdout


def test_site_in_browser(browser, real_site, serve):
    "Every page renders offline, lesson pages show figures, links resolve; a screenshot of the home page is kept."
    out, result = real_site
    assert (out / 'index.html').exists(), result.stdout + result.stderr
    base = serve(out)
    context = local_context(browser, [])
    page = context.new_page()
    page.goto(base + 'index.html', wait_until='load')
    shot = out.parent / 'home.png'
    page.screenshot(path=str(shot), full_page=True)
    print(f'home page screenshot: {shot}')
    second = page.locator('nav.site-nav > ul > li > a').nth(1)  # the first page after Home
    title = second.inner_text()
    second.click()
    page.wait_for_load_state('load')
    assert page.url != base + 'index.html' and page.locator('h1.page-title').inner_text() == title
    context.close()
    assert shot.stat().st_size > 10_000
    facts, problems = inspect_site(browser, base, out)
    for rel, f in facts.items():
        if rel != 'index.html' and not any(i['figure'] and i['loaded'] for i in f['images']):
            problems.append(f'{rel}: no figure (save the notebook with its outputs: tools/execute_notebooks.py)')
    home_nav = [urlsplit(u).path.lstrip('/') for u in facts['index.html']['navLinks']]
    problems += [f'{rel}: not in the sidebar' for rel in facts if rel not in home_nav]
    assert problems == [], '\n'.join(problems)
