// The offline ganime site's one script (tools/build_docs.py): search, a copy button on every code block, and the
// lessons menu that folds away on a narrow screen. Nothing is loaded from another host.

// Search. The index, assets/search-index.js, is a script of its own loaded on first use, so search works from
// file:// as well as from a server.
(() => {
  const root = document.currentScript.dataset.root;
  const form = document.querySelector('form.site-search');
  if (!form) return;
  const input = form.querySelector('input[type="search"]');
  const list = form.querySelector('.search-results');
  const MAX_HITS = 10, SNIPPET = 160;
  let index = null, waiting = [];

  function withIndex(then) {  // the index is large: load it once, when the reader first types
    if (index) return then();
    waiting.push(then);
    if (waiting.length > 1) return;
    const script = document.createElement('script');
    script.src = root + 'assets/search-index.js';
    script.onload = () => { index = window.siteSearchIndex || []; waiting.forEach(f => f()); waiting = []; };
    document.head.append(script);
  }

  function score(entry, words, phrase) {  // 0 unless every word occurs; headings and the exact phrase count most
    const head = (entry.t + ' ' + entry.h).toLowerCase(), text = entry.x.toLowerCase();
    let total = text.includes(phrase) ? 10 : 0;
    for (const w of words) {
      const inHead = head.includes(w), inText = text.includes(w);
      if (!inHead && !inText) return 0;
      total += (inHead ? 5 : 0) + Math.min(text.split(w).length - 1, 5);
    }
    return total + (head.includes(phrase) ? 20 : 0);
  }

  function snippet(text, words, phrase) {  // the text around the phrase (or first word), with the words marked
    const lower = text.toLowerCase();
    let at = lower.indexOf(phrase);
    if (at < 0) at = Math.max(0, ...words.map(w => lower.indexOf(w)).filter(i => i >= 0).slice(0, 1));
    const start = Math.max(0, at - SNIPPET / 3), part = text.slice(start, start + SNIPPET);
    const frag = document.createDocumentFragment();
    if (start > 0) frag.append('…');
    const pattern = new RegExp('(' + words.map(w => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|') + ')', 'gi');
    part.split(pattern).forEach((piece, i) => {
      if (i % 2) { const mark = document.createElement('mark'); mark.textContent = piece; frag.append(mark); }
      else frag.append(piece);
    });
    if (start + SNIPPET < text.length) frag.append('…');
    return frag;
  }

  function show(query) {
    const phrase = query.trim().toLowerCase().replace(/\s+/g, ' ');
    const words = phrase.split(' ').filter(Boolean);
    list.replaceChildren();
    list.hidden = !words.length;
    if (!words.length) return;
    const hits = index.map(e => [score(e, words, phrase), e]).filter(([s]) => s > 0)
      .sort((a, b) => b[0] - a[0]).slice(0, MAX_HITS);
    if (!hits.length) {
      const none = document.createElement('li');
      none.className = 'search-none';
      none.textContent = 'Nothing found for “' + query.trim() + '”';
      list.append(none);
    }
    for (const [, e] of hits) {
      const item = document.createElement('li'), link = document.createElement('a'), where = document.createElement('span');
      link.href = root + e.u;
      link.textContent = e.h ? e.t + ' › ' + e.h : e.t;
      where.className = 'search-snippet';
      where.append(snippet(e.x, words, phrase));
      item.append(link, where);
      list.append(item);
    }
  }

  input.addEventListener('input', () => withIndex(() => show(input.value)));
  input.addEventListener('keydown', e => { if (e.key === 'Escape') { input.value = ''; show(''); } });
  form.addEventListener('submit', e => {  // Enter opens the best hit
    e.preventDefault();
    withIndex(() => { show(input.value); const first = list.querySelector('a'); if (first) first.click(); });
  });
})();

// A copy button on every code block: copies the code as written, without the line anchors Pandoc adds.
document.querySelectorAll('main div.sourceCode').forEach(block => {
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'copy-code';
  button.textContent = 'Copy';
  button.setAttribute('aria-label', 'Copy the code');
  button.addEventListener('click', () => {
    const done = text => { button.textContent = text; setTimeout(() => { button.textContent = 'Copy'; }, 1500); };
    navigator.clipboard.writeText(block.querySelector('pre').innerText).then(() => done('Copied'), () => done('Press Ctrl+C'));
  });
  block.append(button);
});

// On a narrow screen the lessons, search included, fold under a button (the CSS shows them only when opened).
document.querySelectorAll('nav.site-nav .menu-toggle').forEach(button => button.addEventListener('click', () => {
  const open = document.body.classList.toggle('menu-open');
  button.setAttribute('aria-expanded', String(open));
}));
