export * from './lock-scheduler';
export * from './lock-database';
export * from './lock-helper';
export { LOCK_LATENCY_BUCKETS, lockLatencyBucket } from './lock-stats';
