/**
 * Bench child: an open-loop load generator. Requests go out on a fixed schedule, whatever the server's answers
 * do, which is what a latency bound is about: a closed loop (each connection waiting for its answer before
 * the next request) keeps the server saturated, and its latency is then connections / req/s (Little's law).
 *
 * The schedule is Poisson (exponential gaps, seeded) at `ratePerSec`: warm-up, then the measured window.
 * Latency is schedule-based: from each request's *scheduled* send time to the end of its response, so a
 * generator that falls behind (or a server that makes it fall behind) cannot hide the wait (no coordinated
 * omission). The generator's own lag (scheduled time to the send: the socket write, or the queue when every
 * connection is busy) is reported separately; it is part of the latency.
 *
 * Node's timers fire in whole milliseconds (setTimeout(0) is 1 ms), which would add ~0.6 ms of lag at the
 * median. So a worker thread keeps the clock: it sleeps with Atomics.wait (no CPU) until ~50 µs before the
 * next send, spins the rest, and posts the index to this thread, whose event loop wakes on the message at
 * once (~0.05 ms median lag here, against ~0.6 ms with setTimeout).
 *
 * This thread sends the requests as a keep-alive HTTP/1.1 client with the semantics of an http.Agent with
 * `maxSockets` connections: one request at a time per connection, the most recently freed connection reused
 * first, a new one opened while fewer than `maxSockets` are open, and requests queued beyond that (the wait
 * counts). It writes pre-built request bytes to net sockets and reads each response's status and
 * Content-Length (the server always sends one) rather than going through http.request: client and server
 * share two cores, and on this machine http.request cost ~150 µs of CPU per request in this child against
 * ~90 µs (clock included) this way, at 3,000 requests/s. Response times come from performance.now().
 *
 * Before the schedule starts, `primeConnections` connections are opened and answer one request each, so the
 * start does not open them all at once (a busy Node server accepts about one per event-loop turn). A fresh
 * generator still shows a start-up transient: against a warm server at ~3,600 requests/s, stalls of tens of
 * ms in the first ~0.4 s, each making the generator open more connections; against a fresh one, latency of
 * ~0.9 s with all `maxSockets` open within 250 ms, recovering after ~1 s. The warm-up is there for that.
 *
 * After the window, requests scheduled in it get `drainS` more to be answered; the rest count as unanswered
 * and the process ends, so an overloaded server cannot make the bench hang.
 */
import * as net from 'node:net';
import { Worker } from 'node:worker_threads';
import { seededRandom } from '../models/onnx-builder';
import { childArg, errorText, sendToParent } from './common';

export interface OpenLoopChildArgs {
  /** The infer URL. */
  readonly url: string;
  readonly body: string;
  readonly ratePerSec: number;
  readonly warmupS: number;
  readonly durationS: number;
  readonly drainS: number;
  readonly maxSockets: number;
  /** Connections opened, and answered one request each, before the schedule starts. */
  readonly primeConnections: number;
  readonly seed: number;
}

/** Spin (rather than sleep) this close to a send: a futex wake-up overshoots by ~0.05-0.1 ms. */
const SPIN_MS = 0.05;

/**
 * The clock, as plain JavaScript for an eval worker. It first posts its start time (ms, on the
 * performance.timeOrigin scale, so both threads agree), then, each time sends fall due, the index up to
 * which (exclusive) requests are due.
 */
const CLOCK = `
const { parentPort, workerData } = require('node:worker_threads');
const { offsets, spinMs } = workerData;
const sleeper = new Int32Array(new SharedArrayBuffer(4));
const startMs = performance.timeOrigin + performance.now() + 5;
const now = () => performance.timeOrigin + performance.now() - startMs;
parentPort.postMessage({ startMs });
let i = 0;
while (i < offsets.length) {
  const wait = offsets[i] - now();
  if (wait > spinMs) Atomics.wait(sleeper, 0, 0, wait - spinMs);
  while (offsets[i] > now()) {}
  const t = now();
  let j = i + 1;
  while (j < offsets.length && offsets[j] <= t) j++;
  parentPort.postMessage(j);
  i = j;
}
`;

/** Status of a request that failed without an HTTP answer (socket error, reset). */
const FAILED = 1;
/** `Connection.current` for a priming request, which is not part of the schedule. */
const PRIMING = -2;

interface Connection {
  readonly socket: net.Socket;
  /** The request in flight on it, or -1. */
  current: number;
  buffered: string;
}

