// The tianxia API documentation page (/docs): renders the OpenAPI document of
// /api/openapi.json and the WebSocket guide of /web/websocket.md.
// Everything that comes from the server reaches the page through textContent or text
// nodes, never innerHTML; links are limited to in-page anchors and same-origin paths.
"use strict";

const MAX_DEPTH = 6; // how deep inline schemas are nested before the page stops
const MAX_SHOWN = 200000; // characters of a "Try it" answer shown
const SCHEMA_PREFIX = "#/components/schemas/";

const $ = (id) => document.getElementById(id);
let schemas = {}; // components.schemas of the document
const usedIds = new Set(); // ids handed out, to keep them unique
const index = []; // filterable entries: { node, nav, text, kind }
const groups = []; // tag groups: { node, nav, items }
const wide = window.matchMedia("(min-width: 821px)");

// ---- small DOM helpers ---------------------------------------------------------

// el("a", { href: "#x", class: "y" }, child, "text", [more]) — strings become text nodes.
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c !== null && c !== undefined && c !== false) node.append(c instanceof Node ? c : String(c));
  }
  return node;
}

const slug = (s) =>
  String(s).toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "");

// A document-wide unique id built from `base`.
function uniqueId(base) {
  let id = base;
  for (let n = 2; usedIds.has(id); n++) id = `${base}-${n}`;
  usedIds.add(id);
  return id;
}

// Puts `sep` between the node lists of `parts`.
function joinNodes(parts, sep) {
  return parts.flatMap((p, i) => (i ? [sep, ...[p].flat()] : [p].flat()));
}

// ---- inline Markdown: `code`, **bold**, [text](url) ------------------------------

const INLINE = /`([^`]+)`|\*\*(.+?)\*\*|\[([^\]]+)\]\(([^)\s]+)\)/g;

function inline(raw, anchorPrefix = "") {
  const text = String(raw);
  const out = [];
  let last = 0;
  for (const m of text.matchAll(INLINE)) {
    if (m.index > last) out.push(text.slice(last, m.index));
    if (m[1] !== undefined) out.push(el("code", null, m[1]));
    else if (m[2] !== undefined) out.push(el("strong", null, inline(m[2], anchorPrefix)));
    else out.push(mdLink(m[3], m[4], anchorPrefix));
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

// Only in-page anchors and same-origin paths become links; other targets (sibling .md
// files, other schemes) stay plain text with the target as a tooltip.
function mdLink(text, url, anchorPrefix) {
  const kids = inline(text, anchorPrefix);
  if (url.startsWith("#")) return el("a", { href: `#${anchorPrefix}${slug(url.slice(1))}` }, kids);
  if (/^\/(?![/\\])/.test(url)) return el("a", { href: url }, kids); // not "//host" nor "/\host"
  return el("span", { class: "doc-ref", title: url }, kids);
}

// Markup-free text of an inline Markdown string (for ids, the navigation, the filter).
const plain = (text) => String(text).replace(INLINE, (m, c, b, t) => c ?? b ?? t);

// A description of the OpenAPI document: paragraphs split on blank lines.
function desc(text, cls = "desc") {
  const box = el("div", { class: cls });
  for (const para of String(text).split(/\n\s*\n/)) {
    if (para.trim()) box.append(el("p", null, inline(para.trim().replace(/\s*\n\s*/g, " "))));
  }
  return box;
}

// ---- schemas ---------------------------------------------------------------------

const refName = (ref) => (ref.startsWith(SCHEMA_PREFIX) ? ref.slice(SCHEMA_PREFIX.length) : null);
const isObj = (s) => s !== null && typeof s === "object" && !Array.isArray(s);
const isNull = (s) => isObj(s) && s.type === "null";

function refLink(ref) {
  const name = refName(ref);
  return name ? el("a", { class: "ref", href: `#schema-${name}` }, name) : el("code", null, ref);
}

// The schema a $ref names (one level), for "Try it" selects.
function resolve(s) {
  if (!isObj(s)) return s;
  if (s.$ref) return schemas[refName(s.$ref)] || s;
  const alts = (s.oneOf || s.anyOf || []).filter((a) => !isNull(a));
  return alts.length === 1 ? resolve(alts[0]) : s;
}

