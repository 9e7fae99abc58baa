// lorabench calculator: reads the form, calls the local JSON API, draws the results; the state lives in the URL.
// No external scripts, fonts or requests: everything goes to this server's /api/*.
"use strict";

const FIELDS = ["model", "upload_kind", "config", "config_name", "method", "bits", "rank", "alpha", "targets",
  "micro_batch", "seq_len", "grad_accum", "grad_ckpt", "precision", "optimizer", "engine", "gpu", "gpus",
  "parallelism", "tokens", "epochs"];
const NUMBERS = new Set(["bits", "rank", "micro_batch", "seq_len", "grad_accum", "gpus"]);
const FLOATS = new Set(["alpha", "epochs"]);
const COMPONENTS = ["weights", "quant_constants", "adapter", "gradients", "optimizer_state", "activations",
  "temporaries", "reserved_slack", "cuda_context"];
let defaults = {};
let gpuCatalog = {};
let generation = 0;

const $ = (id) => document.getElementById(id);

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function gb(bytes) {
  return bytes === null || bytes === undefined ? "n/a" : (bytes / 1e9).toFixed(2) + " GB";
}

function hours(seconds) {
  return seconds === null || seconds === undefined ? "n/a" : (seconds / 3600).toFixed(2) + " h";
}

function usd(value) {
  return value === null || value === undefined ? "n/a" : "$" + value.toLocaleString("en-US",
    { minimumFractionDigits: 2, maximumFractionDigits: 2 });
}

function readForm() {
  const state = {};
  for (const name of FIELDS) {
    const input = $(name);
    state[name] = input.type === "checkbox" ? (input.checked ? "1" : "") : input.value.trim();
  }
  return state;
}

function writeForm(state) {
  for (const name of FIELDS) {
    if (!(name in state)) continue;
    const input = $(name);
    if (input.type === "checkbox") input.checked = state[name] === "1" || state[name] === "true";
    else input.value = state[name];
  }
  if (state.config) $("upload").open = true;
}

// The query string holds every field that differs from the page's defaults.
function stateToQuery(state) {
  const query = new URLSearchParams();
  for (const name of FIELDS) {
    if (state[name] !== defaults[name]) query.set(name, state[name]);
  }
  return query.toString();
}

function queryToState(search) {
  const query = new URLSearchParams(search);
  const state = {};
  for (const name of FIELDS) if (query.has(name)) state[name] = query.get(name);
  return state;
}

// Spec fields for the API: only those the user changed (so an uploaded file's own values stand), plus the GPU.
function specBody(state) {
  const body = {};
  for (const name of ["model", "method", "bits", "rank", "alpha", "targets", "micro_batch", "seq_len", "grad_accum",
    "optimizer", "parallelism"]) {
    if (state[name] === "" || (state.config && state[name] === defaults[name])) continue;
    if (name === "model" && state.config && state.upload_kind === "model_config") continue;
    body[name] = NUMBERS.has(name) ? parseInt(state[name], 10) : FLOATS.has(name) ? parseFloat(state[name]) : state[name];
  }
  if (state.grad_ckpt !== defaults.grad_ckpt || !state.config) body.grad_ckpt = state.grad_ckpt === "1";
  // an uploaded config's own precision (e.g. Axolotl's bf16: true -> autocast) stands unless the user changed it
  if (state.precision !== defaults.precision || !state.config) {
    body.autocast = state.precision === "autocast";
    body.pure_bf16 = state.precision === "pure_bf16";
  }
  if (state.epochs !== "") body.epochs = parseFloat(state.epochs);
  body.gpu = state.gpu;
  body.gpus = parseInt(state.gpus || "1", 10);
  if (state.config) {
    body[state.upload_kind === "model_config" ? "model_config" : "config_text"] = state.config;
    if (state.config_name) body.config_name = state.config_name;
  }
  return body;
}

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({ detail: response.statusText }));
  if (!response.ok) {
    const detail = Array.isArray(data.detail)
      ? data.detail.map((d) => `${(d.loc || []).filter((p) => p !== "body").join(".") || "input"}: ${d.msg}`)
      : [String(data.detail)];
    const error = new Error(detail.join("\n"));
    error.status = response.status;
    throw error;
  }
  return data;
}

