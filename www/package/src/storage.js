// localStorage under the `salebeacon:` prefix, tolerant of every way it can fail.
//
// localStorage is missing in some embedded views, throws in some private modes and when full.
// The tracker must still work then (sending directly, with reduced durability): a failed write
// switches this page to its own memory (what storage still holds is no longer the truth) and the
// console says so once. Every read and write goes through here.
import { PREFIX } from './contract.js';

let memory = null; // Map, once storage failed
let ls;
try {
  ls = window.localStorage;
} catch (_) {}

function degrade(why) {
  if (memory) return;
  memory = new Map();
  console.warn(`salebeacon: ${why}; sales are kept in this page's memory until sent (durability reduced)`);
}
if (!ls) degrade('localStorage is not available');

export function get(key) {
  if (memory) return memory.has(key) ? memory.get(key) : null;
  try {
    return ls.getItem(PREFIX + key);
  } catch (_) {
    degrade('localStorage is not readable');
    return null;
  }
}

export function set(key, value) {
  if (!memory) {
    try {
      ls.setItem(PREFIX + key, value);
      return;
    } catch (_) {
      degrade('localStorage refused a write (full, or blocked)');
    }
  }
  memory.set(key, value);
}

export function remove(key) {
  if (memory) memory.delete(key);
  else {
    try {
      ls.removeItem(PREFIX + key);
    } catch (_) {}
  }
}

/** Every key (without the prefix) that starts with `start`. One pass over storage. */
export function keys(start) {
  if (memory) return [...memory.keys()].filter((k) => k.startsWith(start));
  const out = [];
  try {
    for (let i = 0; i < ls.length; i++) {
      const k = ls.key(i);
      if (k && k.startsWith(PREFIX + start)) out.push(k.slice(PREFIX.length));
    }
  } catch (_) {}
  return out;
}

/** A stored JSON value, or `undefined` (unreadable data is removed with a warning). */
export function getJson(key) {
  const text = get(key);
  if (text === null) return undefined;
  try {
    return JSON.parse(text);
  } catch (_) {
    console.warn(`salebeacon: discarded unreadable stored data (${PREFIX}${key})`);
    remove(key);
    return undefined;
  }
}
