"""Build the documentation site from the notebooks, offline and without Quarto.

    python tools/build_docs.py                    # every notebook in nbs/ -> _site/ (open _site/index.html)
    python tools/build_docs.py --out /tmp/site    # somewhere else; --nbs DIR for another notebook folder

The published site is Quarto's: `nbdev-docs`, configured in `nbs/_quarto.yml` and run on every push by
`.github/workflows/deploy.yaml`. Quarto is not installable everywhere, so this script builds the same pages from the
same notebooks with what the project's development install already has:

1. nbdev's own docs processing (`nbdev.processors.FilterDefaults`, the stage `nbdev-docs` and `nbdev-proc-nbs` run
   before Quarto): it adds `show_doc` API docs for exported symbols, runs exported, import and `show_doc` cells,
   removes `#| hide` and exported cells and directive lines, and turns the title cell into front matter. It runs
   in fresh processes, as in `nbdev-proc-nbs`, but writes to a temporary folder, never to `_proc/`.
2. nbconvert's HTML exporter renders each processed notebook with JupyterLab's template (extended in
   `tools/docs_assets/templates/ganime_site/`: a navigation sidebar, no script tags) and Pygments highlighting.
   Figures are the notebooks' saved outputs, embedded as PNG, so the site shows exactly what the notebooks show.
3. latex2mathml turns `$...$` and `$$...$$` into MathML, which browsers draw natively: math needs no MathJax, no
   script and no network. A formula it cannot read stays visible as TeX source and is reported.

Pages get Quarto's names (`01_data.ipynb` -> `data.html`, from the front matter's `output-file`), so links written
for the notebooks (`[Data](01_data.ipynb)`) and nbdev's symbol links into the published site both resolve here.
Files the pages use (`nbs/images/*.png`) are copied; repository files outside `nbs/` are linked on the repository
host; the Colab badge image is served from the site itself, so a page loads nothing from another host.

Why not MkDocs with mkdocs-jupyter or Sphinx with myst-nb: each brings a second site generator with its own
configuration beside Quarto's, and neither runs nbdev's processing, so the `show_doc` API docs would be missing.
nbconvert and BeautifulSoup come with the Jupyter tools of the `dev` install; latex2mathml is the one addition.

Cells flagged `#| slow` are never run here. nbdev's processing runs every cell that holds an import, so a slow cell
with an import would run (real data, a GPU) when nbdev-docs publishes: that is reported as a problem. A lesson cell
that mixes imports with other code is rerun too and shows that run's outputs: reported as a note.

Exit status 1 (after writing every page it can) if a notebook fails nbdev's processing, a slow cell imports
something, an internal link or anchor points nowhere, or a formula could not be converted; one line per problem.
"""
import argparse, html, multiprocessing, os, posixpath, re, shutil, sys, tempfile, time, warnings
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import nbformat, yaml
from bs4 import BeautifulSoup
from jinja2 import pass_context
from jupyter_core.paths import jupyter_path
from latex2mathml.converter import convert as tex_to_mathml
from nbconvert import HTMLExporter
from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

ASSETS = Path(__file__).resolve().parent / 'docs_assets'
TEMPLATE = 'ganime_site'
COLAB_BADGE = re.compile(r'^https?://colab\.research\.google\.com/assets/colab-badge\.svg$')
SITE_MARKER = '.ganime-site'  # marks a folder this script wrote, so a rebuild may empty it
IMPORT_LINE = re.compile(r'^\s*(import|from)\s+[\w.]+.*$', re.M)
OPTION_LINE = re.compile(r'^#\|\s*([\w-]+)\s*:\s*(.*?)\s*$')
EXTERNAL = re.compile(r'^([a-zA-Z][a-zA-Z0-9+.-]*:|//)')  # http:, mailto:, data:, //host
# latex2mathml gaps, fixed around it: only a braced letter becomes a Unicode letter (browsers ignore `mathvariant`
# on <mi>), `\big\|` comes out as the text `\|`, and `\sim` as an ASCII tilde.
UNBRACED_FONT = re.compile(r'\\(mathbb|mathcal|mathfrak|mathbf|mathscr)\s*([A-Za-z0-9])')
MATHML_FIXES = (('>\\|</mo>', '>&#x02016;</mo>'), ('<mi>&#x0007E;</mi>', '<mo>&#x0223C;</mo>'))


