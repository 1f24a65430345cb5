/**
 * The status page in a real browser: headless Chromium (the Debian package) driven by
 * playwright-core loads /admin/ from a running rotator in front of the mock upstream, logs in,
 * sees the keys, disables, checks and adds one and clears cooldowns, and the effect is checked
 * through the admin API. Screenshots at desktop and phone width go to test-results/ (gitignored).
 *
 * Chromium missing is a failure, not a skip: CI installs it (.ci/run), so a silent skip would
 * hide a broken page.
 */

import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { fingerprint } from "../src/keys.ts";
import { generate, KEY_SECRET, startRotator, testKey } from "./harness.ts";

const CHROMIUM = "/usr/bin/chromium";
const ADMIN_TOKEN = "browser-admin-token-0123456789";
const RESULTS = new URL("../test-results/", import.meta.url);

const A = testKey("alpha");
const B = testKey("bravo");
const C = testKey("charlie");
const D = testKey("delta-added");

async function requireChromium(): Promise<void> {
  try {
    await Deno.stat(CHROMIUM);
  } catch {
    throw new Error(
      `${CHROMIUM} is missing: install the Debian package (apt-get install -y chromium); ` +
        ".ci/run does this before the tests",
    );
  }
}

Deno.test({
  name:
    "the status page logs in, lists the keys, disables, checks and adds keys, clears cooldowns, and works at phone width",
  // Playwright keeps a pipe to the browser process for the whole test.
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await requireChromium();
    const rotator = await startRotator({
      keys: [A, `team:${B}`, C],
      env: { ADMIN_TOKEN, KEY_ENCRYPTION_SECRET: KEY_SECRET },
    });
    rotator.mock.script(A, { type: "error", fixture: "rpm" });
    const [keyA, keyB, keyC] = rotator.keys;
    for (let i = 0; i < 4; i++) await (await generate(rotator)).body?.cancel();

    const profile = await Deno.makeTempDir({ prefix: "rotator-chromium-" });
    await Deno.mkdir(RESULTS, { recursive: true });
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
      ],
      viewport: { width: 1280, height: 900 },
    });
    const problems: string[] = [];
    try {
      const page = context.pages()[0] ?? await context.newPage();
      const WRONG = "wrong-token-0123456789";
      page.on("console", (message) => {
        // The browser logs every refused call, but says not which: the responses below do.
        if (message.type() === "error" && !/status of 401/.test(message.text())) {
          problems.push(`console: ${message.text()}`);
        }
      });
      page.on("response", (response) => {
        const sent = response.request().headers()["authorization"];
        if (response.status() === 401 && sent !== `Bearer ${WRONG}`) {
          problems.push(`refused: ${response.url()} (sent ${sent ? "a token" : "none"})`);
        }
      });
      page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
      page.on("request", (request) => {
        if (!request.url().startsWith(rotator.url)) problems.push(`off-site: ${request.url()}`);
        if (request.url().includes(ADMIN_TOKEN)) problems.push(`token in URL: ${request.url()}`);
      });

      await page.goto(`${rotator.url}/admin/`);
      await page.getByLabel("Admin token").fill(WRONG);
      await page.getByRole("button", { name: "Log in" }).click();
      await page.getByText("The admin token was not accepted").waitFor();
      // Only the calls with the wrong token were refused, and nothing else went wrong.
      assert.deepEqual(problems, []);

      await page.getByLabel("Admin token").fill(ADMIN_TOKEN);
      await page.getByRole("button", { name: "Log in" }).click();
      const rowB = page.locator(`tr[data-key-id="${keyB.id}"]`);
      await rowB.waitFor();
      assert.equal(await page.locator("#keys tbody tr").count(), 3);
      assert.ok(!page.url().includes(ADMIN_TOKEN));
      assert.equal(
        await page.evaluate(() => Object.values(sessionStorage).join()),
        ADMIN_TOKEN,
        "the token lives in sessionStorage",
      );

      // A cools for gemini-2.5-flash with a live countdown; B belongs to project "team".
      const rowA = page.locator(`tr[data-key-id="${keyA.id}"]`);
      assert.equal(await rowA.getAttribute("data-status"), "cooling");
      const cooling = rowA.locator('li[data-model="gemini-2.5-flash"] .countdown');
      assert.match(await cooling.innerText(), /^(3[0-3]|2\d) s$/);
      assert.match(await rowB.innerText(), /project team/);
      // Recent errors show A's 429 with the quota that ran out; the chart is drawn.
      await page.locator("#errors tbody tr").first().waitFor();
      assert.match(await page.locator("#errors").innerText(), /MINUTE: .*PerMinute/);
      await page.locator("#chart .uplot canvas").waitFor();

      await rowB.getByRole("button", { name: "Disable" }).click();
      await page.locator(`tr[data-key-id="${keyB.id}"][data-status="disabled"]`).waitFor();
      await page.getByText(`Key ${keyB.id} disabled.`).waitFor();

      // The effect, seen through the API rather than the page.
      const api = await fetch(`${rotator.url}/admin/api/keys`, {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      });
      const { keys } = await api.json();
      const viewB = keys.find((k: { id: string }) => k.id === keyB.id);
      assert.equal(viewB.status, "disabled");
      assert.equal(viewB.disabled.reason, "disabled on the status page");
      const answer = await generate(rotator);
      await answer.body?.cancel();
      assert.notEqual(answer.headers.get("x-rotator-key"), keyB.id);

      // The other operations: check a key, clear a cooldown, add a key.
      const rowC = page.locator(`tr[data-key-id="${keyC.id}"]`);
      await rowC.getByRole("button", { name: "Check" }).click();
      await page.getByText(`Key ${keyC.id}: upstream answered 200 (ok).`).waitFor();
      rotator.mock.script(A, { type: "ok" });
      await rowA.getByRole("button", { name: "Clear cooldown" }).click();
      await page.getByText(`Cleared 1 cooldown(s) of key ${keyA.id}.`).waitFor();
      await page.locator(`tr[data-key-id="${keyA.id}"][data-status="ok"]`).waitFor();
      await page.getByLabel("Keys, one per line").fill(`extra:${D}`);
      await page.getByLabel("Label (optional)").fill("from the page");
      await page.getByRole("button", { name: "Add", exact: true }).click();
      await page.getByText("Added 1 key(s).").waitFor();
      const added = page.locator(`tr[data-key-id="${await fingerprint(D)}"]`);
      await added.waitFor();
      assert.match(await added.innerText(), /from the page/);
      assert.equal(
        await page.getByLabel("Keys, one per line").inputValue(),
        "",
        "the key left the page",
      );
      await page.getByRole("button", { name: "Clear all cooldowns" }).click();
      await page.getByText(/^Cleared \d+ cooldown\(s\)\.$/).waitFor();

      await page.screenshot({ path: new URL("status-page-desktop.png", RESULTS).pathname });

      await page.setViewportSize({ width: 390, height: 844 });
      await page.reload();
      await rowB.waitFor(); // still logged in after a reload: same tab, same session
      // A string: this runs in the page, whose globals Deno's type checker does not know.
      const overflow = await page.evaluate<number>(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth",
      );
      assert.ok(overflow <= 0, `no sideways scrolling on a phone (overflow ${overflow}px)`);
      const button = await rowB.getByRole("button", { name: "Enable" }).boundingBox();
      assert.ok(button && button.height >= 36, "buttons big enough to tap");
      await page.screenshot({
        path: new URL("status-page-phone.png", RESULTS).pathname,
        fullPage: true,
      });

      await page.getByRole("button", { name: "Log out" }).click();
      await page.getByLabel("Admin token").waitFor();
      assert.equal(await page.evaluate(() => sessionStorage.length), 0);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
      await rotator.close();
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    }
  },
});
