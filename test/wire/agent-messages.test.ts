// The node-agent protocol's validators (wire/agent-messages.ts): what either side
// receives is checked field by field, and a bad field is one ProtocolError
// (ECKPT_OOB_PROTOCOL) that names it — never a value passed on unchecked.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { agentHello, envRecord, probeReply, probeStore, rankExit, rankOutput, rankStarted, restoreRanks, signalRanks, startRank, terminateRanks } from '../../dist/wire/agent-messages.js';
import { parse, ProtocolError } from '../../dist/wire/validate.js';

/** Asserts that checking `v` fails with a ProtocolError whose message matches `re`. */
function refused(check: (v: unknown, p: string) => unknown, v: unknown, what: string, re: RegExp): void {
  assert.throws(
    () => parse(check, v, what),
    (err: unknown) => {
      assert.ok(err instanceof ProtocolError, `a ProtocolError, not ${String(err)}`);
      assert.equal(err.code, 'ECKPT_OOB_PROTOCOL');
      assert.match(err.message, re);
      return true;
    },
  );
}

const start = { type: 'request', op: 'start', id: 3, rank: 1, command: '/usr/bin/node', args: ['a.js', '--x'], env: { A: '1', EMPTY: '' }, cwd: '/tmp' };
const restore = { type: 'request', op: 'restore', id: 4, snapshot: '/store/job-1', ranks: [0, 2], rejoin: { coord: 'tcp:10.0.0.1:4000', job: 'j1', secret: 's3cret' } };

describe('envRecord', () => {
  test('names to strings', () => {
    assert.deepEqual(parse(envRecord, { A: '1', B: '' }, 'env'), { A: '1', B: '' });
    assert.deepEqual(parse(envRecord, {}, 'env'), {});
  });

  test('anything else names the field', () => {
    refused(envRecord, { A: 1 }, 'start.env', /^start\.env\.A must be a string, got number$/);
    refused(envRecord, { A: '1', B: null }, 'start.env', /^start\.env\.B must be a string/);
    refused(envRecord, { A: { nested: 'x' } }, 'start.env', /^start\.env\.A must be a string, got object$/);
    refused(envRecord, ['A=1'], 'start.env', /^start\.env must be an object of strings, got an array$/);
    refused(envRecord, null, 'start.env', /^start\.env must be an object of strings, got null$/);
    refused(envRecord, undefined, 'start.env', /^start\.env must be an object of strings, got undefined$/);
    // A string is not an environment (spread, it would become {0: 'A', 1: '=', …}).
    refused(envRecord, 'A=1', 'start.env', /^start\.env must be an object of strings, got string$/);
  });
});

describe('start', () => {
  test('a good request: its fields, nothing else', () => {
    assert.deepEqual(parse(startRank, start, 'start'), { rank: 1, command: '/usr/bin/node', args: ['a.js', '--x'], env: { A: '1', EMPTY: '' }, cwd: '/tmp' });
    const { cwd: _, ...noCwd } = start;
    assert.deepEqual(parse(startRank, noCwd, 'start').cwd, undefined, 'cwd is optional');
  });

  test('a bad env record', () => {
    refused(startRank, { ...start, env: { PATH: 7 } }, 'start', /^start\.env\.PATH must be a string, got number$/);
    refused(startRank, { ...start, env: 'PATH=/bin' }, 'start', /^start\.env must be an object of strings/);
    refused(startRank, { ...start, env: undefined }, 'start', /^start\.env must be an object of strings/);
  });

  test('other bad fields', () => {
    refused(startRank, { ...start, rank: -1 }, 'start', /^start\.rank must be a count \(≥ 0\), got number$/);
    refused(startRank, { ...start, rank: '1' }, 'start', /^start\.rank must be a count/);
    refused(startRank, { ...start, command: undefined }, 'start', /^start\.command must be a string, got nothing$/);
    refused(startRank, { ...start, args: 'a.js' }, 'start', /^start\.args must be an array, got 'a\.js'$/);
    refused(startRank, { ...start, args: ['a.js', 2] }, 'start', /^start\.args\[1\] must be a string, got number$/);
    refused(startRank, { ...start, cwd: 5 }, 'start', /^start\.cwd must be a string/);
    refused(startRank, 'start', 'start', /^start must be an object/);
  });
});

