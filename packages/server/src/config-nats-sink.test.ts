import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';

const url = 'postgres://walflow@localhost:5432/app';

describe('loadConfig: the JetStream sink', () => {
  it('is off without WALFLOW_NATS_URL, and fills its defaults with it', () => {
    expect(loadConfig({ DATABASE_URL: url }).natsSink).toBeUndefined();
    expect(loadConfig({ DATABASE_URL: url, WALFLOW_NATS_URL: 'nats://a:4222, nats://b:4222' }).natsSink).toEqual({
      servers: ['nats://a:4222', 'nats://b:4222'],
      subject: 'walflow.{tenant}.{type}',
      stream: 'WALFLOW',
      maxAgeSeconds: 604_800,
      duplicateWindowSeconds: 3600,
    });
  });

  it('names a bad subject template, stream name or server list', () => {
    expect(() => loadConfig({ DATABASE_URL: url, WALFLOW_NATS_URL: ' , ', WALFLOW_NATS_SUBJECT: '{tenant}.events', WALFLOW_NATS_STREAM: 'a.b' })).toThrow(
      /WALFLOW_NATS_URL must name at least one NATS server.*WALFLOW_NATS_SUBJECT must be dot-separated tokens.*WALFLOW_NATS_STREAM must be 1-64 letters/,
    );
  });

  it('refuses a duplicate window longer than the stream keeps messages', () => {
    expect(() => loadConfig({ DATABASE_URL: url, WALFLOW_NATS_URL: 'nats://a:4222', WALFLOW_NATS_MAX_AGE_SECONDS: '600', WALFLOW_NATS_DUPLICATE_WINDOW_SECONDS: '3600' })).toThrow(
      /WALFLOW_NATS_DUPLICATE_WINDOW_SECONDS \(3600\) must not exceed WALFLOW_NATS_MAX_AGE_SECONDS \(600\)/,
    );
    expect(loadConfig({ DATABASE_URL: url, WALFLOW_NATS_URL: 'nats://a:4222', WALFLOW_NATS_MAX_AGE_SECONDS: '0' }).natsSink?.maxAgeSeconds).toBe(0);
  });
});
