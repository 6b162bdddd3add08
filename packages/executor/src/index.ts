export type { ActionRuntime } from './actions/external-action.js';
export { checkWorkflowPolicy, compileWorkflow, policyRefusal, type CompiledExpressions, type WorkflowPolicy } from './compile-workflow.js';
export { chainOf, decide, eventDepth, type Decision, type DecideOptions, type IndexedWorkflow, type Verdict } from './decide.js';
export { countDeadLetters, discardDeadLetter, listDeadLetters, retryDeadLetter, type DeadLetter, type DeadLetterFilter } from './dead-letters.js';
export { Dispatcher, type DispatcherOptions, type ReplayScope } from './dispatcher.js';
export { COPY_FROM_ROWS } from './dispatch-statements.js';
export { PoisonIsolatingDispatcher } from './poison-isolation.js';
export { eventRowColumns, toEventEnvelope, type EventRow } from './event-row.js';
export { executeRun, type ExecutionObserver, type RunExecutorOptions, type RunResult } from './execute-run.js';
export { explainEvent, type EventExplanation } from './explain-event.js';
export { EVALUATION_DEADLINE_MS } from './expressions/bounded-evaluation.js';
export { afterFailure, type RetryPolicyOptions, type RetryVerdict } from './retry-policy.js';
export { claimAndExecuteHeld, executeRunBatch, type ClaimBatch } from './run-batch.js';
export { releaseExpiredLeases } from './expired-leases.js';
export { EVENT_GONE } from './runs-without-event.js';
export { claimRuns, RUNS_QUEUED_CHANNEL, type ClaimedRun } from './run-queue.js';
export { releaseHeldRuns } from './run-hand-back.js';
export { RunQueueListener, type RunQueueListenerOptions } from './run-queue-listener.js';
export { templateScope } from './event-scope.js';
export { renderText } from './render-mustache.js';
export { renderTemplate } from './template.js';
export { WorkerPool, type WorkerPoolOptions } from './worker-pool.js';
export {
  parseWorkflowDefinition,
  workflowDefinitionSchema,
  type WorkflowAction,
  type WorkflowDefinition,
  type WorkflowDefinitionInput,
} from './workflow-definition.js';
export { WorkflowIndex } from './workflow-index.js';
export {
  applyWorkflow,
  candidateWorkflow,
  deleteWorkflow,
  getWorkflow,
  getWorkflowById,
  getWorkflowsById,
  isUnreadable,
  listWorkflows,
  setWorkflowStatus,
  validateWorkflow,
  type ApplyOutcome,
  type ReadWorkflow,
  type StoredWorkflow,
  type UnreadableWorkflow,
} from './workflow-store.js';
export { WorkflowCache } from './workflow-cache.js';
