// Wall-clock timestamps as CTDB puts them on the wire (struct timeval). They follow
// the system clock, jumps included; timers never use them: they run on the
// monotonic clock.
import type { Timeval } from '../protocol';

export function timevalNow(): Timeval {
  const ms = Date.now();
  return { sec: Math.floor(ms / 1000), usec: (ms % 1000) * 1000 };
}

export const ZERO_TIMEVAL: Timeval = Object.freeze({ sec: 0, usec: 0 });
