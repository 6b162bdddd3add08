export { Dispatcher, type DispatcherOptions } from './dispatcher.js';
export { decide, eventDepth, type Decision, type DecideOptions } from './decide.js';
export { afterFailure, type RetryPolicyOptions, type RetryVerdict } from './retry-policy.js';
export { claimRuns, completeRun, failRun, releaseExpiredLeases, type ClaimedRun } from './run-queue.js';
export { renderTemplate, templateScope } from './template.js';
export { WorkerPool, type WorkerPoolOptions } from './worker-pool.js';
export {
  parseWorkflowDefinition,
  workflowDefinitionSchema,
  type WorkflowAction,
  type WorkflowDefinition,
  type WorkflowDefinitionInput,
} from './workflow-definition.js';
export { WorkflowIndex } from './workflow-index.js';
export { applyWorkflow, getWorkflow, getWorkflowById, listWorkflows, type ApplyOutcome, type StoredWorkflow } from './workflow-store.js';
