"""Build the documentation site from the notebooks, offline and without Quarto: Pandoc does the Markdown.

    python tools/build_docs.py                    # every notebook in nbs/ -> _site/ (open _site/index.html)
    python tools/build_docs.py --out /tmp/site    # somewhere else; --nbs DIR for another notebook folder

1. nbdev's docs processing (as `nbdev-proc-nbs`) adds the API docs; it runs only imports, exported code and
   `show_doc`, and a cell it would run that does more (trains, say) is a problem: the build never trains.
2. Each notebook becomes Pandoc Markdown with cells laid out as Quarto lays them out (and its cell options), figures
   as files with alt texts, training logs cut to their first and last epochs.
3. Pandoc (the `pypandoc-binary` wheel) renders it into `docs_assets/page.html`, TeX as MathML, `callouts.lua` for
   Quarto's callouts; links written for the notebooks then point at the pages, and a search index is written.
Exit status 1 (after writing every page it can) for a failed notebook, a cell that works during the build, a slow
cell that imports (nbdev-docs would run it), a Pandoc warning or a link to nowhere. `tests/test_docs.py` reads the
site in a browser.
"""
import argparse, ast, base64, html, json, multiprocessing, os, posixpath, re, shutil, subprocess, sys, tempfile, time, warnings
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import nbformat, pypandoc, yaml
from bs4 import BeautifulSoup

ASSETS = Path(__file__).resolve().parent / 'docs_assets'
ASSET_FILES = ('site.css', 'site.js', 'colab-badge.svg', 'favicon.svg', 'fonts')
PANDOC_ARGS = ['--template', str(ASSETS / 'page.html'), '--lua-filter', str(ASSETS / 'callouts.lua'), '--mathml',
               '--toc', '--toc-depth=3', '--syntax-highlighting=pygments', '--wrap=none']
COLAB_BADGE = re.compile(r'^https?://colab\.research\.google\.com/assets/colab-badge\.svg$')
SITE_MARKER = '.ganime-site'  # marks a folder this script wrote, so a rebuild may empty it
EXPORT_DIRECTIVE = re.compile(r'^(#\|\s*)export(?=\s|$)', re.M)
OPTION_LINE = re.compile(r'^#\|\s*([\w-]+)\s*:\s*(.*?)\s*$')
# nbdev links a backticked name even inside a link's text: `[the `GAN` step](gan.html)` becomes a link in a link
NESTED_LINK = re.compile(r'\[([^\[\]\n]*)\[(`[^`\n]+`)\]\([^()\s]+\)([^\[\]\n]*)\]\(')
EXTERNAL = re.compile(r'^([a-zA-Z][a-zA-Z0-9+.-]*:|//)')  # http:, mailto:, data:, //host
FASTPROGRESS_TAGS = re.compile(r'<style>.*?</style>|<progress[^>]*>.*?</progress>|</?(div|p)>', re.S)
EPOCH_LINE = re.compile(r'^epoch \d+/\d+\b')  # one line of a training log, as ProgressCB prints it
LESSON_GROUPS = {'0': 'Foundations', '1': 'Autoencoders', '2': 'GANs', '3': 'Translation', '4': 'Diffusion'}  # by the tens of the number
NUMBER_PREFIX = re.compile(r'^(\d+[a-z]?)_')  # '21' of 21_dcgan, '03a' of 03a_run
TITLE = re.compile(r'''(?:\btitle\s*=\s*|\.(?:set_title|suptitle|title)\()\s*f?(['"])(.*?)(?<!\\)\1''')  # title=, ax.set_title(...


