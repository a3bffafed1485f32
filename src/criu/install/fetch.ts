// Downloading CRIU and every package it depends on, with a private apt
// configuration: only the plan's suites on the mirror apt already uses, the CRIU
// packages pinned to the plan's pin suite, and an empty dpkg status so that every
// dependency is fetched (`apt-get install -d`). Nothing on the system changes.
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { installError } from './errors.js';
import { SID_PACKAGES, type InstallPlan } from './plan.js';
import { mustRun } from './tools.js';

export interface FetchedPackages {
  /** The directory holding the .deb files. */
  archives: string;
  /** The .deb file names, sorted. */
  debs: string[];
  /** The criu package's version (`4.2-1`). */
  criuVersion: string;
}

/** apt-get's options for a configuration and state kept under `work`. */
function privateAptOptions(plan: InstallPlan, work: string): string[] {
  const etc = join(work, 'etc');
  for (const d of [etc, join(work, 'lists', 'partial'), join(work, 'cache', 'archives', 'partial')]) mkdirSync(d, { recursive: true });
  const { mirror } = plan;
  const signedBy = existsSync(plan.keyring) ? plan.keyring : mirror.signedBy;
  const opt = signedBy ? `[signed-by=${signedBy}] ` : '';
  writeFileSync(join(etc, 'sources.list'), plan.suites.map((s) => `deb ${opt}${mirror.uri} ${s} ${plan.components.join(' ')}\n`).join(''));
  writeFileSync(
    join(etc, 'preferences'),
    plan.pinSuite
      ? [
          `Package: *\nPin: release n=${plan.pinSuite}\nPin-Priority: 100\n`,
          `Package: ${SID_PACKAGES.join(' ')}\nPin: release n=${plan.pinSuite}\nPin-Priority: 990\n`,
        ].join('\n')
      : '',
  );
  return [
    `Dir::Etc::SourceList=${join(etc, 'sources.list')}`,
    'Dir::Etc::SourceParts=/dev/null',
    `Dir::Etc::Preferences=${join(etc, 'preferences')}`,
    'Dir::Etc::PreferencesParts=/dev/null',
    `Dir::State::Lists=${join(work, 'lists')}`,
    `Dir::Cache=${join(work, 'cache')}`,
    'Dir::State::Status=/dev/null',
    'APT::Install-Recommends=false',
    'Debug::NoLocking=1',
  ].flatMap((o) => ['-o', o]);
}

/** Fetches the package lists and downloads criu with all its dependencies into `work`. */
export async function fetchCriuPackages(plan: InstallPlan, work: string, progress: (m: string) => void): Promise<FetchedPackages> {
  const aptOpts = privateAptOptions(plan, work);
  progress(`fetching package lists (${plan.suites.join(', ')}) from ${plan.mirror.uri}`);
  await mustRun(`apt-get update (private ${plan.suites.join('/')} lists)`, 'apt-get', [...aptOpts, 'update', '-qq'], 900_000);
  progress('downloading criu and its libraries');
  await mustRun('apt-get download of criu', 'apt-get', [...aptOpts, 'install', '-y', '-d', '-qq', 'criu'], 1_800_000, {
    DEBIAN_FRONTEND: 'noninteractive',
  });
  const archives = join(work, 'cache', 'archives');
  const debs = readdirSync(archives).filter((f) => f.endsWith('.deb')).sort();
  const criuDeb = debs.find((f) => f.startsWith('criu_'));
  if (!criuDeb) throw installError('apt-get downloaded no criu package', { details: { packages: debs } });
  return { archives, debs, criuVersion: decodeURIComponent(criuDeb.split('_')[1] ?? 'unknown') };
}
