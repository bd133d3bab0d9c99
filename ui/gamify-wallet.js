// <gamify-wallet user-id="…">: the brief's GamifyWallet as a framework-free
// custom element, for Gamify's own pages and for any other site (one script
// tag; the API's origin is this script's, unless api-base says otherwise).
// Finnish by default; the language choice is remembered (localStorage).
// Attributes: user-id (required), lang (fi or en: fixed, not switchable
// by the remembered choice), api-base, api-key (a key with the read scope,
// when the server needs keys: anyone who can see the page can see it, so
// give it no other scope), no-language-switch.
(() => {
  const scriptOrigin = document.currentScript ? new URL(document.currentScript.src).origin : location.origin;

  const TEXT = {
    fi: {
      title: "Gamify-lompakko", level: "Taso", points: "pistettä", lifetime: "Yhteensä",
      progress: (n) => `Edistyminen tasolle ${n}`, streak: (n) => `${n} päivän putki`,
      best: (n) => `paras ${n}`, latest: "Viimeisimmät tapahtumat", none: "Ei vielä tapahtumia", more: "Näytä lisää",
      achievements: "Saavutukset", loading: "Ladataan lompakkoa…",
      failed: "Lompakkoa ei voitu ladata", retry: "Yritä uudelleen", other: "In English",
      otherLabel: "Switch to English",
      categories: { finance: "Talous", learning: "Oppiminen", health: "Terveys", productivity: "Tuottavuus", social: "Sosiaalinen" },
    },
    en: {
      title: "Gamify Wallet", level: "Level", points: "points", lifetime: "Lifetime",
      progress: (n) => `Progress to level ${n}`, streak: (n) => `${n}-day streak`,
      best: (n) => `best ${n}`, latest: "Latest events", none: "No events yet", more: "Show more",
      achievements: "Achievements", loading: "Loading the wallet…",
      failed: "Could not load the wallet", retry: "Try again", other: "Suomeksi",
      otherLabel: "Vaihda suomeksi",
      categories: { finance: "Finance", learning: "Learning", health: "Health", productivity: "Productivity", social: "Social" },
    },
  };

  const STYLE = `
    :host { display: block; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2937; }
    .card { border-radius: 1rem; background: linear-gradient(135deg, #eef2ff, #f0fdf4); padding: 1.5rem; box-shadow: 0 4px 14px rgba(0,0,0,.08); max-width: 28rem; }
    header { display: flex; align-items: center; justify-content: space-between; gap: .5rem; margin-bottom: 1rem; }
    h3 { margin: 0; font-size: 1.125rem; }
    h4 { margin: 0 0 .5rem; font-size: .875rem; }
    .badge { font-size: .875rem; background: #e0e7ff; color: #3730a3; padding: .25rem .5rem; border-radius: .375rem; font-weight: 600; }
    .total { font-size: 1.875rem; font-weight: 700; color: #4338ca; margin: 0; }
    .muted { font-size: .875rem; color: #4b5563; margin: .25rem 0 0; }
    .progress-label { display: flex; justify-content: space-between; font-size: .875rem; margin: 1rem 0 .25rem; }
    .bar { width: 100%; background: #e5e7eb; border-radius: 999px; height: .5rem; overflow: hidden; }
    .bar > div { background: #4f46e5; height: 100%; border-radius: 999px; transition: width .6s ease; }
    .streak { display: flex; align-items: center; gap: .5rem; margin: 1rem 0; font-weight: 600; }
    .streak .flame { font-size: 1.5rem; }
    section { border-top: 1px solid #d1d5db; padding-top: 1rem; margin-top: 1rem; }
    ul { list-style: none; margin: 0; padding: 0; }
    li { display: flex; justify-content: space-between; gap: 1rem; font-size: .875rem; padding: .125rem 0; }
    .plus { color: #047857; font-weight: 600; white-space: nowrap; }
    .chips { display: flex; flex-wrap: wrap; gap: .5rem; }
    .chip { font-size: .75rem; background: #fef3c7; color: #78350f; padding: .25rem .5rem; border-radius: .375rem; }
    button { font: inherit; font-size: .8125rem; border: 1px solid #6366f1; color: #3730a3; background: #fff; border-radius: .375rem; padding: .25rem .5rem; cursor: pointer; }
    button:focus-visible { outline: 3px solid #f59e0b; outline-offset: 2px; }
    .error { background: #fef2f2; color: #991b1b; border-radius: .5rem; padding: .75rem; }
  `;

  const escape = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  // One decimal, half up, from the API's exact thousandths (166.45 → 166.5,
  // where 166.45.toFixed(1) would give 166.4).
  const one = (n) => (Math.round(Math.round(n * 1000) / 100) / 10).toFixed(1);

  function language() {
    try { return localStorage.getItem("gamify-lang") === "en" ? "en" : "fi"; } catch { return "fi"; }
  }

  class GamifyWallet extends HTMLElement {
    static get observedAttributes() { return ["user-id", "lang"]; }

    constructor() {
      super();
      this.attachShadow({ mode: "open" });
      this.onLang = () => this.render();
    }

    connectedCallback() {
      window.addEventListener("gamify-lang", this.onLang);
      this.load();
    }

    disconnectedCallback() { window.removeEventListener("gamify-lang", this.onLang); }

    attributeChangedCallback(name, old, value) {
      if (this.isConnected && old !== value) name === "user-id" ? this.load() : this.render();
    }

    get lang() { return this.getAttribute("lang") || language(); }

    get api() { return (this.getAttribute("api-base") || scriptOrigin).replace(/\/$/, "") + "/api/v2/gamify"; }

    async load() {
      const user = this.getAttribute("user-id");
      if (!user) return;
      this.state = { loading: true };
      this.render();
      try {
        const id = encodeURIComponent(user);
        const [balance, page, catalogue] = await Promise.all([
          this.get(`/balance/${id}`), this.get(`/events/${id}?limit=5`), this.get(`/achievements`),
        ]);
        this.state = { balance: balance.body, events: page.body, next: page.next, catalogue: catalogue.body };
      } catch (e) {
        this.state = { error: e.message };
      }
      this.render();
    }

    /// GETs `path` of the API: its JSON, and the next page's cursor if any.
    async get(path) {
      const key = this.getAttribute("api-key");
      const r = await fetch(this.api + path, key ? { headers: { authorization: `Bearer ${key}` } } : {});
      const body = await r.json().catch(() => null);
      if (!r.ok) throw new Error(body && body.error ? body.error.message : `HTTP ${r.status}`);
      return { body, next: r.headers.get("x-next-cursor") };
    }

    /// The next five older events, appended.
    async more() {
      const s = this.state;
      try {
        const id = encodeURIComponent(this.getAttribute("user-id"));
        const page = await this.get(`/events/${id}?limit=5&before=${encodeURIComponent(s.next)}`);
        this.state = { ...s, events: s.events.concat(page.body), next: page.next };
      } catch (e) {
        this.state = { error: e.message };
      }
      this.render();
      const more = this.shadowRoot.querySelector('[data-action="more"]');
      (more || this.shadowRoot.querySelector("[data-testid=events]"))?.focus?.();
    }

    switchLanguage() {
      const next = this.lang === "fi" ? "en" : "fi";
      try { localStorage.setItem("gamify-lang", next); } catch { /* private mode: not remembered */ }
      this.removeAttribute("lang");
      window.dispatchEvent(new CustomEvent("gamify-lang", { detail: next }));
    }

    render() {
      const t = TEXT[this.lang];
      const s = this.state || { loading: true };
      let body;
      if (s.loading) {
        body = `<p role="status">${t.loading}</p>`;
      } else if (s.error) {
        body = `<div class="error" role="alert">${t.failed}: ${escape(s.error)}</div>
                <p><button type="button" data-action="retry">${t.retry}</button></p>`;
      } else {
        const b = s.balance;
        const progress = Math.floor(((b.lifetime_points % 100) / 100) * 100);
        const names = Object.fromEntries(s.catalogue.map((a) => [a.id, this.lang === "fi" ? a.name_fi : a.name_en]));
        const events = s.events.length
          ? s.events.map((e) => `<li><span>${escape(t.categories[e.category] || e.category)} – ${escape(e.action)}</span><span class="plus">+${one(e.points)}p</span></li>`).join("")
          : `<li>${t.none}</li>`;
        const chips = b.achievements.map((a) => `<span class="chip">🏆 ${escape(names[a] || a)}</span>`).join("");
        body = `
          <p class="total" data-testid="total">💰 ${one(b.total_points)} ${t.points}</p>
          <p class="muted" data-testid="lifetime">${t.lifetime}: ${Math.floor(b.lifetime_points)} ${t.points}</p>
          <div class="progress-label"><span id="progress-label">${t.progress(b.level + 1)}</span><span data-testid="progress">${progress}%</span></div>
          <div class="bar" role="progressbar" aria-labelledby="progress-label" aria-valuemin="0" aria-valuemax="100" aria-valuenow="${progress}"><div style="width:${progress}%"></div></div>
          <p class="streak" data-testid="streak"><span class="flame" aria-hidden="true">🔥</span><span>${t.streak(b.streak_days)}</span><span class="muted">(${t.best(b.best_streak)})</span></p>
          <section aria-labelledby="latest"><h4 id="latest">${t.latest}</h4><ul data-testid="events" tabindex="-1">${events}</ul>
            ${s.next ? `<p><button type="button" data-action="more">${t.more}</button></p>` : ""}</section>
          ${b.achievements.length ? `<section aria-labelledby="achievements"><h4 id="achievements">${t.achievements}</h4><div class="chips" data-testid="achievements">${chips}</div></section>` : ""}`;
      }
      const level = s.balance ? `<span class="badge" data-testid="level">${t.level} ${s.balance.level}</span>` : "";
      // A page with a language switch of its own (Gamify's) leaves this one out.
      const switcher = this.hasAttribute("no-language-switch") ? ""
        : `<button type="button" data-action="lang" aria-label="${t.otherLabel}">${t.other}</button>`;
      this.shadowRoot.innerHTML = `<style>${STYLE}</style>
        <article class="card" lang="${this.lang}" aria-label="${t.title}">
          <header><h3>${t.title}</h3>${level}${switcher}</header>
          ${body}
        </article>`;
      const lang = this.shadowRoot.querySelector('[data-action="lang"]');
      if (lang) lang.addEventListener("click", () => this.switchLanguage());
      const more = this.shadowRoot.querySelector('[data-action="more"]');
      if (more) more.addEventListener("click", () => this.more());
      const retry = this.shadowRoot.querySelector('[data-action="retry"]');
      if (retry) retry.addEventListener("click", () => this.load());
    }
  }

  if (!customElements.get("gamify-wallet")) customElements.define("gamify-wallet", GamifyWallet);
})();