// Whether a schema needs a nested block below its one-line label.
function isComplex(s) {
  if (!isObj(s) || s.$ref) return false;
  if (s.properties && Object.keys(s.properties).length) return true;
  if (s.allOf) return s.allOf.length > 1 || s.allOf.some(isComplex);
  if (s.oneOf || s.anyOf) return (s.oneOf || s.anyOf).some(isComplex);
  if (s.prefixItems) return true;
  return isComplex(s.items) || isComplex(s.additionalProperties);
}

// The single value a property is fixed to (`const` or a one-value `enum`), or undefined.
function fixedValue(s) {
  if (!isObj(s)) return undefined;
  if ("const" in s) return s.const;
  return Array.isArray(s.enum) && s.enum.length === 1 ? s.enum[0] : undefined;
}

// The property that tells the variants of a oneOf apart (`type` of the DomainEvent union).
function discriminator(alts) {
  const first = alts[0];
  if (!isObj(first) || !isObj(first.properties)) return null;
  for (const name of Object.keys(first.properties)) {
    const ok = alts.every((a) => isObj(a) && isObj(a.properties) && fixedValue(a.properties[name]) !== undefined);
    if (ok) return name;
  }
  return null;
}

// The JSON Schema type of a literal value.
function jsonType(v) {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  return Number.isInteger(v) ? "integer" : typeof v;
}

// A one-line type label: "string | null", "array of CityView", "map of string → integer".
function typeLabel(s) {
  if (s === false) return ["nothing"];
  if (!isObj(s)) return ["any"];
  if (s.$ref) return [refLink(s.$ref)];
  const alts = s.oneOf || s.anyOf;
  if (alts) {
    const nonNull = alts.filter((a) => !isNull(a));
    const orNull = nonNull.length < alts.length ? [" | null"] : [];
    if (nonNull.length > 1 && nonNull.some(isComplex)) {
      const tag = discriminator(nonNull);
      return [`one of ${nonNull.length} variants`, tag ? ` (by ${tag})` : "", ...orNull];
    }
    return [...joinNodes(nonNull.map(typeLabel), " | "), ...orNull];
  }
  if (s.allOf) return s.allOf.length === 1 ? typeLabel(s.allOf[0]) : joinNodes(s.allOf.map(typeLabel), " & ");
  let types = Array.isArray(s.type) ? s.type : s.type ? [s.type] : [];
  if (!types.length) {
    if (s.properties || isObj(s.additionalProperties)) types = ["object"];
    else if (s.items || s.prefixItems) types = ["array"];
    else if (Array.isArray(s.enum) && s.enum.length) types = [jsonType(s.enum[0])];
    else if ("const" in s) types = [jsonType(s.const)];
    else return ["any"];
  }
  const parts = types.map((t) => {
    if (t === "array" && Array.isArray(s.prefixItems)) {
      return ["[", ...joinNodes(s.prefixItems.map(typeLabel), ", "), s.items === false ? "]" : ", …]"];
    }
    if (t === "array") return ["array of ", ...typeLabel(s.items)];
    if (t === "object" && !s.properties && isObj(s.additionalProperties)) {
      return ["map of string → ", ...typeLabel(s.additionalProperties)];
    }
    return [t + (s.format && t !== "null" ? ` (${s.format})` : "")];
  });
  if (s.nullable === true) parts.push(["null"]);
  return joinNodes(parts, " | ");
}

const chip = (...kids) => el("span", { class: "chip" }, kids);
const literal = (v) => el("code", null, typeof v === "string" ? v : JSON.stringify(v));

