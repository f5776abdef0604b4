"""The documentation site: `python tools/build_docs.py` builds it from the notebooks, headless Chromium reads it.

The browser tests drive Debian's `chromium` through Playwright (never a browser of Playwright's own) and are skipped
when either is missing. They check what a reader sees on every page: it loads with no request to another host and
runs no script but the site's own (search, copy buttons, the menu); its text has no raw Markdown or Pandoc attributes left; every image loaded
and has a real alt text; every formula is drawn as MathML (display math centred); nothing scrolls sideways at
1280 px; previous/next links follow the sidebar's order; every internal link and anchor resolves. On the project's
own site, the code of `GAN.train_step` is on its page, search finds the WGAN page, and the sidebar groups the
lessons. The project's site is built into `_site/` (the build's default, git-ignored), and the screenshots of its
home and DCGAN pages are saved there, `_site/home.png` and `_site/dcgan.png`, for a reader of CI's logs.
"""
import base64, functools, io, re, shutil, subprocess, sys, threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / 'tools' / 'build_docs.py'
SITE = ROOT / '_site'
CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
                 '--disable-component-update', '--disable-sync']
COLAB = 'https://colab.research.google.com/github/'
NO_ALT = 'No description has been provided for this image'  # nbconvert's text for an image without alt text
WIDTH = 1280

# What the browser reports about one page. `raw` is text a reader sees (code, math and the page's own code spans
# left out) that still looks like Markdown or Pandoc source: attributes, links, emphasis, code spans, headings,
# fenced divs, TeX, cell directives.
PAGE_FACTS = r"""async () => {
  await document.fonts.ready;
  const main = document.querySelector('main') || document.body;
  const prose = main.cloneNode(true);
  prose.querySelectorAll('pre, code, math, .sourceCode, button, script, style').forEach(e => e.remove());
  const text = prose.innerText;
  const rawPatterns = [/\{[^{}\n]*?(?:#[A-Za-z][\w-]*|\.[A-Za-z][\w-]*|[A-Za-z][\w-]*=)[^{}\n]*\}/g, /\[[^\]\n]+\]\([^)\s]*\)/g,
    /\*\*\S|\S\*\*/g, /`/g, /^ {0,3}#{1,6} /gm, /^ {0,3}:::/gm, /\$[^$\n]+\$/g, /\\[a-zA-Z]+\{/g, /#\|/g];
  const raw = rawPatterns.flatMap(p => [...text.matchAll(p)].map(m => text.slice(Math.max(0, m.index - 30), m.index + m[0].length + 30)));
  const describe = e => e.tagName.toLowerCase() + '.' + [...e.classList].join('.') + ': ' + (e.textContent || '').trim().slice(0, 60);
  const wider = [...main.querySelectorAll('*')].filter(e => e.scrollWidth > e.clientWidth + 1);
  const sideways = wider.filter(e => ['auto', 'scroll'].includes(getComputedStyle(e).overflowX)).map(describe);
  const cutOff = wider.filter(e => ['hidden', 'clip'].includes(getComputedStyle(e).overflowX)).map(describe);
  if (document.documentElement.scrollWidth > window.innerWidth) sideways.push('the page, ' + document.documentElement.scrollWidth + ' px wide');
  const offCentre = [...document.querySelectorAll('main math[display="block"]')].map(m => {  // its glyphs against its box
    const box = m.getBoundingClientRect(), walk = document.createTreeWalker(m, NodeFilter.SHOW_TEXT), glyphs = [];
    while (walk.nextNode()) {
      if (!walk.currentNode.textContent.trim()) continue;
      const range = document.createRange();
      range.selectNodeContents(walk.currentNode);
      glyphs.push(range.getBoundingClientRect());
    }
    const left = Math.min(...glyphs.map(g => g.left)), right = Math.max(...glyphs.map(g => g.right));
    return right - left < box.width - 4 ? Math.abs((left + right) / 2 - (box.left + box.right) / 2) : 0;
  });
  return {
    title: (document.querySelector('h1.page-title') || {}).textContent || '',
    text: main.innerText.length,
    cells: document.querySelectorAll('main .cell').length + document.querySelectorAll('main p').length,
    navLinks: [...document.querySelectorAll('nav.site-nav a.nav-page')].map(a => a.href),
    prev: [...document.querySelectorAll('main a[rel="prev"]')].map(a => a.href),
    next: [...document.querySelectorAll('main a[rel="next"]')].map(a => a.href),
    images: [...document.images].map(i => ({src: (i.getAttribute('src') || '').slice(0, 80), alt: i.alt,
        loaded: i.complete && i.naturalWidth > 0, width: i.naturalWidth, shown: i.getBoundingClientRect().width,
        figure: !i.classList.contains('colab-badge') && !!i.closest('main')})),
    links: [...document.querySelectorAll('a[href]')].map(a => a.href),
    ids: [...document.querySelectorAll('[id]')].map(e => e.id),
    math: [...document.querySelectorAll('math')].map(m => m.getBoundingClientRect().width),
    offCentre,
    mathFont: [...document.fonts].filter(f => f.family.includes('STIX Math')).map(f => f.status),
    mathFallbacks: document.querySelectorAll('main span.math').length,  // what Pandoc leaves of TeX it could not read
    scripts: [...document.scripts].map(s => s.src || 'inline'),
    raw, sideways, cutOff,
  };
}"""


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
    context = browser.new_context(viewport={'width': WIDTH, 'height': 900})
    def only_local(route):
        if urlsplit(route.request.url).hostname == '127.0.0.1': route.continue_()
        else: outside.append(route.request.url); route.abort()
    context.route('**/*', only_local)
    return context


