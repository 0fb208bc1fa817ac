// Renders pages of the workbench in Debian's chromium as a person sees them, and reads back
// what they show: titles, the summary's figures, the charts' drawn values (and their drawn
// sizes), the empty-report text, the links of the morning check; keeps a screenshot (and a
// PDF on A4) of each page. Prints one JSON object; tests/it/render.rs checks it against the data.
//
//   node reports.mjs BASE_URL USER TOKEN OUT_DIR PLAN.json
//
// PLAN: { "pages": [{ "name": "...", "path": "/ui/...", "pdf": bool }],
//         "one_click": [{ "name": "...", "id": 12 }] }
import { chromium } from 'playwright-core';
import { readFileSync } from 'node:fs';

const [base, user, token, outDir, planFile] = process.argv.slice(2);
const plan = JSON.parse(readFileSync(planFile, 'utf8'));
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
const out = { pages: {}, one_click: {} };
let page;

/** What a page shows, read from the DOM. */
function read() {
  const q = (s) => document.querySelector(s);
  const text = (s) => (q(s) ? q(s).textContent.trim() : null);
  const box = (e) => e.getBoundingClientRect();
  const linkOf = (e) => (e.closest('a') ? e.closest('a').getAttribute('href') : null);
  return {
    title: text('h1'),
    date: text('#date'),
    clock: text('#clock'),
    empty: text('#empty'),
    lang: document.documentElement.lang,
    facts: [...document.querySelectorAll('[data-key]')].map((e) => ({
      key: e.dataset.key,
      value: e.dataset.value ?? null,
      text: e.textContent.trim(),
      href: linkOf(e),
      row: e.closest('tr') ? { ...e.closest('tr').dataset } : null,
      section: e.closest('section') ? e.closest('section').id : null,
    })),
    headings: [...document.querySelectorAll('th[data-column]')].map((th) => ({
      column: th.dataset.column,
      text: th.textContent.trim(),
    })),
    charts: [...document.querySelectorAll('svg.chart')].map((svg) => ({
      title: svg.getAttribute('aria-label'),
      kind: svg.getAttribute('class'),
      width: box(svg).width,
      segs: [...svg.querySelectorAll('rect.seg')].map((r) => ({
        category: r.dataset.category,
        series: r.dataset.series,
        value: r.dataset.value,
        w: box(r).width,
        h: box(r).height,
      })),
      totals: [...svg.querySelectorAll('text.total')].map((t) => ({
        category: t.dataset.category,
        value: t.dataset.value,
        text: t.textContent,
      })),
      points: [...svg.querySelectorAll('circle.pt')].map((c) => ({
        x: c.dataset.x,
        value: c.dataset.value,
        y: box(c).y + box(c).height / 2,
      })),
      bars: [...svg.querySelectorAll('rect.bar')].map((r) => ({
        label: r.dataset.label,
        value: r.dataset.value,
        h: box(r).height,
      })),
      cumulative: [...svg.querySelectorAll('circle.cum')].map((c) => ({
        label: c.dataset.label,
        value: c.dataset.value,
      })),
      guides: [...svg.querySelectorAll('line.guide')].map((l) => l.dataset.value),
      legend: [...svg.querySelectorAll('g.legend')].map((g) => g.textContent),
      ticks: [...svg.querySelectorAll('text.tick')].map((t) => t.textContent),
    })),
    // figures of the morning check that do not link anywhere (there should be none)
    unlinked: [...document.querySelectorAll('main [data-key]')].filter((e) => !e.closest('a')).length,
    rows: {
      queue: document.querySelectorAll('#queue tr[data-exception]').length,
      banks: [...document.querySelectorAll('#banks tr[data-bank]')].map((tr) => ({
        bank: tr.dataset.bank,
        late: tr.dataset.late === 'true',
        text: tr.textContent.replace(/\s+/g, ' ').trim(),
      })),
      reasons: [...document.querySelectorAll('#exceptions tr[data-reason]')].map((tr) => ({
        reason: tr.dataset.reason,
        href: tr.querySelector('a').getAttribute('href'),
        text: tr.textContent.replace(/\s+/g, ' ').trim(),
      })),
      partners: [...document.querySelectorAll('#partners tr[data-bank]')].map((tr) => ({
        bank: tr.dataset.bank,
        date: tr.dataset.date,
        text: tr.textContent.replace(/\s+/g, ' ').trim(),
      })),
      oldest: [...document.querySelectorAll('#oldest tr')].slice(1).map((tr) => tr.textContent.replace(/\s+/g, ' ').trim()),
    },
    body: document.body.innerText.slice(0, 4000),
  };
}

