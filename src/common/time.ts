// Wall-clock timestamps as CTDB puts them on the wire (struct timeval), with
// microsecond resolution. Timers never use these: they run on the monotonic clock.
import type { Timeval } from '../protocol';

export function timevalNow(): Timeval {
  const us = Math.round((performance.timeOrigin + performance.now()) * 1000);
  return { sec: Math.floor(us / 1_000_000), usec: us % 1_000_000 };
}

export const ZERO_TIMEVAL: Timeval = Object.freeze({ sec: 0, usec: 0 });