def site_path(base: str, url: str) -> str:
    "The file in the site that `url` (served at `base`) names, e.g. 'dcgan.html'."
    path = unquote(urlsplit(url).path[len(urlsplit(base).path):]) or 'index.html'
    return path + 'index.html' if path.endswith('/') else path


def page_problems(rel: str, f: dict) -> list[str]:
    "What is wrong with one page, as a reader would see it."
    problems = []
    if f['text'] < 100 or not f['cells']: problems.append(f'{rel}: almost empty ({f["cells"]} cells, {f["text"]} characters)')
    if not f['title'].strip(): problems.append(f'{rel}: no page title')
    problems += [f'{rel}: a script that is not the site\'s own: {s}' for s in f['scripts'] if not s.endswith('/assets/site.js')]
    problems += [f'{rel}: raw markup: {r!r}' for r in f['raw']]
    problems += [f'{rel}: scrolls sideways: {s}' for s in f['sideways']]
    problems += [f'{rel}: too wide, cut off: {s}' for s in f['cutOff']]
    for i in f['images']:
        if not i['loaded']: problems.append(f'{rel}: image did not load: {i["src"]}')
        if not i['alt'].strip() or i['alt'] == NO_ALT: problems.append(f'{rel}: image without alt text: {i["src"]}')
    problems += [f'{rel}: formula not drawn' for width in f['math'] if width <= 0]
    problems += [f'{rel}: display formula off centre by {d:.0f} px' for d in f['offCentre'] if d > 10]  # glyphs overhang
    if f['math'] and 'loaded' not in f['mathFont']: problems.append(f'{rel}: the math font did not load ({f["mathFont"]})')
    if f['mathFallbacks']: problems.append(f'{rel}: {f["mathFallbacks"]} formulas left as TeX')
    return problems


def pager_problems(base: str, facts: dict) -> list[str]:
    "Previous/next links must walk the pages in the home page's sidebar order, each page linking its neighbours."
    order = [site_path(base, u) for u in facts['index.html']['navLinks']]
    problems = [f'{rel}: not in the sidebar' for rel in facts if rel not in order]
    for i, rel in enumerate(order):
        if rel not in facts: continue
        want_prev, want_next = order[i - 1:i] if i else [], order[i + 1:i + 2]
        got_prev, got_next = ([site_path(base, u) for u in facts[rel][k]] for k in ('prev', 'next'))
        if set(got_prev) != set(want_prev): problems.append(f'{rel}: previous link {got_prev}, expected {want_prev}')
        if set(got_next) != set(want_next): problems.append(f'{rel}: next link {got_next}, expected {want_next}')
    return problems


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
        problems += page_problems(rel, f)
        for url in f['links'] + f['navLinks']:
            if not url.startswith(base): continue
            target, fragment = site_path(base, url), unquote(urlsplit(url).fragment)
            if not (site / target).is_file(): problems.append(f'{rel}: broken link {url}')
            elif fragment and target in facts and fragment not in facts[target]['ids']:
                problems.append(f'{rel}: link to a missing anchor {url}')
    if 'index.html' in facts: problems += pager_problems(base, facts)
    return facts, problems


