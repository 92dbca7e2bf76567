/*
 * tianxia: the spectator page and minimal player client (docs/page.md).
 *
 * It is also the reference client of the WebSocket protocol (docs/websocket.md). In short:
 *
 *   1. Open ws(s)://HOST/ws. When logged in, the first message is {"op":"auth","token":...}
 *      (browsers cannot set headers on a WebSocket; the message also keeps the token out of
 *      URLs, and an expired token is answered with an error instead of a failed upgrade).
 *   2. Subscribe to "world": every domain event. The first time without `since`: the reply's
 *      `seq` is the newest event the server knew, and the state is loaded over HTTP (the
 *      snapshot: /api/world, /api/nations, /api/cities, /api/generals, /api/battles).
 *   3. Remember the last event `seq`. After a drop, reconnect with backoff and subscribe with
 *      `since: lastSeq`: the server replays the missed events in order, then goes live. No
 *      gap, no duplicate (an event whose seq <= lastSeq is ignored all the same). Send the
 *      `incarnation` of the reply the seq counts from: after a crash the server then knows
 *      whether events we saw were lost and renumbered, and answers `resync_required`.
 *      A 4008 close (slow client) names in its reason the last event it wrote: `last_seq`.
 *   4. `resync_required` (a `since` the server cannot replay from), or a `WorldRecovered`
 *      event (the server crashed; events after its `last_seq` never happened): reload the
 *      snapshot over HTTP and subscribe without `since`.
 *   5. Entity topics (city:ID, general:ID, nation:ID, battle:ID) push the entity's read model
 *      as `state`, with a `version` that only grows within one server run: a state replaces
 *      the local copy only if its version is newer. battle:ID also pushes frames (10 Hz) and
 *      a last frame with the result. "orders" pushes the logged-in player's orders.
 *   6. Limits: over 20 client messages a second (bursts of 40) the server closes with 4029,
 *      and a connection holds at most 64 topics. This page sends through a token bucket of
 *      10 a second (see send) and holds at most four topics: world, orders, the selection
 *      and the open battle, each unsubscribed when no longer shown.
 *
 * Test and debugging hook (read by an automated browser test), kept current by this file:
 *
 *   window.tianxia = {
 *     connection: "connecting" | "live" | "reconnecting",
 *     lastSeq: number | null,          // the last event seq seen
 *     stats: { connects, resumes,      // WebSocket opens; subscribes sent with `since`
 *              resyncs, events },      // snapshot reloads forced by the server; events applied
 *     clock: () => number,             // extrapolated game seconds
 *     battle: null | { id, status, tick, frames, units, result },  // the open battle view
 *   }
 *
 * Sections: 1 config and state, 2 helpers, 3 HTTP and the snapshot, 4 the WebSocket, 5 events,
 * 6 the map, 7 panels, 8 the battle view, 9 login and commands, 10 the animation loop.
 */
"use strict";

