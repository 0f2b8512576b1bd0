export * from './helper-process';
export { nativeChildTiming, type ChildCreationMethod } from './native-spawn';