def process_notebook(job: tuple) -> tuple[list[str], list[str]]:
    "Run nbdev's docs processing on notebook `src`, writing `dst`; returns (problems, notes)."
    src, dst = job
    os.chdir(Path(src).parent)  # notebooks run from their own folder, as under nbdev-test
    os.environ['IN_TEST'] = '1'  # as nbdev-proc-nbs: lessons stay tiny while their cells run
    problems, slow_imports = [], []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        try:
            from fastcore.nbio import read_nb, write_nb
            from nbdev.config import get_config
            from nbdev.processors import FilterDefaults
            nb = read_nb(src)
            slow_imports = skip_slow_cells(nb, get_config().tst_flags)
            FilterDefaults()(nb)
            write_nb(nb, dst)
        except Exception as e:
            lines = f'{type(e).__name__}: {e}'.strip().splitlines()
            problems.append('nbdev processing failed: ' + ' | '.join(lines[-6:]))
    problems += [f'a slow cell imports something, so nbdev-docs would run it when publishing (this build does not): '
                 f'move the import to an earlier cell: {m!r}' for m in slow_imports]
    mixed = [str(w.message).split('---')[1].strip().splitlines()[0] for w in caught
             if 'Found cells containing imports' in str(w.message)]
    notes = [f'a cell mixes imports with other code, so docs processing reruns it and shows that run, not its saved '
             f'outputs (move the imports to a cell of their own): {m!r}' for m in mixed]
    return problems, notes


def skip_slow_cells(nb, flags) -> list[str]:
    "Keep nbdev's processing from running `#| slow` cells; returns the first lines of those that import something."
    words = '|'.join(map(re.escape, flags.split() if isinstance(flags, str) else flags))
    if not words: return []
    flagged = re.compile(rf'^\s*#\s*\|\s*({words})\b', re.M)
    importing = []
    for cell in nb.cells:
        if cell.cell_type != 'code' or not flagged.search(cell.source): continue
        if IMPORT_LINE.search(cell.source): importing.append(IMPORT_LINE.search(cell.source)[0].strip())
        cell.source = '#| eval: false\n' + cell.source
    return importing


def split_options(source: str) -> tuple[dict, str]:
    "Split the Quarto cell options that nbdev leaves (`#| echo: false`) from the code they precede."
    lines, opts = source.splitlines(), {}
    while lines and lines[0].startswith('#|'):
        m = OPTION_LINE.match(lines.pop(0))
        if m: opts[m[1]] = m[2].strip('\'"').lower()
    return opts, '\n'.join(lines).strip('\n')


def front_matter(nb) -> dict:
    "The YAML front matter nbdev puts in the first raw cell (title, description, output-file)."
    for cell in nb.cells:
        src = cell.source.strip()
        if cell.cell_type == 'raw' and src.startswith('---'):
            return yaml.safe_load(src.strip('-')) or {}
    return {}


def prepare_cells(nb) -> None:
    "Apply the Quarto options Quarto would (echo, output, include) and drop raw and empty cells."
    kept = []
    for cell in nb.cells:
        if cell.cell_type == 'raw': continue  # front matter, or raw text meant for another format
        if cell.cell_type == 'code':
            cell.metadata.pop('execution', None)  # execnb's timings, which nbformat's schema rejects
            opts, cell.source = split_options(cell.source)
            if opts.get('include') == 'false': continue
            if opts.get('output') == 'false': cell.outputs = []
            if opts.get('echo') == 'false' or not cell.source.strip():
                if not cell.outputs: continue
                cell.metadata.setdefault('transient', {})['remove_source'] = True
        kept.append(cell)
    nb.cells = kept


def pandoc_id(text: str) -> str:
    "The identifier Pandoc (so Quarto, so nbdev's symbol links) gives a heading with this text."
    ident = re.sub(r'[^\w\s.-]', '', text.strip().lower(), flags=re.UNICODE)
    ident = re.sub(r'\s+', '-', ident)
    ident = re.sub(r'^[\W\d_]+', '', ident)  # identifiers start with a letter
    return ident or 'section'


@dataclass(eq=False)
class Page:
    "One notebook of the site."
    src: Path          # the source notebook
    rel: str           # its path under the notebook folder, posix ('01_data.ipynb')
    proc: Path         # the processed copy
    href: str = ''     # the page's path in the site ('data.html')
    title: str = ''
    description: str = ''
    nb: object = None

    @property
    def root(self) -> str: return '../' * self.href.count('/')


