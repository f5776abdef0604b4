"""Build the documentation site from the notebooks, offline and without Quarto.

    python tools/build_docs.py                    # every notebook in nbs/ -> _site/ (open _site/index.html)
    python tools/build_docs.py --out /tmp/site    # somewhere else; --nbs DIR for another notebook folder

The published site is Quarto's: `nbdev-docs`, configured in `nbs/_quarto.yml` and run on every push by
`.github/workflows/deploy.yaml`. Quarto is not installable everywhere, so this script renders the same notebooks as
Quarto would, with what the project's development install already has, and `tests/test_docs.py` reads the result
in a browser:

1. nbdev's own docs processing (`nbdev.processors.FilterDefaults`, the stage `nbdev-docs` and `nbdev-proc-nbs` run
   before Quarto): `show_doc` API docs for exported symbols, exported, import and `show_doc` cells run, `#| hide`
   cells and directive lines removed, the title cell turned into front matter. The course shows the code it
   teaches, so an exported cell is read as `#| exports`, nbdev's directive for an exported cell whose code the page
   shows (after its API docs, folded open, as Quarto draws it). It runs in fresh processes, as in `nbdev-proc-nbs`,
   but writes to a temporary folder, never to `_proc/`.
2. nbconvert's HTML exporter renders each processed notebook with JupyterLab's template (extended in
   `tools/docs_assets/templates/ganime_site/`) and Pygments highlighting; the Pandoc/Quarto Markdown that nbconvert
   does not know is rendered here: attributes (`[source](url){target="_blank"}`, `## Title {#id}`, `[text]{.class}`),
   fenced divs and callouts (`::: {.callout-tip}`), figures (an image alone in its paragraph, with its caption) and
   the cell options `code-fold`, `code-summary`, `fig-cap` and `fig-alt`. Figures are the notebooks' saved outputs,
   embedded as PNG; a strip of panels too wide for the page is laid out again in rows, each panel at its own size.
   A figure's alt text is its `fig-alt`, else the titles its code gives it, else the cell's leading comment, else
   the page's title and the figure's number.
3. latex2mathml turns `$...$` and `$$...$$` into MathML, which browsers draw natively with the math font shipped in
   `tools/docs_assets/fonts/`: math needs no MathJax and no network. A formula it cannot read stays visible as TeX
   source and is reported.
4. Navigation: a sidebar with the lessons numbered and grouped by their number prefix (`LESSON_GROUPS`), previous
   and next links, and search: a static index (`assets/search-index.js`) and one small script (`assets/search.js`).

Pages get Quarto's names (`01_data.ipynb` -> `data.html`, from the front matter's `output-file`), so links written
for the notebooks (`[Data](01_data.ipynb)`) and nbdev's symbol links into the published site both resolve here.
Files the pages use (`nbs/images/*.png`) are copied; repository files outside `nbs/` are linked on the repository
host; the Colab badge image is served from the site itself, so a page loads nothing from another host.

Cells flagged `#| slow` are never run here. nbdev's processing runs every cell that holds an import, so a slow cell
with an import would run (real data, a GPU) when nbdev-docs publishes: that is reported as a problem. A lesson cell
that mixes imports with other code is rerun too and shows that run's outputs: reported as a note.

Exit status 1 (after writing every page it can) if a notebook fails nbdev's processing, a slow cell imports
something, an internal link or anchor points nowhere, or a formula could not be converted; one line per problem.
"""
import argparse, ast, base64, html, io, json, multiprocessing, os, posixpath, re, shutil, sys, tempfile, time, warnings
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import nbformat, yaml
from bs4 import BeautifulSoup, Comment, NavigableString, Tag
from jinja2 import pass_context
from jupyter_core.paths import jupyter_path
from latex2mathml.converter import convert as tex_to_mathml
from nbconvert import HTMLExporter
from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