def process_notebook(job: tuple) -> tuple[list[str], int]:
    "Run nbdev's docs processing on notebook `src`, writing `dst`; returns (problems, cells it ran)."
    src, dst = job
    os.chdir(Path(src).parent)  # notebooks run from their own folder, as under nbdev-test
    os.environ['IN_TEST'], problems, ran = '1', [], []  # as nbdev-proc-nbs
    try:
        import nbdev.processors as procs
        from fastcore.nbio import read_nb, write_nb
        from nbdev.config import get_config
        decides = procs._do_eval  # nbdev's rule for the cells it runs; watched, to report any that does work
        procs._do_eval = lambda cell: ran.append(does_work(cell) and cell.source.strip().splitlines()[0]) or True if decides(cell) else None
        nb = read_nb(src)
        problems += [f'a slow cell imports something, so nbdev-docs would run it: move the import to an earlier cell: {line!r}'
                     for line in skip_slow_cells(nb, get_config().tst_flags)]
        for cell in nb.cells:
            if cell.cell_type == 'code': cell.source = EXPORT_DIRECTIVE.sub(r'\1exports', cell.source)  # show its code
        with warnings.catch_warnings(): warnings.simplefilter('ignore'); procs.FilterDefaults()(nb)
        unnest_links(nb)
        write_nb(nb, dst)
    except Exception as e:
        problems.append('nbdev processing failed: ' + ' | '.join(f'{type(e).__name__}: {e}'.strip().splitlines()[-6:]))
    problems += [f'docs processing runs this cell because it imports something, and it does more (move the imports to '
                 f'a cell of their own): {first_line!r}' for first_line in ran if first_line]
    return problems, len(ran)

def does_work(cell) -> bool:
    "Whether a cell nbdev runs does more than import, define, show API docs or export (the Colab install does nothing here)."
    if getattr(cell, 'directives_', {}).keys() & {'export', 'exports', 'exporti', 'exec_doc'}: return False
    body = cell.parsed_()  # nbdev's parse of the cell, its magics left out: the top-level statements
    quiet = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)
    colab = lambda n: isinstance(n, ast.If) and 'google.colab' in ast.unparse(n.test)
    show_doc = lambda n: isinstance(n, ast.Expr) and 'show_doc' in ast.unparse(n)
    return not all(isinstance(n, quiet) or colab(n) or show_doc(n) for n in body)

def skip_slow_cells(nb, flags) -> list[str]:
    "Keep nbdev's processing from running `#| slow` cells; returns the first import line of each that imports."
    words = '|'.join(map(re.escape, flags.split() if isinstance(flags, str) else flags))
    flagged, importing = re.compile(rf'^\s*#\s*\|\s*({words})\b', re.M), []
    for cell in nb.cells:
        if not words or cell.cell_type != 'code' or not flagged.search(cell.source): continue
        if m := re.search(r'^\s*(import|from)\s+[\w.]+.*$', cell.source, re.M): importing.append(m[0].strip())
        cell.source = '#| eval: false\n' + cell.source
    return importing

def unnest_links(nb) -> int:
    "Undo the links nbdev's linking put inside a link's text (Quarto shows them as raw Markdown); returns how many."
    repaired = 0
    for cell in nb.cells:
        if cell.cell_type == 'markdown': cell.source, n = NESTED_LINK.subn(r'[\1\2\3](', cell.source); repaired += n
    return repaired

@dataclass(eq=False)
class Page:
    "One notebook of the site: its source, its path under the notebook folder ('01_data.ipynb'), its processed copy."
    src: Path
    rel: str
    proc: Path = Path()
    href: str = ''     # the page's path in the site ('data.html')
    title: str = ''
    description: str = ''

    @property
    def number(self) -> str: return (NUMBER_PREFIX.match(posixpath.basename(self.rel)) or ['', ''])[1]  # '21': 21_dcgan
    @property
    def group(self) -> str:  # in the sidebar: the tens of the lesson number, named in LESSON_GROUPS
        tens = self.number.rstrip('abcdefghijklmnopqrstuvwxyz')[:-1].lstrip('0') or '0'
        return LESSON_GROUPS.get(tens, f'Lessons {tens}0–{tens}9') if self.number else ''
    def link(self, current=None) -> dict:  # how the sidebar and the pager name the page
        return dict(href=self.href, number=self.number, current=self is current, label='Home' if self.rel == 'index.ipynb' else self.title)

@dataclass
class Site:
    "Everything one build needs to know (git_blob: 'https://github.com/OWNER/REPO/blob/BRANCH/'; doc_base: the published site) and found wrong."
    nbs: Path
    out: Path
    repo_root: Path
    title: str
    description: str
    git_blob: str
    doc_base: str
    pages: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    cells_run: int = 0

