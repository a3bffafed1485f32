// Where a job's ranks go in a Slurm allocation (runtime/slurm-allocation.ts): the
// allocation as its environment tells, SLURM_TASKS_PER_NODE's compressed form, and
// block and cyclic placement. Pure code: no Slurm needed.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { expandTasksPerNode, placeRanks, slurmAllocation } from '../../dist/runtime/slurm-allocation.js';
import { CkptError } from '../../dist/errors.js';

/** The allocation's fields that are set (an absent one may be there as undefined). */
const allocation = (env: NodeJS.ProcessEnv): object => Object.fromEntries(Object.entries(slurmAllocation(env)).filter(([, v]) => v !== undefined));

describe('placeRanks: block', () => {
  test('spreads evenly; the first size mod nodes nodes get one more', () => {
    assert.deepEqual(placeRanks(4, 2), [0, 0, 1, 1]);
    assert.deepEqual(placeRanks(6, 3), [0, 0, 1, 1, 2, 2]);
    assert.deepEqual(placeRanks(5, 2), [0, 0, 0, 1, 1]);
    assert.deepEqual(placeRanks(7, 3), [0, 0, 0, 1, 1, 2, 2]);
    assert.deepEqual(placeRanks(1, 1), [0]);
    assert.deepEqual(placeRanks(3, 1), [0, 0, 0]);
    assert.deepEqual(placeRanks(2, 3), [0, 1], 'more nodes than ranks: one each, the last node idle');
    assert.deepEqual(placeRanks(0, 2), []);
    assert.deepEqual(placeRanks(4, 2, { distribution: 'block' }), [0, 0, 1, 1], 'block is the default, also when named');
  });

  test('--ntasks-per-node fills each node up to it, when the nodes hold the job', () => {
    assert.deepEqual(placeRanks(4, 2, { tasksPerNode: 2 }), [0, 0, 1, 1]);
    assert.deepEqual(placeRanks(5, 2, { tasksPerNode: 4 }), [0, 0, 0, 0, 1]);
    assert.deepEqual(placeRanks(5, 3, { tasksPerNode: 2 }), [0, 0, 1, 1, 2]);
    assert.deepEqual(placeRanks(4, 3, { tasksPerNode: 2 }), [0, 0, 1, 1], 'the last node gets none');
    // Too few slots: the even spread instead (the job still runs, more ranks per node).
    assert.deepEqual(placeRanks(6, 2, { tasksPerNode: 2 }), [0, 0, 0, 1, 1, 1]);
  });

  test("the allocation's tasks per node, when they add up to the job's size", () => {
    assert.deepEqual(placeRanks(4, 2, { tasks: [3, 1] }), [0, 0, 0, 1]);
    assert.deepEqual(placeRanks(7, 3, { tasks: [2, 2, 3] }), [0, 0, 1, 1, 2, 2, 2]);
    // They win over --ntasks-per-node (Slurm's own count per node).
    assert.deepEqual(placeRanks(4, 2, { tasks: [1, 3], tasksPerNode: 2 }), [0, 1, 1, 1]);
    // Another size, or another number of nodes: not this job's layout.
    assert.deepEqual(placeRanks(6, 2, { tasks: [3, 1] }), [0, 0, 0, 1, 1, 1]);
    assert.deepEqual(placeRanks(4, 2, { tasks: [2, 1, 1] }), [0, 0, 1, 1]);
    assert.deepEqual(placeRanks(3, 2, { tasks: [3, 1], tasksPerNode: 2 }), [0, 0, 1], '--ntasks-per-node next');
  });

  test('every rank has a node, and ranks of a node are consecutive', () => {
    for (let nodes = 1; nodes <= 5; nodes++) {
      for (let size = nodes; size <= 12; size++) {
        const p = placeRanks(size, nodes);
        assert.equal(p.length, size);
        assert.deepEqual([...p].sort((a, b) => a - b), p, `${size} on ${nodes}`);
        assert.deepEqual(new Set(p).size, nodes, `${size} on ${nodes}: every node used`);
        const per = Array.from({ length: nodes }, (_, i) => p.filter((n) => n === i).length);
        assert.ok(Math.max(...per) - Math.min(...per) <= 1, `${size} on ${nodes}: even (${per})`);
      }
    }
  });
});

describe('placeRanks: cyclic', () => {
  test('rank r on node r mod N, whatever the tasks per node say', () => {
    assert.deepEqual(placeRanks(6, 3, { distribution: 'cyclic' }), [0, 1, 2, 0, 1, 2]);
    assert.deepEqual(placeRanks(5, 2, { distribution: 'cyclic' }), [0, 1, 0, 1, 0]);
    assert.deepEqual(placeRanks(4, 2, { distribution: 'cyclic', tasks: [3, 1], tasksPerNode: 3 }), [0, 1, 0, 1]);
    assert.deepEqual(placeRanks(2, 1, { distribution: 'cyclic' }), [0, 0]);
  });
});