// Constraint chips: pattern, bounds, lengths, item counts, enum values, default.
function constraints(s) {
  if (!isObj(s)) return [];
  const c = [];
  if (s.pattern) c.push(chip("pattern ", el("code", null, s.pattern)));
  if (s.minimum !== undefined) c.push(chip(`≥ ${s.minimum}`));
  if (typeof s.exclusiveMinimum === "number") c.push(chip(`> ${s.exclusiveMinimum}`));
  if (s.maximum !== undefined) c.push(chip(`≤ ${s.maximum}`));
  if (typeof s.exclusiveMaximum === "number") c.push(chip(`< ${s.exclusiveMaximum}`));
  if (s.minLength !== undefined) c.push(chip(`length ≥ ${s.minLength}`));
  if (s.maxLength !== undefined) c.push(chip(`length ≤ ${s.maxLength}`));
  if (s.minItems !== undefined && s.minItems === s.maxItems) c.push(chip(`exactly ${s.minItems} items`));
  else {
    if (s.minItems !== undefined) c.push(chip(`≥ ${s.minItems} items`));
    if (s.maxItems !== undefined) c.push(chip(`≤ ${s.maxItems} items`));
  }
  if (s.uniqueItems) c.push(chip("unique items"));
  if ("const" in s) c.push(chip("always ", literal(s.const)));
  if (Array.isArray(s.enum)) c.push(chip("one of ", joinNodes(s.enum.map(literal), ", ")));
  if ("default" in s) c.push(chip("default ", literal(s.default)));
  if (s.additionalProperties === false) c.push(chip("no other properties"));
  if (s.deprecated) c.push(chip("deprecated"));
  if (s.readOnly) c.push(chip("read-only"));
  if (s.writeOnly) c.push(chip("write-only"));
  return c;
}

// One line of a nested block: a name, its type and constraints, its description and,
// for inline objects, their own properties one level deeper.
function row(name, s, required, depth, ctxDesc) {
  const head = el("div", { class: "prop-head" }, name,
    required ? el("span", { class: "req", title: "required" }, "required") : null,
    el("span", { class: "type" }, typeLabel(s)), constraints(s));
  const r = el("div", { class: "prop" }, head);
  const d = isObj(s) ? s.description : undefined;
  if (d && d !== ctxDesc) r.append(desc(d, "prop-desc"));
  const nested = renderSchema(s, depth + 1, d);
  if (nested) r.append(nested);
  return r;
}

// The nested block of a complex schema, or null for one its label says all of.
function renderSchema(s, depth, ctxDesc) {
  if (!isComplex(s)) return null;
  if (depth > MAX_DEPTH) return el("p", { class: "hint" }, `… nested deeper than ${MAX_DEPTH} levels`);
  const box = el("div", { class: "nested" });
  if (isObj(s.properties)) {
    const req = new Set(s.required || []);
    for (const [name, p] of Object.entries(s.properties)) {
      box.append(row(el("code", { class: "prop-name" }, name), p, req.has(name), depth, ctxDesc));
    }
    if (isObj(s.additionalProperties)) {
      box.append(row(el("em", { class: "prop-name" }, "other keys"), s.additionalProperties, false, depth));
    }
  } else if (isComplex(s.additionalProperties)) {
    box.append(row(el("em", { class: "prop-name" }, "each value"), s.additionalProperties, false, depth));
  }
  if (Array.isArray(s.allOf) && s.allOf.length > 0) {
    box.append(el("p", { class: "combo" }, "All of these together:"));
    s.allOf.forEach((part, i) => box.append(row(el("em", { class: "prop-name" }, `part ${i + 1}`), part, false, depth, ctxDesc)));
  }
  const alts = s.oneOf || s.anyOf;
  if (Array.isArray(alts)) renderVariants(box, alts, depth, ctxDesc);
  if (Array.isArray(s.prefixItems)) {
    box.append(el("p", { class: "combo" }, s.items === false ? "Exactly these items, by position:" : "Items by position:"));
    s.prefixItems.forEach((p, i) => box.append(row(el("code", { class: "prop-name" }, `[${i}]`), p, false, depth)));
    if (isObj(s.items)) box.append(row(el("em", { class: "prop-name" }, "more items"), s.items, false, depth));
  } else if (isComplex(s.items)) {
    box.append(row(el("em", { class: "prop-name" }, "each item"), s.items, false, depth, ctxDesc));
  }
  return box;
}

