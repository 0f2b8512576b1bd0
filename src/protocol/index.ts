// The CTDB 4.17 wire protocol: constants, codecs, packets and the control table. Pure, no I/O.
export * from './constants';
export * from './errors';
export * from './codec';
export * from './sockaddr';
export * from './types';
export * from './packet';
export * from './controls';
