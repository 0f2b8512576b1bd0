export * from './constants';
export * from './errors';
export * from './ltdb-header';
export * from './tdb-file';
export * from './dump-format';
