// Drives the node API's web terminal page in Debian's chromium (headless,
// through playwright-core) as a person would, and prints one JSON line of
// what it saw for crates/berth/tests/node_api.rs to assert on.
//
// Environment: BERTH_URL (https://localhost:PORT), BERTH_TOKEN (a
// workspace-terminal JWT), CHROMIUM (default /usr/bin/chromium),
// BERTH_SCREENSHOT (optional PNG path). Setup: `npm ci` in this folder.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const base = process.env.BERTH_URL;
const token = process.env.BERTH_TOKEN;
const result = { ok: false, step: 'start' };

async function waitFor(page, what, fn, arg, ms = 20000) {
  const until = Date.now() + ms;
  let last;
  for (;;) {
    last = await page.evaluate(fn, arg);
    if (last) return last;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const lines = (page, id) => page.evaluate((i) => (window.berthTerminal.text(i) || '').split('\n'), id);
const hasLine = (id, line) => ({ id, line });
const lineThere = ({ id, line }) => (window.berthTerminal.text(id) || '').split('\n').some((l) => l.trim() === line);

// Chromium aborts a navigation with ERR_NETWORK_CHANGED when an interface
// comes or goes (a container engine on the same machine does that); a
// person would load the page again, and so does this.
async function navigate(go) {
  for (let i = 0; ; i++) {
    try {
      return await go();
    } catch (e) {
      if (i >= 4 || !String(e).includes('ERR_NETWORK_CHANGED')) throw e;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

async function typeLine(page, text) {
  await page.keyboard.type(text, { delay: 15 });
  await page.keyboard.press('Enter');
}

const dir = mkdtempSync(join(tmpdir(), 'berth-chromium-'));
let ctx;
try {
  ctx = await chromium.launchPersistentContext(dir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    ignoreHTTPSErrors: true,
    viewport: { width: 900, height: 480 },
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const page = ctx.pages()[0] || (await ctx.newPage());
  page.on('console', (m) => process.stderr.write(`console: ${m.text()}\n`));
  page.on('pageerror', (e) => process.stderr.write(`page error: ${e}\n`));
  page.on('dialog', (d) => d.accept('build'));

  // Log in by token: a cookie, then the token leaves the address bar.
  result.step = 'login';
  await navigate(() => page.goto(`${base}/?token=${encodeURIComponent(token)}`));
  result.landedOn = new URL(page.url()).pathname + new URL(page.url()).search;
  const cookies = await ctx.cookies();
  const c = cookies.find((k) => k.name.startsWith('vm_session_'));
  result.cookie = c ? { name: c.name, httpOnly: c.httpOnly, secure: c.secure } : null;
  await waitFor(page, 'the first tab', () => window.berthTerminal && window.berthTerminal.connected() && window.berthTerminal.tabs().length === 1);
  const first = await page.evaluate(() => window.berthTerminal.active());

  // Type `echo hi`, see `hi`.
  result.step = 'echo';
  await waitFor(page, 'a prompt', (id) => (window.berthTerminal.text(id) || '').trim().length > 0, first);
  await page.click('.term.active');
  await typeLine(page, 'echo hi');
  await waitFor(page, '"hi"', lineThere, hasLine(first, 'hi'));
  result.echo = true;

  // Resize the window: the fit addon resizes the terminal, the PTY follows.
  result.step = 'resize';
  const before = (await page.evaluate(() => window.berthTerminal.tabs()))[0];
  await typeLine(page, 'stty size');
  await waitFor(page, 'stty size before', lineThere, hasLine(first, `${before.rows} ${before.cols}`));
  await page.setViewportSize({ width: 1200, height: 720 });
  const after = await waitFor(page, 'a bigger terminal', (r) => {
    const t = window.berthTerminal.tabs()[0];
    return t.rows !== r ? t : null;
  }, before.rows);
  await typeLine(page, 'stty size');
  await waitFor(page, 'stty size after', lineThere, hasLine(first, `${after.rows} ${after.cols}`));
  result.sttyBefore = `${before.rows} ${before.cols}`;
  result.sttyAfter = `${after.rows} ${after.cols}`;

  // Paste from the clipboard with Ctrl+Shift+V.
  result.step = 'paste';
  await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
  await page.evaluate(() => navigator.clipboard.writeText('echo pasted-$((6*7))'));
  await page.keyboard.press('Control+Shift+V');
  await page.keyboard.press('Enter');
  await waitFor(page, 'pasted command output', lineThere, hasLine(first, 'pasted-42'));
  result.paste = true;

  // A second tab, renamed.
  result.step = 'second tab';
  await page.click('#new-tab');
  const second = await waitFor(page, 'a second tab', () => {
    const t = window.berthTerminal.tabs();
    return t.length === 2 ? window.berthTerminal.active() : null;
  });
  await waitFor(page, 'a prompt in tab 2', (id) => (window.berthTerminal.text(id) || '').trim().length > 0, second);
  await typeLine(page, 'echo second-$((1+1))');
  await waitFor(page, '"second-2"', lineThere, hasLine(second, 'second-2'));
  await page.dblclick(`.tab[data-session-id="${second}"] .label`);
  await waitFor(page, 'the rename', (id) => window.berthTerminal.tabs().find((t) => t.id === id).name === 'build', second);
  result.secondTab = true;
  result.renamed = true;

  // Reload: the same screens in both tabs, the same active tab.
  result.step = 'reload';
  const screens = {};
  for (const id of [first, second]) screens[id] = await page.evaluate((i) => window.berthTerminal.screen(i), id);
  await navigate(() => page.reload());
  await waitFor(page, 'two tabs after reload', () => window.berthTerminal && window.berthTerminal.connected() && window.berthTerminal.tabs().length === 2);
  result.reloadSame = {};
  for (const id of [first, second]) {
    try {
      await waitFor(page, `tab ${id} screen`, ({ i, s }) => window.berthTerminal.screen(i) === s, { i: id, s: screens[id] }, 10000);
      result.reloadSame[id] = true;
    } catch (_) {
      result.reloadSame[id] = false;
      result.reloadDiff = { before: screens[id], after: await page.evaluate((i) => window.berthTerminal.screen(i), id) };
    }
  }
  result.activeAfterReload = (await page.evaluate(() => window.berthTerminal.active())) === second;
  result.namesAfterReload = (await page.evaluate(() => window.berthTerminal.tabs())).map((t) => t.name);

  // Network drop while output flows: nothing lost, nothing twice.
  result.step = 'network drop';
  await page.click(`.tab[data-session-id="${first}"]`);
  await page.click('.term.active');
  const N = 80;
  await typeLine(page, `for i in $(seq 1 ${N}); do echo L$i; sleep 0.05; done; echo DONE-$((40+2))`);
  await waitFor(page, 'L10', lineThere, hasLine(first, 'L10'));
  await ctx.setOffline(true);
  await page.evaluate(() => window.berthTerminal.dropConnection());
  await new Promise((r) => setTimeout(r, 1500));
  result.disconnected = !(await page.evaluate(() => window.berthTerminal.connected()));
  await ctx.setOffline(false);
  await waitFor(page, 'DONE-42 after the drop', lineThere, hasLine(first, 'DONE-42'), 30000);
  const seen = new Map();
  for (const l of await lines(page, first)) {
    const m = /^L(\d+)$/.exec(l.trim());
    if (m) seen.set(+m[1], (seen.get(+m[1]) || 0) + 1);
  }
  result.missing = [];
  result.doubled = [];
  for (let i = 1; i <= N; i++) {
    const n = seen.get(i) || 0;
    if (n === 0) result.missing.push(i);
    if (n > 1) result.doubled.push(i);
  }
  result.reconnected = await page.evaluate(() => window.berthTerminal.connected());

  // Close the second tab: its shell ends, the tab goes.
  result.step = 'close tab';
  await page.click(`.tab[data-session-id="${second}"] .close`);
  await waitFor(page, 'one tab left', () => window.berthTerminal.tabs().length === 1);
  result.closed = true;

  if (process.env.BERTH_SCREENSHOT) await page.screenshot({ path: process.env.BERTH_SCREENSHOT });
  result.step = 'done';
  result.ok = true;
} catch (e) {
  result.error = String(e && e.stack ? e.stack : e);
  try {
    const page = ctx.pages()[0];
    result.debug = await page.evaluate(() => ({
      status: document.getElementById('status').textContent,
      tabs: window.berthTerminal && window.berthTerminal.tabs(),
      text: window.berthTerminal && window.berthTerminal.text(),
    }));
    if (process.env.BERTH_SCREENSHOT) await page.screenshot({ path: process.env.BERTH_SCREENSHOT });
  } catch (_) {
    // the page is gone
  }
} finally {
  if (ctx) await ctx.close().catch(() => {});
  rmSync(dir, { recursive: true, force: true });
}
console.log(JSON.stringify(result));
process.exit(result.ok ? 0 : 1);