def cell_options(source: str) -> tuple[dict, str]:
    "Split the Quarto cell options nbdev leaves (`#| echo: false`) from the code they precede."
    lines, opts = source.splitlines(), {}
    while lines and lines[0].startswith('#|'):
        if m := OPTION_LINE.match(lines.pop(0)): opts[m[1]] = m[2].strip('\'"')
    return opts, '\n'.join(lines).strip('\n')

def fenced(text: str, cls: str) -> str:
    "`text` as a fenced code block of class `cls`, with a fence longer than any backtick run inside it."
    fence = '`' * max([3] + [len(run) + 1 for run in re.findall(r'`+', text)])
    return f'{fence} {{{cls}}}\n{text.rstrip()}\n{fence}'

def div(markdown: str, cls: str) -> str:
    "`markdown` in an HTML div, as raw HTML: Pandoc's table of contents then holds the headings inside (API docs)."
    return f'<div class="{cls}">\n\n{markdown}\n\n</div>'

def shorten_logs(text: str) -> str:
    "Each run of training-log lines reduced to its first line and its last two: the page shows results, not logs."
    lines, out, run = text.splitlines(), [], []
    for line in lines + ['']:
        if EPOCH_LINE.match(line): run.append(line); continue
        out += run if len(run) <= 4 else [run[0], f'⋮ ({len(run) - 3} epochs more)', *run[-2:]]
        run = []
        out.append(line)
    return '\n'.join(out[:-1])

def output_text(output) -> str | None:
    "The text an output shows (a stream, a plain result, or a log printed as HTML paragraphs); None for others."
    data = output.get('data', {})
    if output.output_type == 'stream': return output.text
    shown = data.get('text/html', '')  # fastprogress's display: its style sheet, its bar and its lines, of which the page keeps the lines
    if re.search(r'<progress|progress \{|<p>epoch ', shown) and '<' not in re.sub(FASTPROGRESS_TAGS, '', shown):
        return html.unescape('\n'.join(re.findall(r'<p>([^<]*)</p>', shown)))
    if output.output_type == 'execute_result' and set(data) == {'text/plain'}: return data['text/plain']
    if output.output_type == 'error': return '\n'.join(output.get('traceback', []))

def figure_alts(source: str, count: int) -> list[str]:
    "Alt texts for a cell's figures from its code: the titles it gives them (placeholders as '…'), else its leading comment."
    titles = [t for m in TITLE.finditer(source) if (t := ' '.join(re.sub(r'\{[^{}]*\}', '…', m[2]).split()))]
    if count > 1 and len(titles) == count: return titles  # one title for each figure, in order
    first = source.lstrip().split('\n', 1)[0]
    text = '; '.join(dict.fromkeys(titles)) or (first[2:].strip() if first.startswith('# ') else '')
    return [text if count == 1 or not text else f'{text} ({i} of {count})' for i in range(1, count + 1)]