def search(page, query: str) -> list[str]:
    "Type `query` into the page's search box; returns the hrefs of the results shown."
    box = page.locator('form.site-search input[type="search"]')
    box.fill(query)
    page.locator('form.site-search .search-results li').first.wait_for(state='visible', timeout=10_000)
    return page.eval_on_selector_all('form.site-search .search-results a', 'links => links.map(a => a.href)')


def write_notebook(path: Path, cells: list) -> None:
    "Write a notebook from (cell type, source[, outputs]) tuples."
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
    nb = new_notebook(cells=[new_markdown_cell(c[1]) if c[0] == 'md' else new_code_cell(c[1], outputs=c[2] if len(c) > 2 else [])
                             for c in cells])
    nb.metadata['kernelspec'] = {'name': 'python3', 'display_name': 'python3', 'language': 'python'}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def png_output(image):
    "A saved display output holding a PNG (a PIL image, or a colour for a small one), as a notebook stores a figure."
    from nbformat.v4 import new_output
    from PIL import Image
    if isinstance(image, str): image = Image.new('RGB', (40, 30), image)
    buf = io.BytesIO()
    image.save(buf, format='PNG')
    return new_output('display_data', {'image/png': base64.b64encode(buf.getvalue()).decode(), 'text/plain': '<Figure>'})


def text_output(text: str):
    "A saved result, as a notebook stores `2.0`."
    from nbformat.v4 import new_output
    return new_output('execute_result', {'text/plain': text}, execution_count=1)


def stream_output(text: str):
    "Saved printed text."
    from nbformat.v4 import new_output
    return new_output('stream', name='stdout', text=text)


def strip_image(panels: int = 8, size: int = 180, gap: int = 24):
    "A strip of `panels` grey squares on white, like a figure of one sample grid per epoch."
    from PIL import Image
    strip = Image.new('RGB', (panels * (size + gap) + gap, size + 2 * gap), 'white')
    for i in range(panels): strip.paste(Image.new('RGB', (size, size), (90 + 15 * i,) * 3), (gap + i * (size + gap), gap))
    return strip


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
        ('md', '# Lesson one\n\n> Squares, and why `square` matters'),
        ('code', '#| default_exp lesson'),
        ('md', '[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]'
               '(https://colab.research.google.com/github/demo-owner/demo/blob/main/nbs/01_lesson.ipynb)'),
        ('md', '## The big idea\n\nThe square $x^2$ of a number, and a sum:\n\n$$\\sum_{i=1}^n i = \\frac{n(n+1)}{2}$$\n\n'
               'Loss $\\mathbb E_x \\big\\| x \\big\\|^2$ for $z \\sim \\mathcal N(0, I)$.'),
        ('code', '#| export\ndef square(x:float, # the number\n          )->float: # its square\n'
                 '    "Multiply `x` by itself."\n    return x * x'),
        ('code', '#| hide\nSECRET = "hidden cell text"'),
        ('code', 'square(3)', [png_output('red')]),
        ('code', 'import math'),
        ('code', 'math.sqrt(square(2))', [text_output('2.0')]),
        ('code', 'for epoch in range(1, 31): print(f"epoch {epoch}/30  loss {1 / epoch:.3f}")', [stream_output(
            'training on 64 toy faces\n' + ''.join(f'epoch {e}/30  loss {1 / e:.3f}\n' for e in range(1, 31)) + 'done in 3s\n')]),
        ('code', '#| slow\nraise RuntimeError("a slow cell ran during the docs build")'),
        ('md', '## Quarto markup {#quarto-markup .special}\n\n::: {.callout-tip}\n## Squares grow fast\n\n'
               'Doubling `x` makes **four** times the square.\n:::\n\n::: {.callout-note}\nA plain note.\n:::\n\n'
               'A [marked phrase]{.marked} and a [source](#square){target="_blank" style="float:right; font-size:smaller"}.\n\n'
               '![the picture, captioned](images/pic.png){fig-alt="a blue rectangle"}'),
        ('code', "show_images(strip, title='one grid per epoch')", [png_output(strip_image())]),
        ('code', '# two red squares, side by side\nfig, axs = plt.subplots(1, 2)', [png_output('red')]),
        ('code', 'fig, ax = plt.subplots()\nax.set_title(f"epoch {n}")', [png_output('green')]),
        ('code', 'plt.plot([1, 2])', [png_output('yellow')]),
        ('code', '#| fig-cap: A square, captioned by its cell\nplt.plot([3, 4])', [png_output('purple')]),
        ('md', 'Back [home](index.ipynb) or to [`square`](01_lesson.ipynb#square).'),
    ])
    out = root / 'site'
    result = build(nbs, out)
    return out, result