@dataclass
class Site:
    "Everything one build needs to know and what it found wrong."
    nbs: Path
    out: Path
    repo_root: Path
    title: str
    description: str
    git_blob: str      # 'https://github.com/OWNER/REPO/blob/BRANCH/'
    doc_base: str      # where the published site lives: its links become relative here
    pages: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    notes: list = field(default_factory=list)   # worth fixing, but the site is right

    def page_for(self, rel: str): return next((p for p in self.pages if p.rel == rel), None)


class SiteRenderer(IPythonRenderer):
    "nbconvert's Markdown renderer, with TeX drawn as MathML at build time instead of by MathJax in the browser."
    def __init__(self, report, **kw):
        super().__init__(**kw)
        self.report = report

    def block_math(self, body): return self.math(body, 'block')
    def inline_math(self, body): return self.math(body, 'inline')
    def latex_environment(self, name, body): return self.math(f'\\begin{{{name}}}{body}\\end{{{name}}}', 'block')

    def math(self, tex: str, display: str) -> str:
        try: mathml = tex_to_mathml(UNBRACED_FONT.sub(r'\\\1{\2}', tex), display=display)
        except Exception as e:
            self.report(f'formula not converted ({type(e).__name__}: {e}): {tex[:80]}')
            return f'<code class="math-fallback">{html.escape(tex)}</code>'
        for wrong, right in MATHML_FIXES: mathml = mathml.replace(wrong, right)
        return mathml


class SiteExporter(HTMLExporter):
    "HTMLExporter whose Markdown (cells and `show_doc` outputs) goes through `SiteRenderer`."
    report = print

    @pass_context
    def markdown2html(self, context, source):
        attachments = context.get('cell', {}).get('attachments', {})
        renderer = SiteRenderer(self.report, escape=False, attachments=attachments, exclude_anchor_links=True)
        return MarkdownWithMath(renderer=renderer).render(source)


def lab_css() -> str:
    "JupyterLab's notebook CSS from nbconvert's lab template (written once into assets/ instead of into every page)."
    for folder in jupyter_path('nbconvert', 'templates'):
        static = Path(folder) / 'lab' / 'static'
        if (static / 'index.css').exists():
            return (static / 'index.css').read_text() + '\n' + (static / 'theme-light.css').read_text()
    raise FileNotFoundError("nbconvert's lab template (lab/static/index.css) was not found")


def nav_html(site: Site, current: Page) -> str:
    "The sidebar: the site's name, then every page (home first), the current one holding its table of contents."
    root = current.root
    items, section = [], None
    for page in site.pages:
        folder = posixpath.dirname(page.rel)
        if folder != section and folder:
            items.append(f'<li class="nav-section">{html.escape(re.sub(r"^[0-9]+_", "", folder))}</li>')
        section = folder
        label = 'Home' if page.rel == 'index.ipynb' else page.title
        cls = ' class="current"' if page is current else ''
        toc = '<ul class="page-toc"></ul>' if page is current else ''
        items.append(f'<li{cls}><a href="{root}{page.href}">{html.escape(label)}</a>{toc}</li>')
    return (f'<a class="site-brand" href="{root}index.html">{html.escape(site.title)}</a>\n'
            f'<p class="site-tagline">{html.escape(site.description)}</p>\n<ul>\n' + '\n'.join(items) + '\n</ul>')


def rewrite_url(site: Site, page: Page, url: str, is_image: bool) -> str:
    "Where `url`, written in `page`'s notebook, must point in the site; copies the local files it needs."
    if is_image and COLAB_BADGE.match(url): return page.root + 'assets/colab-badge.svg'
    if site.doc_base and url.startswith(site.doc_base):  # nbdev's symbol links and links into the published site
        return posixpath.relpath(url[len(site.doc_base):] or 'index.html', posixpath.dirname(page.href) or '.')
    if not url or url.startswith('#') or EXTERNAL.match(url): return url
    parts = urlsplit(url)
    target = posixpath.normpath(posixpath.join(posixpath.dirname(page.rel), unquote(parts.path)))
    frag = f'#{parts.fragment}' if parts.fragment else ''
    linked = site.page_for(target)
    if linked: return posixpath.relpath(linked.href, posixpath.dirname(page.href) or '.') + frag
    source = (site.nbs / target).resolve()
    inside = not target.startswith('../') and target != '..'
    if inside and source.is_file() and not target.endswith('.ipynb'):
        dest = site.out / target
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, dest)
        return url
    if source.is_file() and source.is_relative_to(site.repo_root):  # a repository file the site does not hold
        return site.git_blob + source.relative_to(site.repo_root).as_posix() + frag
    return url  # left as written: the link check reports it


