// What Gamify's own pages share: the language (Finnish by default, the
// choice remembered, the same switch as the wallet's) and their strings.
const TEXT = {
  fi: {
    wallet: "Lompakko", boards: "Tulostaulut", user: "Käyttäjä", show: "Näytä", other: "In English", otherLabel: "Switch to English",
    walletTitle: "Lompakko", boardsTitle: "Tulostaulut", period: "Jakso", category: "Kategoria",
    periods: { all_time: "Kaikki ajat", day: "Tänään", week: "Tämä viikko", month: "Tämä kuukausi" },
    previous: { day: "Eilen", week: "Edellinen viikko", month: "Edellinen kuukausi" },
    windowLabel: "Ikkuna", windows: { current: "Nykyinen", previous: "Edellinen" },
    categories: { "": "Kaikki", finance: "Talous", learning: "Oppiminen", health: "Terveys", productivity: "Tuottavuus", social: "Sosiaalinen" },
    rank: "Sija", points: "Pisteet", level: "Taso", empty: "Taululla ei ole vielä ketään.", you: "sinä",
    yours: (r, p) => `Sijasi: ${r}, ${p} pistettä`, hidden: "Olet piilottanut itsesi tulostauluilta.",
    failed: "Tulostaulua ei voitu ladata", pickUser: "Anna käyttäjätunnus nähdäksesi lompakon.",
    admin: "Hallinta", adminTitle: "Hallintanäkymä", token: "Ylläpitäjän avain", signIn: "Kirjaudu",
    apiKey: "API-avain (jos palvelin vaatii)",
    keysTitle: "API-avaimet", newKey: "Uusi avain", keyName: "Käyttötarkoitus", scopes: "Oikeudet",
    keyState: "Tila", inUse: "käytössä", revoked: "peruttu", revoke: "Peru", noKeys: "Ei tehtyjä avaimia.",
    keyMade: (id) => `Avain ${id} tehty. Kopioi salaisuus nyt; sitä ei näytetä uudelleen:`,
    keyRevoked: (id) => `Avain ${id} on peruttu.`,
    tenantsTitle: "Organisaatiot", newTenant: "Uusi organisaatio", tenantName: "Nimi (a–z, 0–9, _)", made: "Tehty",
    tenantsHelp: "Jokaisella organisaatiolla on omat käyttäjät, säännöt, palkinnot, tulostaulut ja avaimet.",
    tenantIs: (n) => `Organisaatio: ${n}`,
    tenantMade: (n) => `Organisaatio ${n} tehty. Sen ylläpitäjän avain (kopioi nyt; sitä ei näytetä uudelleen):`,
    rulesTitle: "Säännöt", weight: "Kerroin", achievement: "Saavutus", requirement: "Ehto", bonus: "Bonus",
    streakRule: (d, p, m) => `Putkibonus päivästä ${d} alkaen: ${p} % putken päivää kohden, enintään ${m} %.`,
    levelRule: (n) => `Uusi taso ${n} elinaikaisen pisteen välein.`,
    levelTable: (list) => `Tasot 2, 3, … alkavat pisteistä ${list}; sen jälkeen viimeisen välin mukaan.`,
    rulesVersion: (v, at) => `Versio ${v}${v === 1 ? " (sisäänrakennettu)" : `, tehty ${at}`}.`,
    editRules: "Muokkaa sääntöjä", rulesFile: "Sääntötiedosto (TOML)", saveRules: "Tallenna uutena versiona",
    rulesSaved: (v) => `Säännöt tallennettu: uudet tapahtumat pisteytetään versiolla ${v}.`,
    rulesSame: (v) => `Ei muutoksia: versio ${v} on jo voimassa.`, rulesRefused: "Sääntöjä ei tallennettu:",
    ruleCategoryEvents: (n, c) => `${n} tapahtumaa: ${c}`, ruleCategoryPoints: (p, c) => `${p} pistettä: ${c}`,
    limitsRule: (v, d) => `Tapahtuman arvo enintään ${v}; tapahtumia voi kirjata ${d} päivän päähän taaksepäin.`,
    noExpiry: "Pisteet eivät vanhene.", expiry: (d) => `Pisteet vanhenevat ${d} päivän kuluttua.`,
    ruleFirst: "Ensimmäinen tapahtuma", ruleStreakDays: (n) => `${n} päivän putki`, ruleLifetime: (p) => `${p} pistettä`,
    signOut: "Kirjaudu ulos", totalEvents: "Tapahtumia", totalUsers: "Käyttäjiä", active7: "Aktiivisia (7 pv)",
    active30: "Aktiivisia (30 pv)", average: "Pisteitä / käyttäjä", byCategory: "Kategorioittain",
    events: "Tapahtumat", perDay: "Tapahtumat päivittäin (30 pv)", lookup: "Käyttäjähaku", ledger: "Tilitapahtumat",
    kind: "Laji", balanceAfter: "Saldo", time: "Aika", rewards: "Palkinnot", cost: "Hinta", stock: "Jäljellä",
    activeReward: "Tarjolla", yes: "kyllä", no: "ei", unlimited: "rajaton", adminFailed: "Tietoja ei voitu ladata",
    noData: "Ei vielä tietoja.", chartLabel: (n, d) => `${n} tapahtumaa 30 päivässä, eniten ${d}`,
    newReward: "Uusi palkinto", nameFi: "Nimi suomeksi", nameEn: "Nimi englanniksi", add: "Lisää",
    deactivate: "Lopeta tarjonta", saved: (id) => `Palkinto ${id} tallennettu.`, stopped: (id) => `Palkinto ${id} ei ole enää tarjolla.`,
    hooksTitle: "Webhookit", newHook: "Uusi webhook", hookUrl: "Vastaanottajan osoite (https://…)", hookEvents: "Tapahtumat",
    hookAddress: "Osoite", hookNote: "Kuvaus", hookLog: "Lähetykset", remove: "Poista", noHooks: "Ei webhookeja.",
    hookLogOf: (id) => `Lähetykset: ${id} (uusimmat 20)`, hookEvent: "Tapahtuma", attempts: "Yrityksiä",
    lastAnswer: "Viimeisin vastaus", replay: "Lähetä uudelleen", noDeliveries: "Ei lähetyksiä.", allStatuses: "kaikki",
    deliveryStatus: { pending: "odottaa", delivered: "perillä", failed: "epäonnistui", cancelled: "peruttu" },
    hookMade: (id) => `Webhook ${id} tehty. Sen allekirjoitusavain (kopioi nyt; sitä ei näytetä uudelleen):`,
    hookRemoved: (id) => `Webhook ${id} poistettu; sen odottavat lähetykset peruttiin.`,
    replayed: (id) => `Lähetys ${id} lähetetään uudelleen.`,
  },
  en: {
    wallet: "Wallet", boards: "Leaderboards", user: "User", show: "Show", other: "Suomeksi", otherLabel: "Vaihda suomeksi",
    walletTitle: "Wallet", boardsTitle: "Leaderboards", period: "Period", category: "Category",
    periods: { all_time: "All time", day: "Today", week: "This week", month: "This month" },
    previous: { day: "Yesterday", week: "Last week", month: "Last month" },
    windowLabel: "Window", windows: { current: "Current", previous: "Previous" },
    categories: { "": "All", finance: "Finance", learning: "Learning", health: "Health", productivity: "Productivity", social: "Social" },
    rank: "Rank", points: "Points", level: "Level", empty: "Nobody on this board yet.", you: "you",
    yours: (r, p) => `Your rank: ${r}, ${p} points`, hidden: "You have hidden yourself from the leaderboards.",
    failed: "Could not load the leaderboard", pickUser: "Enter a user id to see the wallet.",
    admin: "Admin", adminTitle: "Dashboard", token: "Admin key", signIn: "Sign in",
    apiKey: "API key (if the server needs one)",
    keysTitle: "API keys", newKey: "New key", keyName: "What it is for", scopes: "Scopes",
    keyState: "State", inUse: "in use", revoked: "revoked", revoke: "Revoke", noKeys: "No keys made.",
    keyMade: (id) => `Key ${id} made. Copy its secret now; it is not shown again:`,
    keyRevoked: (id) => `Key ${id} is revoked.`,
    tenantsTitle: "Tenants", newTenant: "New tenant", tenantName: "Name (a–z, 0–9, _)", made: "Made",
    tenantsHelp: "Each tenant has its own users, rules, rewards, leaderboards and keys.",
    tenantIs: (n) => `Tenant: ${n}`,
    tenantMade: (n) => `Tenant ${n} made. Its admin key (copy it now; it is not shown again):`,
    rulesTitle: "Rules", weight: "Weight", achievement: "Achievement", requirement: "Takes", bonus: "Bonus",
    streakRule: (d, p, m) => `Streak bonus from day ${d}: ${p} % per streak day, at most ${m} %.`,
    levelRule: (n) => `A new level every ${n} lifetime points.`,
    levelTable: (list) => `Levels 2, 3, … start at ${list} points; then at the last step.`,
    rulesVersion: (v, at) => `Version ${v}${v === 1 ? " (built in)" : `, made ${at}`}.`,
    editRules: "Edit the rules", rulesFile: "Rules file (TOML)", saveRules: "Save as a new version",
    rulesSaved: (v) => `Rules saved: new events are scored with version ${v}.`,
    rulesSame: (v) => `Nothing changed: version ${v} is already in force.`, rulesRefused: "The rules were not saved:",
    ruleCategoryEvents: (n, c) => `${n} events in ${c}`, ruleCategoryPoints: (p, c) => `${p} points in ${c}`,
    limitsRule: (v, d) => `An event's value is at most ${v}; events can be recorded up to ${d} days back.`,
    noExpiry: "Points never expire.", expiry: (d) => `Points expire after ${d} days.`,
    ruleFirst: "The first event", ruleStreakDays: (n) => `A ${n}-day streak`, ruleLifetime: (p) => `${p} points`,
    signOut: "Sign out", totalEvents: "Events", totalUsers: "Users", active7: "Active (7 days)",
    active30: "Active (30 days)", average: "Points per user", byCategory: "By category",
    events: "Events", perDay: "Events per day (30 days)", lookup: "User lookup", ledger: "Ledger",
    kind: "Kind", balanceAfter: "Balance", time: "Time", rewards: "Rewards", cost: "Cost", stock: "Left",
    activeReward: "Offered", yes: "yes", no: "no", unlimited: "unlimited", adminFailed: "Could not load the data",
    noData: "No data yet.", chartLabel: (n, d) => `${n} events in 30 days, most on ${d}`,
    newReward: "New reward", nameFi: "Name in Finnish", nameEn: "Name in English", add: "Add",
    deactivate: "Stop offering", saved: (id) => `Reward ${id} saved.`, stopped: (id) => `Reward ${id} is no longer offered.`,
    hooksTitle: "Webhooks", newHook: "New webhook", hookUrl: "Receiver URL (https://…)", hookEvents: "Events",
    hookAddress: "URL", hookNote: "Description", hookLog: "Deliveries", remove: "Delete", noHooks: "No webhooks.",
    hookLogOf: (id) => `Deliveries: ${id} (latest 20)`, hookEvent: "Event", attempts: "Attempts",
    lastAnswer: "Last answer", replay: "Send again", noDeliveries: "No deliveries.", allStatuses: "all",
    deliveryStatus: { pending: "pending", delivered: "delivered", failed: "failed", cancelled: "cancelled" },
    hookMade: (id) => `Webhook ${id} made. Its signing secret (copy it now; it is not shown again):`,
    hookRemoved: (id) => `Webhook ${id} deleted; what it had pending is cancelled.`,
    replayed: (id) => `Delivery ${id} will be sent again.`,
  },
};