def test_small_site_builds(small_site):
    out, result = small_site
    assert result.returncode == 0, result.stdout + result.stderr
    assert '2 pages' in result.stdout and re.search(r', [1-9]\d* cells run', result.stdout)
    index, lesson = (out / 'index.html').read_text(), (out / 'lesson.html').read_text()
    assert 'href="lesson.html"' in index and 'href="lesson.html#the-big-idea"' in index
    assert 'href="https://github.com/demo-owner/demo/blob/main/NOTES.md"' in index and 'href="lesson.html#square"' in index
    assert (out / 'images' / 'pic.png').read_bytes() == (out.parent / 'nbs' / 'images' / 'pic.png').read_bytes()
    assert 'id="the-big-idea"' in lesson and 'id="square"' in lesson  # Pandoc's ids, as nbdev's links expect
    assert 'Multiply' in lesson and 'the number' in lesson  # show_doc of the exported function, with its docments
    assert 'hidden cell text' not in lesson and '#|' not in lesson
    assert lesson.count('<math') == 4 and 'mfrac' in lesson and '$' not in lesson.split('<main')[1]
    assert all(c in lesson for c in '𝔼∼𝒩') and ('‖' in lesson or '∥' in lesson)  # letters and symbols drawn, not TeX
    assert 'src="assets/colab-badge.svg"' in lesson and 'colab.research.google.com/assets' not in lesson
    for page in (index, lesson):  # one script: the site's own
        assert page.count('<script') == 1 and re.findall(r'<script[^>]* src="([^"]+)"', page) == ['assets/site.js']
    assert (out / 'assets' / 'search-index.js').read_text().startswith('window.siteSearchIndex = [')
    assert (out / 'assets' / 'fonts' / 'STIXMath-Regular.otf').stat().st_size > 100_000


