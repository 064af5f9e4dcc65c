// snakkaz-pay status page: refreshes the server-rendered fragment every two seconds.
// The fragment is HTML escaped by the appliance; this script only moves it into place.
"use strict";
(() => {
  const KEY = "snakkaz-pay-token";
  const EVERY_MS = 2000;
  const main = document.getElementById("content");
  const live = document.getElementById("live");
  const login = document.getElementById("login");
  const loginError = document.getElementById("login-error");
  const needToken = document.body.dataset.auth === "token";
  let timer = null;
  let refreshes = 0;

  function showLogin(message) {
    clearTimeout(timer);
    login.hidden = false;
    main.hidden = true;
    loginError.textContent = message || "";
    live.textContent = "token needed";
    document.getElementById("token").focus();
  }

  // Times come in UTC from the appliance; add the browser's own clock next to them.
  function localize(root) {
    for (const t of root.querySelectorAll("time[datetime]")) {
      if (t.querySelector(".local")) continue;
      const d = new Date(t.getAttribute("datetime"));
      if (isNaN(d)) continue;
      const span = document.createElement("span");
      span.className = "local";
      span.textContent = " · " + d.toLocaleString([], { dateStyle: "short", timeStyle: "medium" }) + " local";
      t.appendChild(span);
    }
  }

  function setLive(ok, text) {
    live.textContent = text;
    live.classList.toggle("stale", !ok);
  }

  async function refresh() {
    const headers = {};
    const token = sessionStorage.getItem(KEY);
    if (needToken && !token) {
      showLogin();
      return;
    }
    if (token) headers["Authorization"] = "Bearer " + token;
    try {
      const r = await fetch(main.dataset.src, { headers, cache: "no-store" });
      if (r.status === 401) {
        sessionStorage.removeItem(KEY);
        showLogin("The appliance did not accept this token.");
        return;
      }
      // A 404 fragment (unknown payment) is still a page worth showing.
      const html = await r.text();
      if (!r.ok && r.status !== 404) throw new Error("HTTP " + r.status);
      main.innerHTML = html;
      localize(main);
      main.hidden = false;
      login.hidden = true;
      refreshes += 1;
      document.body.dataset.refreshes = String(refreshes);
      setLive(true, "live · " + new Date().toLocaleTimeString());
    } catch (e) {
      setLive(false, "cannot reach the appliance (" + e.message + ")");
    }
    timer = setTimeout(refresh, EVERY_MS);
  }

  login.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const v = document.getElementById("token").value.trim();
    if (!v) return;
    sessionStorage.setItem(KEY, v);
    // The token lives in sessionStorage only, not in the page.
    document.getElementById("token").value = "";
    login.hidden = true;
    refresh();
  });

  // Without a token the first paint already carries data: wait one period before refreshing.
  if (!needToken && main.children.length > 0) {
    localize(main);
    setLive(true, "live");
    timer = setTimeout(refresh, EVERY_MS);
  } else {
    refresh();
  }
})();
