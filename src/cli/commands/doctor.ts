// `ckpt doctor`: can each checkpointer work here, and if not, why and what to do.
import { parse, type Command } from '../command.js';
import { checkpointers } from '../../crs/registry.js';
import { printJson, println } from '../output.js';

const usage = 'ckpt doctor [--json]';

export const doctorCommand: Command = {
  name: 'doctor',
  summary: 'tell which checkpointers can work here, and why not',
  usage,
  async run(argv) {
    const { values } = parse(argv, { json: { type: 'boolean', default: false } }, usage);
    const report = [];
    for (const c of checkpointers()) {
      const a = await c.probe();
      report.push({ name: c.name, priority: c.priority, transparent: c.transparent, ...a });
    }
    const chosen = report.find((r) => r.ok && r.name !== 'self')?.name;
    if (values.json) {
      printJson({ ok: true, automatic: chosen, checkpointers: report });
      return 0;
    }
    for (const r of report) {
      const status = r.ok ? `ok (${r.version})` : `unavailable: ${r.reason}`;
      println(`${r.name.padEnd(5)} ${status}`);
      if (!r.ok && r.hint) println(`      → ${r.hint}`);
      if (r.name === 'criu' && r.ok && r.details?.path) println(`      ${String(r.details.path)}`);
      if (r.name === 'self') println('      needs the program to register save()/load() (registerSelf)');
    }
    println(`automatic choice: ${chosen ?? 'none'}${chosen === 'criu' ? '' : ' (self when the program registers callbacks)'}`);
    return 0;
  },
};