ASSETS = Path(__file__).resolve().parent / 'docs_assets'
ASSET_FILES = ('site.css', 'search.js', 'colab-badge.svg', 'favicon.svg')
ASSET_FOLDERS = ('fonts',)
TEMPLATE = 'ganime_site'
COLAB_BADGE = re.compile(r'^https?://colab\.research\.google\.com/assets/colab-badge\.svg$')
SITE_MARKER = '.ganime-site'  # marks a folder this script wrote, so a rebuild may empty it
IMPORT_LINE = re.compile(r'^\s*(import|from)\s+[\w.]+.*$', re.M)
OPTION_LINE = re.compile(r'^#\|\s*([\w-]+)\s*:\s*(.*?)\s*$')
EXPORT_DIRECTIVE = re.compile(r'^(#\|\s*)export(?=\s|$)', re.M)
# nbdev links a backticked name even inside a link's text: `[the `GAN` step](gan.html)` becomes a link in a link
NESTED_LINK = re.compile(r'\[([^\[\]\n]*)\[(`[^`\n]+`)\]\([^()\s]+\)([^\[\]\n]*)\]\(')
EXTERNAL = re.compile(r'^([a-zA-Z][a-zA-Z0-9+.-]*:|//)')  # http:, mailto:, data:, //host
# latex2mathml gaps, fixed around it: only a braced letter becomes a Unicode letter (browsers ignore `mathvariant`
# on <mi>), `\big\|` comes out as the text `\|`, and `\sim` as an ASCII tilde.
UNBRACED_FONT = re.compile(r'\\(mathbb|mathcal|mathfrak|mathbf|mathscr)\s*([A-Za-z0-9])')
MATHML_FIXES = (('>\\|</mo>', '>&#x02016;</mo>'), ('<mi>&#x0007E;</mi>', '<mo>&#x0223C;</mo>'))

# The sidebar groups lessons by the tens of their number: 21_dcgan.ipynb is lesson 21, one of the GANs.
LESSON_GROUPS = {'0': 'Foundations', '1': 'Autoencoders', '2': 'GANs', '3': 'Translation'}
NUMBER_PREFIX = re.compile(r'^(\d+)_')
PAGER_DIRECTION = '<span class="pager-dir">{}</span>'

HEADINGS = ('h1', 'h2', 'h3', 'h4', 'h5', 'h6')
# Pandoc attributes: `{#id .class key=value key="a value"}`
ATTRIBUTE = re.compile(r'\s*(?:#([\w:.-]+)|\.([\w-]+)|([\w-]+)=("[^"]*"|\'[^\']*\'|[^\s"\'{}]+))')
LEADING_ATTRIBUTES = re.compile(r'^\{([^{}\n]*)\}')
TRAILING_ATTRIBUTES = re.compile(r'\s*\{([^{}\n]*)\}\s*$')
BRACKETED_SPAN = re.compile(r'\[([^\[\]\n]+)\]\{([^{}\n]*)\}')
DIV_FENCE = re.compile(r'^ {0,3}:{3,}\s*(.*?)\s*$')
CODE_FENCE = re.compile(r'^ {0,3}(`{3,}|~{3,})')
HEADING_LINE = re.compile(r'^ {0,3}#{1,6}\s+(.*?)\s*$')
CALLOUTS = {'callout-note': 'Note', 'callout-tip': 'Tip', 'callout-warning': 'Warning',
            'callout-important': 'Important', 'callout-caution': 'Caution'}

NO_ALT = 'No description has been provided for this image'  # what nbconvert gives an image without alt text
TITLE_CALLS = ('title', 'set_title', 'suptitle')  # plt.title, ax.set_title, fig.suptitle
STRIP_WIDTH = 880   # px: a strip of panels wider than this (about the text column) is laid out again in rows
BLANK_GAP = 8       # px: a band of blank columns at least this wide separates two panels of a strip


