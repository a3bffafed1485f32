// A job's name: shown by `ckpt ps`, matched by `ckpt kill NAME`, and the last part of
// its default store's path ($CKPT_STATE_DIR/snapshots/NAME). So it must be one path
// name (no `/`, not `.` or `..`, not empty) and one line of text.

/** Why `name` cannot name a job, or undefined if it can. */
export function jobNameProblem(name: string): string | undefined {
  if (name === '') return 'is empty';
  if (name === '.' || name === '..' || name.includes('/')) return `'${name.replace(/[^\x20-\x7e]/g, '?')}' is not one path name (no '/', not '.' or '..')`;
  if (/[\x00-\x1f\x7f]/.test(name)) return 'holds a control character (a newline, a tab, an escape)';
  if (Buffer.byteLength(name) > 255) return 'is longer than 255 bytes';
  return undefined;
}