class PageWriter:
    "Turns one processed notebook into Pandoc Markdown, writing its figures beside the page."
    def __init__(self, site: Site, page: Page):
        self.site, self.page, self.figures = site, page, 0

    def markdown(self, nb) -> str:
        return '\n\n'.join(filter(None, (c.source if c.cell_type == 'markdown' else self.code_cell(c) if c.cell_type == 'code'
                                         else '' for c in nb.cells)))

    def code_cell(self, cell) -> str:
        "A code cell as Quarto lays it out: its code (folded with `code-fold`), then its outputs."
        opts, code = cell_options(cell.source)
        if opts.get('include') == 'false': return ''
        outputs = [] if opts.get('output') == 'false' else cell.outputs
        images = [o for o in outputs if 'image/png' in o.get('data', {})]
        alts = iter(figure_alts(code, len(images)))
        parts = [self.output(o, opts, next(alts) if o in images else '') for o in outputs]
        if code.strip() and opts.get('echo') != 'false':
            block = fenced(code, '.python')
            if opts.get('code-fold') in ('true', 'show'):
                block = (f'<details class="code-fold"{" open" if opts["code-fold"] == "show" else ""}><summary>'
                         f'{opts.get("code-summary", "Code")}</summary>\n\n{block}\n\n</details>')
            parts.insert(0, block)
        body = '\n\n'.join(filter(None, parts))
        return div(body, 'cell') if body else ''

    def output(self, output, opts: dict, alt: str) -> str:
        "One output: a figure written to a file, API docs or HTML as they are, text as a block (logs shortened)."
        data = output.get('data', {})
        if 'image/png' in data:
            self.figures += 1
            name, number = f'{Path(self.page.href).stem}_files/figure-{self.figures}.png', f'{self.page.title}, figure {self.figures}'
            (file := self.site.out / posixpath.dirname(self.page.href) / name).parent.mkdir(parents=True, exist_ok=True)
            file.write_bytes(base64.b64decode(data['image/png']))
            alt = opts.get('fig-alt') or opts.get('fig-cap') or alt  # it must say what the figure is: two words, no placeholder
            alt = alt if '…' not in alt and len(re.findall(r'[^\W\d_]{2,}', alt)) >= 2 else f'{number}: {alt}' if alt else number
            caption = f'<figcaption>{opts["fig-cap"]}</figcaption>' if opts.get('fig-cap') else ''
            image = f'<figure class="cell-figure"><img src="{name}" alt="{html.escape(alt)}">{caption}</figure>'
            return div(f'```{{=html}}\n{image}\n```', 'cell-output-display')
        if (text := output_text(output)) is not None:
            return text.strip() and fenced(shorten_logs(text), '.cell-output' + (' .cell-output-stderr' if output.get('name') == 'stderr' else ''))
        if 'text/markdown' in data: return div(data['text/markdown'], 'cell-output-display api')
        if 'text/html' in data: return div(f'```{{=html}}\n{data["text/html"]}\n```', 'cell-output-display')
        return fenced(data['text/plain'], '.cell-output') if 'text/plain' in data else ''

def page_metadata(site: Site, page: Page) -> tuple[dict, list]:
    "What the page template needs besides the body: Markdown metadata (title, sidebar, pager) and plain variables."
    groups, i = [], site.pages.index(page)
    for p in site.pages:
        if not groups or groups[-1]['group'] != p.group: groups.append({'group': p.group, 'pages': []})
        groups[-1]['pages'].append(p.link(page))
    source = page.src.resolve()
    name = source.relative_to(site.repo_root).as_posix() if source.is_relative_to(site.repo_root) else page.rel
    meta = {'title': page.title, 'description': page.description, 'nav': groups, 'prev': site.pages[i - 1].link() if i else None,
            'next': site.pages[i + 1].link() if i + 1 < len(site.pages) else None}
    variables = {'root': '../' * page.href.count('/'), 'pagetitle': page.title if page.rel == 'index.ipynb' else f'{page.title} – {site.title}',
                 'site-title': site.title, 'site-description': site.description, 'source-url': site.git_blob and site.git_blob + name,
                 'source-name': name}
    return meta, [f'--variable={k}:{v}' for k, v in variables.items() if v]

def rewrite_url(site: Site, page: Page, url: str) -> str:
    "Where `url`, written in `page`'s notebook, must point in the site; copies the local files it needs."
    if COLAB_BADGE.match(url): return '../' * page.href.count('/') + 'assets/colab-badge.svg'
    if site.doc_base and url.startswith(site.doc_base):  # nbdev's symbol links and links into the published site
        return posixpath.relpath(url[len(site.doc_base):] or 'index.html', posixpath.dirname(page.href) or '.')
    if not url or url.startswith('#') or EXTERNAL.match(url): return url
    parts = urlsplit(url)
    target = posixpath.normpath(posixpath.join(posixpath.dirname(page.rel), unquote(parts.path)))
    frag = f'#{parts.fragment}' if parts.fragment else ''
    if linked := next((p for p in site.pages if p.rel == target), None): return posixpath.relpath(linked.href, posixpath.dirname(page.href) or '.') + frag
    source = (site.nbs / target).resolve()
    if not target.startswith('..') and source.is_file() and not target.endswith('.ipynb'):
        (site.out / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, site.out / target)
        return url
    if site.git_blob and source.is_file() and source.is_relative_to(site.repo_root):  # a repository file the site does not hold
        return site.git_blob + source.relative_to(site.repo_root).as_posix() + frag
    return url  # left as written: the link check reports it

