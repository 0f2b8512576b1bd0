// The CTDB 4.17 wire protocol: constants, codecs, packets and the control table. Pure, no I/O.
//
// Conventions: u32/i32 are numbers, u64 (srvids, rsn) are bigints, timevals are {sec, usec} numbers.
// Decoded Buffers are views into the input buffer. Malformed input throws ProtocolError (never a
// TypeError/RangeError), and encodePacket produces exactly the bytes the real ctdbd sends
// (test/protocol/golden.test.ts checks that against captured traffic).
export * from './constants';
export * from './errors';
export * from './codec';
export * from './sockaddr';
export * from './types';
export * from './packet';
export * from './controls';
export * from './messages';