describe('restore', () => {
  test('a good request', () => {
    assert.deepEqual(parse(restoreRanks, restore, 'restore'), { snapshot: '/store/job-1', ranks: [0, 2], rejoin: { coord: 'tcp:10.0.0.1:4000', job: 'j1', secret: 's3cret' } });
    const withHost = { ...restore, rejoin: { ...restore.rejoin, peerHost: '10.0.0.2' } };
    assert.equal(parse(restoreRanks, withHost, 'restore').rejoin.peerHost, '10.0.0.2');
  });

  test('a bad restore request names the field', () => {
    refused(restoreRanks, { ...restore, snapshot: undefined }, 'restore', /^restore\.snapshot must be a string, got nothing$/);
    refused(restoreRanks, { ...restore, snapshot: ['/store'] }, 'restore', /^restore\.snapshot must be a string, got an array$/);
    refused(restoreRanks, { ...restore, ranks: 0 }, 'restore', /^restore\.ranks must be an array, got number$/);
    refused(restoreRanks, { ...restore, ranks: [0, -2] }, 'restore', /^restore\.ranks\[1\] must be a count/);
    refused(restoreRanks, { ...restore, ranks: [0.5] }, 'restore', /^restore\.ranks\[0\] must be a count/);
    refused(restoreRanks, { ...restore, rejoin: undefined }, 'restore', /^restore\.rejoin must be an object, got nothing$/);
    refused(restoreRanks, { ...restore, rejoin: { coord: 'tcp:x:1', job: 'j1' } }, 'restore', /^restore\.rejoin\.secret must be a string, got nothing$/);
    refused(restoreRanks, { ...restore, rejoin: { ...restore.rejoin, peerHost: 42 } }, 'restore', /^restore\.rejoin\.peerHost must be a string, got number$/);
  });
});

describe('the other messages', () => {
  test('hello', () => {
    const hello = { type: 'hello', node: 'n1', nodeIndex: 0, pid: 12, address: '169.254.77.11' };
    assert.deepEqual(parse(agentHello, hello, 'hello'), { node: 'n1', nodeIndex: 0, pid: 12, address: '169.254.77.11' });
    refused(agentHello, { ...hello, nodeIndex: -1 }, 'hello', /^hello\.nodeIndex must be a count/);
    refused(agentHello, { ...hello, address: undefined }, 'hello', /^hello\.address must be a string, got nothing$/);
    refused(agentHello, { ...hello, pid: 1.5 }, 'hello', /^hello\.pid must be a whole number/);
  });

  test('store probe and its reply', () => {
    assert.deepEqual(parse(probeStore, { path: '/s/.p', token: 'ab' }, 'probe'), { path: '/s/.p', token: 'ab' });
    refused(probeStore, { path: '/s/.p' }, 'probe', /^probe\.token must be a string, got nothing$/);
    assert.deepEqual(parse(probeReply, { seen: 'no', message: 'ENOENT' }, 'reply'), { seen: 'no', message: 'ENOENT' });
    refused(probeReply, { seen: true }, 'reply', /^reply\.seen must be 'yes' or 'no', got boolean$/);
    refused(probeReply, { seen: 'maybe' }, 'reply', /^reply\.seen must be 'yes' or 'no', got 'maybe'$/);
  });

  test('signal and terminate', () => {
    assert.deepEqual(parse(signalRanks, { type: 'signal', signal: 'SIGUSR1' }, 'signal'), { type: 'signal', signal: 'SIGUSR1' });
    refused(signalRanks, { type: 'signal', rank: -1, signal: 'SIGTERM' }, 'signal', /^signal\.rank must be a count/);
    refused(signalRanks, { type: 'signal', signal: 15 }, 'signal', /^signal\.signal must be a string, got number$/);
    refused(terminateRanks, { type: 'terminate', graceMs: -5 }, 'terminate', /^terminate\.graceMs must be a count/);
    refused(terminateRanks, { type: 'signal', graceMs: 5 }, 'terminate', /^terminate\.type must be 'terminate', got 'signal'$/);
  });

  test('output, restored, exit', () => {
    assert.deepEqual(parse(rankOutput, { type: 'output', rank: 2, stream: 'stderr', data: 'aGk=' }, 'output'), { type: 'output', rank: 2, stream: 'stderr', data: 'aGk=' });
    refused(rankOutput, { type: 'output', rank: 2, stream: 'stdin', data: '' }, 'output', /^output\.stream must be 'stdout' or 'stderr', got 'stdin'$/);
    refused(rankOutput, { type: 'output', rank: 2, stream: 'stdout', data: [1] }, 'output', /^output\.data must be a string, got an array$/);
    refused(rankStarted, { type: 'restored', rank: 0 }, 'restored', /^restored\.pid must be a whole number, got nothing$/);
    assert.deepEqual(parse(rankExit, { type: 'exit', rank: 1, code: null, signal: 'SIGKILL' }, 'exit'), { type: 'exit', rank: 1, code: null, signal: 'SIGKILL' });
    refused(rankExit, { type: 'exit', rank: 1, code: undefined, signal: null }, 'exit', /^exit\.code must be a whole number, got nothing$/);
    refused(rankExit, { type: 'exit', rank: 1, code: 0, signal: 9 }, 'exit', /^exit\.signal must be a string, got number$/);
  });
});
