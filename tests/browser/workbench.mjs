// Drives the workbench page the way a finance clerk does, in Debian's chromium:
// log in with a user name and token, find the exception in the queue, resolve it with one click on its
// first suggestion (with a comment), and see the audit entry. Exits non-zero on any failure.
//
//   node workbench.mjs BASE_URL TOKEN EXCEPTION_ID USER_NAME SCREENSHOT.png
import { chromium } from 'playwright-core';

const [base, token, exceptionId, userName, shot] = process.argv.slice(2);
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
const fail = (m) => { console.error(m); process.exitCode = 1; };
let page;
try {
  page = await browser.newPage({ locale: 'en-US' });
  // not logged in: the queue sends us to the login page
  await page.goto(`${base}/ui/queue?lang=en`);
  if (!page.url().includes('/ui/login')) throw new Error(`expected the login page, got ${page.url()}`);
  await page.fill('#user', userName);
  await page.fill('#token', 'brk_wrong');
  await page.click('#login');
  await page.waitForSelector('[role=alert]');
  await page.fill('#user', userName);
  await page.fill('#token', token);
  await page.click('#login');
  // the first page after login is the morning check; the queue is one click away
  await page.waitForSelector('#dashboard-title');
  await page.goto(`${base}/ui/queue?lang=en`);
  await page.waitForSelector('#queue');
  const row = page.locator(`#queue tr[data-exception="${exceptionId}"]`);
  if (await row.count() !== 1) throw new Error(`exception ${exceptionId} is not in the queue`);
  await row.locator('a').first().click();
  await page.waitForSelector('#suggestions');
  const first = page.locator('#suggestions form.suggestion').first();
  if (await first.count() !== 1) throw new Error('no suggestion to apply');
  const bill = await first.locator('input[name=target]').inputValue();
  await first.locator('input[name=comment]').fill(`payer confirmed bill ${bill} by phone`);
  await first.locator('button.apply').click();
  await page.waitForSelector('[role=status]');
  const status = await page.getAttribute('#payment-status', 'data-status');
  if (status !== 'applied') throw new Error(`payment status is ${status}, expected applied`);
  const entry = page.locator('#audit tr.audit-entry').last();
  const actor = (await entry.locator('.actor').textContent()).trim();
  const action = await entry.locator('.audit-action').getAttribute('data-action');
  const text = await entry.textContent();
  if (actor !== userName) throw new Error(`audit actor ${actor}, expected ${userName}`);
  if (action !== 'apply_bill') throw new Error(`audit action ${action}`);
  if (!text.includes(`payer confirmed bill ${bill} by phone`)) throw new Error('the comment is not in the audit entry');
  await page.screenshot({ path: shot, fullPage: true });
  // back in the queue, it is gone
  await page.goto(`${base}/ui/queue?lang=en`);
  if (await page.locator(`#queue tr[data-exception="${exceptionId}"]`).count() !== 0) {
    throw new Error('the resolved exception is still in the open queue');
  }
  console.log(JSON.stringify({ resolved: exceptionId, bill }));
} catch (e) {
  fail(e.stack || String(e));
  if (page) fail(`at ${page.url()}:\n${(await page.content()).slice(0, 3000)}`);
} finally {
  await browser.close();
}