def finish_page(site: Site, page: Page, doc: str) -> BeautifulSoup:
    "Give headings Quarto's ids, fill the page's table of contents, and rewrite links and image sources."
    soup = BeautifulSoup(doc, 'html.parser')
    main = soup.select_one('main.site-main')
    seen = {}
    for heading in main.select('h1, h2, h3, h4, h5, h6'):
        if 'page-title' in heading.get('class', []): continue
        base = pandoc_id(heading.get_text(' ', strip=True))
        seen[base] = seen.get(base, -1) + 1
        heading['id'] = base if not seen[base] else f'{base}-{seen[base]}'
    toc = soup.select_one('.site-nav li.current ul.page-toc')
    for heading in main.select('.jp-MarkdownCell h2'):
        item = soup.new_tag('li')
        link = soup.new_tag('a', href=f'#{heading["id"]}')
        link.string = heading.get_text(' ', strip=True)
        item.append(link)
        toc.append(item)
    if toc and not toc.contents: toc.decompose()
    for tag, attr in (('a', 'href'), ('img', 'src')):
        for el in main.select(f'{tag}[{attr}]'):
            el[attr] = rewrite_url(site, page, el[attr], tag == 'img')
            if tag == 'img' and el[attr].endswith('assets/colab-badge.svg'): el['class'] = ['colab-badge']
    return soup


def check_links(site: Site, soups: dict) -> None:
    "Report internal links whose file or anchor does not exist in the built site."
    ids = {p.href: {el['id'] for el in s.select('[id]')} for p, s in soups.items()}
    for page, soup in soups.items():
        for el in soup.select('a[href], img[src]'):
            url = el.get('href') or el.get('src')
            if EXTERNAL.match(url): continue
            parts = urlsplit(url)
            target = posixpath.normpath(posixpath.join(posixpath.dirname(page.href), unquote(parts.path))) \
                if parts.path else page.href
            if target.startswith('..') or not (site.out / target).is_file():
                site.problems.append(f'{page.rel}: link to a missing file: {url}')
            elif parts.fragment and target in ids and parts.fragment not in ids[target]:
                site.problems.append(f'{page.rel}: link to a missing anchor: {url}')


def find_notebooks(nbs: Path) -> list[Path]:
    "The notebooks nbdev publishes: no names or folders starting with `_` or `.`; the home page first."
    from nbdev.doclinks import nbglob
    found = sorted(nbglob(nbs, func=Path, skip_folder_re=r'^[_.]'), key=lambda p: p.relative_to(nbs).as_posix())
    return sorted(found, key=lambda p: p.relative_to(nbs).as_posix() != 'index.ipynb')


def load_site(nbs: Path, out: Path) -> Site:
    "Read the project's nbdev settings (title, repository, published address) for the notebooks in `nbs`."
    from nbdev.config import get_config
    cfg = get_config(nbs)
    doc_base = urljoin(cfg['doc_host'] + '/', cfg.get('doc_baseurl', '')).rstrip('/') + '/' if cfg.get('doc_host') else ''
    git_blob = f"{cfg.get('git_url', '').rstrip('/')}/blob/{cfg.get('branch', 'main')}/"
    return Site(nbs=nbs, out=out, repo_root=Path(cfg.config_path).resolve(), title=cfg.get('title', cfg.lib_name),
                description=cfg.get('description', ''), git_blob=git_blob, doc_base=doc_base)


def prepare_out(out: Path) -> None:
    "Empty `out` if this script wrote it before; refuse to touch any other non-empty folder."
    if out.exists() and any(out.iterdir()):
        if not (out / SITE_MARKER).exists():
            sys.exit(f'error: {out} is not empty and was not written by build_docs.py; choose another --out')
        shutil.rmtree(out)
    (out / 'assets').mkdir(parents=True, exist_ok=True)
    (out / SITE_MARKER).write_text('written by tools/build_docs.py; emptied by each build\n')