def process_notebook(job: tuple) -> tuple[list[str], list[str]]:
    "Run nbdev's docs processing on notebook `src`, writing `dst`; returns (problems, notes)."
    src, dst = job
    os.chdir(Path(src).parent)  # notebooks run from their own folder, as under nbdev-test
    os.environ['IN_TEST'] = '1'  # as nbdev-proc-nbs: lessons stay tiny while their cells run
    problems, slow_imports, nested = [], [], []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        try:
            from fastcore.nbio import read_nb, write_nb
            from nbdev.config import get_config
            from nbdev.processors import FilterDefaults
            nb = read_nb(src)
            slow_imports = skip_slow_cells(nb, get_config().tst_flags)
            show_exported_code(nb)
            FilterDefaults()(nb)
            nested = unnest_links(nb)
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
    notes += [f"nbdev's symbol links put a link inside this link's text, which Quarto shows as raw Markdown (this "
              f"build keeps the outer link): link the name by its backticks alone, or move it out of the link: {m!r}"
              for m in nested]
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


def show_exported_code(nb) -> None:
    "Read `#| export` as `#| exports`: nbdev then keeps the cell's code on the page, after the API docs it adds."
    for cell in nb.cells:
        if cell.cell_type == 'code': cell.source = EXPORT_DIRECTIVE.sub(r'\1exports', cell.source)


def unnest_links(nb) -> list[str]:
    "Undo the links nbdev's linking put inside a link's text (keeping the outer link); returns the texts it repaired."
    repaired = []
    for cell in nb.cells:
        if cell.cell_type != 'markdown': continue
        repaired += [m[0] for m in NESTED_LINK.finditer(cell.source)]
        cell.source = NESTED_LINK.sub(r'[\1\2\3](', cell.source)
    return repaired


def split_options(source: str) -> tuple[dict, str]:
    "Split the Quarto cell options that nbdev leaves (`#| echo: false`) from the code they precede."
    lines, opts = source.splitlines(), {}
    while lines and lines[0].startswith('#|'):
        m = OPTION_LINE.match(lines.pop(0))
        if m: opts[m[1]] = m[2].strip('\'"')
    return opts, '\n'.join(lines).strip('\n')


def is_false(value) -> bool: return str(value).lower() == 'false'


def front_matter(nb) -> dict:
    "The YAML front matter nbdev puts in the first raw cell (title, description, output-file)."
    for cell in nb.cells:
        src = cell.source.strip()
        if cell.cell_type == 'raw' and src.startswith('---'):
            return yaml.safe_load(src.strip('-')) or {}
    return {}


def prepare_cells(nb) -> None:
    "Apply the Quarto options Quarto would (echo, output, include), drop raw and empty cells, number the rest."
    kept = []
    for cell in nb.cells:
        if cell.cell_type == 'raw': continue  # front matter, or raw text meant for another format
        if cell.cell_type == 'code':
            cell.metadata.pop('execution', None)  # execnb's timings, which nbformat's schema rejects
            opts, cell.source = split_options(cell.source)
            if is_false(opts.get('include')): continue
            if is_false(opts.get('output')): cell.outputs = []
            if is_false(opts.get('echo')) or not cell.source.strip():
                if not cell.outputs: continue
                cell.metadata.setdefault('transient', {})['remove_source'] = True
            cell.metadata['site_options'] = opts  # read again when the page is finished (figures, code folding)
            for output in cell.outputs: reflow_output(output)
        cell['id'] = f'c{len(kept)}'  # unique, so the finished page finds each cell again
        kept.append(cell)
    nb.cells = kept


def reflow_output(output) -> None:
    "Replace a PNG output that is a strip too wide for the page by the same panels in rows."
    png = output.get('data', {}).get('image/png')
    if not png: return
    rows = reflow_strip(base64.b64decode(png), STRIP_WIDTH)
    if rows is None: return
    output.data['image/png'] = base64.b64encode(rows).decode()
    for key in ('width', 'height'): output.get('metadata', {}).get('image/png', {}).pop(key, None)


def panel_spans(pixels) -> list[tuple[int, int]]:
    "Column ranges [start, end) of an image's panels: the parts between bands of BLANK_GAP or more white columns."
    blank = (pixels >= 245).all(axis=(0, 2)).tolist()
    spans, start, run = [], None, 0
    for x, is_blank in enumerate(blank + [True] * BLANK_GAP):
        if not is_blank:
            if start is None: start = x
            run = 0
        elif start is not None:
            run += 1
            if run == BLANK_GAP: spans.append((start, x - BLANK_GAP + 1)); start = None
    return spans