def test_small_site_renders_what_quarto_would(small_site):
    "Exported code, Pandoc attributes, callouts, figures and captions, as Quarto renders the same notebook."
    from bs4 import BeautifulSoup
    out, _ = small_site
    soup = BeautifulSoup((out / 'lesson.html').read_text(), 'html.parser')
    main = soup.select_one('main')
    exported = soup.select_one('details.code-fold[open]')  # the exported cell's code, after its API block
    assert exported.summary.get_text(strip=True) == 'Exported source' and 'return x * x' in exported.get_text()
    assert exported.find_previous(id='square') is not None
    heading = soup.find(id='quarto-markup')
    assert heading.name == 'h2' and heading.get_text() == 'Quarto markup' and 'special' in heading['class']
    tip = soup.select_one('.callout.callout-tip')
    assert tip.select_one('.callout-title').get_text(strip=True) == 'Squares grow fast'
    assert tip.select_one('.callout-body strong').get_text() == 'four'
    assert soup.select_one('.callout-note .callout-title').get_text(strip=True) == 'Note'
    assert soup.select_one('span.marked').get_text() == 'marked phrase'
    source = soup.select_one('a[href="#square"][target="_blank"]')  # written as show_doc writes its source links
    assert source.get_text() == 'source' and source['style'] == 'float:right; font-size:smaller'
    assert source['rel'] == ['noopener'] and source.next_sibling.startswith('.')
    figure = main.select_one('figure:not(.cell-figure)')
    assert figure.img['alt'] == 'a blue rectangle' and figure.figcaption.get_text() == 'the picture, captioned'
    alts = [img['alt'] for img in main.select('.cell-output-display img')]
    assert alts == ['Lesson one, figure 1', 'one grid per epoch', 'two red squares, side by side',
                    'Lesson one, figure 4: epoch …', 'Lesson one, figure 5', 'A square, captioned by its cell']
    assert 'A square, captioned by its cell' in [c.get_text() for c in main.select('.cell-output-display figcaption')]
    assert (out / 'lesson_files' / 'figure-2.png').read_bytes()[:4] == b'\x89PNG'  # figures are files beside the page
    log = next(pre.get_text() for pre in main.select('pre.cell-output') if 'toy faces' in pre.get_text()).splitlines()
    assert log == ['training on 64 toy faces', 'epoch 1/30  loss 1.000', '⋮ (27 epochs more)', 'epoch 29/30  loss 0.034',
                   'epoch 30/30  loss 0.033', 'done in 3s']  # a log keeps its first epoch and its last two
    toc = [a.get_text() for a in soup.select('nav.page-toc a')]
    assert toc[:2] == ['The big idea', 'square'] and 'Quarto markup' in toc and 'Squares grow fast' not in toc


def test_links_nbdev_nested_are_repaired():
    "nbdev links a backticked name even inside a link's text; the build keeps the outer link and counts the repairs."
    from types import SimpleNamespace
    sys.path.insert(0, str(BUILD.parent))
    import build_docs
    text = 'the [shared [`GAN`](https://h/gan.html#gan) step](gan.html), [[`GAN`](https://h/gan.html#gan)](gan.html)'
    nb = SimpleNamespace(cells=[SimpleNamespace(cell_type='markdown', source=text + ' and [`GAN`](https://h/gan.html#gan)')])
    assert build_docs.unnest_links(nb) == 2
    assert nb.cells[0].source == 'the [shared `GAN` step](gan.html), [`GAN`](gan.html) and [`GAN`](https://h/gan.html#gan)'


def test_cell_that_imports_and_works_fails_the_build(tmp_path):
    "nbdev runs every cell that imports something: one that also trains would run at every docs build, so it fails."
    (tmp_path / 'pyproject.toml').write_text('[project]\nname = "demo"\nversion = "0.0.1"\n[tool.nbdev]\nlib_path = "demo_nb"\n')
    write_notebook(tmp_path / 'nbs' / 'index.ipynb', [
        ('md', '# demo\n\n> A demo'), ('code', '#| default_exp demo'), ('code', '#| export\ndef one(): return 1'),
        ('code', 'import math\nfor step in range(3): print(math.sqrt(step))')])
    result = build(tmp_path / 'nbs', tmp_path / 'site')
    assert result.returncode == 1 and '1 pages' in result.stdout and ', 3 cells run' in result.stdout  # export, its show_doc, import
    assert "problem: index.ipynb: docs processing runs this cell because it imports something, and it does more" in result.stderr


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
    base = serve(out)
    facts, problems = inspect_site(browser, base, out)
    assert problems == []
    assert sorted(facts) == ['index.html', 'lesson.html']
    lesson = facts['lesson.html']
    assert [i['figure'] for i in lesson['images']][:2] == [False, True]  # the badge, then the figure
    assert len(lesson['math']) == 4 and lesson['mathFont'] == ['loaded']
    strip = next(i for i in lesson['images'] if i['alt'] == 'one grid per epoch')
    assert strip['shown'] < strip['width']  # a strip wider than the page is scaled to fit it
    assert facts['index.html']['next'] == [base + 'lesson.html'] and lesson['prev'] == [base + 'index.html']
    context = local_context(browser, [])
    page = context.new_page()
    page.goto(base + 'index.html', wait_until='load')
    assert search(page, 'multiply itself') == [base + 'lesson.html#square']
    context.close()


