// Browser tests of Gamify's web UI, as a person would use it: a live
// `gamify serve` with seeded data, Debian's chromium driven by Playwright's
// library. Asserts on what is on the screen (numbers, names, Finnish text,
// progress), clicks through the main flows, and saves screenshots to
// docs/screenshots/ (the README shows them). Run by tests/ui/run.sh.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const BIN = process.env.GAMIFY_BIN || "target/debug/gamify";
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const SHOTS = process.env.SCREENSHOTS || "docs/screenshots";
const ADMIN_TOKEN = "ui-test-admin-token-0123456789";
mkdirSync(SHOTS, { recursive: true });

const results = [];
async function check(name, fn) {
  try {
    await fn();
    results.push(["ok", name]);
    console.log(`ok   ${name}`);
  } catch (e) {
    results.push(["FAIL", name]);
    console.log(`FAIL ${name}\n${e.stack}`);
  }
}

// Another site, embedding the widget with a read-only key: started first,
// so that Gamify can be told its origin (the key is made once it runs).
let READ_KEY = "";
const site = createServer((req, res) => {
  res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
  res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop</title>
    <script src="${process.env.GAMIFY_BASE}/ui/gamify-wallet.js"></script></head>
    <body><h1>Our shop</h1><gamify-wallet user-id="maija" lang="en" api-key="${READ_KEY}"></gamify-wallet></body></html>`);
});
await new Promise((r) => site.listen(0, "127.0.0.1", r));
const siteOrigin = `http://127.0.0.1:${site.address().port}`;

// The server, on a free port, over a fresh directory.
const env = {
  ...process.env, GAMIFY_ADDR: "127.0.0.1:0", GAMIFY_DATA_DIR: mkdtempSync(join(tmpdir(), "gamify-ui-")),
  GAMIFY_LOG_FORMAT: "json", GAMIFY_LOG: "info", GAMIFY_CORS_ORIGINS: siteOrigin,
  GAMIFY_ADMIN_TOKEN: ADMIN_TOKEN, GAMIFY_WEBHOOK_MAX_ATTEMPTS: "1",
};
for (const key of ["DATABASE_URL", "GAMIFY_CONFIG", "REDIS_URL", "GAMIFY_NATS_URL", "GAMIFY_API_KEY"]) delete env[key];
const server = spawn(BIN, ["serve"], { env, stdio: ["ignore", "pipe", "inherit"] });
const base = await new Promise((resolve, reject) => {
  server.on("exit", (code) => reject(new Error(`gamify exited (${code}) before listening`)));
  createInterface({ input: server.stdout }).on("line", (line) => {
    try {
      const entry = JSON.parse(line);
      if (entry.message === "listening") resolve(`http://${entry.addr}`);
    } catch { /* not JSON */ }
  });
});
process.env.GAMIFY_BASE = base;
const api = `${base}/api/v2/gamify`;
const adminHeaders = { "content-type": "application/json", authorization: `Bearer ${ADMIN_TOKEN}` };
const DAY = 86_400_000;
const at = (daysAgo) => new Date(Date.now() - daysAgo * DAY).toISOString();
async function post(user, category, value, daysAgo) {
  const body = { user_id: user, category, action: "seeded", value };
  if (daysAgo) body.occurred_at = at(daysAgo);
  const r = await fetch(`${api}/event`, { method: "POST", headers: adminHeaders, body: JSON.stringify(body) });
  assert.equal(r.status, 200, await r.text());
}
// maija: a three-day streak, five events.
await post("maija", "finance", 50, 2);
await post("maija", "learning", 20, 1);
await post("maija", "health", 10);
await post("maija", "social", 5);
await post("maija", "productivity", 7);
await post("pekka", "finance", 100);
for (let i = 0; i < 7; i++) await post("ahkera", "health", i + 1);
await post("liisa", "learning", 10);
const reward = await fetch(`${api}/admin/rewards`, {
  method: "POST", headers: adminHeaders,
  body: JSON.stringify({ id: "coffee", name_fi: "Kahvi", name_en: "Coffee", cost: 50, stock: 10 }),
});
assert.equal(reward.status, 200, await reward.text());
const balance = await (await fetch(`${api}/balance/maija`, { headers: adminHeaders })).json();
const readKey = await fetch(`${api}/admin/keys`, {
  method: "POST", headers: adminHeaders, body: JSON.stringify({ name: "wallet pages", scopes: ["read"] }),
});
const made = await readKey.json();
assert.equal(readKey.status, 201, JSON.stringify(made));
READ_KEY = made.secret;
// 50 × 2.0 + 20 × 1.5 + (10 × 1.2 + 5 × 0.8 + 7 × 1.0) × 1.15 + streak_3's 10.
assert.equal(balance.lifetime_points, 166.45);

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
try {
  const context = await browser.newContext({ viewport: { width: 1024, height: 820 }, locale: "fi-FI" });
  const page = await context.newPage();
  const text = async (selector) => (await page.locator(selector).first().textContent()).trim();

  await check("the wallet asks for a key, then shows the balance, level, progress and streak in Finnish", async () => {
    await page.goto(`${base}/ui/wallet?user=maija`);
    const refused = page.locator("gamify-wallet [role=alert]");
    await refused.waitFor();
    assert.match(await refused.textContent(), /API key/);
    await page.fill("#key", READ_KEY);
    await page.click("form#pick button[type=submit]");
    assert.ok(!page.url().includes(READ_KEY), "the key never goes into the URL");
    await page.waitForSelector("gamify-wallet [data-testid=total]");
    assert.equal(await text("gamify-wallet [data-testid=total]"), "💰 166.5 pistettä");
    assert.equal(await text("gamify-wallet [data-testid=level]"), "Taso 2");
    assert.equal(await text("gamify-wallet [data-testid=lifetime]"), "Yhteensä: 166 pistettä");
    assert.equal(await text("gamify-wallet [data-testid=progress]"), "66%");
    assert.equal(await page.locator("gamify-wallet [role=progressbar]").getAttribute("aria-valuenow"), "66");
    assert.equal(await text("gamify-wallet #progress-label"), "Edistyminen tasolle 3");
    assert.equal(balance.streak_days, 3);
    assert.match(await text("gamify-wallet [data-testid=streak]"), /^🔥\s*3 päivän putki/);
    assert.equal(await page.locator("html").getAttribute("lang"), "fi");
  });

  await check("the latest events show with their +points, categories in Finnish", async () => {
    const items = page.locator("gamify-wallet [data-testid=events] li");
    assert.equal(await items.count(), 5);
    assert.deepEqual(await items.first().locator("span").allTextContents(), ["Tuottavuus – seeded", "+8.1p"]);
    assert.deepEqual(await items.last().locator("span").allTextContents(), ["Talous – seeded", "+100.0p"]);
  });

  await check("achievements show by their names, not their ids", async () => {
    const chips = await page.locator("gamify-wallet [data-testid=achievements] .chip").allTextContents();
    assert.deepEqual(chips.map((c) => c.replace("🏆", "").trim()).sort(), ["3 päivän putki", "Ensimmäinen askel", "Sata pistettä"].sort());
    assert.ok(!chips.join(" ").includes("first_step"));
  });
  await page.screenshot({ path: join(SHOTS, "wallet.png"), fullPage: true });

  await check("English is a click away and remembered", async () => {
    assert.equal(await page.locator("gamify-wallet button[data-action=lang]").count(), 0, "one switch per page");
    await page.locator("#lang").click();
    await page.waitForFunction(() => document.querySelector("gamify-wallet").shadowRoot.textContent.includes("Level"));
    assert.equal(await text("gamify-wallet [data-testid=level]"), "Level 2");
    assert.match(await text("gamify-wallet [data-testid=streak]"), /3-day streak/);
    const chips = await page.locator("gamify-wallet [data-testid=achievements] .chip").allTextContents();
    assert.ok(chips.some((c) => c.includes("First step")), chips.join());
    assert.equal(await text("h1"), "Wallet");
    await page.reload();
    await page.waitForSelector("gamify-wallet [data-testid=total]");
    assert.match(await text("gamify-wallet [data-testid=total]"), /points$/);
    assert.equal(await page.locator("html").getAttribute("lang"), "en");
  });

  await check("the language switch works from the keyboard", async () => {
    await page.locator("#lang").focus();
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => document.querySelector("gamify-wallet").shadowRoot.textContent.includes("pistettä"));
    assert.equal(await text("h1"), "Lompakko");
  });

  await check("older events page in with the keyboard", async () => {
    await page.goto(`${base}/ui/wallet?user=ahkera`);
    await page.waitForSelector("gamify-wallet [data-testid=events] li");
    const items = page.locator("gamify-wallet [data-testid=events] li");
    assert.equal(await items.count(), 5);
    const more = page.locator("gamify-wallet button[data-action=more]");
    assert.equal(await more.textContent(), "Näytä lisää");
    await more.focus();
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => document.querySelector("gamify-wallet").shadowRoot.querySelectorAll("[data-testid=events] li").length === 7);
    // Oldest last: the first event (value 1, health × 1.2).
    assert.deepEqual(await items.last().locator("span").allTextContents(), ["Terveys – seeded", "+1.2p"]);
    assert.equal(await more.count(), 0, "no more to show");
  });

  await check("an API error shows a message, not a blank page", async () => {
    await page.goto(`${base}/ui/wallet?user=${encodeURIComponent("ei kelpaa!")}`);
    const alert = page.locator("gamify-wallet [role=alert]");
    await alert.waitFor();
    assert.match(await alert.textContent(), /^Lompakkoa ei voitu ladata: .*user_id/);
    assert.equal(await page.locator("gamify-wallet button[data-action=retry]").count(), 1);
  });

  await check("the leaderboard highlights the viewer", async () => {
    await page.goto(`${base}/ui/leaderboards?user=maija`);
    await page.waitForSelector("table");
    const rows = page.locator("tbody tr");
    assert.equal(await rows.count(), 4);
    const cells = (row) => row.locator("td").allTextContents();
    assert.deepEqual(await cells(rows.nth(0)), ["1", "pekka", "200", "3"]);
    const me = page.locator("tbody tr.me");
    assert.equal(await me.count(), 1);
    assert.equal(await me.getAttribute("aria-current"), "true");
    assert.deepEqual(await cells(me), ["2", "maija (sinä)", "166.45", "2"]);
    assert.equal(await text("caption"), "Kaikki ajat · Kaikki");
  });
  await page.screenshot({ path: join(SHOTS, "leaderboards.png"), fullPage: true });

  await check("another board is picked from the form", async () => {
    // Today's health board: ahkera's seven (33.6), then maija's run today
    // (10 × 1.2 × 1.15).
    await page.selectOption("#period", "day");
    await page.selectOption("#category", "health");
    await Promise.all([page.waitForURL(/period=day/), page.click("form#pick button[type=submit]")]);
    await page.waitForSelector("table");
    const rows = page.locator("tbody tr");
    assert.equal(await rows.count(), 2);
    assert.deepEqual(await rows.nth(1).locator("td").allTextContents(), ["2", "maija (sinä)", "13.8", "2"]);
    assert.equal(await text("caption"), "Tänään · Terveys");
  });

  await check("last week's and yesterday's boards are asked for by their window", async () => {
    // Boards count events by arrival (docs/API.md), and every seeded event
    // arrived today: the previous windows are empty, and the page asks the
    // API for the right ones.
    const isoWeekAgo = () => {
      const d = new Date(Date.now() - 7 * DAY);
      const day = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
      // Week 1 holds January 4th; count whole weeks from its Monday.
      const weekOne = (y) => { const j4 = Date.UTC(y, 0, 4); return j4 - (((new Date(j4).getUTCDay() + 6) % 7) * DAY); };
      let year = d.getUTCFullYear();
      if (day < weekOne(year)) year -= 1;
      else if (day >= weekOne(year + 1)) year += 1;
      return `${year}-W${String(Math.floor((day - weekOne(year)) / (7 * DAY)) + 1).padStart(2, "0")}`;
    };
    const yesterday = new Date(Date.now() - DAY).toISOString().slice(0, 10);
    for (const [period, window] of [["week", isoWeekAgo()], ["day", yesterday]]) {
      await page.selectOption("#period", period);
      await page.selectOption("#category", "");
      await page.selectOption("#when", "previous");
      const [request] = await Promise.all([
        page.waitForRequest((r) => r.url().includes("/api/v2/gamify/leaderboard?")),
        page.click("form#pick button[type=submit]"),
      ]);
      assert.equal(new URL(request.url()).searchParams.get("window"), window, period);
      await page.locator("#board p.muted").waitFor();
      assert.equal(await text("#board"), "Taululla ei ole vielä ketään.");
      assert.equal(await page.locator("#when").inputValue(), "previous");
    }
  });

  await check("the dashboard refuses a wrong admin token with a message", async () => {
    await page.goto(`${base}/ui/admin`);
    await page.fill("#token", "not-the-token-at-all");
    await page.click("#signin button[type=submit]");
    const alert = page.locator("#problem [role=alert]");
    await alert.waitFor();
    assert.match(await alert.textContent(), /^Tietoja ei voitu ladata: /);
    assert.equal(await page.locator("#dashboard").isHidden(), true);
  });

  await check("the dashboard shows the brief's numbers, a chart and the categories", async () => {
    await page.fill("#token", ADMIN_TOKEN);
    await page.click("#signin button[type=submit]");
    await page.waitForSelector("[data-testid=total-events]");
    assert.equal(await text("[data-testid=total-events]"), "14");
    assert.equal(await text("[data-testid=total-users]"), "4");
    assert.equal(await text("[data-testid=active-7]"), "4");
    assert.equal(await text("[data-testid=active-30]"), "4");
    // (166.45 + 200 + 15 + 33.6) / 4, in Finnish number format.
    assert.equal(await text("[data-testid=average]"), "103,762");
    const bars = page.locator("#chart rect");
    assert.equal(await bars.count(), 30);
    const perDay = (await bars.evaluateAll((rs) => rs.map((r) => Number(r.dataset.events))));
    assert.equal(perDay.reduce((a, b) => a + b, 0), 14);
    assert.equal(perDay[29], 12, "today: maija's three, pekka's, liisa's and ahkera's seven");
    const rows = await page.locator("#categories tbody tr").allTextContents();
    assert.equal(rows.length, 5);
    assert.ok(rows.some((r) => r.includes("Talous")), rows.join(" | "));
    assert.deepEqual((await page.locator("#rewards tbody tr").first().locator("td").allTextContents()).slice(0, 5), ["coffee", "Kahvi", "50", "10", "kyllä"]);
  });

  await check("a user opens in the dashboard with wallet and ledger", async () => {
    await page.fill("#lookup-user", "maija");
    await page.click("#lookup button[type=submit]");
    await page.waitForSelector("#user gamify-wallet [data-testid=total]");
    assert.equal(await text("#user gamify-wallet [data-testid=total]"), "💰 166.5 pistettä");
    const ledger = page.locator("#ledger tbody tr");
    assert.equal(await ledger.count(), 6, "five events and streak_3's bonus");
    assert.deepEqual((await ledger.first().locator("td").allTextContents()).slice(1), ["event", "+8.05", "166.45"]);
  });
  await page.screenshot({ path: join(SHOTS, "dashboard.png"), fullPage: true });

  await check("the dashboard shows the rules in force", async () => {
    const weights = await page.locator("[data-testid=weights] tbody tr").allTextContents();
    assert.deepEqual(weights.map((r) => r.replace(/\s+/g, " ").trim()),
      ["Talous×2", "Oppiminen×1,5", "Terveys×1,2", "Tuottavuus×1", "Sosiaalinen×0,8"]);
    assert.equal(await text("[data-testid=streak-rule]"),
      "Putkibonus päivästä 3 alkaen: 5 % putken päivää kohden, enintään 50 %.");
    assert.equal(await text("[data-testid=level-rule]"), "Uusi taso 100 elinaikaisen pisteen välein.");
    const week = page.locator("[data-testid=achievement-rules] tr", { hasText: "Viikon voittaja" });
    assert.deepEqual(await week.locator("td").allTextContents(), ["Viikon voittaja", "7 päivän putki", "+25"]);
  });

  await check("an admin makes a key (its secret shown once) and revokes it from the dashboard", async () => {
    const rows = page.locator("[data-testid=keys] tbody tr");
    assert.equal(await rows.count(), 1, "the wallet pages' read key");
    await page.fill("#key-name", "kassajärjestelmä");
    await page.check("#new-key input[value=ingest]");
    await page.uncheck("#new-key input[value=read]");
    await page.click("#new-key button[type=submit]");
    const secret = await page.locator("[data-testid=new-secret]").textContent();
    assert.match(secret, /^gmf_[0-9a-f]{64}$/);
    await rows.nth(1).waitFor();
    const made = rows.filter({ hasText: "kassajärjestelmä" });
    assert.deepEqual((await made.locator("td").allTextContents()).slice(1, 4), ["kassajärjestelmä", "ingest", "käytössä"]);
    // The secret works for what it may do, and only that.
    const post = (key) => fetch(`${api}/event`, {
      method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
      body: JSON.stringify({ user_id: "kassa", category: "finance", action: "sale", value: 1 }),
    });
    assert.equal((await post(secret)).status, 200);
    await made.locator("button[data-revoke]").click();
    await page.locator("#key-status", { hasText: "on peruttu" }).waitFor();
    assert.equal(await made.locator("td").nth(3).textContent(), "peruttu");
    assert.equal((await post(secret)).status, 401, "refused at once");
  });

  await check("an admin adds a reward and stops offering it from the dashboard", async () => {
    await page.fill("#reward-id", "tea");
    await page.fill("#reward-fi", "Tee");
    await page.fill("#reward-en", "Tea");
    await page.fill("#reward-cost", "20");
    await page.fill("#reward-stock", "5");
    await page.click("#new-reward button[type=submit]");
    await page.waitForFunction(() => document.getElementById("reward-status").textContent.includes("tea"));
    assert.equal(await text("#reward-status"), "Palkinto tea tallennettu.");
    const row = page.locator("#rewards tbody tr", { hasText: "tea" });
    assert.deepEqual((await row.locator("td").allTextContents()).slice(0, 5), ["tea", "Tee", "20", "5", "kyllä"]);
    // The same id again: the API's refusal, shown.
    await page.click("#new-reward button[type=submit]");
    await page.locator("#reward-status [role=alert]").waitFor();
    assert.match(await text("#reward-status"), /exists already/);
    await row.locator("button[data-stop]").click();
    await page.waitForFunction(() => document.getElementById("reward-status").textContent.includes("enää"));
    assert.equal((await row.locator("td").allTextContents())[4], "ei");
    const offered = await (await fetch(`${api}/rewards`, { headers: adminHeaders })).json();
    assert.ok(!offered.some((r) => r.id === "tea"), "no longer offered to users");
  });

  await check("an admin adds a webhook, sees a delivery fail, sends it again and deletes the webhook", async () => {
    // A receiver that fails its first request and takes the rest.
    const received = [];
    const receiver = createServer((req, res) => {
      received.push(req.headers["gamify-delivery"]);
      res.writeHead(received.length === 1 ? 500 : 204);
      res.end();
    });
    await new Promise((r) => receiver.listen(0, "127.0.0.1", r));
    try {
      assert.equal(await text("#hooks"), "Ei webhookeja.");
      await page.fill("#hook-url", `http://127.0.0.1:${receiver.address().port}/hook`);
      await page.fill("#hook-note", "CRM");
      await page.click("#new-hook button[type=submit]");
      assert.match(await page.locator("[data-testid=hook-secret]").textContent(), /^whsec_[0-9a-f]{64}$/);
      const row = page.locator("[data-testid=hooks] tbody tr");
      assert.deepEqual((await row.locator("td").allTextContents()).slice(2, 4), ["achievement.unlocked", "CRM"]);
      await post("webhook_user", "health", 1);
      // One attempt is allowed here (GAMIFY_WEBHOOK_MAX_ATTEMPTS=1): failed.
      const delivery = page.locator("[data-testid=deliveries] tbody tr");
      const shows = async (status) => {
        for (let i = 0; i < 100; i++) {
          await row.locator("button[data-log]").click();
          await page.locator("#deliveries h3").waitFor();
          if (await delivery.count() && (await delivery.first().getAttribute("data-status")) === status) return;
          await new Promise((r) => setTimeout(r, 100));
        }
        assert.fail(`no ${status} delivery: ${await text("#deliveries")}`);
      };
      await shows("failed");
      assert.deepEqual((await delivery.first().locator("td").allTextContents()).slice(1, 6),
        ["achievement.unlocked", "webhook_user", "epäonnistui", "1", "the receiver answered 500 Internal Server Error"]);
      // The webhooks section alone (page coordinates, as fullPage takes them).
      const [top, bottom] = await page.evaluate(() => [
        document.querySelector("h2[data-t=hooksTitle]").getBoundingClientRect().top + window.scrollY,
        document.getElementById("deliveries").getBoundingClientRect().bottom + window.scrollY,
      ]);
      await page.screenshot({
        path: `${SHOTS}/admin-webhooks.png`, fullPage: true,
        clip: { x: 0, y: top - 8, width: page.viewportSize().width, height: bottom - top + 16 },
      });
      // Only the delivered ones: none yet; then every status again.
      await page.selectOption("#log-status", "delivered");
      await page.locator("#deliveries", { hasText: "Ei lähetyksiä." }).waitFor();
      await page.selectOption("#log-status", "");
      await delivery.first().waitFor();
      await delivery.first().locator("button[data-replay]").click();
      await page.locator("#hook-status", { hasText: "lähetetään uudelleen" }).waitFor();
      await shows("delivered");
      assert.equal(received.length, 2);
      assert.equal(received[0], received[1], "the same delivery id both times");
      await row.locator("button[data-unhook]").click();
      await page.locator("#hook-status", { hasText: "poistettu" }).waitFor();
      assert.equal(await text("#hooks"), "Ei webhookeja.");
    } finally {
      receiver.close();
    }
  });

  await check("an admin edits the rules: a mistake is shown with its line, a change becomes version 2", async () => {
    assert.equal(await text("[data-testid=rules-version]"), "Versio 1 (sisäänrakennettu).");
    const file = await page.inputValue("#rules-toml");
    assert.ok(file.includes("\nfinance = 2.0\n"), file);
    await page.fill("#rules-toml", file.replace("\nfinance = 2.0\n", "\nfinance = 0\n"));
    await page.click("#rules-form button[type=submit]");
    await page.locator("[data-testid=rules-errors]").waitFor();
    assert.deepEqual(await page.locator("[data-testid=rules-errors] li").allTextContents(),
      ["line 5, column 11: categories.finance: expected a weight from 0.001 to 1000"]);
    assert.match(await text("[data-testid=rules-version]"), /^Versio 1/, "nothing changed");
    await page.fill("#rules-toml", file.replace("\nfinance = 2.0\n", "\nfinance = 2.5\ncustom_category = 1.2\n"));
    await page.click("#rules-form button[type=submit]");
    await page.locator("#rules-status", { hasText: "versiolla 2" }).waitFor();
    assert.match(await text("[data-testid=rules-version]"), /^Versio 2, tehty \d{4}-\d\d-\d\d \d\d:\d\d\.$/);
    const weights = await page.locator("[data-testid=weights] tbody tr").allTextContents();
    assert.equal(weights[0].replace(/\s+/g, " ").trim(), "Talous×2,5");
    const scored = await (await fetch(`${api}/simulate`, {
      method: "POST", headers: { ...adminHeaders, "content-type": "application/json" },
      body: JSON.stringify({ user_id: "uusi", category: "finance", action: "paid", value: 1 }),
    })).json();
    assert.deepEqual([scored.points, scored.rules_version], [2.5, 2]);
  });

  await check("the operator makes a tenant; its key opens a dashboard of its own", async () => {
    assert.equal(await text("[data-testid=tenant-name]"), "Organisaatio: default");
    const rows = page.locator("[data-testid=tenants] tbody tr");
    assert.equal(await rows.count(), 1, "only the default tenant");
    await page.fill("#tenant-new-name", "kahvila");
    await page.click("#new-tenant button[type=submit]");
    const secret = await page.locator("[data-testid=tenant-secret]").textContent();
    assert.match(secret, /^gmf_[0-9a-f]{64}$/);
    await rows.nth(1).waitFor();
    assert.equal(await rows.nth(1).locator("td").first().textContent(), "kahvila");
    // The tenant's admin signs in: its own, empty data, its own rules, and
    // no tenants section.
    await page.click("#signout");
    await page.fill("#token", secret);
    await page.click("#signin button[type=submit]");
    await page.locator("[data-testid=tenant-name]", { hasText: "kahvila" }).waitFor();
    assert.equal(await text("[data-testid=total-events]"), "0");
    assert.equal(await text("[data-testid=total-users]"), "0");
    assert.match(await text("[data-testid=rules-version]"), /^Versio 1 /);
    assert.equal(await page.locator("#tenants-admin").isHidden(), true);
    await page.click("#signout");
    await page.fill("#token", ADMIN_TOKEN);
    await page.click("#signin button[type=submit]");
    await page.locator("[data-testid=tenant-name]", { hasText: "default" }).waitFor();
    // The seeded 14, and one event each from the key and webhook checks.
    assert.equal(await text("[data-testid=total-events]"), "16", "the default tenant's again");
  });

  await check("the leaderboards offer the categories the rules have now", async () => {
    await page.goto(`${base}/ui/leaderboards`);
    await page.locator("#category option[value=custom_category]").waitFor({ state: "attached" });
    const options = await page.locator("#category option").allTextContents();
    // In the rules' order: the edit put custom_category after finance.
    assert.deepEqual(options, ["Kaikki", "Talous", "custom_category", "Oppiminen", "Terveys", "Tuottavuus", "Sosiaalinen"]);
  });

  await check("the wallet fits a phone", async () => {
    const phone = await browser.newContext({ viewport: { width: 375, height: 740 }, isMobile: true });
    const small = await phone.newPage();
    await small.goto(`${base}/ui/wallet`);
    await small.fill("#user", "maija");
    await small.fill("#key", READ_KEY);
    await small.click("form#pick button[type=submit]");
    await small.waitForSelector("gamify-wallet [data-testid=total]");
    const width = await small.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 375, `page is ${width}px wide`);
    await small.screenshot({ path: join(SHOTS, "wallet-phone.png"), fullPage: true });
    await phone.close();
  });

  await check("the dashboard, its tables and forms included, fits a phone", async () => {
    const phone = await browser.newContext({ viewport: { width: 375, height: 740 }, isMobile: true });
    const small = await phone.newPage();
    await small.goto(`${base}/ui/admin`);
    await small.fill("#token", ADMIN_TOKEN);
    await small.click("#signin button[type=submit]");
    await small.waitForSelector("[data-testid=tenants]");
    const width = await small.evaluate(() => document.documentElement.scrollWidth);
    // What sticks out, innermost first, to say where to look.
    const wide = await small.evaluate(() => [...document.querySelectorAll("main *")]
      .filter((e) => e.getBoundingClientRect().right > 376 && ![...e.children].some((c) => c.getBoundingClientRect().right > 376))
      .slice(0, 5).map((e) => `${e.tagName.toLowerCase()}${e.id ? "#" + e.id : ""} (${Math.round(e.getBoundingClientRect().right)}px)`));
    assert.ok(width <= 375, `page is ${width}px wide: ${wide.join(", ")}`);
    await phone.close();
  });

  await check("another site embeds the wallet with one script tag", async () => {
    await page.goto(siteOrigin);
    await page.waitForSelector("gamify-wallet [data-testid=total]");
    // lang="en" on the element: English whatever was remembered.
    assert.equal(await text("gamify-wallet [data-testid=total]"), "💰 166.5 points");
    assert.equal(await text("gamify-wallet [data-testid=level]"), "Level 2");
    assert.equal(await page.locator("gamify-wallet button[data-action=lang]").count(), 1);
  });
} finally {
  await browser.close();
  server.kill();
  site.close();
}

const failed = results.filter(([r]) => r === "FAIL").length;
console.log(`\n${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
