/** A config that cannot be used: every problem names the key path (or flag) and what was expected. */
export class ConfigError extends Error {
  readonly problems: readonly string[];

  constructor(problems: readonly string[], source?: string) {
    const prefix = source ? `${source}: ` : '';
    super(problems.map((p) => prefix + p).join('\n'));
    this.name = 'ConfigError';
    this.problems = problems.map((p) => prefix + p);
  }
}

/** Formats a key path the way users write it: `pools.web.servers[1].weight`. */
export function formatKeyPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out || '(top level)';
}

/** Short rendering of a bad value for an error message. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  if (text === undefined) return String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
