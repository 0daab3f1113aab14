// One CloudFront Function (cloudfront-js-2.0) loaded into its own node:vm context.
//
// The module text that runs is the rendered file itself, with one `export { handler };`
// appended so the sandbox can reach the handler (CloudFront finds it by name). The context
// holds only the JavaScript built-ins and a `console`; `cloudfront` and `crypto` are the only
// modules a function may import, as on CloudFront. Code generation from strings is disabled,
// so eval and the Function constructor throw at run time as well as failing the load checks.
//
// Promises created by the function settle inside the context: with microtaskMode
// 'afterEvaluate' every microtask runs before runInContext returns, under the same timeout, so
// an invocation is one synchronous, time-limited step. A batch of invocations runs one after the
// other in one such step: Node arms a watchdog thread for every timed runInContext, which costs
// far more than a handler, so batches are how tests and benchmarks run thousands of requests.

import crypto from 'node:crypto';
import vm from 'node:vm';

export const CODE_SIZE_LIMIT = 10240;
export const ALLOWED_MODULES = ['cloudfront', 'crypto'];
const CONTROLLER = '__hostingToolkitSandbox';

// Checks on the source text, reported before anything runs; the context enforces the same
// rules at run time for code that hides them from a text search.
const FORBIDDEN = [
  [/\beval\s*\(/, 'eval() is not available in CloudFront Functions'],
  [/\bFunction\s*\(/, 'the Function constructor is not available in CloudFront Functions'],
  [/\b(setTimeout|setInterval|setImmediate|queueMicrotask)\b/, 'timers are not available in CloudFront Functions'],
  [/\b(fetch|require|XMLHttpRequest|WebSocket)\s*\(/, 'network access and require() are not available in CloudFront Functions'],
  [/\bprocess\s*\./, 'process is not available in CloudFront Functions'],
  [/\bimport\s*\(/, 'dynamic import() is not available in CloudFront Functions'],
  [/^\s*export\b/m, 'CloudFront Functions do not export anything; declare `function handler(event)`'],
];

// Runs inside the context: the KeyValueStore stub, the console and the invocation driver all
// live there, so every promise the function awaits belongs to the context's own queue.
const CONTROLLER_SOURCE = `(function () {
  'use strict';
  let store = {};
  let reads = 0;
  let logs = [];
  let handler = null;
  let outcomes = [];
  let count = 0;
  let started = 0;
  const has = (key) => Object.prototype.hasOwnProperty.call(store, key);
  const utf8 = (text) => {
    const binary = unescape(encodeURIComponent(text));
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  };
  const kvs = Object.freeze({
    get: async (key, options) => {
      reads++;
      const format = (options && options.format) || 'string';
      if (format !== 'string' && format !== 'json' && format !== 'bytes') {
        throw new TypeError('unknown format: ' + format);
      }
      if (!has(key)) throw new Error('KeyValueStore: key not found: ' + key);
      const value = store[key];
      if (format === 'json') return JSON.parse(value);
      if (format === 'bytes') return utf8(value);
      return value;
    },
    exists: async (key) => {
      reads++;
      return has(key);
    },
    meta: async () => {
      reads++;
      const now = new Date().toISOString();
      return { creationDateTime: now, lastUpdatedDateTime: now, keyCount: Object.keys(store).length };
    },
  });
  const describe = (error) => {
    if (!error || !error.stack) return String(error);
    const lines = String(error.stack).split('\\n');
    const end = lines.findIndex((line) => line.indexOf('sandbox-controller') >= 0);
    return (end < 0 ? lines : lines.slice(0, end)).join('\\n');
  };
  const text = (value) => (typeof value === 'string' ? value : JSON.stringify(value));
  const log = (...args) => { logs.push(args.map(text).join(' ')); };
  return {
    cf: Object.freeze({ kvs: () => kvs }),
    console: Object.freeze({ log: log, info: log, warn: log, error: log, debug: log }),
    setHandler: (fn) => { handler = fn; },
    clock: null,
    input: null,
    // Runs the handler on each event in turn; each outcome is recorded once its promise settles.
    start() {
      const input = JSON.parse(this.input);
      store = input.kvs;
      outcomes = [];
      count = input.events.length;
      const runOne = (event) => {
        reads = 0;
        logs = [];
        started = this.clock();
        let pending;
        try {
          pending = Promise.resolve(handler(event));
        } catch (error) {
          pending = Promise.reject(error);
        }
        return pending.then(
          (result) => {
            const micros = this.clock() - started;
            return result !== null && typeof result === 'object' && !Array.isArray(result)
              ? { ok: true, result: result, micros: micros }
              : { ok: false, error: 'the handler must return the request or a response object, not ' + text(result), micros: micros };
          },
          (error) => ({ ok: false, error: describe(error), micros: this.clock() - started }),
        );
      };
      const record = (done) => {
        outcomes.push({ ok: done.ok, result: done.result, error: done.error, kvs_reads: reads, logs: logs, duration_us: done.micros });
      };
      let chain = Promise.resolve();
      for (const event of input.events) {
        chain = chain.then(() => runOne(event)).then(record);
      }
    },
    finish() {
      const answers = [];
      for (let i = 0; i < count; i++) {
        const answer = outcomes[i] || {
          ok: false,
          error: 'the handler did not settle: it awaits something that never resolves',
          kvs_reads: i === outcomes.length ? reads : 0,
          logs: i === outcomes.length ? logs : [],
          duration_us: i === outcomes.length ? this.clock() - started : 0,
        };
        try {
          answers.push(JSON.stringify(answer));
        } catch (error) {
          answer.ok = false;
          answer.result = null;
          answer.error = 'the handler returned an object CloudFront cannot use: ' + describe(error);
          answers.push(JSON.stringify(answer));
        }
      }
      return '[' + answers.join(',') + ']';
    },
  };
})()`;

const START = new vm.Script(`${CONTROLLER}.start()`, { filename: 'sandbox-invoke' });

export class LimitError extends Error {}

function checkLimits(name, code) {
  const size = Buffer.byteLength(code, 'utf8');
  if (size > CODE_SIZE_LIMIT) {
    throw new LimitError(`${name}: function is ${size} bytes, over CloudFront's limit of ${CODE_SIZE_LIMIT} bytes`);
  }
  for (const [pattern, message] of FORBIDDEN) {
    const match = pattern.exec(code);
    if (match) {
      const line = code.slice(0, match.index).split('\n').length;
      throw new LimitError(`${name}: line ${line}: ${message}`);
    }
  }
}

function cryptoModule() {
  const digestOf = (hash) => ({
    update(data, encoding) {
      hash.update(data, encoding);
      return this;
    },
    digest: (encoding) => hash.digest(encoding),
  });
  return {
    createHash: (algorithm) => digestOf(crypto.createHash(algorithm)),
    createHmac: (algorithm, key) => digestOf(crypto.createHmac(algorithm, key)),
  };
}

export class FunctionInstance {
  constructor(name, code) {
    this.name = name;
    this.code = code;
  }

  // Validate, compile, link and evaluate the module; throws LimitError with a readable message.
  async load(timeoutMs) {
    checkLimits(this.name, this.code);
    const context = vm.createContext(
      {},
      { name: this.name, codeGeneration: { strings: false, wasm: false }, microtaskMode: 'afterEvaluate' },
    );
    const controller = new vm.Script(CONTROLLER_SOURCE, { filename: 'sandbox-controller' }).runInContext(context);
    controller.clock = () => Number(process.hrtime.bigint()) / 1000;
    Object.defineProperty(context, CONTROLLER, { value: controller, enumerable: false });
    Object.defineProperty(context, 'console', { value: controller.console, enumerable: false, writable: true });

    let module;
    try {
      module = new vm.SourceTextModule(`${this.code}\nexport { handler };\n`, { context, identifier: this.name });
    } catch (error) {
      if (/Export 'handler' is not defined/.test(error.message)) {
        throw new LimitError(`${this.name}: declare the entry point as \`function handler(event)\``);
      }
      throw new LimitError(`${this.name}: ${error.name}: ${error.message}`);
    }
    const refused = module.dependencySpecifiers.filter((specifier) => !ALLOWED_MODULES.includes(specifier));
    if (refused.length) {
      throw new LimitError(
        `${this.name}: imports ${refused.map((s) => `'${s}'`).join(', ')}; CloudFront Functions may import only 'cloudfront' and 'crypto'`,
      );
    }
    const cryptoExports = cryptoModule();
    await module.link((specifier) => {
      const exports =
        specifier === 'cloudfront' ? { default: controller.cf } : { default: cryptoExports, ...cryptoExports };
      return new vm.SyntheticModule(
        Object.keys(exports),
        function () {
          for (const [key, value] of Object.entries(exports)) this.setExport(key, value);
        },
        { context, identifier: specifier },
      );
    });
    // The evaluation promise of a module in an 'afterEvaluate' context never settles from the
    // outside; the module's status tells the outcome once evaluate() returns.
    module.evaluate({ timeout: timeoutMs }).catch(() => {});
    if (module.status === 'errored') {
      const error = module.error;
      const reason = error ? error.stack || error : `it ran longer than ${timeoutMs} ms and was stopped`;
      throw new LimitError(`${this.name}: top-level code failed: ${reason}`);
    }
    if (module.status !== 'evaluated') {
      throw new LimitError(`${this.name}: top-level code did not finish (it awaits something that never resolves)`);
    }
    if (typeof module.namespace.handler !== 'function') {
      throw new LimitError(`${this.name}: declare the entry point as \`function handler(event)\``);
    }
    controller.setHandler(module.namespace.handler);
    this.context = context;
    this.controller = controller;
  }

  // Run handler(event) against a KVS holding `kvs` ({key: string value}). `duration_us` is the
  // handler's own time, from its call until its promise settles.
  invoke(event, kvs, timeoutMs) {
    return this.invokeMany([event], kvs, timeoutMs)[0];
  }

  // Run handler(event) for each event in turn, against the same KVS, allowing `timeoutMs` per
  // event; one answer per event. A timeout stops the whole batch.
  invokeMany(events, kvs, timeoutMs) {
    this.controller.input = JSON.stringify({ events, kvs: kvs || {} });
    const started = process.hrtime.bigint();
    try {
      START.runInContext(this.context, { timeout: timeoutMs * Math.max(1, events.length) });
    } catch (error) {
      const durationUs = Number(process.hrtime.bigint() - started) / 1000;
      const timedOut = error && error.code === 'ERR_SCRIPT_EXECUTION_TIMEOUT';
      const message = timedOut ? `the handler ran longer than ${timeoutMs} ms and was stopped` : String(error);
      return events.map(() => ({
        ok: false, result: null, error: message, kvs_reads: 0, logs: [], duration_us: durationUs, timed_out: timedOut,
      }));
    }
    return JSON.parse(this.controller.finish());
  }
}