export function lang() {
  try { return localStorage.getItem("gamify-lang") === "en" ? "en" : "fi"; } catch { return "fi"; }
}

export function text() { return TEXT[lang()]; }

export function setLang(next) {
  try { localStorage.setItem("gamify-lang", next); } catch { /* not remembered */ }
  window.dispatchEvent(new CustomEvent("gamify-lang", { detail: next }));
}

/// The API key this tab signed in with (any page's key field, or the
/// dashboard's sign-in), kept for the tab's session only.
export function apiKey() {
  try { return sessionStorage.getItem("gamify-api-key") || ""; } catch { return ""; }
}

export function setApiKey(key) {
  try {
    if (key) sessionStorage.setItem("gamify-api-key", key);
    else sessionStorage.removeItem("gamify-api-key");
  } catch { /* private mode: not kept */ }
}

/// `fetch` of the API with the tab's key, if any.
export function api(path, init = {}) {
  const key = apiKey();
  const headers = { ...(init.headers || {}), ...(key ? { authorization: `Bearer ${key}` } : {}) };
  return fetch("/api/v2/gamify" + path, { ...init, headers });
}

/// Wires a page's optional key field (`#key`, no `name`, so it never goes
/// into the URL): filled from the tab's key, kept when the form is sent.
export function keyField(form) {
  const field = document.getElementById("key");
  field.value = apiKey();
  form.addEventListener("submit", () => { if (field.value) setApiKey(field.value.trim()); });
}

export const escape = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

/// Fills the page's header (nav and language switch) and every
/// [data-t] element; again whenever the language changes.
export function chrome(current, onChange) {
  const apply = () => {
    const t = text();
    document.documentElement.lang = lang();
    document.querySelector("header.top").innerHTML = `
      <nav aria-label="Gamify">
        <a href="/ui/wallet${location.search}" ${current === "wallet" ? 'aria-current="page"' : ""}>${t.wallet}</a>
        <a href="/ui/leaderboards${location.search}" ${current === "boards" ? 'aria-current="page"' : ""}>${t.boards}</a>
        <a href="/ui/admin" ${current === "admin" ? 'aria-current="page"' : ""}>${t.admin}</a>
      </nav>
      <button type="button" class="plain" id="lang" aria-label="${t.otherLabel}">${t.other}</button>`;
    document.getElementById("lang").addEventListener("click", () => setLang(lang() === "fi" ? "en" : "fi"));
    for (const el of document.querySelectorAll("[data-t]")) el.textContent = t[el.dataset.t];
    if (onChange) onChange(t);
  };
  window.addEventListener("gamify-lang", apply);
  apply();
}