def reflow_strip(png: bytes, width: int) -> bytes | None:
    "A strip of four or more like panels wider than `width`, laid out in rows at its own scale; None if it is not one."
    import numpy as np
    from PIL import Image
    image = Image.open(io.BytesIO(png)).convert('RGB')
    if image.width <= width or image.width < 3 * image.height: return None
    spans = panel_spans(np.asarray(image))
    sizes = [end - start for start, end in spans]
    if len(spans) < 4 or max(sizes) > 1.25 * min(sizes): return None
    pad = max(1, (spans[1][0] - spans[0][1]) // 2)  # half the gap between panels, around each row
    fits = max([k for k in range(1, len(spans) + 1) if spans[k - 1][1] - spans[0][0] + 2 * pad <= width] or [1])
    n_rows = -(-len(spans) // fits)
    per_row = -(-len(spans) // n_rows)  # as many panels in every row as possible
    rows = [spans[i:i + per_row] for i in range(0, len(spans), per_row)]
    crops = [image.crop((max(0, row[0][0] - pad), 0, min(image.width, row[-1][1] + pad), image.height))
             for row in rows]
    laid = Image.new('RGB', (max(c.width for c in crops), image.height * len(crops)), 'white')
    for i, crop in enumerate(crops): laid.paste(crop, (0, i * image.height))
    out = io.BytesIO()
    laid.save(out, format='PNG', optimize=True)
    return out.getvalue()


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

    @property
    def number(self) -> str:
        "The lesson number, from the notebook's name ('21' for 21_dcgan.ipynb); '' for a page without one."
        m = NUMBER_PREFIX.match(posixpath.basename(self.rel))
        return m[1] if m else ''

    @property
    def group(self) -> str:
        "The page's sidebar group: its folder, else its number's tens in LESSON_GROUPS; '' for pages of no group."
        folder = posixpath.dirname(self.rel)
        if folder: return NUMBER_PREFIX.sub('', posixpath.basename(folder))
        if not self.number: return ''
        tens = self.number[:-1].lstrip('0') or '0'
        return LESSON_GROUPS.get(tens, f'Lessons {tens}0–{tens}9')

    @property
    def label(self) -> str: return 'Home' if self.rel == 'index.ipynb' else self.title


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


def parse_attributes(text: str) -> dict | None:
    "Pandoc's attributes (`#id .class key=value`) as HTML attributes; None if `text` is not a list of them."
    attrs, classes, pos, text = {}, [], 0, text.strip()
    if not text: return None
    while pos < len(text):
        m = ATTRIBUTE.match(text, pos)
        if not m: return None
        ident, cls, key, value = m.groups()
        if ident: attrs['id'] = ident
        elif cls: classes.append(cls)
        else: attrs[key] = value[1:-1] if value[0] in '"\'' else value
        pos = m.end()
    if classes: attrs['class'] = classes
    return attrs


def set_attributes(tag: Tag, attrs: dict) -> None:
    "Give `tag` Pandoc attributes: its id, classes added to its own, the others as they are."
    for key, value in attrs.items():
        tag[key] = tag.get('class', []) + value if key == 'class' else value
    if tag.get('target') == '_blank': tag['rel'] = 'noopener'


def html_attributes(attrs: dict) -> str:
    "Attributes for an HTML start tag, escaped."
    return ''.join(f' {k}="{html.escape(" ".join(v) if k == "class" else v)}"' for k, v in attrs.items())


def fenced_divs(source: str) -> str:
    "Pandoc's fenced divs (`::: {.callout-tip}` ... `:::`) as HTML blocks around their Markdown, outside code blocks."
    lines, out, closers, code, i = source.split('\n'), [], [], None, 0
    while i < len(lines):
        line, i = lines[i], i + 1
        fence = CODE_FENCE.match(line)
        if code is not None or fence:
            if code is None: code = fence[1]
            elif fence and fence[1][0] == code[0] and len(fence[1]) >= len(code): code = None
            out.append(line)
            continue
        m = DIV_FENCE.match(line)
        spec = m[1] if m else None
        if spec == '' and closers: out += ['', closers.pop(), '']; continue
        attrs = parse_attributes(spec[1:-1]) if spec and spec[0] + spec[-1] == '{}' else \
            {'class': [spec]} if spec and re.fullmatch(r'[\w-]+', spec) else None
        if attrs is None: out.append(line); continue
        opening, closing, i = div_html(attrs, lines, i)
        out += ['', *opening, '']
        closers.append(closing)
    return '\n'.join(out + [''] + closers[::-1])


def div_html(attrs: dict, lines: list, i: int) -> tuple[list[str], str, int]:
    "Lines opening a fenced div, the line closing it, and the next line to read; a callout gets Quarto's title."
    kind = next((c for c in attrs.get('class', []) if c in CALLOUTS), None)
    if kind is None: return [f'<div{html_attributes(attrs)}>'], '</div>', i
    title = attrs.pop('title', None)
    first = next((j for j in range(i, len(lines)) if lines[j].strip()), None)
    if title is None and first is not None and (heading := HEADING_LINE.match(lines[first])):
        title, i = heading[1], first + 1
    attrs['class'] = ['callout'] + attrs['class']
    return ([f'<div{html_attributes(attrs)}>', '<div class="callout-title">', '', title or CALLOUTS[kind], '',
             '</div>', '<div class="callout-body">'], '</div></div>', i)


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
        # a span, as display math may stand inside a paragraph; it scrolls, not the page, if a formula is too wide
        return f'<span class="math-display">{mathml}</span>' if display == 'block' else mathml


def render_markdown(source: str, report, attachments=None) -> str:
    "Markdown (with Pandoc's fenced divs and TeX) as HTML."
    renderer = SiteRenderer(report, escape=False, attachments=attachments or {}, exclude_anchor_links=True)
    return MarkdownWithMath(renderer=renderer).render(fenced_divs(source))


class SiteExporter(HTMLExporter):
    "HTMLExporter whose Markdown (cells and `show_doc` outputs) goes through `render_markdown`."
    report = print

    @pass_context
    def markdown2html(self, context, source):
        return render_markdown(source, self.report, context.get('cell', {}).get('attachments', {}))


def lab_css() -> str:
    "JupyterLab's notebook CSS from nbconvert's lab template (written once into assets/ instead of into every page)."
    for folder in jupyter_path('nbconvert', 'templates'):
        static = Path(folder) / 'lab' / 'static'
        if (static / 'index.css').exists():
            return (static / 'index.css').read_text() + '\n' + (static / 'theme-light.css').read_text()
    raise FileNotFoundError("nbconvert's lab template (lab/static/index.css) was not found")


def page_link(page: Page, current: Page, cls: str, rel: str = '', before: str = '') -> str:
    "A link to `page` from `current`: its lesson number and label."
    number = f'<span class="lesson-number">{page.number}</span> ' if page.number else ''
    rel = f' rel="{rel}"' if rel else ''
    return (f'<a class="{cls}"{rel} href="{current.root}{page.href}">{before}'
            f'<span class="page-label">{number}<span class="page-name">{html.escape(page.label)}</span></span></a>')


def nav_html(site: Site, current: Page) -> str:
    "The sidebar: the site's name, search, every page (home first) in its group, the current one with its contents."
    items, group = [], ''
    for page in site.pages:
        if page.group != group:
            if group: items.append('</ul></li>')
            if page.group: items.append(f'<li class="nav-group"><span class="nav-group-title">{html.escape(page.group)}'
                                        f'</span>\n<ul>')
            group = page.group
        cls = ' class="current"' if page is current else ''
        toc = '<ul class="page-toc"></ul>' if page is current else ''
        items.append(f'<li{cls}>{page_link(page, current, "nav-page")}{toc}</li>')
    if group: items.append('</ul></li>')
    search = ('<form class="site-search" role="search" action="#">'
              '<input type="search" name="q" placeholder="Search the course" aria-label="Search the course" '
              'autocomplete="off"><ol class="search-results" hidden></ol></form>')
    return (f'<a class="site-brand" href="{current.root}index.html">{html.escape(site.title)}</a>\n'
            f'<p class="site-tagline">{html.escape(site.description)}</p>\n{search}\n'
            f'<ul class="nav-pages">\n' + '\n'.join(items) + '\n</ul>')


def pager_html(site: Site, page: Page) -> str:
    "Links to the previous and the next page, in the sidebar's order."
    i, links = site.pages.index(page), []
    if i > 0:
        links.append(page_link(site.pages[i - 1], page, 'pager-prev', 'prev', PAGER_DIRECTION.format('← Previous')))
    if i + 1 < len(site.pages):
        links.append(page_link(site.pages[i + 1], page, 'pager-next', 'next', PAGER_DIRECTION.format('Next →')))
    return '<nav class="page-pager" aria-label="Previous and next page">' + ''.join(links) + '</nav>'


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


def replace_text(node: NavigableString, text: str) -> NavigableString:
    "Put `text` in place of the text node `node`; returns the new node."
    new = NavigableString(text)
    node.replace_with(new)
    return new


def apply_attributes(soup: BeautifulSoup, root: Tag) -> set:
    "Apply Pandoc attributes left as text (after a link, image or code span, ending a heading, on `[text]{.class}`)."
    named = set()
    for node in list(root.find_all(string=True)):
        if isinstance(node, Comment) or node.find_parent(['pre', 'code', 'math', 'script', 'style']): continue
        before = node.previous_sibling
        if isinstance(before, Tag) and before.name in ('a', 'img', 'code') and (m := LEADING_ATTRIBUTES.match(node)):
            if (attrs := parse_attributes(m[1])) is not None:
                set_attributes(before, attrs)
                node = replace_text(node, node[m.end():])
        heading = node.parent
        if heading.name in HEADINGS and node.next_sibling is None and (m := TRAILING_ATTRIBUTES.search(node)):
            if (attrs := parse_attributes(m[1])) is not None:
                set_attributes(heading, attrs)
                node = replace_text(node, node[:m.start()])
                if 'id' in attrs: named.add(id(heading))
        if BRACKETED_SPAN.search(node): bracketed_spans(soup, node)
    return named


def bracketed_spans(soup: BeautifulSoup, node: NavigableString) -> None:
    "Turn each `[text]{attributes}` in a text node into a span with those attributes."
    pieces, last = [], 0
    for m in BRACKETED_SPAN.finditer(node):
        attrs = parse_attributes(m[2])
        if attrs is None: continue
        span = soup.new_tag('span')
        span.string = m[1]
        set_attributes(span, attrs)
        pieces += [NavigableString(node[last:m.start()]), span]
        last = m.end()
    if not pieces: return
    for piece in pieces + [NavigableString(node[last:])]: node.insert_before(piece)
    node.extract()


def markdown_figures(soup: BeautifulSoup, root: Tag) -> None:
    "An image alone in its paragraph becomes a figure captioned by its alt text (or `fig-alt` its alt), as in Pandoc."
    for img in root.select('.jp-MarkdownCell p > img'):
        para = img.parent
        if any(c is not img and str(c).strip() for c in para.contents): continue
        caption = img.get('alt', '')
        if img.get('fig-alt'): img['alt'] = img.attrs.pop('fig-alt')
        figure = soup.new_tag('figure', attrs={'class': 'figure'})
        para.replace_with(figure)
        figure.append(img)
        if caption: add_caption(soup, figure, caption)


def add_caption(soup: BeautifulSoup, figure: Tag, caption: str) -> None:
    "Put `caption` at the end of `figure`, as its figcaption."
    tag = soup.new_tag('figcaption')
    tag.string = caption
    figure.append(tag)


def literal_text(node) -> str:
    "The text of a string literal, an f-string's placeholders as '…'; '' for any other expression."
    if isinstance(node, ast.Constant) and isinstance(node.value, str): text = node.value
    elif isinstance(node, ast.JoinedStr):
        text = ''.join(v.value if isinstance(v, ast.Constant) else '…' for v in node.values)
    else: return ''
    return ' '.join(text.split())


def figure_titles(source: str) -> list[str]:
    "The titles a cell's code gives its figures, in order: `title=` arguments, `plt.title`, `ax.set_title`, `suptitle`."
    code = '\n'.join(line for line in source.splitlines() if not line.lstrip().startswith(('%', '!')))  # magics
    try: tree = ast.parse(code)
    except SyntaxError: return []
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call): continue
        args = [k.value for k in node.keywords if k.arg == 'title']
        if isinstance(node.func, ast.Attribute) and node.func.attr in TITLE_CALLS and node.args:
            args.append(node.args[0])
        found += [(a.lineno, a.col_offset, text) for a in args if (text := literal_text(a))]
    return [text for *_, text in sorted(found)]


def leading_comment(source: str) -> str:
    "The cell's first line, if it is a comment: what the cell does, in its author's words."
    first = source.lstrip().split('\n', 1)[0]
    return first.lstrip('#').strip() if first.startswith('#') and not first.startswith('#|') else ''


def figure_alts(source: str, count: int) -> list[str]:
    "Alt texts for a cell's `count` figures from its code: their titles, else its leading comment ('' for neither)."
    titles = figure_titles(source)
    if count > 1 and len(titles) == count: return titles  # one title for each figure, in order
    text = '; '.join(dict.fromkeys(titles)) or leading_comment(source)
    if count == 1 or not text: return [text] * count
    return [f'{text} ({i} of {count})' for i in range(1, count + 1)]


def described(alt: str, fallback: str) -> str:
    "`alt` if it says what the figure is (two words, no placeholder), else `fallback`, followed by any `alt`."
    if alt == NO_ALT or not alt.strip(): return fallback
    return alt if '…' not in alt and len(re.findall(r'[^\W\d_]{2,}', alt)) >= 2 else f'{fallback}: {alt}'


def finish_code_cells(soup: BeautifulSoup, root: Tag, page: Page) -> None:
    "Quarto's cell options (`code-fold`, `code-summary`, `fig-cap`, `fig-alt`) and alt text for every figure."
    figures = [img for img in root.select('img') if 'colab-badge' not in img.get('class', [])]
    number = {id(img): n for n, img in enumerate(figures, 1)}
    alts = {}
    for cell in page.nb.cells:
        div = root.find(id=f'cell-id={cell.id}') if cell.cell_type == 'code' else None
        if div is None: continue
        opts = cell.metadata.get('site_options', {})
        fold_code(soup, div, opts)
        images = div.select('.jp-OutputArea-output img')
        for img, alt in zip(images, figure_alts(cell.source, len(images))):
            alts[id(img)] = opts.get('fig-alt') or opts.get('fig-cap') or alt
            if opts.get('fig-cap'): add_caption(soup, img.parent, opts['fig-cap'])
    for img in figures:
        img['alt'] = described(alts.get(id(img), img.get('alt', '')), f'{page.title}, figure {number[id(img)]}')


def fold_code(soup: BeautifulSoup, cell: Tag, opts: dict) -> None:
    "Quarto's `code-fold`: the cell's code in a details element (open for `show`), labelled by `code-summary`."
    fold = opts.get('code-fold', '').lower()
    editor = cell.select_one('.jp-InputArea-editor')
    if fold not in ('true', 'show') or editor is None: return
    details = editor.wrap(soup.new_tag('details', attrs={'class': 'code-fold'}))
    if fold == 'show': details['open'] = ''
    summary = soup.new_tag('summary')
    summary.string = opts.get('code-summary') or 'Code'
    details.insert(0, summary)


def finish_page(site: Site, page: Page, doc: str) -> BeautifulSoup:
    "Apply Pandoc attributes, give headings Quarto's ids, fill the contents, rewrite links, finish figures and cells."
    soup = BeautifulSoup(doc, 'html.parser')
    main = soup.select_one('main.site-main')
    named = apply_attributes(soup, main)
    seen = {}
    for heading in main.select(', '.join(HEADINGS)):
        if 'page-title' in heading.get('class', []) or id(heading) in named: continue
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
    markdown_figures(soup, main)
    finish_code_cells(soup, main, page)
    return soup


def search_sections(page: Page, main: Tag) -> list[dict]:
    "The page's text cut at its h2 and h3 headings, for the search index: {t: page, h: heading, u: address, x: text}."
    sections, heading = [{'t': page.title, 'h': '', 'u': page.href, 'x': []}], None
    for node in main.find_all(string=True):
        if isinstance(node, Comment) or node.find_parent(['math', 'nav', 'footer', 'summary', 'style']): continue
        owner = node.find_parent(['h2', 'h3'])
        if owner is not None and owner.get('id'):
            if owner is not heading:
                heading = owner
                sections.append({'t': page.title, 'h': owner.get_text(' ', strip=True),
                                 'u': f'{page.href}#{owner["id"]}', 'x': []})
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


def process_notebooks(site: Site, tmp: str, workers: int) -> None:
    "Run nbdev's processing on every notebook, in parallel, and read the pages' titles and names from the results."
    for i, src in enumerate(find_notebooks(site.nbs)):
        site.pages.append(Page(src=src, rel=src.relative_to(site.nbs).as_posix(), proc=Path(tmp) / f'{i:03d}.ipynb'))
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


def build_site(nbs: Path, out: Path, workers: int) -> Site:
    "Build the whole site from the notebooks in `nbs` into `out`; returns the site with its problems."
    nbs, out = nbs.resolve(), out.resolve()
    os.chdir(nbs)  # nbdev reads its settings from the working folder's project
    site = load_site(nbs, out)
    prepare_out(out)
    with tempfile.TemporaryDirectory(prefix='ganime-proc-') as tmp: process_notebooks(site, tmp, workers)
    (out / 'assets' / 'jupyterlab.css').write_text(lab_css())
    for name in ASSET_FILES: shutil.copy2(ASSETS / name, out / 'assets' / name)
    for name in ASSET_FOLDERS: shutil.copytree(ASSETS / name, out / 'assets' / name)
    soups = {page: render_page(site, page) for page in site.pages}
    check_links(site, soups)
    index = [s for page, soup in soups.items() for s in search_sections(page, soup.select_one('main.site-main'))]
    (out / 'assets' / 'search-index.js').write_text(
        f'window.siteSearchIndex = {json.dumps(index, ensure_ascii=False, separators=(",", ":"))};\n', encoding='utf-8')
    return site


def render_page(site: Site, page: Page) -> BeautifulSoup:
    "Render one processed notebook to its HTML page in the site."
    exporter = SiteExporter(template_name=TEMPLATE, extra_template_basedirs=[str(ASSETS / 'templates')],
                            exclude_input_prompt=True, exclude_output_prompt=True)
    exporter.log.setLevel('ERROR')  # nbconvert warns about every output figure without alt text: they get theirs later
    report = exporter.report = lambda msg: site.problems.append(f'{page.rel}: {msg}')
    prepare_cells(page.nb)
    page.nb.metadata['title'] = page.title if page.rel == 'index.ipynb' else f'{page.title} – {site.title}'
    source = page.src.resolve()
    source_name = source.relative_to(site.repo_root).as_posix() if source.is_relative_to(site.repo_root) else page.rel
    description = re.sub(r'^<p>(.*)</p>$', r'\1', render_markdown(page.description, report).strip(), flags=re.S)
    resources = {'site': {'root': page.root, 'title': page.title, 'description_html': description,
                          'description_text': BeautifulSoup(description, 'html.parser').get_text(),
                          'nav': nav_html(site, page), 'pager': pager_html(site, page),
                          'source_url': site.git_blob + source_name, 'source_name': source_name},
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