// oneOf/anyOf: a nullable schema shows its one alternative; a tagged union one
// collapsible entry per variant, named by the discriminator's value.
function renderVariants(box, alts, depth, ctxDesc) {
  const nonNull = alts.filter((a) => !isNull(a));
  if (nonNull.length === 1) {
    const inner = renderSchema(nonNull[0], depth, ctxDesc);
    if (inner) box.append(...inner.childNodes);
    return;
  }
  const tag = discriminator(nonNull);
  box.append(el("p", { class: "combo" }, `One of ${nonNull.length} variants`,
    tag ? [", told apart by ", el("code", null, tag)] : "",
    nonNull.length < alts.length ? ", or null" : "", ":"));
  nonNull.forEach((alt, i) => {
    const value = tag ? fixedValue(alt.properties[tag]) : undefined;
    const d = isObj(alt) ? alt.description : undefined;
    const summary = el("summary", null,
      value !== undefined ? el("code", { class: "variant-name" }, String(value)) : el("span", { class: "variant-name" }, `variant ${i + 1}: `, typeLabel(alt)),
      d ? el("span", { class: "variant-desc" }, inline(d.replace(/\s*\n\s*/g, " "))) : null);
    const nested = renderSchema(alt, depth + 1, d);
    box.append(el("details", { class: "variant" }, summary, nested || el("p", { class: "hint" }, typeLabel(alt), " ", constraints(alt))));
  });
}

// ---- operations ------------------------------------------------------------------

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
const badge = (method) => el("span", { class: `method method-${method}` }, method.toUpperCase());

function renderOperation(path, method, op, globalSecurity) {
  const id = uniqueId(`op-${method}-${slug(path) || "root"}`);
  const sec = el("section", { class: "operation", id, "data-method": method, "data-path": path });
  const security = op.security || globalSecurity || [];
  const needsToken = security.some((req) => Object.keys(req).length > 0);
  sec.append(el("h3", { class: "op-head" }, badge(method),
    el("a", { class: "path", href: `#${id}` }, path),
    needsToken ? el("span", { class: "lock", title: "needs a bearer token" }, "bearer token") : null,
    op.deprecated ? el("span", { class: "chip" }, "deprecated") : null));
  if (op.summary) sec.append(el("p", { class: "summary" }, inline(op.summary)));
  if (op.description) sec.append(desc(op.description));
  if (op.operationId) sec.append(el("p", { class: "op-id" }, "operationId ", el("code", null, op.operationId)));
  if (needsToken) {
    const names = security.flatMap((req) => Object.keys(req));
    sec.append(el("p", { class: "auth" }, "Needs ", el("code", null, "Authorization: Bearer TOKEN"),
      ` (${names.join(", ")}).`));
  }

  const params = op.parameters || [];
  if (params.length) {
    sec.append(el("h4", null, "Parameters"));
    const body = el("tbody", null, params.map((p) => el("tr", null,
      el("td", null, el("code", { class: "prop-name" }, p.name), p.required ? el("span", { class: "req" }, "required") : null),
      el("td", { "data-label": "in" }, p.in),
      el("td", { "data-label": "schema" }, el("span", { class: "type" }, typeLabel(p.schema)), constraints(p.schema)),
      el("td", { "data-label": "description" }, p.description ? desc(p.description, "cell-desc") : "—"))));
    sec.append(el("div", { class: "table-wrap" }, el("table", { class: "params" },
      el("thead", null, el("tr", null, el("th", null, "name"), el("th", null, "in"), el("th", null, "schema"), el("th", null, "description"))),
      body)));
  }

  if (op.requestBody) {
    const rb = op.requestBody;
    sec.append(el("h4", null, "Request body", rb.required ? el("span", { class: "req" }, "required") : null));
    if (rb.description) sec.append(desc(rb.description));
    sec.append(renderContent(rb.content));
  }

  sec.append(el("h4", null, "Responses"));
  for (const [status, resp] of Object.entries(op.responses || {})) {
    const cls = `status status-${String(status)[0]}xx`;
    const r = el("div", { class: "response" }, el("div", { class: "response-head" },
      el("span", { class: cls }, status), resp.description ? el("span", null, inline(resp.description)) : null));
    r.append(renderContent(resp.content));
    sec.append(r);
  }

  if (method === "get" && !op.requestBody) sec.append(tryIt(path, params, needsToken));
  return sec;
}