try {
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  page = await context.newPage();
  await page.goto(`${base}/ui/login?lang=zh`);
  await page.fill('#user', user);
  await page.fill('#token', token);
  await page.click('#login');
  await page.waitForSelector('#dashboard-title');
  for (const p of plan.pages) {
    await page.goto(`${base}${p.path}`);
    await page.waitForLoadState('load');
    const seen = await page.evaluate(read);
    seen.url = page.url();
    seen.screenshot = `${outDir}/${p.name}.png`;
    await page.screenshot({ path: seen.screenshot, fullPage: true });
    if (p.pdf) {
      seen.pdf = `${outDir}/${p.name}.pdf`;
      await page.pdf({ path: seen.pdf, format: 'A4', printBackground: true, preferCSSPageSize: true });
      // printed, the charts fit the page's width
      await page.emulateMedia({ media: 'print' });
      seen.print = await page.evaluate(() => ({
        body: document.body.getBoundingClientRect().width,
        charts: [...document.querySelectorAll('svg.chart')].map((s) => s.getBoundingClientRect().width),
      }));
      await page.emulateMedia({ media: 'screen' });
    }
    // the morning check: each reason's link leads to that many items in the queue
    if (p.follow_reasons) {
      seen.followed = {};
      for (const r of seen.rows.reasons) {
        await page.goto(`${base}${r.href}`);
        await page.waitForSelector('#queue');
        seen.followed[r.reason] = await page.locator('#queue tr[data-exception]').count();
      }
    }
    out.pages[p.name] = seen;
  }
  // one click where one answer is clear
  for (const c of plan.one_click || []) {
    await page.goto(`${base}/ui/exceptions/${c.id}?lang=zh`);
    await page.waitForSelector('#payment');
    const before = await page.evaluate(() => ({
      reason: document.querySelector('#reason').textContent.trim(),
      detail: document.querySelector('#exception-detail').textContent.trim(),
      direction: document.querySelector('#payment-direction').textContent.trim(),
      status: document.querySelector('#payment-status').textContent.trim(),
      offered: document.querySelector('#one-click') ? document.querySelector('#one-click').dataset.action : null,
      why: document.querySelector('#one-click') ? document.querySelector('#one-click').textContent.replace(/\s+/g, ' ').trim() : null,
      body: document.body.innerText,
    }));
    await page.screenshot({ path: `${outDir}/${c.name}-before.png`, fullPage: true });
    let after = null;
    if (before.offered) {
      await page.click('#one-click button.one-click');
      await page.waitForSelector('[role=status]');
      after = await page.evaluate(() => ({
        status: document.querySelector('#payment-status').dataset.status,
        status_text: document.querySelector('#payment-status').textContent.trim(),
        audit: [...document.querySelectorAll('#audit tr.audit-entry')].map((tr) => ({
          action: tr.querySelector('.audit-action').dataset.action,
          text: tr.textContent.replace(/\s+/g, ' ').trim(),
        })),
      }));
      await page.screenshot({ path: `${outDir}/${c.name}-after.png`, fullPage: true });
    }
    out.one_click[c.name] = { before, after };
  }
  console.log(JSON.stringify(out));
} catch (e) {
  console.error(e.stack || String(e));
  if (page) console.error(`at ${page.url()}:\n${(await page.content()).slice(0, 3000)}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
