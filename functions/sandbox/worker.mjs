// Persistent CloudFront Function sandbox speaking JSON lines on stdin/stdout.
//
// Start: node --experimental-vm-modules --no-warnings functions/sandbox/worker.mjs
// Requests, one JSON object per line, answered in order with the same `id`:
//   {"id": 1, "op": "load", "name": "router", "code": "...", "timeout_ms": 1000}
//     -> {"id": 1, "ok": true} or {"id": 1, "ok": false, "error": "..."}
//   {"id": 2, "op": "invoke", "name": "router", "event": {...}, "kvs": {"routing": "..."}, "timeout_ms": 1000}
//     -> {"id": 2, "ok": true, "result": {...}, "kvs_reads": 1, "duration_us": 41.2, "error": null, "logs": []}
//   {"id": 3, "op": "invoke_many", "name": "router", "events": [{...}, ...], "kvs": {...}, "timeout_ms": 1000}
//     -> {"id": 3, "ok": true, "results": [<one invoke answer per event>]}
//   {"id": 4, "op": "ping"} -> {"id": 4, "ok": true}
// Only protocol lines go to stdout; diagnostics go to stderr.

import readline from 'node:readline';
import vm from 'node:vm';

import { FunctionInstance, LimitError } from './runtime.mjs';

const DEFAULT_TIMEOUT_MS = 1000;

if (typeof vm.SourceTextModule !== 'function') {
  process.stderr.write('the function sandbox needs node --experimental-vm-modules\n');
  process.exit(2);
}

const functions = new Map();

function timeoutOf(request) {
  return Number.isInteger(request.timeout_ms) && request.timeout_ms > 0 ? request.timeout_ms : DEFAULT_TIMEOUT_MS;
}

async function load(request) {
  if (typeof request.name !== 'string' || typeof request.code !== 'string') {
    return { ok: false, error: 'load needs a string name and code' };
  }
  const instance = new FunctionInstance(request.name, request.code);
  try {
    await instance.load(timeoutOf(request));
  } catch (error) {
    const message = error instanceof LimitError ? error.message : `${request.name}: ${error.stack || error}`;
    return { ok: false, error: message };
  }
  functions.set(request.name, instance);
  return { ok: true };
}

async function invokeMany(request, events) {
  let instance = functions.get(request.name);
  if (!instance) {
    return null;
  }
  const timeoutMs = timeoutOf(request);
  const outcomes = instance.invokeMany(events, request.kvs, timeoutMs);
  if (outcomes.some((outcome) => outcome.timed_out)) {
    // An interrupted handler may leave its context half-way; the next request gets a fresh one.
    instance = new FunctionInstance(instance.name, instance.code);
    await instance.load(timeoutMs);
    functions.set(instance.name, instance);
  }
  for (const outcome of outcomes) delete outcome.timed_out;
  return outcomes;
}

function unknown(request) {
  return { ok: false, error: `no function named '${request.name}' is loaded` };
}

async function invoke(request) {
  const outcomes = await invokeMany(request, [request.event]);
  return outcomes ? outcomes[0] : unknown(request);
}

async function invokeAll(request) {
  if (!Array.isArray(request.events)) {
    return { ok: false, error: 'invoke_many needs a list of events' };
  }
  const outcomes = await invokeMany(request, request.events);
  return outcomes ? { ok: true, results: outcomes } : unknown(request);
}

async function handle(line) {
  let request;
  try {
    request = JSON.parse(line);
  } catch (error) {
    return { id: null, ok: false, error: `not a JSON request: ${error.message}` };
  }
  let answer;
  try {
    if (request.op === 'load') answer = await load(request);
    else if (request.op === 'invoke') answer = await invoke(request);
    else if (request.op === 'invoke_many') answer = await invokeAll(request);
    else if (request.op === 'ping') answer = { ok: true };
    else answer = { ok: false, error: `unknown op: ${JSON.stringify(request.op)}` };
  } catch (error) {
    answer = { ok: false, error: `sandbox failure: ${error.stack || error}` };
  }
  return { id: request.id === undefined ? null : request.id, ...answer };
}

const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  if (!line.trim()) continue;
  process.stdout.write(`${JSON.stringify(await handle(line))}\n`);
}