def test_what_readers_of_quarto_sites_expect(browser, small_site, serve, tmp_path):
    "An on-page table of contents with sub-headings, a copy button on code, and a sidebar that folds away on a phone."
    out, _ = small_site
    base = serve(out)
    context = local_context(browser, [])
    context.grant_permissions(['clipboard-read', 'clipboard-write'])
    page = context.new_page()
    page.goto(base + 'lesson.html', wait_until='load')
    toc = page.locator('nav.page-toc')
    assert toc.is_visible() and toc.locator('ul ul a', has_text='square').count() == 1  # a sub-heading, nested
    toc.locator('a', has_text='Quarto markup').click()
    assert page.url.endswith('#quarto-markup')
    code = page.locator('main div.sourceCode', has_text='return x * x')
    code.hover()
    code.locator('button.copy-code').click()
    code.locator('button.copy-code', has_text='Copied').wait_for(timeout=5000)  # the clipboard answers asynchronously
    assert 'return x * x' in page.evaluate('navigator.clipboard.readText()')
    page.set_viewport_size({'width': 390, 'height': 844})  # a phone
    page.goto(base + 'lesson.html', wait_until='load')
    lessons, button = page.locator('nav.site-nav a.nav-page').first, page.locator('nav.site-nav .menu-toggle')
    assert button.is_visible() and not lessons.is_visible() and not toc.is_visible()
    assert page.evaluate('document.documentElement.scrollWidth') <= 390  # nothing wider than the phone
    page.screenshot(path=str(tmp_path / 'phone.png'))
    assert page.locator('h1.page-title').bounding_box()['y'] < 200  # the page starts near the top, not under the menu
    button.click()
    assert lessons.is_visible() and button.get_attribute('aria-expanded') == 'true'
    context.close()


def test_browser_checks_find_broken_pages(browser, small_site, serve, tmp_path):
    "The browser check itself: a copy of the small site with each kind of fault it must find."
    out, _ = small_site
    broken = tmp_path / 'site'
    shutil.copytree(out, broken)
    (broken / 'images' / 'pic.png').unlink()
    lesson = (broken / 'lesson.html').read_text()
    lesson = lesson.replace('href="index.html"', 'href="missing.html"', 1).replace('#square', '#no-such-anchor')
    lesson = re.sub(r'<a class="pager-prev".*?</a>', '', lesson, flags=re.S)
    lesson = lesson.replace('alt="two red squares, side by side"', f'alt="{NO_ALT}"')
    faults = ('<img src="https://example.invalid/x.png" alt="remote">'
              '<p>[a link](x.html){target="_blank"} and **bold** text</p>'
              '<div style="overflow-x: auto; width: 300px"><pre style="white-space: pre">' + 'x' * 400 + '</pre></div>'
              '<div style="overflow: hidden; width: 300px"><code style="white-space: pre">' + 'y' * 400 + '</code></div>'
              '<span class="math-display"><math display="block" style="display: block"><mi>x</mi></math></span>'
              '<script>1</script>')
    (broken / 'lesson.html').write_text(lesson.replace('</main>', faults + '</main>'))
    _, problems = inspect_site(browser, serve(broken), broken)
    text = '\n'.join(problems)
    assert 'index.html: image did not load: images/pic.png' in text
    assert re.search(r'lesson.html: broken link \S+/missing.html', text)
    assert 'lesson.html: link to a missing anchor' in text and 'no-such-anchor' in text
    assert 'request to another host: https://example.invalid/x.png' in text
    assert "lesson.html: previous link [], expected ['index.html']" in text
    assert 'lesson.html: image without alt text' in text
    assert "raw markup: '" in text and '{target="_blank"}' in text and '**bold' in text
    assert 'lesson.html: scrolls sideways: div.: xxx' in text and 'lesson.html: too wide, cut off: div.: yyy' in text
    assert re.search(r'lesson.html: display formula off centre by \d+ px', text)
    assert "lesson.html: a script that is not the site's own: inline" in text


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


MACHINE_PATH = re.compile(r'(?<![\w.])/(?:tmp|home|root|work|Users|usr|opt|var|mnt)/[\w.-]+|[A-Z]:\\\w|site-packages')


