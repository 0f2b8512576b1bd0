// Database recovery for the recovery master: the databases to recover, the piscina pipeline
// that recovers them all in parallel, and a whole client-side recovery (ctdb_recovery_helper's
// sequence) built from them.
export { collectDatabases, type RecoveryDatabase } from './databases';
export { NodeControls, NodeFailure } from './node-controls';
export {
  RecoveryPipeline,
  recoveryTasks,
  type PhaseMessage,
  type RecoverDbResult,
  type RecoverDbTask,
  type RecoverOptions,
  type RecoveryPhase,
  type RecoveryPipelineOptions,
  type RecoveryReport,
  type RecoveryRun,
} from './pipeline';
export { newGeneration, recoverCluster, type ClusterRecoveryOptions, type ClusterRecoveryResult } from './cluster-recovery';