function addRow(list, term, value, prov) {
  list.append(el("dt", term));
  const dd = el("dd", value);
  if (prov) dd.append(el("small", prov, "prov"));
  list.append(dd);
}

function renderEstimate(rec, state) {
  const spec = rec.spec;
  const targets = Array.isArray(spec.targets) ? spec.targets.join(", ") : spec.targets;
  $("title").textContent = `${rec.model.display_name} · ${spec.method} r${spec.rank} α${spec.alpha} · ` +
    `${spec.bits}-bit base · targets ${targets} · batch ${spec.micro_batch} × seq ${spec.seq_len} · ` +
    `${spec.optimizer}${spec.grad_ckpt ? " · grad ckpt" : ""}${spec.autocast ? " · autocast" : ""}` +
    `${spec.pure_bf16 ? " · pure bf16" : ""} · ${spec.hardware.count}×${spec.hardware.gpu}`;
  const params = $("params");
  params.replaceChildren();
  addRow(params, "base", rec.base_params.toLocaleString("en-US"), rec.provenance.params);
  addRow(params, "trainable", `${rec.trainable_params.toLocaleString("en-US")} (${rec.trainable_percent.toFixed(4)}%)`);
  addRow(params, "weights as loaded", gb(rec.weights_bytes), rec.provenance.weights_bytes);
  const memory = $("memory");
  memory.replaceChildren();
  const totals = rec.device_totals;
  const vram = (gpuCatalog[spec.hardware.gpu] || {}).vram_bytes;
  addRow(memory, "peak allocated", gb(rec.peak_allocated_bytes), `engine ${rec.engine} (${rec.device})`);
  addRow(memory, "device total", gb(rec.device_total_bytes), "peak + allocator slack + CUDA context");
  const fits = rec.fits ? rec.fits[spec.hardware.gpu] : null;
  addRow(memory, `on ${spec.hardware.gpu}`, fits === null || fits === undefined ? "n/a"
    : `${fits ? "fits" : "does not fit"} (${gb(vram)})`, "GPU memory: the catalog's datasheet figure");
  $("memory").dataset.fits = fits ? "yes" : "no";
  const time = $("time");
  time.replaceChildren();
  if (rec.predicted_time_s !== undefined && rec.predicted_time_s !== null) {
    const [low, high] = rec.predicted_time_interval_s;
    addRow(time, "predicted", hours(rec.predicted_time_s), `for ${rec.time.tokens.toLocaleString("en-US")} tokens`);
    addRow(time, "80% band", `${hours(low)} – ${hours(high)}`);
    addRow(time, "throughput", `${Math.round(rec.time.step.tokens_per_s).toLocaleString("en-US")} tokens/s`,
      rec.time.step.provenance);
  } else {
    addRow(time, "predicted", "n/a", "give a GPU and the dataset tokens");
  }
  renderBar(rec, vram);
  $("memory_prov").textContent = rec.memory_provenance || "";
  const notes = $("notes");
  notes.replaceChildren();
  const lines = [...(rec.notes || []), ...(rec.memory_notes || []), ...(rec.warnings || []).map((w) => "warning: " + w),
    ...(rec.ignored_keys || []).map((k) => `not honoured from the file: ${k.key} (${k.reason || k.category || ""})`)];
  if (rec.config_source && rec.config_source.path) {
    lines.unshift(`read from the uploaded ${rec.config_source.kind} config`);
  }
  for (const line of lines) notes.append(el("li", typeof line === "string" ? line : JSON.stringify(line)));
  if (!lines.length) notes.append(el("li", "none"));
}