/** A keep-alive HTTP/1.1 client for one URL, one request at a time per connection (see the header). */
function keepAliveClient(
  url: URL,
  body: Buffer,
  maxSockets: number,
  settle: (i: number, status: number) => void,
) {
  const head = `POST ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
  const request = Buffer.concat([Buffer.from(head, 'latin1'), body]);
  const all = new Set<Connection>();
  const idle: Connection[] = [];
  const queue: number[] = [];
  let queueAt = 0;
  const start = (c: Connection, i: number) => {
    c.current = i;
    c.socket.write(request);
  };
  const free = (c: Connection) => {
    const next = queue[queueAt];
    if (next === undefined) idle.push(c);
    else {
      queueAt++;
      start(c, next);
    }
  };
  /** Priming requests still waiting for an answer (or their connection's end). */
  let priming = 0;
  let onPrimed = (): void => undefined;
  const primedOne = () => {
    if (--priming === 0) onPrimed();
  };
  const connect = (i: number) => {
    const socket = net.connect(Number(url.port), url.hostname);
    socket.setNoDelay(true);
    socket.setEncoding('latin1');
    const c: Connection = { socket, current: -1, buffered: '' };
    all.add(c);
    socket.on('data', (chunk: string) => {
      c.buffered += chunk;
      for (;;) {
        const end = c.buffered.indexOf('\r\n\r\n');
        if (end < 0) return;
        const length = /\r\ncontent-length: *(\d+)/i.exec(c.buffered.slice(0, end))?.[1];
        const size = end + 4 + Number(length ?? 0);
        if (c.buffered.length < size) return;
        // "HTTP/1.1 200 OK"
        const status = Number(c.buffered.slice(9, 12));
        c.buffered = c.buffered.slice(size);
        const done = c.current;
        c.current = -1;
        if (done >= 0) settle(done, status);
        else if (done === PRIMING) primedOne();
        free(c);
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      all.delete(c);
      const at = idle.indexOf(c);
      if (at >= 0) idle.splice(at, 1);
      if (c.current >= 0) settle(c.current, FAILED);
      else if (c.current === PRIMING) primedOne();
      c.current = -1;
    });
    start(c, i);
  };
  return {
    /** Opens `count` connections and waits until each has answered one request. */
    prime(count: number): Promise<void> {
      return new Promise((resolve) => {
        if (count <= 0) {
          resolve();
          return;
        }
        onPrimed = resolve;
        priming = count;
        for (let k = 0; k < count; k++) connect(PRIMING);
      });
    },
    send(i: number): void {
      const c = idle.pop();
      if (c) start(c, i);
      else if (all.size < maxSockets) connect(i);
      else queue.push(i);
    },
    destroy(): void {
      for (const c of all) c.socket.destroy();
    },
  };
}

async function main(): Promise<void> {
  const args = childArg<OpenLoopChildArgs>();
  const rand = seededRandom(args.seed);
  const warmupMs = args.warmupS * 1000;
  const endMs = warmupMs + args.durationS * 1000;
  const gapMs = () => (-Math.log(1 - rand()) * 1000) / args.ratePerSec;
  const schedule: number[] = [];
  for (let t = gapMs(); t < endMs; t += gapMs()) schedule.push(t);
  const offsets = Float64Array.from(schedule);
  const n = offsets.length;
  const sentAt = new Float64Array(n).fill(NaN);
  const doneAt = new Float64Array(n).fill(NaN);
  const status = new Uint16Array(n);
  const firstInWindow = schedule.findIndex((t) => t >= warmupMs);
  const windowFrom = firstInWindow < 0 ? n : firstInWindow;

  const url = new URL(args.url);
  const body = Buffer.from(args.body, 'utf8');

  let t0 = NaN;
  let openedAt = NaN;
  let closedAt = NaN;
  let okInWindow = 0;
  /** Requests scheduled in the window and not settled yet. */
  let outstanding = n - windowFrom;
  let drained = (): void => undefined;
  const settle = (i: number, code: number) => {
    if (status[i] !== 0) return;
    status[i] = code;
    doneAt[i] = performance.now();
    if (code >= 200 && code < 300 && doneAt[i] >= openedAt && !(doneAt[i] > closedAt)) okInWindow++;
    if (i >= windowFrom && --outstanding === 0 && !Number.isNaN(closedAt)) drained();
  };
  const client = keepAliveClient(url, body, args.maxSockets, settle);
  await client.prime(Math.min(args.primeConnections, args.maxSockets));
  const send = (i: number) => {
    sentAt[i] = performance.now();
    client.send(i);
  };

  const clock = new Worker(CLOCK, { eval: true, workerData: { offsets, spinMs: SPIN_MS }, execArgv: [] });
  let next = 0;
  const started = new Promise<void>((resolve, reject) => {
    clock.on('error', reject);
    clock.on('message', (msg: number | { startMs: number }) => {
      if (typeof msg !== 'number') {
        t0 = msg.startMs - performance.timeOrigin;
        resolve();
        return;
      }
      for (; next < msg; next++) send(next);
    });
  });
  await started;

  const at = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, t0 + ms - performance.now()));
  await at(warmupMs);
  openedAt = performance.now();
  const cpu0 = process.cpuUsage();
  await sendToParent({ kind: 'windowOpen' });
  await at(endMs);
  closedAt = performance.now();
  const cpu = process.cpuUsage(cpu0);
  await sendToParent({ kind: 'windowClose' });
  // Responses that ended after the close were counted into okInWindow only if they ended before it.
  await new Promise<void>((resolve) => {
    drained = resolve;
    if (outstanding === 0) resolve();
    setTimeout(resolve, args.drainS * 1000);
  });
  await clock.terminate();

  const latencies: (number | null)[] = [];
  const lags: number[] = [];
  let ok = 0;
  let non2xx = 0;
  let errors = 0;
  let unanswered = 0;
  let sentInWindow = 0;
  for (let i = windowFrom; i < n; i++) {
    const code = status[i] as number;
    const scheduled = t0 + (offsets[i] as number);
    const sent = sentAt[i] as number;
    if (!Number.isNaN(sent)) lags.push(sent - scheduled);
    if (sent <= closedAt) sentInWindow++;
    if (code >= 200 && code < 300) {
      ok++;
      latencies.push((doneAt[i] as number) - scheduled);
      continue;
    }
    latencies.push(null);
    if (code === 0) unanswered++;
    else if (code === FAILED) errors++;
    else non2xx++;
  }
  const seconds = (closedAt - openedAt) / 1000;
  await sendToParent({
    kind: 'openLoop',
    seconds,
    scheduled: n - windowFrom,
    sentInWindow,
    ok,
    non2xx,
    errors,
    unanswered,
    okPerSec: okInWindow / seconds,
    latencyMs: latencies,
    sendLagMs: lags,
    cpuUs: cpu.user + cpu.system,
  });
  client.destroy();
}

main().then(
  () => process.exit(0),
  async (err: unknown) => {
    await sendToParent({ kind: 'error', message: errorText(err) }).catch(() => undefined);
    process.exit(1);
  },
);
