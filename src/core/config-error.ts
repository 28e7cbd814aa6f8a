/**
 * A config that cannot be used: every problem names the key path (or flag) and what was expected.
 * Thrown by the config layer (src/config) and by the compile steps that turn config into runtime
 * objects (access rules), which sit below it and so cannot import it.
 */
export class ConfigError extends Error {
  readonly problems: readonly string[];

  constructor(problems: readonly string[], source?: string) {
    const prefix = source ? `${source}: ` : '';
    super(problems.map((p) => prefix + p).join('\n'));
    this.name = 'ConfigError';
    this.problems = problems.map((p) => prefix + p);
  }
}