def render_page(site: Site, page: Page, tmp: Path) -> BeautifulSoup:
    "Render one processed notebook into its HTML page; returns the page."
    nb = nbformat.read(page.proc, as_version=4)
    meta = tmp / f'{page.proc.stem}.json'
    metadata, variables = page_metadata(site, page)
    meta.write_text(json.dumps(metadata))
    markdown = PageWriter(site, page).markdown(nb)
    done = subprocess.run([pypandoc.get_pandoc_path(), '--from=markdown-native_divs', '--to=html5', *PANDOC_ARGS, *variables,
                           f'--metadata-file={meta}'], input=markdown, capture_output=True, text=True)
    site.problems += [f'{page.rel}: pandoc: {line}' for line in done.stderr.splitlines() if line.strip()]
    soup = BeautifulSoup(done.stdout, 'html.parser')
    main = soup.select_one('main.site-main')
    for tag, attr in (('a', 'href'), ('img', 'src')):
        for el in main.select(f'{tag}[{attr}]'):
            el[attr] = rewrite_url(site, page, el[attr])
            if el[attr].endswith('assets/colab-badge.svg'): el['class'] = ['colab-badge']
            if el.get('target') == '_blank': el['rel'] = 'noopener'
            if el.get('data-fig-alt'): el['alt'] = el.attrs.pop('data-fig-alt')  # Quarto's fig-alt: the caption stays
    (site.out / page.href).parent.mkdir(parents=True, exist_ok=True)
    (site.out / page.href).write_text(str(soup), encoding='utf-8')
    return soup

def search_sections(page: Page, main) -> list[dict]:
    "The page's text cut at its h2 and h3 headings, for the search index: {t: page, h: heading, u: address, x: text}."
    sections = [{'t': page.title, 'h': '', 'u': page.href, 'x': []}]
    for node in main.find_all(string=True):
        if node.find_parent(['math', 'nav', 'footer', 'summary', 'style', 'button']): continue
        owner = node.find_parent(['h2', 'h3'])
        if owner is not None and owner.get('id'):
            if sections[-1]['u'] != f'{page.href}#{owner["id"]}':
                sections.append({'t': page.title, 'h': owner.get_text(' ', strip=True), 'u': f'{page.href}#{owner["id"]}', 'x': []})
            continue
        sections[-1]['x'].append(node if node.find_parent('pre') else f' {node} ')  # code keeps its own spacing
    for s in sections: s['x'] = ' '.join(''.join(s['x']).split())
    return [s for s in sections if s['x'] or s['h']]

def check_links(site: Site, soups: dict) -> None:
    "Report internal links whose file or anchor does not exist in the built site."
    ids = {p.href: {el['id'] for el in s.select('[id]')} for p, s in soups.items()}
    for page, soup in soups.items():
        for el in soup.select('a[href], img[src]'):
            url = el.get('href') or el.get('src')
            if EXTERNAL.match(url): continue
            parts = urlsplit(url)
            target = posixpath.normpath(posixpath.join(posixpath.dirname(page.href), unquote(parts.path))) if parts.path else page.href
            missing = 'file' if target.startswith('..') or not (site.out / target).is_file() else \
                'anchor' if parts.fragment and target in ids and parts.fragment not in ids[target] else ''
            if missing: site.problems.append(f'{page.rel}: link to a missing {missing}: {url}')

def load_site(nbs: Path, out: Path) -> Site:
    "Read the project's nbdev settings (title, repository, published address) and find the notebooks it publishes."
    from nbdev.config import get_config
    from nbdev.doclinks import nbglob
    cfg = get_config(nbs)
    doc_base = urljoin(cfg['doc_host'] + '/', cfg.get('doc_baseurl', '')).rstrip('/') + '/' if cfg.get('doc_host') else ''
    site = Site(nbs=nbs, out=out, repo_root=Path(cfg.config_path).resolve(), title=cfg.get('title', cfg.lib_name),
                description=cfg.get('description', ''), git_blob=f"{cfg['git_url'].rstrip('/')}/blob/{cfg.get('branch', 'main')}/" if cfg.get('git_url') else '',
                doc_base=doc_base)
    rels = sorted((p.relative_to(nbs).as_posix() for p in nbglob(nbs, func=Path, skip_folder_re=r'^[_.]')),
                  key=lambda rel: (rel != 'index.ipynb', rel))  # the home page first
    site.pages = [Page(src=nbs / rel, rel=rel) for rel in rels]
    return site