def build_site(nbs: Path, out: Path, workers: int) -> Site:
    "Build the whole site from the notebooks in `nbs` into `out`; returns the site with its problems."
    nbs, out = nbs.resolve(), out.resolve()
    os.chdir(nbs)  # nbdev reads its settings from the working folder's project
    site = load_site(nbs, out)
    prepare_out(out)
    with tempfile.TemporaryDirectory(prefix='ganime-proc-') as tmp:
        for i, src in enumerate(find_notebooks(nbs)):
            site.pages.append(Page(src=src, rel=src.relative_to(nbs).as_posix(), proc=Path(tmp) / f'{i:03d}.ipynb'))
        # A fresh interpreter for every notebook: their cells run in it, and IPython's shell replaces `__main__`.
        context = multiprocessing.get_context('spawn')
        with context.Pool(max(1, min(workers, len(site.pages))), maxtasksperchild=1) as pool:
            results = pool.map(process_notebook, [(str(p.src), str(p.proc)) for p in site.pages], chunksize=1)
        for page, (problems, notes) in zip(site.pages, results):
            site.problems += [f'{page.rel}: {problem}' for problem in problems]
            site.notes += [f'{page.rel}: {note}' for note in notes]
        site.pages = [p for p in site.pages if p.proc.exists()]  # a notebook nbdev could not process has no page
        for page in site.pages:
            page.nb = nbformat.read(page.proc, as_version=4)
            fm = front_matter(page.nb)
            page.title = str(fm.get('title') or Path(page.rel).stem)
            page.description = str(fm.get('description') or '')
            page.href = posixpath.join(posixpath.dirname(page.rel), fm.get('output-file') or Path(page.rel).stem + '.html')
    (out / 'assets' / 'jupyterlab.css').write_text(lab_css())
    for name in ('site.css', 'colab-badge.svg', 'favicon.svg'): shutil.copy2(ASSETS / name, out / 'assets' / name)
    soups = {page: render_page(site, page) for page in site.pages}
    check_links(site, soups)
    return site


def render_page(site: Site, page: Page) -> BeautifulSoup:
    "Render one processed notebook to its HTML page in the site."
    exporter = SiteExporter(template_name=TEMPLATE, extra_template_basedirs=[str(ASSETS / 'templates')],
                            exclude_input_prompt=True, exclude_output_prompt=True)
    exporter.log.setLevel('ERROR')  # nbconvert warns about every output figure without alt text
    exporter.report = lambda msg: site.problems.append(f'{page.rel}: {msg}')
    prepare_cells(page.nb)
    page.nb.metadata['title'] = page.title if page.rel == 'index.ipynb' else f'{page.title} – {site.title}'
    source = page.src.resolve()
    source_name = source.relative_to(site.repo_root).as_posix() if source.is_relative_to(site.repo_root) else page.rel
    resources = {'site': {'root': page.root, 'title': page.title, 'description': page.description,
                          'nav': nav_html(site, page), 'source_url': site.git_blob + source_name,
                          'source_name': source_name},
                 'metadata': {'name': page.title, 'path': str(page.src.parent)}}
    doc, _ = exporter.from_notebook_node(page.nb, resources=resources)
    soup = finish_page(site, page, doc)
    dest = site.out / page.href
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(str(soup), encoding='utf-8')
    return soup


def main(argv=None) -> int:
    repo = Path(__file__).resolve().parent.parent
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--nbs', type=Path, default=repo / 'nbs', help='notebook folder (default: nbs/)')
    p.add_argument('--out', type=Path, default=repo / '_site', help='output folder (default: _site/)')
    p.add_argument('--workers', type=int, default=os.cpu_count() or 1, help='processes for nbdev processing')
    args = p.parse_args(argv)
    start = time.time()
    site = build_site(args.nbs, args.out, args.workers)
    for note in site.notes: print(f'note: {note}', file=sys.stderr)
    for problem in site.problems: print(f'problem: {problem}', file=sys.stderr)
    print(f'{len(site.pages)} pages in {time.time() - start:.0f}s: {site.out / "index.html"}'
          + (f' ({len(site.problems)} problems)' if site.problems else ''))
    return 1 if site.problems else 0


if __name__ == '__main__':
    sys.exit(main())