// The media types of a body: content type, schema label and nested schema.
function renderContent(content) {
  const box = el("div", { class: "content-types" });
  const entries = Object.entries(content || {});
  if (!entries.length) box.append(el("p", { class: "hint" }, "no body"));
  for (const [type, media] of entries) {
    const s = media && media.schema;
    const line = el("div", { class: "prop-head" }, el("code", { class: "ctype" }, type),
      s ? el("span", { class: "type" }, typeLabel(s)) : null, constraints(s));
    box.append(el("div", { class: "prop" }, line, s && s.description ? desc(s.description, "prop-desc") : null, renderSchema(s, 1)));
  }
  return box;
}

// ---- "Try it" ------------------------------------------------------------------

let token = ""; // shared by every "Try it" form

function tryIt(path, params, needsToken) {
  const form = el("form", { class: "try-form", novalidate: true });
  const fields = [];
  for (const p of params) {
    if (p.in !== "path" && p.in !== "query") continue;
    const s = resolve(p.schema) || {};
    let input;
    if (Array.isArray(s.enum)) {
      input = el("select", { name: p.name }, p.required ? null : el("option", { value: "" }, "—"),
        s.enum.map((v) => el("option", { value: String(v) }, String(v))));
    } else {
      const numeric = s.type === "integer" || s.type === "number";
      input = el("input", { name: p.name, type: numeric ? "number" : "text", min: s.minimum, max: s.maximum,
        step: s.type === "integer" ? 1 : null, autocomplete: "off", spellcheck: "false",
        placeholder: p.required ? "required" : "optional" });
    }
    fields.push({ p, input });
    form.append(el("label", { class: "field" }, el("span", null, p.name, el("small", null, ` ${p.in}`)), input));
  }
  const tokenInput = el("input", { class: "token-input", name: "token", type: "text", autocomplete: "off",
    spellcheck: "false", placeholder: needsToken ? "needed" : "optional", value: token });
  tokenInput.addEventListener("input", () => {
    token = tokenInput.value.trim();
    for (const other of document.querySelectorAll(".token-input")) if (other !== tokenInput) other.value = tokenInput.value;
  });
  const button = el("button", { type: "submit" }, "Send");
  const status = el("p", { class: "try-status", role: "status" });
  const out = el("pre", { class: "try-out", hidden: true });
  form.append(el("label", { class: "field" }, el("span", null, "bearer token"), tokenInput), el("div", { class: "try-actions" }, button), status, out);

  form.addEventListener("submit", (e) => {
    e.preventDefault(); // form-action 'none': the page never submits a form
    let url = path;
    const query = new URLSearchParams();
    for (const { p, input } of fields) {
      const v = input.value.trim();
      if (p.in === "path") {
        if (!v) return show(status, `${p.name} is required`, "error");
        url = url.split(`{${p.name}}`).join(encodeURIComponent(v));
      } else if (v) query.append(p.name, v);
    }
    const qs = query.toString();
    send(qs ? `${url}?${qs}` : url, button, status, out);
  });
  return el("details", { class: "try" }, el("summary", null, "Try it"), form);
}

function show(node, text, state) {
  node.textContent = text;
  node.dataset.state = state;
}