def prepare_out(out: Path) -> None:
    "Empty `out` if this script wrote it before; refuse to touch any other non-empty folder."
    if out.exists() and any(out.iterdir()):
        if not (out / SITE_MARKER).exists(): sys.exit(f'error: {out} is not empty and was not written by build_docs.py; choose another --out')
        shutil.rmtree(out)
    (out / 'assets').mkdir(parents=True)
    (out / SITE_MARKER).write_text('written by tools/build_docs.py; emptied by each build\n')
    for name in ASSET_FILES:
        (shutil.copytree if (ASSETS / name).is_dir() else shutil.copy2)(ASSETS / name, out / 'assets' / name)

def process_notebooks(site: Site, tmp: Path, workers: int) -> None:
    "Run nbdev's processing on every notebook, in parallel, and read the pages' titles and names from the results."
    for i, page in enumerate(site.pages): page.proc = tmp / f'{i:03d}.ipynb'
    # A fresh interpreter for every notebook: its cells run in it, and IPython's shell replaces `__main__`.
    with multiprocessing.get_context('spawn').Pool(max(1, min(workers, len(site.pages))), maxtasksperchild=1) as pool:
        results = pool.map(process_notebook, [(str(p.src), str(p.proc)) for p in site.pages], chunksize=1)
    for page, (problems, ran) in zip(site.pages, results):
        site.problems += [f'{page.rel}: {problem}' for problem in problems]
        site.cells_run += ran
    site.pages = [p for p in site.pages if p.proc.exists()]  # a notebook nbdev could not process has no page
    for page in site.pages:  # the title, description and output-file that nbdev put in the front matter
        raw = [c.source.strip() for c in nbformat.read(page.proc, as_version=4).cells if c.cell_type == 'raw']
        fm = next((yaml.safe_load(r.strip('-')) for r in raw if r.startswith('---')), None) or {}
        page.title, page.description = str(fm.get('title') or Path(page.rel).stem), str(fm.get('description') or '')
        page.href = posixpath.join(posixpath.dirname(page.rel), fm.get('output-file') or Path(page.rel).stem + '.html')

def build_site(nbs: Path, out: Path, workers: int) -> Site:
    "Build the whole site from the notebooks in `nbs` into `out`; returns the site with its problems."
    nbs, out = nbs.resolve(), out.resolve()
    os.chdir(nbs)  # nbdev reads its settings from the working folder's project
    site = load_site(nbs, out)
    prepare_out(out)
    with tempfile.TemporaryDirectory(prefix='ganime-proc-') as tmp:
        process_notebooks(site, Path(tmp), workers)
        soups = {page: render_page(site, page, Path(tmp)) for page in site.pages}
    check_links(site, soups)
    index = [s for page, soup in soups.items() for s in search_sections(page, soup.select_one('main.site-main'))]
    (out / 'assets' / 'search-index.js').write_text(
        f'window.siteSearchIndex = {json.dumps(index, ensure_ascii=False, separators=(",", ":"))};\n', encoding='utf-8')
    return site

def main(argv=None) -> int:
    repo = Path(__file__).resolve().parent.parent
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--nbs', type=Path, default=repo / 'nbs', help='notebook folder (default: nbs/)')
    p.add_argument('--out', type=Path, default=repo / '_site', help='output folder (default: _site/)')
    p.add_argument('--workers', type=int, default=os.cpu_count() or 1, help='processes for nbdev processing')
    args = p.parse_args(argv)
    start = time.time()
    site = build_site(args.nbs, args.out, args.workers)
    for problem in site.problems: print(f'problem: {problem}', file=sys.stderr)
    print(f'{len(site.pages)} pages in {time.time() - start:.0f}s, {site.cells_run} cells run (imports, exported code, '
          f'API docs): {site.out / "index.html"}' + (f' ({len(site.problems)} problems)' if site.problems else ''))
    return 1 if site.problems else 0

if __name__ == '__main__':
    sys.exit(main())