(() => {
  // ===================================================================================
  // 1. Config and state
  // ===================================================================================

  const CONFIG = {
    feedMax: 200, // feed items kept
    ordersMax: 50, // orders kept in the list
    refreshDelayMs: 500, // entity refreshes are coalesced: at most one batch per 500 ms
    refreshBatch: 16, // entities per batch
    refreshQueueMax: 256, // past this, reload the whole snapshot instead
    worldRefreshMs: 30000, // GET /api/world (the clock)
    leaderboardRefreshMs: 30000,
    backoffMinMs: 500, // reconnect: 0.5 s doubling to 15 s, with jitter
    backoffMaxMs: 15000,
    sendPerSec: 10, // client messages: at most 10 a second in bursts of 20, far under the
    sendBurst: 20, //   server's limit (20 a second, bursts of 40, else close 4029)
    feedSeed: 50, // feed items loaded from GET /api/events at the first subscription
    endedBattlesMax: 100, // ids of ended battles remembered, so a late read does not revive one
    marchLiPerHour: 10, // docs/rules.md#marches: each leg takes ceil(distance / 10 × 3600) s
    neutralColor: "#8d8d8d",
  };

  const S = {
    world: null, // GET /api/world
    nations: new Map(), // id -> nation read model
    cities: new Map(),
    generals: new Map(),
    battles: new Map(), // active battles by id (read models, or a stub from BattleStarted)
    leaderboard: { by: "cities", rows: [] },
    selection: null, // { kind, id, topic }
    loaded: false, // a snapshot has been applied
    lastSeq: null,
    incarnation: null, // of the last WorldRecovered applied
    auth: { token: null, player: null },
    troops: null, // troop types of the data in force (GET /api/rules): name -> characteristics
    troopsAsked: false,
    orders: new Map(), // order_id -> order (insertion order = first seen)
    endedBattles: new Set(), // the last ended battles' ids (insertion order), bounded
  };

  // The game clock: game seconds at a moment of performance.now(), and the effective speed.
  const CLOCK = { base: 0, at: 0, speed: 0, frozen: true, startSec: null };

  const hook = {
    connection: "connecting",
    lastSeq: null,
    stats: { connects: 0, resumes: 0, resyncs: 0, events: 0 },
    clock: () => gameNow(),
    battle: null,
  };
  window.tianxia = hook;

  const dirty = new Set(); // what to redraw at the next animation frame

  function markDirty(...what) {
    for (const w of what) dirty.add(w);
  }

  function setLastSeq(seq) {
    S.lastSeq = seq;
    hook.lastSeq = seq;
  }

  // ===================================================================================
  // 2. Helpers: DOM, names, numbers, the calendar
  // ===================================================================================

  const $ = (id) => document.getElementById(id);
  const SVGNS = "http://www.w3.org/2000/svg";

  /** Creates an element; text goes in as text nodes, never as HTML. */
  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    setProps(e, props);
    for (const c of children.flat()) {
      if (c !== null && c !== undefined && c !== false) e.append(c instanceof Node ? c : String(c));
    }
    return e;
  }

  function svgEl(tag, props, parent) {
    const e = document.createElementNS(SVGNS, tag);
    setProps(e, props);
    if (parent) parent.append(e);
    return e;
  }

  function setProps(e, props) {
    if (!props) return;
    for (const [k, v] of Object.entries(props)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") e.textContent = v;
      else e.setAttribute(k, v === true ? "" : String(v));
    }
  }

  /** Wraps a handler so that nothing it throws reaches the console: it is shown instead. */
  function guard(fn) {
    return function guarded(...args) {
      try {
        const r = fn.apply(this, args);
        if (r && typeof r.catch === "function") r.catch(showFault);
        return r;
      } catch (err) {
        showFault(err);
        return undefined;
      }
    };
  }

  /** Runs an async task nobody awaits: a failure is shown in the page, never logged. */
  function background(promise) {
    if (promise && typeof promise.catch === "function") promise.catch(showFault);
  }

  function showFault(err) {
    notice("Page error: " + (err && err.message ? err.message : String(err)));
  }

  let noticeTimer = null;
  /** A message in the header's notice area, for a while. */
  function notice(text) {
    const n = $("notice");
    if (!n) return;
    n.textContent = text;
    n.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => (n.hidden = true), 8000);
  }

  /**
   * Replaces an element's children only if the new ones differ, so that a panel redrawn on
   * every event does not swallow a click that is under way or lose the keyboard focus.
   */
  function replaceIfChanged(box, nodes) {
    const next = nodes.flat().filter((n) => n !== null && n !== undefined && n !== false).map((n) => (n instanceof Node ? n : document.createTextNode(String(n))));
    const old = box.childNodes;
    if (old.length === next.length && next.every((n, i) => n.isEqualNode(old[i]))) return false;
    const focused = document.activeElement;
    const key = focused && box.contains(focused) ? focused.getAttribute("data-sel") || focused.getAttribute("data-battle") : null;
    box.replaceChildren(...next);
    if (key) {
      const again = [...box.querySelectorAll("[data-sel], [data-battle]")].find((e) => (e.getAttribute("data-sel") || e.getAttribute("data-battle")) === key);
      if (again) again.focus();
    }
    return true;
  }

  /** A colour swatch; server colours are set through the CSSOM (no style attributes: CSP). */
  function swatch(color) {
    const s = el("span", { class: "swatch" });
    s.style.backgroundColor = color;
    return s;
  }

  /** A button that selects an entity (handled by one delegated listener, see section 7). */
  function link(kind, id, label) {
    return el("button", { type: "button", class: "link", "data-sel": `${kind}:${id}`, text: label });
  }

  const num = (n) => (typeof n === "number" ? n.toLocaleString("en-US") : "—");
  const nation = (id) => (id ? S.nations.get(id) : undefined);
  const nName = (id) => (id ? (S.nations.get(id) || {}).name || id : "neutral");
  const cName = (id) => (id ? (S.cities.get(id) || {}).name || id : "?");
  const gName = (id) => (id ? (S.generals.get(id) || {}).name || id : "?");
  const nColor = (id) => {
    const n = nation(id);
    return n && n.status !== "destroyed" && /^#[0-9a-fA-F]{6}$/.test(n.color) ? n.color : CONFIG.neutralColor;
  };
  const words = (s) => String(s || "").replace(/_/g, " ");

  // The calendar (docs/rules.md#calendar): years of 12 months of 30 days of 24 hours; months
  // and days from 1, hours from 0. GET /api/world gives the date at its game_seconds; the
  // scenario starts on an hour, so that fixes the calendar second of game second 0.
  const HOUR = 3600;
  const DAY = 24 * HOUR;
  const MONTH = 30 * DAY;
  const YEAR = 12 * MONTH;

  function dateToSeconds(d) {
    return (d.year * 12 + (d.month - 1)) * MONTH + (d.day - 1) * DAY + (d.hour || 0) * HOUR;
  }

  function dateAt(gameSeconds) {
    if (CLOCK.startSec === null) return null;
    let t = CLOCK.startSec + Math.floor(gameSeconds);
    const year = Math.floor(t / YEAR);
    t -= year * YEAR;
    const month = Math.floor(t / MONTH) + 1;
    t -= (month - 1) * MONTH;
    const day = Math.floor(t / DAY) + 1;
    t -= (day - 1) * DAY;
    const hour = Math.floor(t / HOUR);
    return { year, month, day, hour, minute: Math.floor((t - hour * HOUR) / 60) };
  }

  const pad2 = (n) => String(n || 0).padStart(2, "0");
  const fmtDate = (d) => (d ? `${d.year}/${d.month}/${d.day} ${pad2(d.hour)}:${pad2(d.minute)}` : "—");
  const fmtTime = (gs) => fmtDate(dateAt(gs));

  function fmtSpan(gameSeconds) {
    const s = Math.max(0, Math.round(gameSeconds));
    if (s >= DAY) return `${Math.floor(s / DAY)} d ${Math.floor((s % DAY) / HOUR)} h`;
    if (s >= HOUR) return `${Math.floor(s / HOUR)} h ${Math.floor((s % HOUR) / 60)} min`;
    return `${Math.floor(s / 60)} min`;
  }

  /** Game seconds now, extrapolated from the last sync at the effective speed. */
  function gameNow() {
    if (CLOCK.frozen) return CLOCK.base;
    return CLOCK.base + ((performance.now() - CLOCK.at) / 1000) * CLOCK.speed;
  }

  function syncClock(world) {
    const speed = Number.isFinite(world.effective_speed) && world.effective_speed >= 0 ? world.effective_speed : world.speed;
    CLOCK.base = world.game_seconds;
    CLOCK.at = performance.now();
    CLOCK.speed = speed || 0;
    CLOCK.frozen = false;
    if (world.game_date) {
      CLOCK.startSec = dateToSeconds(world.game_date) - Math.floor(world.game_seconds / HOUR) * HOUR;
    }
  }

  /** An event happened at game_time: the clock is at least there. */
  function nudgeClock(gameTime) {
    if (typeof gameTime === "number" && gameTime > gameNow()) {
      CLOCK.base = gameTime;
      CLOCK.at = performance.now();
    }
  }

  /** While the connection is down the server may be down too: stop extrapolating. */
  function freezeClock() {
    CLOCK.base = gameNow();
    CLOCK.frozen = true;
  }

  // ===================================================================================
  // 3. HTTP helpers and the snapshot
  // ===================================================================================

  /**
   * One request. Never throws: answers { ok, status, data, error }, `error` being the
   * server's {code, message} (docs/http.md#errors) or one made here for a network failure.
   */
  async function http(method, path, body, withToken) {
    const headers = {};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (withToken && S.auth.token) headers.Authorization = "Bearer " + S.auth.token;
    let res;
    try {
      res = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
      });
    } catch (err) {
      return { ok: false, status: 0, data: null, error: { code: "network", message: "the server cannot be reached" } };
    }
    let data = null;
    if (res.status !== 204) {
      try {
        data = await res.json();
      } catch (err) {
        data = null;
      }
    }
    if (res.ok) return { ok: true, status: res.status, data, error: null, link: res.headers.get("Link") };
    const error = data && data.error ? data.error : { code: "http_" + res.status, message: `HTTP ${res.status}` };
    return { ok: false, status: res.status, data, error };
  }

  /**
   * A list that comes a page at a time (GET /api/generals): follows each answer's
   * `Link: <URL>; rel="next"` and joins the pages, at most 100 of them.
   */
  async function httpAll(path) {
    let all = [];
    let next = path;
    for (let page = 0; next && page < 100; page += 1) {
      const r = await http("GET", next);
      if (!r.ok || !Array.isArray(r.data)) return r;
      all = all.concat(r.data);
      const link = /<([^>]+)>;\s*rel="next"/.exec(r.link || "");
      next = link ? link[1] : null;
    }
    return { ok: true, status: 200, data: all, error: null };
  }

  const MAPS = { nation: S.nations, city: S.cities, general: S.generals };

  /**
   * Keeps an entity's read model if it is not older than ours. Versions only grow within one
   * server run; a local copy changed by an event (`_edited`) is newer than the view of the
   * same version, so that one is not taken.
   */
  function upsert(kind, view) {
    if (!view || typeof view.id !== "string") return false;
    // While a snapshot loads, a pushed or refreshed view may be newer than what the snapshot
    // brings (it replaces the copies wholesale): such an entity is read again after it.
    if (loading) touchWhileLoading(`${kind}:${view.id}`);
    if (kind === "battle") return upsertBattle(view);
    const map = MAPS[kind];
    if (!map) return false;
    const old = map.get(view.id);
    if (old && typeof old.version === "number" && typeof view.version === "number") {
      if (view.version < old.version || (view.version === old.version && old._edited)) return false;
    }
    map.set(view.id, view);
    markDirty("map", "marches", "details", "nations", "player", "feedNames");
    return true;
  }

  function upsertBattle(view) {
    const old = S.battles.get(view.id);
    if (old && typeof old.version === "number" && view.version < old.version) return false;
    // A read of a battle that has since ended (a refresh sent before its BattleEnded) must
    // not bring it back to the list.
    if (view.status === "active" && !S.endedBattles.has(view.id)) S.battles.set(view.id, view);
    else battleEnded(view.id);
    if (BV && BV.id === view.id) battleState(view);
    markDirty("map", "battles", "details");
    return true;
  }

  /** Takes a battle off the list and remembers (a bounded number of) ended battles. */
  function battleEnded(id) {
    S.battles.delete(id);
    S.endedBattles.delete(id);
    S.endedBattles.add(id);
    if (S.endedBattles.size > CONFIG.endedBattlesMax) S.endedBattles.delete(S.endedBattles.values().next().value);
  }

  let snapshotRun = 0;
  let snapshotRetry = null;
  let loading = false;
  const touchedWhileLoading = new Set(); // aggregates to read again once the snapshot is in
  let touchedOverflow = false; // too many: load the snapshot once more instead

  function touchWhileLoading(aggregate) {
    if (touchedWhileLoading.size < CONFIG.refreshQueueMax) touchedWhileLoading.add(aggregate);
    else touchedOverflow = true;
  }

  /**
   * The snapshot: the whole state over HTTP. Loaded at every (re)connection, after a resync
   * and when the refresh queue overflows; it replaces the local copies wholesale (versions
   * restart from 1 when the server restarts). Events that arrive while it loads may be older
   * or newer than it: their entities are refreshed again once it is in.
   */
  async function loadSnapshot() {
    const run = ++snapshotRun;
    clearTimeout(snapshotRetry);
    loading = true;
    const [world, nations, cities, generals, battles] = await Promise.all([
      http("GET", "/api/world"),
      http("GET", "/api/nations"),
      http("GET", "/api/cities"),
      httpAll("/api/generals"),
      http("GET", "/api/battles?status=active"),
    ]);
    if (run !== snapshotRun) return; // a newer load was started
    loading = false;
    const failed = [world, nations, cities, generals, battles].find((r) => !r.ok);
    if (world.ok) {
      S.world = world.data;
      syncClock(world.data);
    }
    const replace = (map, r) => {
      if (!r.ok || !Array.isArray(r.data)) return;
      map.clear();
      for (const v of r.data) map.set(v.id, v);
    };
    replace(S.nations, nations);
    replace(S.cities, cities);
    replace(S.generals, generals);
    replace(S.battles, battles);
    for (const id of S.endedBattles) S.battles.delete(id); // a snapshot read before they ended
    if (cities.ok) S.loaded = true;
    const touched = [...touchedWhileLoading];
    touchedWhileLoading.clear();
    if (touchedOverflow) {
      touchedOverflow = false;
      refreshOverflow = true; // the next refresh batch reloads the snapshot instead
      if (!refreshTimer) refreshTimer = setTimeout(guard(flushRefresh), CONFIG.refreshDelayMs);
    }
    for (const agg of touched) queueRefresh(agg);
    markDirty("map", "roads", "marches", "details", "nations", "battles", "player", "speed", "feedNames");
    background(loadLeaderboard());
    if (failed) {
      // While the connection is down the next connection reloads; no requests into the void.
      notice(`Could not load the world: ${failed.error.message}.`);
      if (hook.connection === "live") snapshotRetry = setTimeout(guard(loadSnapshot), 3000);
    }
  }

  async function refreshWorld() {
    const r = await http("GET", "/api/world");
    if (r.ok) {
      S.world = r.data;
      syncClock(r.data);
      markDirty("speed");
    }
  }

  async function loadLeaderboard() {
    const by = S.leaderboard.by;
    const r = await http("GET", "/api/leaderboard?by=" + encodeURIComponent(by));
    if (r.ok && Array.isArray(r.data) && S.leaderboard.by === by) {
      S.leaderboard.rows = r.data;
      markDirty("leaderboard");
    }
  }

  let leaderboardTimer = null;
  function leaderboardSoon() {
    if (!leaderboardTimer) {
      leaderboardTimer = setTimeout(() => {
        leaderboardTimer = null;
        background(loadLeaderboard());
      }, 2000);
    }
  }

  // The refresh queue: an event changes its `aggregate` entity (and sometimes others) in ways
  // its payload does not fully tell; those entities are fetched again, coalesced and bounded.
  const refreshQueue = new Set();
  let refreshTimer = null;
  let refreshOverflow = false;

  function queueRefresh(aggregate) {
    if (typeof aggregate !== "string") return;
    const [kind, id] = aggregate.split(/:(.*)/s);
    if (!id || !["nation", "city", "general", "battle"].includes(kind)) return;
    if (loading) {
      touchWhileLoading(aggregate);
      return;
    }
    if (refreshQueue.size >= CONFIG.refreshQueueMax) refreshOverflow = true;
    else refreshQueue.add(aggregate);
    if (!refreshTimer) refreshTimer = setTimeout(guard(flushRefresh), CONFIG.refreshDelayMs);
  }

  async function flushRefresh() {
    if (refreshOverflow) {
      refreshOverflow = false;
      refreshQueue.clear();
      refreshTimer = null;
      await loadSnapshot();
      return;
    }
    const batch = [...refreshQueue].slice(0, CONFIG.refreshBatch);
    for (const a of batch) refreshQueue.delete(a);
    await Promise.all(
      batch.map(async (agg) => {
        const [kind, id] = agg.split(/:(.*)/s);
        const r = await http("GET", `/api/${kind === "city" ? "cities" : kind + "s"}/${encodeURIComponent(id)}`);
        if (r.ok) upsert(kind, r.data); // errors are ignored: the next event or reload fixes it
      }),
    );
    refreshTimer = refreshQueue.size ? setTimeout(guard(flushRefresh), CONFIG.refreshDelayMs) : null;
  }

  // ===================================================================================
  // 4. The WebSocket connection, with resume
  // ===================================================================================

  const WS = {
    sock: null,
    attempt: 0, // failed attempts in a row, for the backoff
    timer: null,
    retryAt: 0, // performance.now() of the next attempt
    nextId: 1,
    pending: new Map(), // request id -> what it was, to read its reply
    authed: false,
    topics: new Set(), // entity topics wanted (the selection, the open battle)
    subscribed: new Set(), // entity topics asked for on this connection
    syncTimer: null,
    resumeFrom: null, // a 4008's last_seq below lastSeq: the next `since` (see onClose)
    incarnation: null, // the World's incarnation lastSeq belongs to: sent with `since`
    outbox: [], // messages waiting for the rate limit (see send)
    outboxTimer: null,
    tokens: CONFIG.sendBurst,
    tokensAt: 0,
    seeded: false, // the feed got its recent history (see seedFeed)
  };

  function setConnection(state) {
    hook.connection = state;
    const s = $("status");
    if (!s) return;
    let text = state === "live" ? "live" : state === "connecting" ? "connecting…" : "reconnecting…";
    if (state === "reconnecting" && WS.timer) {
      text = `reconnecting in ${Math.max(1, Math.ceil((WS.retryAt - performance.now()) / 1000))} s`;
    }
    if (s.getAttribute("data-state") !== state) s.setAttribute("data-state", state);
    if (s.textContent !== text) s.textContent = text;
  }

  function connect() {
    clearTimeout(WS.timer);
    WS.timer = null;
    setConnection(hook.stats.connects === 0 && hook.connection === "connecting" ? "connecting" : "reconnecting");
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    let sock;
    try {
      sock = new WebSocket(`${proto}//${location.host}/ws`);
    } catch (err) {
      scheduleReconnect(0);
      return;
    }
    WS.sock = sock;
    sock.onopen = guard(() => onOpen(sock));
    sock.onmessage = guard((m) => onMessage(sock, m));
    sock.onerror = () => {}; // the close event that follows says what to do
    sock.onclose = guard((e) => onClose(sock, e));
  }

  /**
   * Sends a message on the open socket (false if there is none), `what` remembering what it
   * was to read its reply. The server closes a connection that sends over 20 messages a
   * second (bursts of 40) with 4029, so messages go out through a token bucket well under
   * that (CONFIG.sendPerSec, sendBurst); one over it waits in WS.outbox, in order.
   */
  function send(msg, what) {
    const sock = WS.sock;
    if (!sock || sock.readyState !== WebSocket.OPEN) return false;
    const id = WS.nextId++;
    if (what) {
      WS.pending.set(id, what);
      if (WS.pending.size > 100) WS.pending.delete(WS.pending.keys().next().value);
    }
    WS.outbox.push(JSON.stringify({ ...msg, id }));
    drainOutbox();
    return true;
  }

  function drainOutbox() {
    clearTimeout(WS.outboxTimer);
    WS.outboxTimer = null;
    const sock = WS.sock;
    if (!sock || sock.readyState !== WebSocket.OPEN) {
      WS.outbox.length = 0; // the next connection subscribes afresh
      return;
    }
    const now = performance.now();
    WS.tokens = Math.min(CONFIG.sendBurst, WS.tokens + ((now - WS.tokensAt) / 1000) * CONFIG.sendPerSec);
    WS.tokensAt = now;
    while (WS.outbox.length && WS.tokens >= 1) {
      WS.tokens -= 1;
      sock.send(WS.outbox.shift());
    }
    if (WS.outbox.length) {
      WS.outboxTimer = setTimeout(guard(drainOutbox), Math.ceil(((1 - WS.tokens) / CONFIG.sendPerSec) * 1000));
    }
  }

  function onOpen(sock) {
    if (sock !== WS.sock) return;
    hook.stats.connects += 1;
    WS.pending.clear();
    WS.outbox.length = 0;
    WS.authed = false;
    if (S.auth.token) send({ op: "auth", token: S.auth.token }, { kind: "auth" });
    subscribeWorld();
    WS.subscribed.clear();
    syncTopics();
    background(loadSnapshot());
  }

  /**
   * "world", with `since` when we have a seq to resume from (a resume), else live from now.
   * `since` is lastSeq, or lower after a 4008 (onClose): the replay may then repeat events
   * we have, and onEvent skips them, since lastSeq itself is not lowered.
   */
  function subscribeWorld() {
    const msg = { op: "subscribe", topics: ["world"] };
    const resume = S.lastSeq !== null;
    if (resume) msg.since = WS.resumeFrom !== null ? Math.min(WS.resumeFrom, S.lastSeq) : S.lastSeq;
    // With the incarnation our events come from, the server can tell whether a crash has
    // renumbered events after our `since` (it then answers resync_required).
    if (resume && WS.incarnation !== null) msg.incarnation = WS.incarnation;
    if (send(msg, { kind: "world", resume }) && resume) hook.stats.resumes += 1;
  }

  // Entity topics follow what is shown. Changes are applied 150 ms later, so clicking
  // through cities stays far below the server's message rate limit (20/s, else close 4029).
  function subscribeTopic(topic) {
    WS.topics.add(topic);
    if (!WS.syncTimer) WS.syncTimer = setTimeout(guard(syncTopics), 150);
  }

  function unsubscribeTopic(topic) {
    WS.topics.delete(topic);
    if (!WS.syncTimer) WS.syncTimer = setTimeout(guard(syncTopics), 150);
  }

  function syncTopics() {
    clearTimeout(WS.syncTimer);
    WS.syncTimer = null;
    if (!WS.sock || WS.sock.readyState !== WebSocket.OPEN) return;
    if (WS.outbox.length) {
      // Held back by the rate limit: try again later, so that the outbox stays short.
      WS.syncTimer = setTimeout(guard(syncTopics), 150);
      return;
    }
    for (const topic of [...WS.subscribed]) {
      if (!WS.topics.has(topic)) {
        WS.subscribed.delete(topic);
        send({ op: "unsubscribe", topics: [topic] });
      }
    }
    // One topic per message: an entity that does not exist (not_found) refuses its whole
    // message. No `since`: the server answers with the entity's current state at once.
    for (const topic of WS.topics) {
      if (!WS.subscribed.has(topic)) {
        WS.subscribed.add(topic);
        send({ op: "subscribe", topics: [topic] }, { kind: "topic", topic });
      }
    }
  }

  function onMessage(sock, m) {
    if (sock !== WS.sock || typeof m.data !== "string") return;
    let msg;
    try {
      msg = JSON.parse(m.data);
    } catch (err) {
      return;
    }
    if (msg.op) onReply(msg);
    // An event is pushed on `world` and again on its aggregate's topic: we always hold
    // `world`, so the copies on entity topics are skipped.
    else if (msg.event) {
      if (msg.topic === "world") onEvent(msg.event);
    } else if (msg.state) onState(msg.topic, msg.state);
    else if (msg.frame) onFrame(msg.frame, msg.result || null);
    else if (msg.order) upsertOrder(msg.order);
  }

  function onReply(msg) {
    const what = msg.id !== undefined ? WS.pending.get(msg.id) : undefined;
    if (msg.id !== undefined) WS.pending.delete(msg.id);
    switch (msg.op) {
      case "subscribed":
        if (what && what.kind === "world") {
          // Without `since`, the topic is live from the reply's seq on: events up to it are
          // in (or older than) the snapshot. With `since`, the replay follows this reply.
          if (!what.resume && typeof msg.seq === "number") setLastSeq(msg.seq);
          if (!what.resume && typeof msg.incarnation === "number") WS.incarnation = msg.incarnation;
          WS.resumeFrom = null;
          WS.attempt = 0;
          setConnection("live");
          if (!WS.seeded && typeof msg.seq === "number") {
            WS.seeded = true;
            background(seedFeed(msg.seq));
          }
        }
        return;
      case "authenticated":
        WS.authed = true;
        // The open orders come first, then each change of status.
        send({ op: "subscribe", topics: ["orders"] }, { kind: "orders" });
        return;
      case "error":
        onError(msg, what);
        return;
      default:
        return; // unsubscribed, pong
    }
  }

  function onError(msg, what) {
    const kind = what ? what.kind : null;
    if (msg.code === "resync_required") {
      // The server cannot replay from our `since`: start again from a fresh snapshot.
      // Its `seq` is the server's newest event: any we hold above it never happened.
      hook.stats.resyncs += 1;
      if (typeof msg.seq === "number") dropFeedAfter(msg.seq);
      setLastSeq(null);
      WS.resumeFrom = null;
      S.endedBattles.clear();
      subscribeWorld();
      background(loadSnapshot());
      return;
    }
    if (msg.code === "unavailable" && (kind === "world" || kind === "orders")) {
      // Not loaded yet, or the log cannot be read now: ask again a little later.
      const sock = WS.sock;
      setTimeout(guard(() => {
        if (sock !== WS.sock) return;
        if (kind === "world") subscribeWorld();
        else send({ op: "subscribe", topics: ["orders"] }, { kind: "orders" });
      }), 2000);
      return;
    }
    if (msg.code === "unauthorized" && (kind === "auth" || kind === "orders")) {
      forgetSession("Your session has expired; log in again.");
      return;
    }
    if (kind === "topic") {
      // Not subscribed: a missing entity is given up; anything else is asked for again at
      // the next sync while the topic is still wanted.
      WS.subscribed.delete(what.topic);
      if (msg.code === "not_found") {
        WS.topics.delete(what.topic);
        if (BV && what.topic === "battle:" + BV.id) BV.error = "This battle is not known to the server.";
        markDirty("battleHud");
      } else if (!WS.syncTimer) {
        WS.syncTimer = setTimeout(guard(syncTopics), 2000);
      }
      return;
    }
    if (msg.code === "already_authenticated") return;
    notice(`Server: ${msg.message || msg.code}`);
  }

  function onClose(sock, e) {
    if (sock !== WS.sock) return; // a socket we replaced on purpose
    WS.sock = null;
    WS.authed = false;
    freezeClock();
    if (e.code === 4008) {
      // Slow client: the reason names the last event the server wrote to us; resume from it.
      // It equals ours when we read everything written before the close. Lower, it is the
      // next `since` (subscribeWorld) and the events replayed that we have are skipped as
      // duplicates; higher (or absent), we resume from ours and miss nothing.
      let last = null;
      try {
        last = JSON.parse(e.reason).last_seq;
      } catch (err) {
        /* no usable reason: resume from our own lastSeq */
      }
      if (Number.isInteger(last) && last > 0 && S.lastSeq !== null && last < S.lastSeq) WS.resumeFrom = last;
    }
    scheduleReconnect(e.code);
  }

  function scheduleReconnect(code) {
    clearTimeout(WS.timer);
    const base = Math.min(CONFIG.backoffMaxMs, CONFIG.backoffMinMs * 2 ** Math.min(WS.attempt, 10));
    WS.attempt += 1;
    let delay = base / 2 + (Math.random() * base) / 2; // "equal jitter"
    if (code === 4029) delay = Math.max(delay, 10000); // over the message rate: slow down
    WS.retryAt = performance.now() + delay;
    WS.timer = setTimeout(guard(connect), delay);
    setConnection("reconnecting");
  }

  /** Drops the connection on purpose and opens a new one at once (after logging out). */
  function reconnectNow() {
    const sock = WS.sock;
    if (sock && sock.readyState === WebSocket.CONNECTING) return; // it will open with the new session
    WS.sock = null;
    if (sock) sock.close(1000, "session changed");
    WS.attempt = 0;
    connect();
  }

  /** A state push on an entity topic: newer versions replace the local copy. */
  function onState(topic, state) {
    const kind = String(topic || "").split(":")[0];
    upsert(kind, state);
  }

  // ===================================================================================
  // 5. Applying events: local state, refreshes, the feed
  // ===================================================================================

  function onEvent(ev) {
    if (!ev || typeof ev.seq !== "number") return;
    if (ev.type === "WorldRecovered") {
      onRecovered(ev);
      return;
    }
    if (S.lastSeq !== null && ev.seq <= S.lastSeq) return; // already seen (replay overlap)
    setLastSeq(ev.seq);
    hook.stats.events += 1;
    nudgeClock(ev.game_time);
    const text = describe(ev); // before the effects: names of what the event removes
    applyEvent(ev);
    addFeed(ev, text);
  }

  /**
   * The server crashed and came back from its last checkpoint: events after `last_seq` that
   * we saw live never happened. Drop them from the feed, reload and resubscribe without
   * `since`. The recovered world numbers its events from last_seq + 1 again, so this event
   * may carry a seq we have already seen; each incarnation is handled once.
   */
  function onRecovered(ev) {
    const p = ev.payload || {};
    if (S.incarnation !== null && p.incarnation <= S.incarnation) return;
    S.incarnation = p.incarnation;
    hook.stats.events += 1;
    hook.stats.resyncs += 1;
    const dropped = dropFeedAfter(p.last_seq);
    setLastSeq(ev.seq);
    addFeed(ev, describe(ev) + (dropped ? ` ${dropped === 1 ? "An event" : `${dropped} events`} shown after it never happened.` : ""));
    if (typeof p.game_seconds === "number") {
      CLOCK.base = p.game_seconds;
      CLOCK.at = performance.now();
    }
    setLastSeq(null);
    WS.resumeFrom = null;
    S.endedBattles.clear(); // the recovered world may fight them again
    subscribeWorld(); // live from the reply's seq on
    WS.subscribed.clear(); // again: entity topics answer with their current state
    syncTopics();
    background(loadSnapshot());
  }

  /** Changes a local copy as an event says (an object of fields, or a function), marking it. */
  function edit(map, id, change) {
    const v = map.get(id);
    if (!v) return;
    if (typeof change === "function") change(v);
    else Object.assign(v, change);
    v._edited = true; // see upsert
  }

  function applyEvent(ev) {
    const p = ev.payload || {};
    const refresh = [ev.aggregate];
    switch (ev.type) {
      case "MarchStarted":
        // The read model's march, with started_at = the event's game_time.
        edit(S.generals, p.general, {
          status: "marching", city: p.from,
          march: { from: p.from, to: p.to, path: p.path, eta: p.eta, started_at: ev.game_time },
        });
        break;
      case "MarchArrived":
        edit(S.generals, p.general, { status: "idle", city: p.city, march: null });
        break;
      case "MarchHalted":
        edit(S.generals, p.general, { status: "idle", city: p.at, march: null });
        break;
      case "CityCaptured":
        edit(S.cities, p.city, { nation: p.to });
        for (const n of S.nations.values()) {
          if (!Array.isArray(n.city_ids)) continue;
          n.city_ids = n.city_ids.filter((id) => id !== p.city);
          if (n.id === p.to) n.city_ids.push(p.city);
        }
        refresh.push("nation:" + p.to);
        if (p.from) refresh.push("nation:" + p.from);
        leaderboardSoon();
        break;
      case "CapitalMoved":
        edit(S.nations, p.nation, { capital: p.city });
        break;
      case "NationDestroyed":
        edit(S.nations, p.nation, { status: "destroyed", capital: null, ruler: null, relations: {} });
        for (const n of S.nations.values()) if (n.relations) delete n.relations[p.nation];
        for (const g of S.generals.values()) {
          if (g.nation !== p.nation) continue;
          edit(S.generals, g.id, { nation: null, position: null }); // ronin now
          refresh.push("general:" + g.id);
        }
        leaderboardSoon();
        break;
      case "WarDeclared":
      case "PeaceMade": {
        const other = ev.type === "WarDeclared" ? p.against : p.with;
        const rel = ev.type === "WarDeclared" ? "war" : "peace";
        edit(S.nations, p.nation, (n) => (n.relations = { ...n.relations, [other]: rel }));
        edit(S.nations, other, (n) => (n.relations = { ...n.relations, [p.nation]: rel }));
        refresh.push("nation:" + other);
        break;
      }
      case "TaxSet":
        edit(S.nations, p.nation, { tax_rate: p.rate });
        break;
      case "GeneralJoined":
        if (!S.generals.has(p.general)) {
          // A stub until the refresh brings the read model.
          S.generals.set(p.general, {
            id: p.general, name: p.general, owner: p.player, nation: p.nation, city: p.city,
            status: "idle", troops: 0, troop_type: "infantry", march: null, version: 0, _stub: true,
          });
        }
        if (p.nation) refresh.push("nation:" + p.nation);
        break;
      case "GeneralRetreated":
        edit(S.generals, p.general, p.to ? { city: p.to } : { nation: null, position: null });
        break;
      case "GeneralAppointed":
        if (p.replaced) refresh.push("general:" + p.replaced);
        break;
      case "TroopsRecruited":
        edit(S.generals, p.general, (g) => (g.troops = (g.troops || 0) + (p.soldiers || 0)));
        leaderboardSoon();
        break;
      case "RecruitStarted":
        refresh.push("city:" + p.city);
        break;
      case "PresenceChanged":
        edit(S.generals, p.general, { protected: p.protected, ai_delegate: p.ai_delegate });
        break;
      case "SandboxEdited":
        // A sandbox edit (docs/sandbox.md): what it changed is read again.
        if (ev.aggregate && !ev.aggregate.startsWith("world:")) refresh.push(ev.aggregate);
        break;
      case "BattleStarted": {
        if (!S.battles.has(p.battle)) {
          S.battles.set(p.battle, {
            id: p.battle, city: p.city, status: "active", attacker: p.attacker, defender: p.defender,
            started_at: ev.game_time, ended_at: null, winner: null, reason: null,
            units_alive: null, casualties: {}, steps: 0, field: null, version: 0,
          });
        }
        // A MOVE ends when its general starts a battle.
        for (const side of [p.attacker, p.defender]) {
          for (const id of (side && side.generals) || []) {
            edit(S.generals, id, { status: "in_battle", march: null });
            refresh.push("general:" + id);
          }
        }
        refresh.push("city:" + p.city);
        break;
      }
      case "BattleReinforced": {
        const b = S.battles.get(p.battle);
        const side = b && b[p.side];
        if (side && Array.isArray(side.generals) && !side.generals.includes(p.general)) side.generals.push(p.general);
        edit(S.generals, p.general, { status: "in_battle", march: null });
        refresh.push("general:" + p.general);
        break;
      }
      case "BattleEnded": {
        const b = S.battles.get(p.battle);
        battleEnded(p.battle);
        for (const id of Object.keys(p.casualties || {})) if (id !== "garrison") refresh.push("general:" + id);
        if (b) for (const side of [b.attacker, b.defender]) for (const id of (side && side.generals) || []) refresh.push("general:" + id);
        refresh.push("city:" + p.city);
        if (BV && BV.id === p.battle) {
          BV.ended = { winner: p.winner, reason: p.reason, casualties: p.casualties, steps: p.steps };
          markDirty("battleHud");
        }
        leaderboardSoon();
        break;
      }
      case "OrderRevised":
        if (p.player === S.auth.player) {
          const o = S.orders.get(p.order_id);
          if (o) upsertOrder({ ...o, status: p.status, reason: p.reason, revision: p.revision, message: null });
        }
        break;
      default:
        break; // the others change nothing shown here beyond their aggregate (refreshed below)
    }
    for (const agg of refresh) queueRefresh(agg);
    markDirty("map", "marches", "details", "nations", "battles", "player");
  }

  // Words for codes.
  const COMMAND_WORDS = {
    JOIN: "joining", MOVE: "march", TRAIN: "training", RECRUIT: "recruiting", BUILD: "building",
    APPOINT: "appointment", DISMISS: "dismissal", DECLARE_WAR: "declaration of war",
    MAKE_PEACE: "peace", SET_TAX: "tax",
  };
  const REASON_WORDS = {
    unknown_general: "no such general", not_owner: "not theirs to command", busy: "busy with another order",
    in_battle: "in battle", insufficient_pcp: "not enough personal command points",
    insufficient_mcp: "not enough military command points", no_authority: "no authority",
    no_path: "no road it may take", unknown_target: "unknown target", invalid_args: "not possible now",
    not_at_war: "not at war", target_protected: "the target is protected", nation_destroyed: "the nation is destroyed",
    id_conflict: "order id already used", already_joined: "already joined", internal: "a server fault",
    captured: "its city fell", march_halted: "the march halted",
  };
  const END_WORDS = {
    eliminated: "every unit of the losing side fell",
    routed: "the losing side routed and fled",
    time_limit: "the time limit passed and the defender held",
  };
  const reasonWords = (r) => REASON_WORDS[r] || words(r);
  const cmdWords = (c) => COMMAND_WORDS[c] || words(c).toLowerCase();

  /** A side of a battle in words; `inFeed`: with references for the feed (see feedNodes). */
  function sideLabel(side, inFeed) {
    if (!side) return "?";
    if (side.nation) return inFeed ? nRef(side.nation) : nName(side.nation);
    const gens = (side.generals || []).map((id) => (inFeed ? gRef(id) : gName(id)));
    return gens.length ? gens.join(", ") : "the garrison";
  }

  /** The battle's city: from the list, else from its id `b-{city}-{tick}`. */
  function battleCity(id) {
    const b = S.battles.get(id);
    if (b) return b.city;
    const m = /^b-(.+)-\d+$/.exec(id || "");
    return m ? m[1] : id;
  }

  // Names in feed sentences. describe() writes each general, city and nation as a reference
  // (kind:id between two control characters), and feedNodes() turns each into its name, or,
  // while only the id is known, into a `.stub` span showing the id, which fillFeedNames()
  // replaces by the name once the read model arrives (a general that has just joined is
  // only known by its id until its refresh).
  const ref = (kind, id) => `\u0001${kind}:${id}\u0002`;
  const gRef = (id) => (id ? ref("general", id) : "?");
  const cRef = (id) => (id ? ref("city", id) : "?");
  const nRef = (id) => (id ? ref("nation", id) : "neutral");

  /** An entity's name, or null while only its id is known. */
  function knownName(kindAndId) {
    const [kind, id] = kindAndId.split(/:(.*)/s);
    const v = MAPS[kind] && MAPS[kind].get(id);
    return v && !v._stub && typeof v.name === "string" ? v.name : null;
  }

  /** A sentence of describe() as nodes: text, names, and stubs for names not known yet. */
  function feedNodes(text) {
    return text.split(/\u0001([a-z]+:[^\u0002]*)\u0002/).map((part, i) => {
      if (i % 2 === 0) return part;
      const name = knownName(part);
      return name !== null ? name : el("span", { class: "stub", "data-ref": part, text: part.split(/:(.*)/s)[1] });
    });
  }

  /** The feed's stubs whose names are now known get them (after new read models arrive). */
  function fillFeedNames() {
    for (const stub of $("feed").querySelectorAll(".stub")) {
      const name = knownName(stub.getAttribute("data-ref"));
      if (name !== null) stub.replaceWith(name);
    }
  }

  /** One sentence per event type of docs/rules.md#domain-events, with names, not ids. */
  function describe(ev) {
    const p = ev.payload || {};
    const whose = () => (p.command === "JOIN" ? `Player ${p.player}'s` : p.general ? `${gRef(p.general)}'s` : "An");
    const byPlayer = () => (p.player ? ` (player ${p.player})` : "");
    switch (ev.type) {
      case "WorldCreated":
        return `The world was created from the ${p.scenario} scenario, starting ${fmtDate(p.start)}.`;
      case "WorldRecovered":
        return `The server restarted and recovered the world as of event #${p.last_seq}.`;
      case "OrderRevised":
        return `After the recovery, order ${p.order_id} of ${p.player} was decided again: ${p.status}${p.reason ? ` (${reasonWords(p.reason)})` : ""}.`;
      case "MonthBegan":
        return `Month ${p.month} of year ${p.year} began.`;
      case "DayEnded":
        return `A day ended: ${num(p.gold_produced)} gold produced, ${num(p.rice_eaten)} rice eaten${p.soldiers_deserted ? `, ${num(p.soldiers_deserted)} soldiers deserted` : ""}.`;
      case "HarvestGathered":
        return `The harvest filled the granaries with ${num(p.rice)} rice.`;
      case "TaxesCollected":
        return `${nRef(p.nation)} collected ${num(p.gold)} gold and ${num(p.rice)} rice in taxes.`;
      case "CommandAccepted":
        return `${whose()} ${cmdWords(p.command)} order was accepted${byPlayer()}.`;
      case "CommandRejected":
        return `${whose()} ${cmdWords(p.command)} order was rejected${byPlayer()}: ${p.message || reasonWords(p.reason)}.`;
      case "OrderCompleted":
        return `${whose()} ${cmdWords(p.command)} order was completed.`;
      case "OrderCancelled":
        return `${whose()} ${cmdWords(p.command)} order was cancelled: ${reasonWords(p.reason)}.`;
      case "MarchStarted":
        return `${gRef(p.general)} set out from ${cRef(p.from)} for ${cRef(p.to)}, expected ${fmtTime(p.eta)}.`;
      case "MarchHalted":
        return `${gRef(p.general)}'s march on ${cRef(p.to)} halted at ${cRef(p.at)}: ${reasonWords(p.reason)}.`;
      case "MarchArrived":
        return `${gRef(p.general)} arrived at ${cRef(p.city)}.`;
      case "RecruitStarted":
        return `${gRef(p.general)} began recruiting ${num(p.soldiers)} soldiers in ${cRef(p.city)} for ${num(p.gold)} gold.`;
      case "TroopsRecruited":
        return `${num(p.soldiers)} recruits joined ${gRef(p.general)}.`;
      case "GeneralJoined":
        return `Player ${p.player} joined the world ${p.nation ? `in the service of ${nRef(p.nation)}` : "as a ronin"}, at ${cRef(p.city)}.`;
      case "GeneralAppointed":
        return `${gRef(p.by)} appointed ${gRef(p.general)} ${words(p.position)}${p.city ? ` of ${cRef(p.city)}` : ""}${p.replaced ? `, replacing ${gRef(p.replaced)}` : ""}.`;
      case "GeneralDismissed":
        return `${gRef(p.by)} dismissed ${gRef(p.general)} as ${words(p.position)}.`;
      case "WarDeclared":
        return `${nRef(p.nation)} declared war on ${nRef(p.against)}.`;
      case "PeaceMade":
        return `${nRef(p.nation)} made peace with ${nRef(p.with)}.`;
      case "RelationChanged":
        return `Relations between ${nRef(p.nation)} and ${nRef(p.other)} ${p.relation ? `are now ${p.relation}` : "ended"}.`;
      case "TaxSet":
        return `${nRef(p.nation)} set its tax rate to ${p.rate}%.`;
      case "PresenceChanged":
        return `${gRef(p.general)} (player ${p.player}) is ${p.protected ? "offline and protected" : p.ai_delegate ? "offline; the AI acts for it" : p.online ? "online" : "offline"}.`;
      case "BattleStarted": {
        const d = p.defender || {};
        const held = d.nation ? `held by ${nRef(d.nation)}` : "a neutral city";
        const lead = ((p.attacker && p.attacker.generals) || []).map((id) => gRef(id)).join(", ");
        return `${sideLabel(p.attacker, true)} attacked ${cRef(p.city)}, ${held}${lead ? ` (led by ${lead})` : ""}.`;
      }
      case "BattleReinforced":
        return `${gRef(p.general)} joined the battle of ${cRef(battleCity(p.battle))} on the ${p.side}'s side with ${num(p.soldiers)} soldiers.`;
      case "BattleEnded": {
        const b = S.battles.get(p.battle);
        const winnerSide = b ? b[p.winner] : null;
        const lost = Object.values(p.casualties || {}).reduce((a, n) => a + (n || 0), 0);
        return `The battle of ${cRef(p.city)} ended: the ${p.winner}${winnerSide ? ` (${sideLabel(winnerSide, true)})` : ""} won, ${END_WORDS[p.reason] || words(p.reason)}; ${num(lost)} soldiers fell.`;
      }
      case "CityCaptured":
        return `${nRef(p.to)} captured ${cRef(p.city)}${p.from ? ` from ${nRef(p.from)}` : ""}${p.battle ? "" : ", walking in unopposed"}${p.garrison_lost ? `; ${num(p.garrison_lost)} of its garrison were lost` : ""}.`;
      case "CapitalMoved":
        return `${nRef(p.nation)} moved its capital to ${cRef(p.city)}.`;
      case "GeneralRetreated":
        return p.to
          ? `${gRef(p.general)} retreated from ${cRef(p.from)} to ${cRef(p.to)}.`
          : `${gRef(p.general)} was cut off at ${cRef(p.from)} and became a ronin.`;
      case "NationDestroyed":
        return `${nRef(p.nation)} was destroyed${p.by ? ` by ${nRef(p.by)}` : ""}.`;
      case "SandboxEdited": {
        const e = p.edit || {};
        if (e.edit === "teleport") return `Sandbox: ${p.player} teleported ${gRef(e.general)} to ${cRef(e.to)}.`;
        if (e.edit === "clock") return `Sandbox: ${p.player} ${p.paused ? "stopped" : "set"} the clock (speed ${p.speed}×).`;
        const target = e.general ? gRef(e.general) : e.city ? cRef(e.city) : nRef(e.nation);
        const now = [["troops", p.troops], ["gold", p.gold], ["rice", p.rice]]
          .filter(([, v]) => v != null)
          .map(([k, v]) => `${num(v)} ${k}`)
          .join(", ");
        return `Sandbox: ${p.player} edited ${target}, which now holds ${now}.`;
      }
      default:
        return `${ev.type}.`;
    }
  }

  // Feed classes are prefixed "ev-" so that they never match the map's .city / .march.
  const FEED_CLASS = {
    BattleStarted: "ev-battle", BattleReinforced: "ev-battle", BattleEnded: "ev-battle",
    CityCaptured: "ev-capture", CapitalMoved: "ev-capture", NationDestroyed: "ev-capture",
    WarDeclared: "ev-diplomacy", PeaceMade: "ev-diplomacy", RelationChanged: "ev-diplomacy",
    MarchStarted: "ev-march", MarchArrived: "ev-march", MarchHalted: "ev-march", GeneralRetreated: "ev-march",
    WorldCreated: "ev-world", WorldRecovered: "ev-world", MonthBegan: "ev-world",
  };
  const ROUTINE = new Set(["DayEnded", "CommandAccepted", "OrderCompleted", "TaxesCollected", "PresenceChanged", "HarvestGathered"]);

  /** Takes off the feed the events after `seq` (they never happened); answers how many. */
  function dropFeedAfter(seq) {
    let dropped = 0;
    for (const li of [...$("feed").children]) {
      if (Number(li.dataset.seq) > seq) {
        li.remove();
        dropped += 1;
      }
    }
    return dropped;
  }

  function feedItem(ev, text) {
    return el(
      "li",
      { class: `${FEED_CLASS[ev.type] || "ev-other"}${ROUTINE.has(ev.type) ? " routine" : ""}`, "data-seq": ev.seq, "data-type": ev.type },
      el("time", { text: fmtTime(ev.game_time) }),
      el("span", null, feedNodes(text)),
    );
  }

  function addFeed(ev, text) {
    const feed = $("feed");
    feed.prepend(feedItem(ev, text));
    while (feed.children.length > CONFIG.feedMax) feed.lastElementChild.remove();
  }

  /**
   * The feed's recent history, once, after the first `subscribed` reply on `world`: the
   * durable events up to the reply's `seq` (GET /api/events), placed under the live ones
   * already shown. They are only shown: their effects are in the snapshot already.
   */
  async function seedFeed(seq) {
    const after = Math.max(0, seq - CONFIG.feedSeed);
    const r = await http("GET", `/api/events?after_seq=${after}&limit=${CONFIG.feedSeed}`);
    if (!r.ok || !Array.isArray(r.data)) return; // no history, then: the feed fills live
    const feed = $("feed");
    const shown = new Set([...feed.children].map((li) => Number(li.dataset.seq)));
    for (const ev of r.data) {
      if (!ev || typeof ev.seq !== "number" || ev.seq > seq || shown.has(ev.seq)) continue;
      // Newest first: before the first item that is older.
      const older = [...feed.children].find((li) => Number(li.dataset.seq) < ev.seq);
      feed.insertBefore(feedItem(ev, describe(ev)), older || null);
    }
    while (feed.children.length > CONFIG.feedMax) feed.lastElementChild.remove();
  }

  // ===================================================================================
  // 6. The map: cities, roads, marches, pan and zoom
  // ===================================================================================

  const MAP = {
    svg: null,
    layers: {},
    cityEls: new Map(), // city id -> { g, body, label, title }
    roadKey: "",
    marchEls: new Map(), // general id -> { g, body, title, route, plan }
    view: { cx: 500, cy: 500, s: 1 }, // centre (map units) and map units per CSS pixel
    fitS: 1,
    fitted: false,
    moved: false, // the user panned or zoomed
  };

  function initMap() {
    MAP.svg = $("map");
    for (const name of ["roads", "routes", "cities", "marches"]) MAP.layers[name] = $("layer-" + name);
    // Until the user pans or zooms, the map keeps fitting its box when that box changes.
    new ResizeObserver(guard(() => (MAP.moved || !S.cities.size ? applyView() : fitView()))).observe(MAP.svg);
    initPanZoom();
    $("zoom-in").addEventListener("click", guard(() => zoomAt(null, 1.5)));
    $("zoom-out").addEventListener("click", guard(() => zoomAt(null, 1 / 1.5)));
    $("zoom-reset").addEventListener("click", guard(() => fitView()));
  }

  function underAttack(cityId) {
    for (const b of S.battles.values()) if (b.city === cityId && b.status === "active") return b;
    return null;
  }

  function cityLabel(c) {
    const n = nation(c.nation);
    const capital = n && n.status === "active" && n.capital === c.id;
    let text = `${c.name} (${c.nation ? nName(c.nation) : "neutral"})`;
    if (capital) text += ", capital";
    if (underAttack(c.id)) text += ", under attack";
    return { text, capital };
  }

  /** Creates, updates and removes the city elements: exactly one `.city` per city. */
  function renderCities() {
    for (const [id, e] of MAP.cityEls) {
      if (!S.cities.has(id)) {
        e.g.remove();
        MAP.cityEls.delete(id);
      }
    }
    for (const c of S.cities.values()) {
      let e = MAP.cityEls.get(c.id);
      if (!e) {
        const g = svgEl("g", { class: "city", "data-id": c.id, role: "button", tabindex: "0" }, MAP.layers.cities);
        const title = svgEl("title", null, g);
        const body = svgEl("g", { class: "city-body", transform: symbolTransform() }, g);
        svgEl("circle", { class: "attack-ring", r: 17 }, body);
        svgEl("circle", { class: "capital-ring", r: 12.5 }, body);
        const dot = svgEl("circle", { class: "city-dot", r: 7.5 }, body);
        const label = svgEl("text", { class: "city-label", y: 24, "text-anchor": "middle" }, body);
        const id = c.id;
        g.addEventListener("click", guard(() => cityClicked(id)));
        g.addEventListener("keydown", guard((ev) => {
          if (ev.key === "Enter" || ev.key === " ") {
            ev.preventDefault();
            cityClicked(id);
          }
        }));
        e = { g, body, dot, label, title, key: "" };
        MAP.cityEls.set(c.id, e);
      }
      const { text, capital } = cityLabel(c);
      const attacked = !!underAttack(c.id);
      const selected = S.selection && S.selection.kind === "city" && S.selection.id === c.id;
      const inNation = S.selection && S.selection.kind === "nation" && S.selection.id === c.nation;
      const key = [text, c.x, c.y, nColor(c.nation), selected, inNation].join("|");
      if (key === e.key) continue;
      e.key = key;
      e.g.setAttribute("transform", `translate(${c.x} ${c.y})`);
      e.g.setAttribute("aria-label", text);
      e.g.setAttribute("class", "city" + (capital ? " capital" : "") + (attacked ? " under-attack" : "") + (selected ? " selected" : "") + (inNation ? " highlighted" : ""));
      e.title.textContent = text;
      e.label.textContent = c.name;
      e.dot.setAttribute("fill", nColor(c.nation));
    }
    scaleSymbols();
  }

  /** Roads: one line per pair of neighbours. They change only with the set of cities. */
  function renderRoads() {
    const pairs = [];
    for (const c of S.cities.values()) {
      for (const r of c.neighbors || []) {
        const o = S.cities.get(r.city);
        if (o && c.id < o.id) pairs.push([c, o]);
      }
    }
    const key = pairs.map(([a, b]) => `${a.id}-${b.id}@${a.x},${a.y},${b.x},${b.y}`).join(";");
    if (key === MAP.roadKey) return;
    MAP.roadKey = key;
    MAP.layers.roads.replaceChildren();
    for (const [a, b] of pairs) {
      svgEl("line", { class: "road", x1: a.x, y1: a.y, x2: b.x, y2: b.y, "vector-effect": "non-scaling-stroke" }, MAP.layers.roads);
    }
    if (!MAP.fitted && S.cities.size) fitView();
  }

  function cityClicked(id) {
    select("city", id, false);
    const b = underAttack(id);
    if (b) openBattle(b.id); // a city under attack opens its battle
  }

  // --- marches -------------------------------------------------------------------------

  function roadDistance(a, b) {
    const road = (a.neighbors || []).find((r) => r.city === b.id) || (b.neighbors || []).find((r) => r.city === a.id);
    return road ? road.distance : Math.hypot(a.x - b.x, a.y - b.y);
  }

  /**
   * Where a march is at each moment: the path's cities with the game second each is reached.
   * Each leg takes ceil(distance / 10 li × 3600) game seconds (docs/rules.md#marches), scaled
   * so the whole path spans started_at .. eta exactly.
   */
  function marchPlan(m) {
    if (!m || !Array.isArray(m.path) || m.path.length < 2) return null;
    const pts = m.path.map((id) => S.cities.get(id));
    if (pts.some((c) => !c)) return null;
    const legs = [];
    for (let i = 1; i < pts.length; i++) {
      legs.push(Math.max(1, Math.ceil((roadDistance(pts[i - 1], pts[i]) / CONFIG.marchLiPerHour) * HOUR)));
    }
    const total = legs.reduce((a, b) => a + b, 0);
    const start = typeof m.started_at === "number" ? m.started_at : m.eta - total;
    const span = m.eta - start;
    const times = [start];
    for (const leg of legs) times.push(times[times.length - 1] + (span > 0 ? (leg / total) * span : 0));
    return { pts, times };
  }

  function marchPosition(plan, now) {
    const { pts, times } = plan;
    if (now <= times[0]) return [pts[0].x, pts[0].y];
    for (let i = 1; i < pts.length; i++) {
      if (now < times[i]) {
        const f = (now - times[i - 1]) / Math.max(1e-9, times[i] - times[i - 1]);
        return [pts[i - 1].x + (pts[i].x - pts[i - 1].x) * f, pts[i - 1].y + (pts[i].y - pts[i - 1].y) * f];
      }
    }
    const last = pts[pts.length - 1];
    return [last.x, last.y];
  }

  /** Creates and removes the `.march` elements to match the marching generals. */
  function renderMarches() {
    const marching = new Map();
    for (const g of S.generals.values()) if (g.status === "marching" && g.march) marching.set(g.id, g);
    for (const [id, e] of MAP.marchEls) {
      if (!marching.has(id)) {
        e.g.remove();
        e.route.remove();
        MAP.marchEls.delete(id);
      }
    }
    for (const g of marching.values()) {
      let e = MAP.marchEls.get(g.id);
      if (!e) {
        const el2 = svgEl("g", { class: "march", "data-id": g.id }, MAP.layers.marches);
        const title = svgEl("title", null, el2);
        const body = svgEl("g", { class: "march-body", transform: symbolTransform() }, el2);
        const shape = svgEl("path", { class: "march-shape", d: "M0,-8 L7,6 L-7,6 Z" }, body);
        const route = svgEl("polyline", { class: "march-route", "vector-effect": "non-scaling-stroke" }, MAP.layers.routes);
        const id = g.id;
        el2.addEventListener("click", guard(() => select("general", id, false)));
        e = { g: el2, body, shape, title, route, planKey: "", plan: null, key: "", at: "" };
        MAP.marchEls.set(g.id, e);
      }
      const m = g.march;
      const planKey = `${(m.path || []).join(",")}|${m.started_at}|${m.eta}|${S.cities.size}`;
      if (planKey !== e.planKey) {
        e.planKey = planKey;
        e.plan = marchPlan(m);
        e.route.setAttribute("points", e.plan ? e.plan.pts.map((c) => `${c.x},${c.y}`).join(" ") : "");
      }
      const text = `${g.name} marching to ${cName(m.to)}`;
      const selected = S.selection && S.selection.kind === "general" && S.selection.id === g.id;
      const key = `${text}|${nColor(g.nation)}|${selected}`;
      if (key !== e.key) {
        e.key = key;
        e.g.setAttribute("aria-label", text);
        e.title.textContent = text;
        e.shape.setAttribute("fill", nColor(g.nation));
        e.g.setAttribute("class", "march" + (selected ? " selected" : ""));
        e.route.setAttribute("class", "march-route" + (selected ? " selected" : ""));
      }
    }
    scaleSymbols();
  }

  /** Every animation frame: each marching general's position, from the world clock. */
  function moveMarches(now) {
    for (const [id, e] of MAP.marchEls) {
      let t = null;
      if (e.plan) {
        const [x, y] = marchPosition(e.plan, now);
        t = `translate(${x.toFixed(2)} ${y.toFixed(2)})`;
      } else {
        const g = S.generals.get(id);
        const c = g && S.cities.get(g.city);
        if (c) t = `translate(${c.x} ${c.y})`;
      }
      if (t && t !== e.at) {
        e.at = t;
        e.g.setAttribute("transform", t);
      }
    }
  }

  // --- pan and zoom (the SVG viewBox) ---------------------------------------------------

  function mapSize() {
    const r = MAP.svg.getBoundingClientRect();
    return { w: Math.max(1, r.width), h: Math.max(1, r.height), left: r.left, top: r.top };
  }

  function applyView() {
    const { w, h } = mapSize();
    const v = MAP.view;
    MAP.svg.setAttribute("viewBox", `${(v.cx - (w * v.s) / 2).toFixed(2)} ${(v.cy - (h * v.s) / 2).toFixed(2)} ${(w * v.s).toFixed(2)} ${(h * v.s).toFixed(2)}`);
    scaleSymbols();
  }

  let symbolScale = 0;
  const symbolTransform = () => (symbolScale ? `scale(${symbolScale.toFixed(3)})` : null);

  /** Symbols and labels keep about the same size on screen whatever the zoom. */
  function scaleSymbols() {
    const k = Math.min(3, Math.max(0.45, MAP.view.s));
    if (k === symbolScale) return; // new symbols are created at the current scale
    symbolScale = k;
    const t = symbolTransform();
    for (const e of [...MAP.cityEls.values(), ...MAP.marchEls.values()]) e.body.setAttribute("transform", t);
  }

  function fitView() {
    if (!S.cities.size) return;
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (const c of S.cities.values()) {
      x0 = Math.min(x0, c.x); y0 = Math.min(y0, c.y);
      x1 = Math.max(x1, c.x); y1 = Math.max(y1, c.y);
    }
    const pad = 45;
    const { w, h } = mapSize();
    MAP.fitS = Math.max((x1 - x0 + 2 * pad) / w, (y1 - y0 + 2 * pad) / h, 0.05);
    MAP.view = { cx: (x0 + x1) / 2, cy: (y0 + y1) / 2, s: MAP.fitS };
    MAP.fitted = true;
    MAP.moved = false;
    applyView();
  }

  /** Zooms by `factor` keeping the map point under (px, py) (CSS px in the SVG) in place. */
  function zoomAt(point, factor) {
    const { w, h } = mapSize();
    const [px, py] = point || [w / 2, h / 2];
    const v = MAP.view;
    const mx = v.cx + (px - w / 2) * v.s;
    const my = v.cy + (py - h / 2) * v.s;
    const s = Math.min(MAP.fitS * 3, Math.max(MAP.fitS / 25, v.s / factor));
    MAP.view = { cx: mx - (px - w / 2) * s, cy: my - (py - h / 2) * s, s };
    MAP.moved = true;
    applyView();
  }

  function panBy(dx, dy) {
    MAP.view.cx -= dx * MAP.view.s;
    MAP.view.cy -= dy * MAP.view.s;
    MAP.moved = true;
    applyView();
  }

  function centerOn(x, y) {
    MAP.view.cx = x;
    MAP.view.cy = y;
    MAP.moved = true;
    applyView();
  }

  function initPanZoom() {
    const svg = MAP.svg;
    const ptrs = new Map(); // pointerId -> {x, y}
    let dragging = false;
    let start = null;
    let pinch = null;
    let swallowClick = false;

    const local = (e) => {
      const r = mapSize();
      return [e.clientX - r.left, e.clientY - r.top];
    };

    svg.addEventListener("pointerdown", guard((e) => {
      if (e.pointerType === "mouse" && e.button !== 0) return;
      swallowClick = false;
      ptrs.set(e.pointerId, { x: e.clientX, y: e.clientY });
      if (ptrs.size === 1) {
        start = { x: e.clientX, y: e.clientY };
        dragging = false;
      } else if (ptrs.size === 2) {
        const [a, b] = [...ptrs.values()];
        pinch = { d: Math.hypot(a.x - b.x, a.y - b.y), mx: (a.x + b.x) / 2, my: (a.y + b.y) / 2 };
        dragging = true;
      }
    }));

    svg.addEventListener("pointermove", guard((e) => {
      const p = ptrs.get(e.pointerId);
      if (!p) return;
      const dx = e.clientX - p.x;
      const dy = e.clientY - p.y;
      p.x = e.clientX;
      p.y = e.clientY;
      if (ptrs.size === 1) {
        if (!dragging && Math.hypot(e.clientX - start.x, e.clientY - start.y) > 5) {
          dragging = true;
          // Captured only once it is a drag, so a plain click still reaches its city.
          try {
            svg.setPointerCapture(e.pointerId);
          } catch (err) {
            /* the pointer is gone */
          }
        }
        if (dragging) panBy(dx, dy);
      } else if (ptrs.size === 2 && pinch) {
        const [a, b] = [...ptrs.values()];
        const d = Math.hypot(a.x - b.x, a.y - b.y);
        const mx = (a.x + b.x) / 2;
        const my = (a.y + b.y) / 2;
        const r = mapSize();
        if (pinch.d > 0 && d > 0) zoomAt([mx - r.left, my - r.top], d / pinch.d);
        panBy(mx - pinch.mx, my - pinch.my);
        pinch = { d, mx, my };
      }
    }));

    const end = (e) => {
      if (!ptrs.delete(e.pointerId)) return;
      if (dragging) swallowClick = true;
      if (ptrs.size < 2) pinch = null;
      if (ptrs.size === 1) {
        const [q] = [...ptrs.values()];
        start = { x: q.x, y: q.y };
      }
      if (ptrs.size === 0) dragging = false;
    };
    svg.addEventListener("pointerup", guard(end));
    svg.addEventListener("pointercancel", guard(end));
    // A drag ends with a click: not a selection.
    svg.addEventListener("click", (e) => {
      if (swallowClick) {
        swallowClick = false;
        e.stopPropagation();
        e.preventDefault();
      }
    }, true);

    svg.addEventListener("wheel", guard((e) => {
      e.preventDefault();
      const unit = e.deltaMode === 1 ? 16 : e.deltaMode === 2 ? 400 : 1;
      zoomAt(local(e), Math.exp((-e.deltaY * unit) / 600));
    }), { passive: false });
  }

  // ===================================================================================
  // 7. Panels: date and speed, leaderboard, nations, selection, battles, feed
  // ===================================================================================

  let lastDateText = "";
  function renderClock() {
    const text = S.world ? fmtDateLong(dateAt(gameNow())) : "—";
    if (text !== lastDateText) {
      lastDateText = text;
      $("date").textContent = text;
    }
    if (hook.connection === "reconnecting") setConnection("reconnecting"); // the countdown
  }

  function fmtDateLong(d) {
    return d ? `Year ${d.year}, month ${d.month}, day ${d.day}, hour ${d.hour}` : "—";
  }

  function renderSpeed() {
    const w = S.world;
    if (!w) return;
    if (w.paused) {
      $("speed").textContent = `paused (speed ${w.speed}×)`;
      return;
    }
    const eff = Number.isFinite(w.effective_speed) ? w.effective_speed : w.speed;
    $("speed").textContent = `speed ${eff.toFixed(eff < 10 ? 1 : 0)}×` + (Math.abs(eff - w.speed) > 0.05 * w.speed ? ` (set ${w.speed}×)` : "");
  }

  function renderLeaderboard() {
    for (const b of document.querySelectorAll("#leaderboard-tabs button")) {
      b.setAttribute("aria-selected", String(b.dataset.by === S.leaderboard.by));
    }
    const unit = (v) => (S.leaderboard.by === "cities" ? (v === 1 ? "city" : "cities") : S.leaderboard.by);
    replaceIfChanged(
      $("leaderboard-list"),
      S.leaderboard.rows.map((r) =>
        el("li", null, swatch(nColor(r.nation)), link("nation", r.nation, r.name), el("span", { class: "value", text: `${num(r.value)} ${unit(r.value)}` })),
      ),
    );
  }

  function renderNations() {
    const list = [...S.nations.values()].sort((a, b) => (a.status === b.status ? a.name.localeCompare(b.name) : a.status === "active" ? -1 : 1));
    replaceIfChanged(
      $("nations"),
      list.map((n) => {
        const cities = [...S.cities.values()].filter((c) => c.nation === n.id).length;
        return el(
          "li",
          { class: n.status === "destroyed" ? "destroyed" : null },
          swatch(nColor(n.id)),
          link("nation", n.id, n.name),
          el("span", { class: "value", text: n.status === "destroyed" ? "destroyed" : `${cities} ${cities === 1 ? "city" : "cities"}` }),
        );
      }),
    );
  }

  function renderBattles() {
    const list = [...S.battles.values()].sort((a, b) => (b.started_at || 0) - (a.started_at || 0));
    const ul = $("battles");
    if (!list.length) {
      replaceIfChanged(ul, [el("li", { class: "empty", text: "No battle under way." })]);
      return;
    }
    replaceIfChanged(
      ul,
      list.map((b) => {
        const alive = b.units_alive ? ` · units ${b.units_alive.attacker} : ${b.units_alive.defender}` : "";
        return el(
          "li",
          null,
          el("button", { type: "button", class: "battle-open", "data-battle": b.id, text: `⚔ ${cName(b.city)}` }),
          el("span", { class: "value", text: `${sideLabel(b.attacker)} vs ${b.defender && b.defender.nation ? nName(b.defender.nation) : "neutral"}${alive}` }),
        );
      }),
    );
  }

  // --- the selection: one entity at a time, its topic subscribed while selected ------------

  function select(kind, id, center) {
    const topic = `${kind}:${id}`;
    if (S.selection && S.selection.topic === topic) {
      if (center) centerOnEntity(kind, id);
      return;
    }
    if (S.selection) unsubscribeTopic(S.selection.topic);
    S.selection = { kind, id, topic };
    subscribeTopic(topic); // pushes its state (with `version`) at once and on each change
    if (center) centerOnEntity(kind, id);
    markDirty("details", "map", "marches");
  }

  function deselect() {
    if (!S.selection) return;
    unsubscribeTopic(S.selection.topic);
    S.selection = null;
    markDirty("details", "map", "marches");
  }

  function centerOnEntity(kind, id) {
    if (kind === "city") {
      const c = S.cities.get(id);
      if (c) centerOn(c.x, c.y);
    } else if (kind === "general") {
      const e = MAP.marchEls.get(id);
      const g = S.generals.get(id);
      if (e && e.plan) centerOn(...marchPosition(e.plan, gameNow()));
      else if (g && S.cities.get(g.city)) centerOn(S.cities.get(g.city).x, S.cities.get(g.city).y);
    } else if (kind === "nation") {
      const n = S.nations.get(id);
      const c = n && S.cities.get(n.capital);
      if (c) centerOn(c.x, c.y);
    }
  }

  function row(label, ...value) {
    return [el("dt", { text: label }), el("dd", null, ...value)];
  }

  function generalList(gens) {
    if (!gens.length) return el("p", { class: "empty", text: "None." });
    return el(
      "ul",
      { class: "entity-list" },
      gens
        .sort((a, b) => (b.troops || 0) - (a.troops || 0))
        .map((g) => el("li", null, link("general", g.id, g.name), el("span", { class: "value", text: `${num(g.troops)} ${g.troop_type || ""} · ${words(g.status)}` }))),
    );
  }

  function renderDetails() {
    const box = $("details");
    const sel = S.selection;
    $("deselect").hidden = !sel;
    if (!sel) {
      replaceIfChanged(box, [el("p", { class: "empty", text: "Select a city on the map, or a nation or general in the lists." })]);
      return;
    }
    let content;
    if (sel.kind === "city") content = cityDetails(S.cities.get(sel.id));
    else if (sel.kind === "general") content = generalDetails(S.generals.get(sel.id));
    else content = nationDetails(S.nations.get(sel.id));
    replaceIfChanged(box, content || [el("p", { class: "empty", text: "Loading…" })]);
  }

  function cityDetails(c) {
    if (!c) return null;
    const n = nation(c.nation);
    const battle = underAttack(c.id);
    const gens = [...S.generals.values()].filter((g) => g.city === c.id);
    return [
      el("h3", null, swatch(nColor(c.nation)), c.name, n && n.capital === c.id ? el("span", { class: "tag", text: "capital" }) : null),
      battle ? el("button", { type: "button", class: "attack", "data-battle": battle.id, text: "⚔ Under attack: watch the battle" }) : null,
      el(
        "dl",
        null,
        row("Nation", c.nation ? link("nation", c.nation, nName(c.nation)) : "neutral"),
        row("Population", num(c.population)),
        row("Agriculture / commerce", `${num(c.agriculture)} / ${num(c.commerce)}`),
        row("Defense / walls", `${num(c.defense)} / ${num(c.walls)}`),
        row("Gold / rice", `${num(c.gold)} / ${num(c.rice)}`),
        row("Garrison", num(c.garrison)),
        row("Roads", ...(c.neighbors || []).flatMap((r, i) => [i ? ", " : "", link("city", r.city, cName(r.city)), ` (${r.distance} li)`])),
      ),
      el("h4", { text: "Generals here" }),
      generalList(gens),
    ];
  }

  function generalDetails(g) {
    if (!g) return null;
    const m = g.march;
    const now = gameNow();
    return [
      el("h3", null, swatch(nColor(g.nation)), g.name, g.owner ? el("span", { class: "tag", text: "player " + g.owner }) : null),
      el(
        "dl",
        null,
        row("Nation", g.nation ? link("nation", g.nation, nName(g.nation)) : "ronin"),
        row("City", g.city ? link("city", g.city, cName(g.city)) : "—"),
        row("Status", words(g.status) + (g.protected ? " · protected" : "") + (g.ai_delegate ? " · AI delegate" : "")),
        m ? row("March", link("city", m.from, cName(m.from)), " → ", link("city", m.to, cName(m.to)), ` · arrives ${fmtTime(m.eta)} (in ${fmtSpan(m.eta - now)})`) : null,
        g.order ? row("Order", `${g.order.type} · ${g.order.status}${g.order.completes_at ? ` · until ${fmtTime(g.order.completes_at)}` : ""}`) : null,
        row("Troops", `${num(g.troops)} ${g.troop_type || ""}`),
        row("Training / morale", `${num(g.training)} / ${num(g.morale)}`),
        row("Lead / str / int / pol / cha", [g.leadership, g.strength, g.intelligence, g.politics, g.charm].map(num).join(" / ")),
        row("PCP / MCP", `${num(g.pcp)}/${num(g.pcp_max)} · ${num(g.mcp)}/${num(g.mcp_max)}`),
        g.position ? row("Position", words(g.position.name) + (g.position.city ? ` of ${cName(g.position.city)}` : "")) : null,
      ),
    ];
  }

  function nationDetails(n) {
    if (!n) return null;
    const rel = { war: [], alliance: [] };
    for (const [other, r] of Object.entries(n.relations || {})) if (rel[r]) rel[r].push(other);
    const links = (ids) => (ids.length ? ids.flatMap((id, i) => [i ? ", " : "", link("nation", id, nName(id))]) : ["none"]);
    const cities = [...S.cities.values()].filter((c) => c.nation === n.id).sort((a, b) => a.name.localeCompare(b.name));
    const gens = [...S.generals.values()].filter((g) => g.nation === n.id);
    return [
      el("h3", null, swatch(nColor(n.id)), n.name, n.status === "destroyed" ? el("span", { class: "tag", text: "destroyed" }) : null),
      el(
        "dl",
        null,
        row("Ruler", n.ruler ? link("general", n.ruler, gName(n.ruler)) : "—"),
        row("Capital", n.capital ? link("city", n.capital, cName(n.capital)) : "—"),
        row("Gold / rice", `${num(n.gold)} / ${num(n.rice)}`),
        row("Tax rate", `${n.tax_rate}%`),
        row("At war with", ...links(rel.war)),
        row("Allied with", ...links(rel.alliance)),
      ),
      el("h4", { text: `Cities (${cities.length})` }),
      cities.length
        ? el("ul", { class: "entity-list" }, cities.map((c) => el("li", null, link("city", c.id, c.name), el("span", { class: "value", text: `garrison ${num(c.garrison)}` }))))
        : el("p", { class: "empty", text: "None." }),
      el("h4", { text: `Generals (${gens.length})` }),
      generalList(gens),
    ];
  }

  function initPanels() {
    // One listener for every entity link and battle button in the page.
    document.addEventListener("click", guard((e) => {
      const t = e.target instanceof Element ? e.target : null;
      const sel = t && t.closest("[data-sel]");
      if (sel) {
        const [kind, id] = sel.getAttribute("data-sel").split(/:(.*)/s);
        select(kind, id, true);
        return;
      }
      const b = t && t.closest("[data-battle]");
      if (b) openBattle(b.getAttribute("data-battle"));
    }));
    document.addEventListener("keydown", guard((e) => {
      if (e.key !== "Escape") return;
      if (BV) closeBattle();
      else deselect();
    }));
    $("deselect").addEventListener("click", guard(deselect));
    for (const b of document.querySelectorAll("#leaderboard-tabs button")) {
      b.addEventListener("click", guard(() => {
        S.leaderboard.by = b.dataset.by;
        S.leaderboard.rows = [];
        markDirty("leaderboard");
        background(loadLeaderboard());
      }));
    }
    $("feed-routine").addEventListener("change", guard((e) => $("feed").classList.toggle("hide-routine", !e.target.checked)));
  }

  // ===================================================================================
  // 8. The battle view: battle:ID's state and frames on a canvas
  // ===================================================================================

  const SIDE_COLORS = ["#ff7043", "#42a5f5"]; // attacker, defender
  const UNIT_RADIUS = { infantry: 1.5, cavalry: 1.8, archer: 1.4 }; // metres (assets/troops.toml)

  // A unit's radius: the data's (GET /api/rules), else the shipped one.
  function unitRadius(kind) {
    const spec = S.troops && S.troops[kind];
    return (spec && Number(spec.radius)) || UNIT_RADIUS[kind] || 1.5;
  }

  let BV = null; // the open battle view

  function openBattle(id) {
    if (!id) return;
    if (BV && BV.id === id) return;
    if (BV) closeBattle();
    BV = {
      id,
      view: S.battles.get(id) || null,
      prev: null, // { t, units: Map(id -> unit) }: the frame before the last
      curr: null, // the last frame
      maxHp: new Map(), // hp a unit was first seen with, to shade the wounded
      bounds: null, // field ∪ every unit seen, so the view does not jump
      frames: 0,
      result: null,
      ended: null,
      error: null,
    };
    hook.battle = { id, status: BV.view ? BV.view.status : "active", tick: null, frames: 0, units: [], result: null };
    $("battle").hidden = false;
    subscribeTopic("battle:" + id); // its read model, then frames at 10 Hz, then the result
    markDirty("battleHud");
  }

  function closeBattle() {
    if (!BV) return;
    unsubscribeTopic("battle:" + BV.id);
    BV = null;
    hook.battle = null;
    $("battle").hidden = true;
  }

  function battleState(view) {
    if (!BV || BV.id !== view.id) return;
    if (BV.view && typeof BV.view.version === "number" && view.version < BV.view.version) return;
    BV.view = view;
    hook.battle.status = view.status;
    if (view.status === "finished") {
      BV.result = view;
      hook.battle.result = view;
    }
    markDirty("battleHud");
  }

  function onFrame(frame, result) {
    if (!BV || !frame || frame.battle !== BV.id) return;
    const units = new Map();
    for (const u of frame.units || []) {
      units.set(u[0], u);
      if (!BV.maxHp.has(u[0]) || BV.maxHp.get(u[0]) < u[5]) BV.maxHp.set(u[0], u[5]);
      growBounds(u[3], u[4]);
    }
    BV.prev = BV.curr;
    BV.curr = { t: performance.now(), tick: frame.tick, units };
    BV.frames += 1;
    Object.assign(hook.battle, { tick: frame.tick, frames: BV.frames, units: frame.units || [] });
    if (frame.last && result) {
      // The last frame comes with the finished battle's read model.
      BV.prev = null;
      BV.result = result;
      BV.view = result;
      Object.assign(hook.battle, { status: result.status || "finished", result });
    }
    markDirty("battleHud");
  }

  function growBounds(x, y) {
    const b = BV.bounds;
    if (!b) BV.bounds = { x0: x, y0: y, x1: x, y1: y };
    else {
      b.x0 = Math.min(b.x0, x); b.y0 = Math.min(b.y0, y);
      b.x1 = Math.max(b.x1, x); b.y1 = Math.max(b.y1, y);
    }
  }

  /** The rectangle to show: the field (when the view has one) and every unit seen. */
  function battleRect() {
    const f = BV.view && BV.view.field;
    let r = null;
    if (f && f.max && f.min && f.max[0] > f.min[0] && f.max[1] > f.min[1]) {
      r = { x0: f.min[0], y0: f.min[1], x1: f.max[0], y1: f.max[1] };
    }
    const b = BV.bounds;
    if (b) {
      const pad = 10;
      r = r
        ? { x0: Math.min(r.x0, b.x0 - pad), y0: Math.min(r.y0, b.y0 - pad), x1: Math.max(r.x1, b.x1 + pad), y1: Math.max(r.y1, b.y1 + pad) }
        : { x0: b.x0 - pad, y0: b.y0 - pad, x1: b.x1 + pad, y1: b.y1 + pad };
    }
    return r || { x0: 0, y0: 0, x1: 100, y1: 100 };
  }

  function drawBattle(now) {
    const canvas = $("battle-canvas");
    const rect = canvas.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(rect.width * dpr));
    const h = Math.max(1, Math.round(rect.height * dpr));
    if (canvas.width !== w || canvas.height !== h) {
      canvas.width = w;
      canvas.height = h;
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const W = rect.width;
    const H = rect.height;
    ctx.fillStyle = "#1b2016";
    ctx.fillRect(0, 0, W, H);
    const r = battleRect();
    const margin = 18;
    const scale = Math.max(0.01, Math.min((W - 2 * margin) / (r.x1 - r.x0), (H - 2 * margin) / (r.y1 - r.y0)));
    const ox = (W - (r.x1 - r.x0) * scale) / 2 - r.x0 * scale;
    const oy = (H - (r.y1 - r.y0) * scale) / 2 - r.y0 * scale;
    const X = (x) => ox + x * scale;
    const Y = (y) => oy + y * scale;

    // The field, west (attacker) to east (defender).
    const f = BV.view && BV.view.field;
    if (f && f.max && f.max[0] > f.min[0]) {
      ctx.fillStyle = "#34442a";
      ctx.fillRect(X(f.min[0]), Y(f.min[1]), (f.max[0] - f.min[0]) * scale, (f.max[1] - f.min[1]) * scale);
      ctx.strokeStyle = "rgba(255,255,255,0.15)";
      ctx.lineWidth = 1;
      ctx.strokeRect(X(f.min[0]), Y(f.min[1]), (f.max[0] - f.min[0]) * scale, (f.max[1] - f.min[1]) * scale);
      if (f.walls) drawWalls(ctx, f, X, Y, scale);
    }

    // Units, interpolated between the last two frames by unit id: the view runs one frame
    // (0.1 s) behind, and every unit moves smoothly.
    const curr = BV.curr;
    if (curr) {
      const prev = BV.prev;
      const span = prev ? Math.min(400, Math.max(40, curr.t - prev.t)) : 100;
      const a = prev ? Math.max(0, Math.min(1, (now - curr.t) / span)) : 1;
      for (const u of curr.units.values()) {
        let x = u[3];
        let y = u[4];
        const p = prev && prev.units.get(u[0]);
        if (p) {
          x = p[3] + (u[3] - p[3]) * a;
          y = p[4] + (u[4] - p[4]) * a;
        }
        const max = BV.maxHp.get(u[0]) || u[5] || 1;
        ctx.globalAlpha = 0.35 + 0.65 * Math.max(0, Math.min(1, u[5] / max));
        ctx.fillStyle = SIDE_COLORS[u[1]] || "#ccc";
        drawUnit(ctx, u[2], X(x), Y(y), Math.max(2.5, unitRadius(u[2]) * scale));
      }
      ctx.globalAlpha = 1;
    } else {
      ctx.fillStyle = "#c8bfa8";
      ctx.font = "14px system-ui, sans-serif";
      ctx.textAlign = "center";
      ctx.fillText(BV.error || "Waiting for the battle's frames…", W / 2, H / 2);
    }
  }

  /**
   * The wall (read model `field.walls`): centred on x, `thickness` wide, across the whole
   * field, open `gate_width` wide around each y of `gates`; a gate is a gap between towers.
   */
  function drawWalls(ctx, f, X, Y, scale) {
    const wl = f.walls;
    const half = (wl.thickness || 1) / 2;
    const gw = (wl.gate_width || 0) / 2;
    const gates = [...(wl.gates || [])].sort((a, b) => a - b);
    const width = Math.max(3, 2 * half * scale);
    const left = X(wl.x) - width / 2;
    ctx.fillStyle = "#9b8f7a";
    let y = f.min[1];
    for (const g of gates) {
      if (g - gw > y) ctx.fillRect(left, Y(y), width, (g - gw - y) * scale);
      y = Math.max(y, g + gw);
    }
    if (f.max[1] > y) ctx.fillRect(left, Y(y), width, (f.max[1] - y) * scale);
    const tower = width + 4;
    ctx.fillStyle = "#e2c783";
    for (const g of gates) {
      for (const edge of [g - gw, g + gw]) ctx.fillRect(X(wl.x) - tower / 2, Y(edge) - tower / 2, tower, tower);
    }
  }

  /** Infantry a circle, cavalry a triangle, archers a square. */
  function drawUnit(ctx, kind, x, y, r) {
    ctx.beginPath();
    if (kind === "cavalry") {
      ctx.moveTo(x, y - r * 1.2);
      ctx.lineTo(x + r * 1.1, y + r * 0.8);
      ctx.lineTo(x - r * 1.1, y + r * 0.8);
      ctx.closePath();
    } else if (kind === "archer") {
      ctx.rect(x - r * 0.85, y - r * 0.85, r * 1.7, r * 1.7);
    } else {
      ctx.arc(x, y, r, 0, Math.PI * 2);
    }
    ctx.fill();
  }

  let hudAt = 0;
  /** The text around the canvas: sides, generals, units alive, the result. */
  function renderBattleHud(now) {
    if (!BV) return;
    if (now - hudAt < 200) {
      markDirty("battleHud"); // at most 5 times a second; try again next frame
      return;
    }
    hudAt = now;
    const v = BV.view;
    $("battle-title").textContent = `Battle of ${cName(v ? v.city : battleCity(BV.id))}`;
    const counts = [0, 0];
    if (BV.curr) for (const u of BV.curr.units.values()) counts[u[1]] = (counts[u[1]] || 0) + 1;
    const alive = v && v.units_alive ? [v.units_alive.attacker, v.units_alive.defender] : counts;
    ["attacker", "defender"].forEach((name, i) => {
      const side = v && v[name];
      const gens = (side && side.generals) || [];
      const label = side && side.nation ? nName(side.nation) : name === "defender" ? "neutral" : "";
      $(`battle-${name}-name`).textContent = `${name === "attacker" ? "Attacker (west)" : "Defender (east)"}${label ? " · " + label : ""}`;
      $(`battle-${name}-alive`).textContent = `units on the field: ${num(alive[i])}`;
      replaceIfChanged(
        $(`battle-${name}-generals`),
        gens.length
          ? gens.map((id) => el("li", null, link("general", id, gName(id)), el("span", { class: "value", text: `${num((S.generals.get(id) || {}).troops)} troops` })))
          : [el("li", { class: "empty", text: name === "defender" ? "the garrison" : "—" })],
      );
    });
    const status = BV.result ? "finished" : v ? v.status : "active";
    const secs = v && v.steps ? Math.round(v.steps / 60) : 0;
    $("battle-status").textContent = `${status}${BV.curr ? ` · step ${BV.curr.tick}` : ""}${secs ? ` · ${Math.floor(secs / 60)} min ${secs % 60} s of battle` : ""}`;
    const res = BV.result || (v && v.status === "finished" ? v : null) || (BV.ended ? { ...BV.ended } : null);
    const box = $("battle-result");
    box.hidden = !(res && res.winner);
    if (res && res.winner) {
      const winnerSide = v && v[res.winner];
      const cas = Object.entries(res.casualties || {});
      const total = cas.reduce((a, [, n]) => a + (n || 0), 0);
      replaceIfChanged(box, [
        el("strong", { text: `The ${res.winner}${winnerSide ? ` (${sideLabel(winnerSide)})` : ""} won.` }),
        el("p", { text: `Why it ended: ${END_WORDS[res.reason] || words(res.reason)}.` }),
        el("p", { text: `Casualties: ${num(total)} soldiers.` }),
        cas.length
          ? el("ul", { class: "entity-list" }, cas.map(([id, n]) => el("li", null, id === "garrison" ? el("span", { text: "garrison" }) : link("general", id, gName(id)), el("span", { class: "value", text: num(n) }))))
          : null,
      ]);
    }
  }

  function initBattle() {
    $("battle-close").addEventListener("click", guard(closeBattle));
  }

  // ===================================================================================
  // 9. Login, joining and commands
  // ===================================================================================

  let commandCounter = 0;
  const myGeneralId = () => (S.auth.player ? "g-" + S.auth.player : null);

  function loadSession() {
    try {
      S.auth.token = sessionStorage.getItem("tianxia.token");
      S.auth.player = sessionStorage.getItem("tianxia.player");
    } catch (err) {
      S.auth.token = null;
    }
    if (!S.auth.token || !S.auth.player) S.auth = { token: null, player: null };
  }

  function saveSession(token, player) {
    S.auth = { token, player };
    try {
      sessionStorage.setItem("tianxia.token", token);
      sessionStorage.setItem("tianxia.player", player);
    } catch (err) {
      /* storage disabled: the session lasts as long as the page */
    }
    S.orders.clear();
    markDirty("player", "orders");
  }

  function forgetSession(message) {
    S.auth = { token: null, player: null };
    try {
      sessionStorage.removeItem("tianxia.token");
      sessionStorage.removeItem("tianxia.player");
    } catch (err) {
      /* nothing kept */
    }
    S.orders.clear();
    markDirty("player", "orders");
    playerMessage(message || "");
  }

  function playerMessage(text, isError) {
    const m = $("player-msg");
    m.textContent = text;
    m.classList.toggle("error", !!isError);
  }

  async function authenticate(kind) {
    const name = $("login-name").value.trim();
    const password = $("login-password").value;
    if (!name || !password) {
      playerMessage("Enter a name and a password.", true);
      return;
    }
    playerMessage(kind === "register" ? "Registering…" : "Logging in…");
    const r = await http("POST", `/api/auth/${kind}`, { name, password });
    if (!r.ok) {
      playerMessage(r.error.message, true);
      return;
    }
    $("login-password").value = "";
    saveSession(r.data.token, r.data.player_id);
    playerMessage(kind === "register" ? `Registered as ${r.data.player_id}.` : `Logged in as ${r.data.player_id}.`);
    // On an open socket: authenticate it, then subscribe `orders` (on the `authenticated`
    // reply). A socket still connecting will send the token when it opens.
    if (WS.authed) reconnectNow();
    else send({ op: "auth", token: S.auth.token }, { kind: "auth" });
  }

  async function logout() {
    const r = await http("POST", "/api/auth/logout", undefined, true);
    forgetSession(r.ok || r.status === 401 ? "Logged out." : `Logged out here (${r.error.message}).`);
    reconnectNow(); // a connection without the player
  }

  async function join() {
    const name = $("join-name").value.trim() || S.auth.player;
    const body = { name };
    const troop = $("join-troop").value;
    if (troop) body.troop_type = troop;
    const nationId = $("join-nation").value;
    if (nationId) body.nation = nationId;
    playerMessage("Joining…");
    const r = await http("POST", "/api/join", body, true);
    if (!r.ok) {
      if (r.status === 401) forgetSession("Your session has expired; log in again.");
      playerMessage(r.error.message, true);
      return;
    }
    if (r.status === 201) {
      upsert("general", r.data);
      playerMessage(`You joined as ${r.data.name}${r.data.nation ? ` of ${nName(r.data.nation)}` : " (a ronin)"}, at ${cName(r.data.city)}.`);
    } else {
      upsertOrder({ order_id: r.data.order_id, type: "JOIN", general: null, status: r.data.status, revision: 0, _note: name });
      playerMessage("Your joining is queued; its order below shows how it goes.");
    }
    markDirty("player");
  }

  /** POST /api/commands with a fresh id; the order's progress then comes on `orders`. */
  async function command(type, args, note) {
    const general = myGeneralId();
    if (!general) return;
    commandCounter += 1;
    const id = `web-${Date.now().toString(36)}-${commandCounter}`;
    const r = await http("POST", "/api/commands", { id, type, general, args }, true);
    if (!r.ok) {
      if (r.status === 401) forgetSession("Your session has expired; log in again.");
      playerMessage(`${type}: ${r.error.message}`, true);
      return;
    }
    playerMessage(`${type} sent.`);
    upsertOrder({ order_id: r.data.order_id, type, general, status: r.data.status, reason: null, revision: 0, message: null, _note: note });
  }

  const STAGE = { queued: 0, accepted: 1, rejected: 2, completed: 2, cancelled: 2 };

  /** Orders only move forward within a revision (docs/http.md#revisions). */
  function upsertOrder(o) {
    if (!o || !o.order_id) return;
    const old = S.orders.get(o.order_id);
    if (old) {
      if ((o.revision || 0) < (old.revision || 0)) return;
      if ((o.revision || 0) === (old.revision || 0) && STAGE[o.status] < STAGE[old.status]) return;
      S.orders.set(o.order_id, { ...old, ...o, _note: o._note || old._note });
    } else {
      S.orders.set(o.order_id, o);
      while (S.orders.size > CONFIG.ordersMax) S.orders.delete(S.orders.keys().next().value);
    }
    markDirty("orders");
    if (["completed", "rejected", "cancelled"].includes(o.status) && o.general) queueRefresh("general:" + o.general);
  }

  function renderOrders() {
    const list = [...S.orders.values()].reverse(); // newest first
    replaceIfChanged(
      $("orders"),
      list.map((o) => {
        let detail = "";
        if (o.status === "accepted" && o.completes_at) detail = ` · until ${fmtTime(o.completes_at)}`;
        if ((o.status === "rejected" || o.status === "cancelled") && (o.reason || o.message)) {
          detail = ` · ${o.reason || ""}${o.message ? `: ${o.message}` : ""}`;
        }
        return el(
          "li",
          { class: "order status-" + o.status, "data-order": o.order_id },
          el("span", { class: "order-type", text: `${o.type}${o._note ? " " + o._note : ""}` }),
          el("span", { class: "order-status", text: o.status }),
          el("span", { class: "order-detail", text: detail.replace(/^ · /, "") }),
        );
      }),
    );
  }

  /** Refills a <select>, keeping its value. */
  function fillSelect(select, options) {
    const value = select.value;
    const key = options.map((o) => o.join("=")).join("|");
    if (select.dataset.key === key) return;
    select.dataset.key = key;
    select.replaceChildren(...options.map(([v, label]) => el("option", { value: v, text: label })));
    if (options.some(([v]) => v === value)) select.value = value;
  }

  // Troop types are data (a designer may add one): the JOIN form offers those of
  // GET /api/rules, and sends none unless one is picked, so the data's default applies.
  function loadTroops() {
    if (S.troopsAsked) return;
    S.troopsAsked = true;
    http("GET", "/api/rules").then((r) => {
      if (r.ok && r.data && r.data.troops && typeof r.data.troops === "object") {
        S.troops = r.data.troops;
        renderPlayer();
      } else {
        S.troopsAsked = false; // asked again on the next render
      }
    });
  }

  function renderPlayer() {
    const logged = !!S.auth.token;
    $("login-form").hidden = logged;
    $("account").hidden = !logged;
    if (!logged) return;
    $("player-name").textContent = S.auth.player;
    const me = S.generals.get(myGeneralId());
    $("join-form").hidden = !S.loaded || !!me;
    $("command-form").hidden = !me;
    fillSelect(
      $("join-nation"),
      [["", "none (a ronin)"]].concat([...S.nations.values()].filter((n) => n.status === "active").sort((a, b) => a.name.localeCompare(b.name)).map((n) => [n.id, n.name])),
    );
    if (!$("join-nation").dataset.touched && $("join-nation").value === "" && $("join-nation").options.length > 1) {
      $("join-nation").selectedIndex = 1;
    }
    if (!$("join-name").value) $("join-name").value = S.auth.player;
    loadTroops();
    if (S.troops) {
      fillSelect(
        $("join-troop"),
        [["", "the default"]].concat(Object.keys(S.troops).sort().map((t) => [t, t])),
      );
    }
    if (me) {
      const m = me.march;
      replaceIfChanged($("my-general"), [
        link("general", me.id, me.name),
        ` · ${me.nation ? nName(me.nation) : "ronin"} · ${m ? `marching to ${cName(m.to)}` : `at ${cName(me.city)}`} · ${words(me.status)} · ${num(me.troops)} ${me.troop_type || ""} · PCP ${num(me.pcp)} · MCP ${num(me.mcp)}`,
      ]);
      fillSelect(
        $("move-to"),
        [...S.cities.values()].filter((c) => c.id !== me.city).sort((a, b) => a.name.localeCompare(b.name)).map((c) => [c.id, `${c.name} (${c.nation ? nName(c.nation) : "neutral"})`]),
      );
    }
  }

  function initPlayer() {
    $("login-form").addEventListener("submit", guard((e) => {
      e.preventDefault(); // nothing is submitted by the browser: the page calls the API
      return authenticate("login");
    }));
    $("btn-register").addEventListener("click", guard(() => authenticate("register")));
    $("btn-logout").addEventListener("click", guard(logout));
    $("join-form").addEventListener("submit", guard((e) => {
      e.preventDefault();
      return join();
    }));
    $("join-nation").addEventListener("change", guard((e) => (e.target.dataset.touched = "1")));
    $("command-form").addEventListener("submit", guard((e) => e.preventDefault()));
    $("btn-move").addEventListener("click", guard(() => {
      const to = $("move-to").value;
      if (to) return command("MOVE", { to }, "to " + cName(to));
      return undefined;
    }));
    $("btn-train").addEventListener("click", guard(() => command("TRAIN", {})));
    $("btn-recruit").addEventListener("click", guard(() => {
      const amount = Math.round(Number($("recruit-amount").value));
      if (!(amount >= 1 && amount <= 5000)) {
        playerMessage("Recruit between 1 and 5,000 soldiers.", true);
        return undefined;
      }
      return command("RECRUIT", { amount }, num(amount));
    }));
  }

  // ===================================================================================
  // 10. The animation loop and start
  // ===================================================================================

  function render(now) {
    const d = new Set(dirty);
    dirty.clear();
    if (d.has("roads")) renderRoads();
    if (d.has("map")) renderCities();
    if (d.has("marches")) renderMarches();
    if (d.has("details")) renderDetails();
    if (d.has("nations")) renderNations();
    if (d.has("battles")) renderBattles();
    if (d.has("leaderboard")) renderLeaderboard();
    if (d.has("speed")) renderSpeed();
    if (d.has("player")) renderPlayer();
    if (d.has("orders")) renderOrders();
    if (d.has("battleHud")) renderBattleHud(now);
    if (d.has("feedNames")) fillFeedNames();
  }

  let detailsAt = 0;
  function frame(now) {
    requestAnimationFrame(frame);
    try {
      if (S.selection && S.selection.kind === "general" && now - detailsAt > 1000) {
        detailsAt = now; // "arrives in …" counts down
        markDirty("details");
      }
      render(now);
      moveMarches(gameNow());
      renderClock();
      if (BV) drawBattle(now);
    } catch (err) {
      showFault(err);
    }
  }

  function start() {
    loadSession();
    initMap();
    initPanels();
    initBattle();
    initPlayer();
    markDirty("player", "orders", "battles", "details", "leaderboard");
    setInterval(guard(() => hook.connection === "live" && refreshWorld()), CONFIG.worldRefreshMs);
    setInterval(guard(() => hook.connection === "live" && loadLeaderboard()), CONFIG.leaderboardRefreshMs);
    background(loadSnapshot()); // shown even if the WebSocket cannot connect; loaded again once it does
    connect();
    requestAnimationFrame(frame);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", guard(start));
  else guard(start)();
})();
