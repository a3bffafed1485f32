// Which install recipe `ckpt setup criu` picks for a system, decided from
// /etc/os-release and apt's sources alone (Ubuntu and RHEL cannot be run here).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAptSources } from '../../dist/criu/install/apt-sources.js';
import { installPlan, supportedDistro, ubuntuMirror } from '../../dist/criu/install/plan.js';
import { CkptError } from '../../dist/errors.js';
import { ckpt, isOneLineError } from '../helpers.js';

const apt = { apt: true };
const debianSources = () => parseAptSources('deb http://deb.example.org/debian bookworm main\ndeb http://deb.example.org/debian-security bookworm-security main\n', 'sources.list');
const ubuntuSources = () =>
  parseAptSources(
    [
      'Types: deb',
      'URIs: http://security.ubuntu.com/ubuntu/',
      'Suites: noble-security',
      'Components: main universe',
      '',
      'Types: deb',
      'URIs: http://mirror.example.net/ubuntu/',
      'Suites: noble noble-updates',
      'Components: main universe',
      'Signed-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg',
      '',
    ].join('\n'),
    'ubuntu.sources',
  );

test('Debian: CRIU from sid, the rest from trixie, on the mirror apt uses', () => {
  const plan = installPlan({ ID: 'debian', PRETTY_NAME: 'Debian GNU/Linux 12 (bookworm)' }, debianSources, apt);
  assert.equal(plan.distro, 'debian');
  assert.deepEqual(plan.suites, ['sid', 'trixie']);
  assert.equal(plan.pinSuite, 'sid');
  assert.equal(plan.mirror.uri, 'http://deb.example.org/debian');
});

test('Ubuntu (and derivatives naming it in ID_LIKE): its own archive, the devel series, main and universe', () => {
  const systems: Record<string, string>[] = [{ ID: 'ubuntu', PRETTY_NAME: 'Ubuntu 24.04 LTS' }, { ID: 'linuxmint', ID_LIKE: 'ubuntu debian' }];
  for (const os of systems) {
    const plan = installPlan(os, ubuntuSources, apt);
    assert.equal(plan.distro, 'ubuntu');
    assert.deepEqual(plan.suites, ['devel']);
    assert.deepEqual(plan.components, ['main', 'universe']);
    assert.equal(plan.pinSuite, undefined);
    assert.equal(plan.mirror.uri, 'http://mirror.example.net/ubuntu', 'never the security pocket');
    assert.match(plan.keyring, /ubuntu-archive-keyring/);
  }
  assert.equal(ubuntuMirror(parseAptSources('deb http://ports.example.org/ubuntu-ports jammy main\n', 'x')).uri, 'http://ports.example.org/ubuntu-ports');
});

test('RHEL-family, other systems and apt-less ones: a CRIU_INSTALL error saying exactly what is needed', () => {
  const cases: [Record<string, string>, { apt: boolean }, RegExp][] = [
    [{ ID: 'rocky', ID_LIKE: 'rhel centos fedora', PRETTY_NAME: 'Rocky Linux 9.4' }, { apt: false }, /dnf install criu/],
    [{ ID: 'fedora' }, { apt: false }, /dnf install criu/],
    [{ ID: 'opensuse-leap', ID_LIKE: 'suse opensuse' }, { apt: false }, /distribution's package/],
    [{ ID: 'debian' }, { apt: false }, /distribution's package/],
  ];
  for (const [os, tools, how] of cases) {
    assert.throws(
      () => supportedDistro(os, tools),
      (err: unknown) => {
        assert.ok(err instanceof CkptError);
        assert.equal(err.code, 'ECKPT_CRIU_INSTALL');
        assert.match(err.message, /cannot install CRIU automatically/);
        assert.match(err.hint ?? '', /CRIU ≥ 4\.2 that passes `criu check`/);
        assert.match(err.hint ?? '', /CKPT_CRIU=\/path\/to\/criu/);
        assert.match(err.hint ?? '', how);
        return true;
      },
    );
  }
});

test('setup --for-users refuses a bad group name and an unknown group in one coded line', async () => {
  const bad = await ckpt(['setup', 'criu', '--for-users', 'no such']);
  assert.notEqual(bad.code, 0);
  assert.ok(isOneLineError(bad.stderr), bad.stderr);
  assert.match(bad.stderr, /ECKPT_USAGE/);
  if (process.geteuid?.() !== 0) return;
  const unknown = await ckpt(['setup', 'criu', '--for-users', 'ckpt-no-such-group']);
  assert.notEqual(unknown.code, 0);
  assert.ok(isOneLineError(unknown.stderr), unknown.stderr);
  assert.match(unknown.stderr, /no group named 'ckpt-no-such-group'.*ECKPT_USAGE/);
});
