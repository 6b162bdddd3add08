-- explain follows the causal chain downwards: the events a run emitted name their cause in metadata.
CREATE INDEX events_causation ON walflow.events ((metadata->>'causationId'));
