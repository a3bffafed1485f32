// `ckpt doctor`: can each checkpointer work here, and if not, why and what to do.
import { parse, type Command } from '../command.js';
import { doctorSpec } from '../spec/others.js';
import { checkpointers } from '../../crs/registry.js';
import { checksumBackend } from '../../store/checksum.js';
import { NATIVE_LOSS, nativeStatus } from '../../util/native.js';
import { println } from '../output.js';
import { printResult } from '../json.js';
import { probeOtherUsers } from '../../isolate/userns.js';
import { UsageError } from '../../errors.js';

export const doctorCommand: Command = {
  async run(argv) {
    const { values, positionals } = parse(argv, doctorSpec);
    if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    const report = [];
    for (const c of checkpointers()) {
      const a = await c.probe();
      report.push({ name: c.name, priority: c.priority, transparent: c.transparent, ...a });
    }
    // `none` is never chosen automatically (it saves nothing): only by name.
    const chosen = report.find((r) => r.ok && r.name !== 'self' && r.name !== 'none')?.name;
    const addon = { ...nativeStatus(), checksums: checksumBackend().backend };
    // Whether root can dump other users' processes (CAP_SYS_RESOURCE; issue 17).
    const otherUsers = report.some((r) => r.name === 'criu' && r.ok) ? await probeOtherUsers() : undefined;
    if (values.json) {
      printResult('doctor', { automatic: chosen ?? null, checkpointers: report, native: addon, otherUsers: otherUsers ?? null });
      return 0;
    }
    for (const r of report) {
      const status = r.ok ? `ok (${r.version})` : `unavailable: ${r.reason}`;
      println(`${r.name.padEnd(5)} ${status}`);
      if (!r.ok && r.hint) println(`      → ${r.hint}`);
      if (r.name === 'criu' && r.ok && r.details?.path) println(`      ${String(r.details.path)}`);
      if (r.name === 'criu' && otherUsers) {
        println(`      other users' processes: ${otherUsers.ok ? 'ok' : otherUsers.isolated ? 'only under ckpt run --isolate' : 'no'} (${otherUsers.reason})`);
        if (otherUsers.consequence) println(`      ${otherUsers.consequence}`);
        if (otherUsers.hint) println(`      → ${otherUsers.hint}`);
      }
      if (r.name === 'self') println('      needs the program to register save()/load() (registerSelf)');
      if (r.name === 'none') println('      saves nothing: used only when asked for by name (--crs none, CKPT_CRS=none)');
    }
    println(`native addon: ${addon.ok ? 'built' : `unavailable: ${addon.reason}`}; checksums: ${addon.checksums === 'native' ? 'native XXH64' : 'WebAssembly XXH64 (same digests)'}`);
    if (!addon.ok) println(`      ${NATIVE_LOSS}\n      → ${addon.hint}`);
    println(`automatic choice: ${chosen ?? 'self when the program registers save()/load(); without them checkpoint() fails (none: only by name)'}`);
    return 0;
  },
};