async function send(url, button, status, out) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  button.disabled = true;
  show(status, `GET ${url} …`, "pending");
  out.hidden = true;
  const started = performance.now();
  try {
    const res = await fetch(url, { headers, cache: "no-store", credentials: "same-origin" });
    const text = await res.text();
    const ms = Math.round(performance.now() - started);
    const type = res.headers.get("content-type") || "no content type";
    show(status, `GET ${url} → ${res.status} ${res.statusText} · ${type} · ${ms} ms`, res.ok ? "ok" : "error");
    let body = text;
    if (/json/.test(type) || /^\s*[[{]/.test(text)) {
      try { body = JSON.stringify(JSON.parse(text), null, 2); } catch { /* not JSON after all: raw text */ }
    }
    if (body.length > MAX_SHOWN) body = `${body.slice(0, MAX_SHOWN)}\n… (${body.length - MAX_SHOWN} more characters)`;
    out.textContent = body || "(empty body)";
    out.hidden = false;
  } catch (err) {
    show(status, `GET ${url} failed: ${err.message}`, "error");
  } finally {
    button.disabled = false;
  }
}

// ---- the document ----------------------------------------------------------------

function navItem(href, ...kids) {
  return el("li", null, el("a", { href }, kids));
}

function renderApi(doc) {
  schemas = (doc.components && doc.components.schemas) || {};
  const info = doc.info || {};
  $("doc-title").textContent = info.title ? `${info.title} API` : "API";
  document.title = `${info.title || "API"} · API documentation`;
  const meta = [info.version && `version ${info.version}`, doc.openapi && `OpenAPI ${doc.openapi}`,
    info.license && info.license.name && `license ${info.license.name}`].filter(Boolean);
  $("doc-meta").textContent = meta.join(" · ");
  if (info.description) $("doc-description").append(desc(info.description));

  const schemes = Object.entries((doc.components && doc.components.securitySchemes) || {});
  if (schemes.length) {
    $("doc-security").append(el("h3", null, "Authentication"), el("ul", null, schemes.map(([name, s]) =>
      el("li", null, el("code", null, name), ` — ${s.type}${s.scheme ? ` ${s.scheme}` : ""}`,
        s.description ? [": ", inline(s.description)] : "",
        s.scheme === "bearer" ? [". Send it as ", el("code", null, "Authorization: Bearer TOKEN"), "."] : ""))));
  }

  // Operations by their first tag, in the order of the document's tags.
  const tagOrder = (doc.tags || []).map((t) => t.name);
  const tagDesc = Object.fromEntries((doc.tags || []).map((t) => [t.name, t.description]));
  const byTag = new Map(tagOrder.map((t) => [t, []]));
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const method of METHODS) {
      const op = item && item[method];
      if (!op) continue;
      const tag = (op.tags && op.tags[0]) || "other";
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push({ path, method, op });
    }
  }
  const navOps = $("toc-ops");
  for (const [tag, ops] of byTag) {
    if (!ops.length) continue;
    const gid = uniqueId(`tag-${slug(tag)}`);
    const section = el("section", { class: "tag-group", id: gid }, el("h2", null, tag));
    if (tagDesc[tag]) section.append(desc(tagDesc[tag], "tag-desc"));
    const navList = el("ul");
    const nav = el("li", { class: "toc-group" }, el("a", { href: `#${gid}` }, tag), navList);
    const group = { node: section, nav, items: [] };
    for (const { path, method, op } of ops) {
      const node = renderOperation(path, method, op, doc.security);
      const navLi = navItem(`#${node.id}`, badge(method), el("span", { class: "toc-path" }, path));
      const refs = JSON.stringify(op).match(/#\/components\/schemas\/[^"]+/g) || [];
      const text = [method, path, op.summary, op.description, op.operationId, ...(op.tags || []),
        ...(op.parameters || []).map((p) => p.name), ...refs.map(refName)].join(" ").toLowerCase();
      const entry = { node, nav: navLi, text, kind: "op" };
      index.push(entry);
      group.items.push(entry);
      section.append(node);
      navList.append(navLi);
    }
    groups.push(group);
    $("operations").append(section);
    navOps.append(nav);
  }

  // Schemas, in the document's order.
  const navSchemas = $("toc-schemas-list");
  for (const [name, s] of Object.entries(schemas)) {
    const node = el("section", { class: "schema", id: `schema-${name}` },
      el("h3", null, el("a", { href: `#schema-${name}` }, name), el("span", { class: "type" }, typeLabel(s))));
    usedIds.add(`schema-${name}`);
    if (isObj(s) && s.description) node.append(desc(s.description));
    const chips = constraints(s);
    if (chips.length) node.append(el("div", { class: "chips" }, chips));
    const nested = renderSchema(s, 1, s.description);
    if (nested) node.append(nested);
    $("schema-list").append(node);
    const navLi = navItem(`#schema-${name}`, name);
    navSchemas.append(navLi);
    const props = isObj(s) && isObj(s.properties) ? Object.keys(s.properties) : [];
    index.push({ node, nav: navLi, text: [name, s.description, ...props].join(" ").toLowerCase(), kind: "schema" });
  }
}

