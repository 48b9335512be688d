// Preloaded with `node --require`: every outbound connection and DNS lookup fails, and is recorded in
// globalThis.__mdkBlocked, so a test can show a code path makes no network call (and that this blocker works).
'use strict';
const net = require('node:net');
const dns = require('node:dns');

const blocked = [];
globalThis.__mdkBlocked = blocked;

function refuse(what) {
  blocked.push(what);
  const err = new Error(`network blocked by the test: ${what}`);
  err.code = 'ENETUNREACH';
  return err;
}

const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function blockedConnect(...args) {
  // Node passes its own normalized [options, callback] array from net.connect().
  const o = Array.isArray(args[0]) ? args[0][0] : args[0];
  // A Unix socket is local IPC, not the network (tsx's loader uses one).
  if (typeof o === 'object' && o !== null && typeof o.path === 'string') return connect.apply(this, args);
  const where = typeof o === 'object' && o !== null ? `${o.host ?? 'localhost'}:${o.port}` : String(o);
  const err = refuse(`connect ${where}`);
  process.nextTick(() => this.destroy(err));
  return this;
};

dns.lookup = function lookup(host, options, callback) {
  const cb = typeof options === 'function' ? options : callback;
  const err = refuse(`dns ${host}`);
  process.nextTick(() => cb(err));
};
dns.promises.lookup = async function lookup(host) {
  throw refuse(`dns ${host}`);
};
