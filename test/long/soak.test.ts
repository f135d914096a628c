// A short soak (8 s, 300 connections churning): the heap, the descriptors and the client list come back within
// the bounds of soak/soak.ts once every client has gone.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runSoak, SOAK_BOUNDS } from '../../soak/soak.ts';

test('an 8-second soak with 300 churning connections stays within its memory and descriptor bounds', { timeout: 40_000 }, async (t) => {
  const lines: string[] = [];
  const result = await runSoak({ seconds: 8, connections: 300, log: (line) => lines.push(line) });
  for (const line of lines) t.diagnostic(line);
  assert.ok(result.samples.length >= 4, `${result.samples.length} samples`);
  assert.ok(result.opened > 300, `only ${result.opened} connections opened: no churn`);
  assert.ok(result.samples.some((s) => s.clients > 100), 'the server held many clients at once');
  assert.ok(result.samples.every((s) => s.messagesInPerSecond > 0), 'messages flowed throughout');
  assert.equal(result.final.clients, 0, 'server.clients is empty at the end');
  assert.ok(
    result.final.heapUsed <= result.warm.heapUsed + SOAK_BOUNDS.heapGrowthBytes,
    `heap ${result.warm.heapUsed} after warm-up, ${result.final.heapUsed} at the end`,
  );
  assert.ok(Math.abs(result.final.fds - result.baselineFds) <= SOAK_BOUNDS.fdSlack, `fds ${result.baselineFds} → ${result.final.fds}`);
  assert.equal(result.serverErrors, 0, 'the server reported no errors');
  assert.deepEqual(result.failures, []);
});