// ---- the WebSocket guide: a small Markdown renderer ------------------------------

const ITEM = /^(\s*)([-*+]|\d+[.)])\s+(.*)$/;
const isBlockStart = (l) => /^(```|#{1,6}\s|\s*([-*+]|\d+[.)])\s|\|)/.test(l);

// Splits a table row on the pipes outside `code`.
function splitRow(line) {
  let s = line.trim();
  if (s.startsWith("|")) s = s.slice(1);
  if (s.endsWith("|") && !s.endsWith("\\|")) s = s.slice(0, -1);
  const cells = [];
  let cur = "", code = false;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    if (ch === "\\" && s[i + 1] === "|") { cur += "|"; i++; continue; }
    if (ch === "`") code = !code;
    if (ch === "|" && !code) { cells.push(cur.trim()); cur = ""; } else cur += ch;
  }
  cells.push(cur.trim());
  return cells;
}

// Markdown → DOM: headings (# → h2 …), paragraphs, lists, tables, fenced code.
// `headings` collects { level, id, text } for the navigation.
function renderMarkdown(md, prefix, headings) {
  const lines = md.replace(/\r\n?/g, "\n").split("\n");
  const out = document.createDocumentFragment();
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    let m;
    if (!line.trim()) { i++; continue; }
    if ((m = line.match(/^\s*(`{3,}|~{3,})\s*([\w+-]*)/))) { // fenced code
      const fence = m[1], code = [];
      for (i++; i < lines.length && !lines[i].trim().startsWith(fence); i++) code.push(lines[i]);
      i++;
      out.append(el("pre", { class: "code" }, el("code", { "data-lang": m[2] || null }, code.join("\n"))));
    } else if ((m = line.match(/^(#{1,6})\s+(.*)$/))) { // heading, one level down
      const text = m[2].replace(/\s+#+\s*$/, "").trim();
      const id = uniqueId(prefix + slug(plain(text)));
      out.append(el(`h${Math.min(m[1].length + 1, 6)}`, { id }, inline(text, prefix)));
      headings.push({ level: m[1].length, id, text: plain(text) });
      i++;
    } else if (line.trim().startsWith("|") && /^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/.test(lines[i + 1] || "")) {
      const head = splitRow(line);
      const rows = [];
      for (i += 2; i < lines.length && lines[i].trim().startsWith("|"); i++) rows.push(splitRow(lines[i]));
      out.append(el("div", { class: "table-wrap" }, el("table", null,
        el("thead", null, el("tr", null, head.map((c) => el("th", null, inline(c, prefix))))),
        el("tbody", null, rows.map((r) => el("tr", null, head.map((_, k) => el("td", null, inline(r[k] || "", prefix)))))))));
    } else if ((m = line.match(ITEM))) { // a list; blank lines between items keep it going
      const ordered = /\d/.test(m[2]);
      const list = el(ordered ? "ol" : "ul");
      if (ordered && parseInt(m[2], 10) !== 1) list.setAttribute("start", parseInt(m[2], 10));
      let buf = null;
      const flush = () => { if (buf) list.append(el("li", null, inline(buf.join(" "), prefix))); };
      while (i < lines.length) {
        const l = lines[i], im = l.match(ITEM);
        if (im && /\d/.test(im[2]) === ordered) { flush(); buf = [im[3]]; i++; }
        else if (l.trim() && /^\s/.test(l) && !im) { buf.push(l.trim()); i++; }
        else if (!l.trim() && (lines.slice(i).find((x) => x.trim()) || "").match(ITEM)) i++;
        else break;
      }
      flush();
      out.append(list);
    } else { // a paragraph runs to a blank line or the next block
      const buf = [line.trim()];
      for (i++; i < lines.length && lines[i].trim() && !isBlockStart(lines[i]); i++) buf.push(lines[i].trim());
      out.append(el("p", null, inline(buf.join(" "), prefix)));
    }
  }
  return out;
}

async function fetchOk(url) {
  const res = await fetch(url, { cache: "no-cache" });
  if (!res.ok) throw new Error(`${res.status} ${res.statusText}`.trim());
  return res;
}

async function loadWebSocket() {
  const body = $("websocket-body");
  const status = $("websocket-status");
  let md;
  try {
    md = await (await fetchOk("/web/websocket.md")).text();
  } catch (err) {
    return show(status, `Could not load /web/websocket.md: ${err.message}`, "error");
  }
  const headings = [];
  const frag = renderMarkdown(md, "ws-", headings);
  // The guide's own title replaces the placeholder heading of the section.
  body.replaceChildren(frag);
  const navList = $("toc-ws-list");
  for (const h of headings) {
    if (h.level === 2) navList.append(navItem(`#${h.id}`, h.text));
  }
}

async function loadApi() {
  const status = $("load-status");
  let doc;
  try {
    doc = await (await fetchOk("/api/openapi.json")).json();
  } catch (err) {
    return show(status, `Could not load /api/openapi.json: ${err.message}`, "error");
  }
  try {
    renderApi(doc);
    status.hidden = true;
  } catch (err) {
    show(status, `Could not render /api/openapi.json: ${err.message}`, "error");
  }
}

// ---- navigation and filter -------------------------------------------------------

function buildToc() {
  $("toc-list").append(el("ul", { class: "toc-root" },
    el("li", { class: "toc-intro" }, el("a", { href: "#intro" }, "Overview")),
    el("li", { class: "toc-ops-wrap" }, el("ul", { id: "toc-ops" })),
    el("li", { class: "toc-group", id: "toc-ws" }, el("a", { href: "#websocket" }, "WebSocket"), el("ul", { id: "toc-ws-list" })),
    el("li", { class: "toc-group", id: "toc-schemas" }, el("a", { href: "#schemas" }, "Schemas"), el("ul", { id: "toc-schemas-list" }))));
  // Open beside the content on wide screens; collapsed above it on narrow ones.
  const sync = () => { $("toc").open = wide.matches; };
  sync();
  wide.addEventListener("change", sync);
  $("toc-list").addEventListener("click", (e) => {
    if (!wide.matches && e.target.closest("a")) $("toc").open = false;
  });
}

function applyFilter() {
  const terms = $("filter").value.toLowerCase().split(/\s+/).filter(Boolean);
  const matches = (text) => terms.every((t) => text.includes(t));
  const count = { op: [0, 0], schema: [0, 0] };
  for (const e of index) {
    const ok = matches(e.text);
    e.node.hidden = !ok;
    e.nav.hidden = !ok;
    count[e.kind][0] += ok ? 1 : 0;
    count[e.kind][1] += 1;
  }
  for (const g of groups) {
    const any = g.items.some((e) => !e.node.hidden);
    g.node.hidden = !any;
    g.nav.hidden = !any;
  }
  const ws = $("websocket");
  const wsOk = matches(ws.textContent.toLowerCase());
  ws.hidden = !wsOk;
  $("toc-ws").hidden = !wsOk;
  $("schemas").hidden = count.schema[0] === 0 && terms.length > 0;
  $("toc-schemas").hidden = $("schemas").hidden;
  $("filter-count").textContent = terms.length
    ? `${count.op[0]} of ${count.op[1]} operations, ${count.schema[0]} of ${count.schema[1]} schemas${wsOk ? ", the WebSocket guide" : ""}`
    : "";
}

async function main() {
  buildToc();
  $("filter").addEventListener("input", applyFilter);
  await Promise.all([loadApi(), loadWebSocket()]);
  applyFilter();
  // The content arrived after the browser looked for the fragment: look again.
  const target = location.hash && document.getElementById(decodeURIComponent(location.hash.slice(1)));
  if (target) target.scrollIntoView();
}

main().catch((err) => show($("load-status"), `The page failed: ${err.message}`, "error"));
