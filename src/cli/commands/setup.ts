// `ckpt setup criu`: makes sure a working CRIU ≥ 4.2 is available (installing a private one if needed).
import { parse, type Command } from '../command.js';
import { setupCriuSpec } from '../spec/others.js';
import { UsageError } from '../../errors.js';
import { installForUsers } from '../../criu/install/for-users.js';
import { installCriu } from '../../criu/install/install-criu.js';
import { defaultPrivateRoot } from '../../criu/locate/paths.js';
import { endProgress, println, progress } from '../output.js';
import { printResult } from '../json.js';

export const setup: Command = {
  async run(argv) {
    // main.ts found the subcommand (criu, the only one).
    const { values, positionals } = parse(argv, setupCriuSpec);
    const json = values.json === true;
    if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    const prefix = values.prefix;
    if (prefix !== undefined && !prefix.startsWith('/')) throw new UsageError(`--prefix takes an absolute directory, not '${prefix}'`);
    const onProgress = progress(json);
    const group = values['for-users'];
    if (group !== undefined) {
      if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(group)) throw new UsageError(`--for-users takes a group name, not '${group}'`);
      if (prefix !== undefined) throw new UsageError('--for-users goes with the default prefix (its copy of CRIU lives there)');
      let done;
      try {
        done = await installForUsers(group, { onProgress, force: values.force === true });
      } finally {
        endProgress(json);
      }
      if (json) printResult('setup', done);
      else {
        println(done.message);
        println(`members of ${group} may need to log in again to have the group`);
      }
      return 0;
    }
    let result;
    try {
      result = await installCriu({ ...(prefix ? { prefix } : {}), onProgress, force: values.force === true });
    } finally {
      endProgress(json);
    }
    const needsEnv = result.source === 'private' && prefix !== undefined && prefix.replace(/\/+$/, '') !== defaultPrivateRoot();
    const note = needsEnv ? `this prefix is not ckpt's default: set CKPT_CRIU=${result.path} to use it` : undefined;
    if (json) {
      printResult('setup', { ...result, ...(note ? { note } : {}) });
    } else {
      println(result.message);
      println(`criu ${result.version}: ${result.path} (${result.source})`);
      if (note) println(`note: ${note}`);
    }
    return 0;
  },
};