function renderBar(rec, vram) {
  const bar = $("bar");
  const legend = $("legend");
  bar.replaceChildren();
  legend.replaceChildren();
  const totals = rec.device_totals;
  if (!totals) return;
  const parts = { ...totals.per_gpu_breakdown, reserved_slack: totals.reserved_slack_bytes,
    cuda_context: totals.cuda_context_bytes };
  const scale = Math.max(rec.device_total_bytes, vram || 0);
  COMPONENTS.forEach((name, i) => {
    const value = parts[name] || 0;
    if (value <= 0) return;
    const seg = el("div", "", `seg c${i}`);
    seg.style.width = `${(100 * value) / scale}%`;
    seg.title = `${name}: ${gb(value)}`;
    seg.dataset.component = name;
    bar.append(seg);
    const item = el("li", `${name.replace("_", " ")} ${gb(value)}`);
    item.prepend(el("span", "", `swatch c${i}`));
    legend.append(item);
  });
  if (vram) {
    const mark = el("div", `${rec.spec.hardware.gpu} ${gb(vram)}`, "vram");
    mark.style.left = `${(100 * vram) / scale}%`;
    bar.append(mark);
  }
}

function renderFitRow(row, gpu, rec, fit) {
  row.replaceChildren(el("td", gpu), el("td", gb((gpuCatalog[gpu] || {}).vram_bytes)));
  const fits = rec.fits ? rec.fits[gpu] : undefined;
  row.append(el("td", fits === undefined ? "n/a" : fits ? "yes" : "no", fits ? "yes" : "no"));
  if (!fit) {
    row.append(el("td", "…"), el("td", "…"));
    return;
  }
  if (fit.error) {
    row.append(el("td", fit.error), el("td", ""));
    return;
  }
  const show = (entry) => (entry.value === null ? "none" : entry.value.toLocaleString("en-US"));
  row.append(el("td", show(fit.largest_micro_batch)), el("td", show(fit.largest_seq_len)));
}

async function renderFits(rec, state, mine) {
  const body = $("fits").tBodies[0];
  body.replaceChildren();
  const order = [state.gpu, ...Object.keys(gpuCatalog).filter((g) => g !== state.gpu)];
  const rows = {};
  for (const gpu of order) {
    rows[gpu] = el("tr");
    rows[gpu].dataset.gpu = gpu;
    renderFitRow(rows[gpu], gpu, rec, null);
    body.append(rows[gpu]);
  }
  const spec = specBody(state);
  for (const gpu of order) {
    if (mine !== generation) return;
    try {
      const fit = await post("/api/fit", { ...spec, gpu });
      if (mine !== generation) return;
      renderFitRow(rows[gpu], gpu, rec, fit);
      if (gpu === state.gpu) $("fit_prov").textContent = fit.provenance.device_total_bytes;
    } catch (error) {
      renderFitRow(rows[gpu], gpu, rec, { error: error.message });
    }
  }
}

async function renderCost(rec, state, mine, catalog) {
  const body = $("cost").tBodies[0];
  body.replaceChildren();
  $("cost_error").hidden = true;
  // A service prices only base models inside its size bracket (the cost layer refuses the rest): offer those, and
  // name the ones left out.
  const billions = rec.base_params / 1e9;
  const inBracket = (s) => (s.min_params_b === null || s.min_params_b === undefined || billions > s.min_params_b)
    && (s.max_params_b === null || s.max_params_b === undefined || billions <= s.max_params_b);
  const priced = catalog.services.filter((s) => s.train_usd_per_mtok !== null);
  const services = priced.filter(inBracket).map((s) => s.id);
  const outside = priced.filter((s) => !inBracket(s)).map((s) => s.id);
  $("cost_note").textContent = outside.length
    ? `not offered for a ${billions.toFixed(2)}B-parameter base model (outside their size bracket): ${outside.join(", ")}`
    : "";
  const scenario = {
    dataset: { tokens: parseInt(state.tokens || "0", 10) },
    epochs: parseFloat(state.epochs || "1"),
    self_hosted: [{ name: `${rec.spec.hardware.count}×${rec.spec.hardware.gpu}, this spec (predicted)`,
      spec: rec.spec, gpu: rec.spec.hardware.gpu, count: rec.spec.hardware.count }],
    services,
  };
  let rows;
  try {
    rows = await post("/api/cost", scenario);
  } catch (error) {
    if (mine !== generation) return;
    // The self-hosted row cannot be priced (e.g. no rental rate for this GPU): say so, price the services alone.
    $("cost_error").textContent = `self-hosted row not priced: ${error.message}`;
    $("cost_error").hidden = false;
    try {
      rows = await post("/api/cost", { ...scenario, self_hosted: [] });
    } catch (second) {
      if (mine === generation) $("cost_error").textContent += `\n${second.message}`;
      return;
    }
  }
  if (mine !== generation) return;
  for (const row of rows) {
    const tr = el("tr", null, row.kind);
    const price = (row.provenance || {}).cost_usd || {};
    const source = price.kind === "catalog"
      ? `${price.entry}, checked ${price.prices_checked}, ${price.source}` : price.kind || "";
    const x = row.x_vs_cheapest_self_hosted;
    tr.append(el("td", row.name), el("td", row.kind.replace("_", "-")), el("td", hours(row.time_s)),
      el("td", row.gpu_hours === null ? "n/a" : row.gpu_hours.toFixed(2)), el("td", usd(row.cost_usd)),
      el("td", x === null || x === undefined ? "n/a" : x.toFixed(1) + "×"), el("td", source, "prov"));
    if (row.note) tr.children[0].append(el("small", row.note, "prov"));
    body.append(tr);
  }
}