describe('expandTasksPerNode (SLURM_TASKS_PER_NODE)', () => {
  test('plain lists and repeat counts', () => {
    assert.deepEqual(expandTasksPerNode('3,1'), [3, 1]);
    assert.deepEqual(expandTasksPerNode('2(x3)'), [2, 2, 2]);
    assert.deepEqual(expandTasksPerNode('2(x3),1'), [2, 2, 2, 1]);
    assert.deepEqual(expandTasksPerNode('1,4(x2),2'), [1, 4, 4, 2]);
    assert.deepEqual(expandTasksPerNode('16'), [16]);
    assert.deepEqual(expandTasksPerNode(' 2 , 1'), [2, 1], 'spaces around a part');
  });

  test('absent or malformed: undefined', () => {
    for (const bad of [undefined, '', 'x', '2(x)', '2(3)', '2x3', '(x3)', '2,,1', '2,', '-1', '1.5', '2(x-1)', '0', '2(x0)', '0(x3)', 'abc,1']) {
      assert.equal(expandTasksPerNode(bad), undefined, JSON.stringify(bad));
    }
  });

  test('a repeat count beyond any allocation is malformed, not a loop to run', () => {
    assert.equal(expandTasksPerNode('1(x1000000000)'), undefined);
    assert.equal(expandTasksPerNode('1(x60000),1(x60000)'), undefined);
    assert.equal(expandTasksPerNode('1(x1000)')?.length, 1000);
  });
});

describe('slurmAllocation', () => {
  test('what salloc or sbatch set', () => {
    assert.deepEqual(allocation({ SLURM_JOB_ID: '17', SLURM_JOB_NUM_NODES: '2', SLURM_TASKS_PER_NODE: '3,1' }), { jobId: '17', nodes: 2, tasks: [3, 1] });
    assert.deepEqual(allocation({ SLURM_JOB_ID: '18', SLURM_JOB_NUM_NODES: '3', SLURM_NTASKS_PER_NODE: '2', SLURM_TASKS_PER_NODE: '2(x3)' }), {
      jobId: '18',
      nodes: 3,
      tasksPerNode: 2,
      tasks: [2, 2, 2],
    });
    // The older names.
    assert.deepEqual(allocation({ SLURM_JOBID: '19', SLURM_NNODES: '4' }), { jobId: '19', nodes: 4 });
  });

  test('tasks per node that do not fit the node count, or are malformed, are left out', () => {
    assert.deepEqual(allocation({ SLURM_JOB_ID: '1', SLURM_JOB_NUM_NODES: '3', SLURM_TASKS_PER_NODE: '2(x2)' }), { jobId: '1', nodes: 3 });
    assert.deepEqual(allocation({ SLURM_JOB_ID: '1', SLURM_JOB_NUM_NODES: '2', SLURM_TASKS_PER_NODE: '2(x' }), { jobId: '1', nodes: 2 });
    assert.deepEqual(allocation({ SLURM_JOB_ID: '1', SLURM_JOB_NUM_NODES: '2', SLURM_NTASKS_PER_NODE: 'two' }), { jobId: '1', nodes: 2 });
    assert.deepEqual(allocation({ SLURM_JOB_ID: '1', SLURM_JOB_NUM_NODES: '2', SLURM_NTASKS_PER_NODE: '0' }), { jobId: '1', nodes: 2 });
  });

  test('outside an allocation (or with a node count that is not one): NO_ALLOCATION, with what to do', () => {
    for (const env of [
      {},
      { SLURM_JOB_ID: '5' },
      { SLURM_JOB_NUM_NODES: '2' },
      { SLURM_JOB_ID: '5', SLURM_JOB_NUM_NODES: '0' },
      { SLURM_JOB_ID: '5', SLURM_JOB_NUM_NODES: 'two' },
      { SLURM_JOB_ID: '5', SLURM_JOB_NUM_NODES: '-2' },
      { SLURM_JOB_ID: '', SLURM_JOB_NUM_NODES: '2' },
    ]) {
      assert.throws(
        () => slurmAllocation(env),
        (err: unknown) => err instanceof CkptError && err.code === 'ECKPT_NO_ALLOCATION' && /needs a Slurm allocation/.test(err.message) && /salloc|sbatch/.test(err.hint ?? ''),
        JSON.stringify(env),
      );
    }
  });
});