def test_saved_outputs_show_no_machine_path_and_no_warning():
    "What the lessons' saved outputs show: no folder of the machine that ran them, no library warning."
    import nbformat
    problems = []
    for path in sorted((ROOT / 'nbs').glob('*.ipynb')):
        for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
            for out in cell.get('outputs', []):
                text = out.get('text', '') + ''.join(str(v) for k, v in out.get('data', {}).items() if k.startswith('text/'))
                if m := MACHINE_PATH.search(text): problems.append(f'{path.name}, cell {i}: a machine path: {text[max(0, m.start() - 40):m.end() + 20]!r}')
                if re.search(r'\w+Warning: ', text): problems.append(f'{path.name}, cell {i}: a warning: {text[:120]!r}')
    assert problems == [], '\n'.join(problems)


@pytest.fixture(scope='module')
def real_site():
    "The project's own site, built from nbs/ into _site/ by the documented command."
    return SITE, build(ROOT / 'nbs', SITE)


def test_site_builds(real_site):
    "The site builds with no problem: no cell that trains ran (each would be one), and pages show results, not logs."
    out, result = real_site
    assert result.returncode == 0, result.stdout + result.stderr
    published = {p.stem for p in (ROOT / 'nbs').glob('*.ipynb') if p.name[0] not in '_.'}
    assert f'{len(published)} pages' in result.stdout and re.search(r', [1-9]\d* cells run', result.stdout)
    print(result.stdout)
    for page in out.glob('*.html'):
        for block in re.findall(r'<pre class="cell-output.*?</pre>', page.read_text(), re.S):
            assert len(re.findall(r'^epoch \d+/\d+', block, re.M)) <= 4, f'{page.name}: a training log of more than 4 lines'
        assert str(ROOT) not in page.read_text(), f'{page.name} names the folder of the machine that built it'


def test_site_in_browser(browser, real_site, serve):
    "Every page reads well offline; the GAN page shows train_step's code; search and the sidebar work; screenshots."
    out, result = real_site
    assert (out / 'index.html').exists(), result.stdout + result.stderr
    base = serve(out)
    context = local_context(browser, [])
    page = context.new_page()
    page.goto(base + 'index.html', wait_until='load')
    for name, rel in (('home.png', 'index.html'), ('dcgan.png', 'dcgan.html')):
        page.goto(base + rel, wait_until='load')
        page.screenshot(path=str(out / name), full_page=True)
        print(f'screenshot of {rel}: {out / name}')
    page.goto(base + 'index.html', wait_until='load')
    groups = page.locator('nav.site-nav .nav-group-title').all_inner_texts()
    assert [g.lower() for g in groups] == ['foundations', 'autoencoders', 'gans', 'translation', 'diffusion']
    dcgan = page.locator('nav.site-nav a.nav-page', has_text='DCGAN')
    assert dcgan.locator('.lesson-number').inner_text() == '21'
    dcgan.click()
    page.wait_for_load_state('load')
    assert page.url == base + 'dcgan.html' and page.locator('h1.page-title').inner_text() == 'DCGAN'
    hits = search(page, 'gradient penalty')
    assert any(site_path(base, h) == 'wgan.html' for h in hits[:3]), hits
    page.goto(base + 'gan.html', wait_until='load')
    code = page.locator('main div.sourceCode', has_text='def train_step(self:GAN')  # the code, after its API block
    assert code.count() == 1 and code.first.is_visible()
    assert 'd_loss' in code.first.inner_text()  # the implementation, not only its signature
    page.goto(base + 'dcgan.html', wait_until='load')
    print(f"the DCGAN page is {page.evaluate('document.documentElement.scrollHeight')} px tall at {WIDTH} px wide")
    context.close()
    assert (out / 'home.png').stat().st_size > 10_000 and (out / 'dcgan.png').stat().st_size > 10_000
    facts, problems = inspect_site(browser, base, out)
    for rel, f in facts.items():
        if rel != 'index.html' and not any(i['figure'] and i['loaded'] for i in f['images']):
            problems.append(f'{rel}: no figure (save the notebook with its outputs: tools/execute_notebooks.py)')
    assert problems == [], '\n'.join(problems)