async function compute(catalog) {
  const mine = ++generation;
  document.body.dataset.state = "computing";
  const state = readForm();
  const query = stateToQuery(state);
  history.replaceState(null, "", query ? `?${query}` : location.pathname);
  $("status").textContent = state.engine === "simulate" ? "simulating… (can take minutes)" : "computing…";
  $("errors").hidden = true;
  const body = { ...specBody(state), engine: state.engine };
  const tokens = parseInt(state.tokens || "0", 10);
  const epochs = parseFloat(state.epochs || "1");
  if (tokens > 0 && epochs > 0) body.tokens = Math.max(1, Math.round(tokens * epochs));
  let rec;
  try {
    rec = await post("/api/estimate", body);
  } catch (error) {
    if (mine !== generation) return;
    $("results").hidden = false;
    $("errors").textContent = error.message;
    $("errors").hidden = false;
    $("status").textContent = `error (${error.status || "network"})`;
    document.body.dataset.state = "error";
    return;
  }
  if (mine !== generation) return;
  $("results").hidden = false;
  renderEstimate(rec, state);
  $("status").textContent = "done";
  document.body.dataset.ready = String(mine);
  document.body.dataset.state = "estimated";
  await renderCost(rec, state, mine, catalog);
  await renderFits(rec, state, mine);
  if (mine === generation) document.body.dataset.state = "done";
}

async function init() {
  const [models, gpus, catalog, health] = await Promise.all(
    ["/api/models", "/api/gpus", "/api/catalog", "/api/health"].map((p) => fetch(p).then((r) => r.json())));
  gpuCatalog = gpus;
  $("version").textContent = health.lorabench_version;
  for (const [key, entry] of Object.entries(models)) {
    const option = el("option", entry.display_name);
    option.value = key;
    $("models").append(option);
  }
  for (const [key, entry] of Object.entries(gpus)) {
    const option = el("option", `${key} (${(entry.vram_bytes / 1e9).toFixed(0)} GB)`);
    option.value = key;
    $("gpu").append(option);
  }
  $("gpu").value = "A100-80GB";
  defaults = readForm();
  writeForm(queryToState(location.search));
  $("file").addEventListener("change", async () => {
    const file = $("file").files[0];
    if (!file) return;
    const text = await file.text();
    $("config").value = text;
    $("config_name").value = file.name;
    try {
      const parsed = JSON.parse(text);
      $("upload_kind").value = parsed.model_type && !parsed.peft_type ? "model_config" : "config_text";
    } catch (_) {
      $("upload_kind").value = "config_text";
    }
  });
  $("form").addEventListener("submit", (event) => {
    event.preventDefault();
    compute(catalog);
  });
  $("form").addEventListener("change", (event) => {
    if (event.target.id !== "file" && event.target.id !== "config") compute(catalog);
  });
  compute(catalog);
}

document.addEventListener("DOMContentLoaded", init);
