/** Reading, merging and validating the config: file (YAML or JSON) + CLI flags → a validated Config. */
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import type { core } from 'zod';
import { closest, ConfigError, describeValue, formatKeyPath } from './errors.js';
import { configSchema, type Config } from './schema.js';

type RawConfig = Record<string, unknown>;

/** Reads a YAML or JSON config file into plain data; syntax errors name the file, line and column. */
export function readConfigFile(path: string): RawConfig {
  let source: string;
  try {
    source = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError([`cannot read the file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`], path);
  }
  const doc = parseDocument(source, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => {
        const pos = e.linePos?.[0];
        return `${pos ? `line ${pos.line}, column ${pos.col}: ` : ''}${e.message.split('\n')[0]}`;
      }),
      path,
    );
  }
  const data: unknown = doc.toJS();
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new ConfigError([`expected a mapping of sections (reverse, pools, forward, cache, admin, log), got ${describeValue(data)}`], path);
  }
  return data as RawConfig;
}

const WRITTEN = Symbol.for('portico.configAsWritten');

/** The file + flags data a Config was validated from, when it still carries it. */
export function writtenConfig(config: Config): unknown {
  return (config as unknown as Record<symbol, unknown>)[WRITTEN];
}

/** Validates raw config data; every problem is reported, each naming its key path. */
export function validateConfig(raw: unknown, source?: string): Config {
  const result = configSchema.safeParse(raw, { reportInput: true });
  if (result.success) {
    // Kept (not enumerable, so diffs and copies ignore it) for showing sizes and durations as written.
    Object.defineProperty(result.data, WRITTEN, { value: raw, enumerable: false });
    return result.data;
  }
  throw new ConfigError(result.error.issues.flatMap(formatIssue), source);
}

function formatIssue(issue: core.$ZodIssue): string[] {
  const path = formatKeyPath(issue.path);
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => `${formatKeyPath([...issue.path, key])}: unknown key${unknownKeyHint(issue.path, key)}`);
  }
  if (issue.code === 'invalid_union' && issue.errors.length > 0) {
    // Report the first branch's problem: our unions are "one or many" shapes of the same thing.
    const inner = issue.errors[0]?.[0];
    if (inner && issue.message.startsWith('Invalid input')) return formatIssue({ ...inner, path: [...issue.path, ...inner.path] } as core.$ZodIssue);
  }
  // zod's own wording ("Invalid input: expected record, received null") is rewritten in ours.
  const message =
    issue.code === 'invalid_type' && issue.message.startsWith('Invalid input')
      ? `expected ${typeWord(issue.expected, issue.path)}`
      : issue.message.startsWith('expected')
        ? issue.message
        : `expected ${issue.message.replace(/^Invalid input: expected /, '')}`;
  // A check on a whole section (superRefine) writes its own "got …"; its input is the section itself.
  const input = 'input' in issue ? issue.input : undefined;
  const showsInput = 'input' in issue && !(issue.code === 'custom' && typeof input === 'object' && input !== null);
  const got = showsInput ? `, got ${describeInput(input)}` : '';
  return [`${path}: ${message}${got}`];
}

/** What a person calls the shape zod expected, for this key. */
function typeWord(expected: string, path: readonly PropertyKey[]): string {
  const last = path[path.length - 1];
  if (expected === 'record' || expected === 'object') {
    if (path.length === 1 && last === 'pools') return 'a mapping of pool names to pools (web: { servers: [...] })';
    if (path.length === 1) return `a mapping of ${String(last)} settings (key: value lines under ${String(last)}:)`;
    return 'a mapping of keys to values';
  }
  if (expected === 'array') return 'a list ([a, b] or lines starting with "- ")';
  if (expected === 'string') return 'a string';
  if (expected === 'number' || expected === 'int') return 'a number';
  if (expected === 'boolean') return 'true or false';
  return expected;
}

/** "got …" for a bad value: an empty YAML key reads as null, which a person wrote as nothing. */
function describeInput(value: unknown): string {
  if (value === null) return 'an empty value (the key has nothing after the colon: fill it in or remove the line)';
  return describeValue(value);
}

/** Top-level section names and the keys people most often misspell there. */
const KNOWN_SECTIONS = ['workers', 'reverse', 'pools', 'forward', 'cache', 'admin', 'log', 'shutdown', 'limits'] as const;

function unknownKeyHint(path: readonly PropertyKey[], key: string): string {
  if (path.length !== 0) return '';
  const near = closest(key, KNOWN_SECTIONS);
  return near ? ` (did you mean ${near}?)` : ` (the sections are ${KNOWN_SECTIONS.join(', ')})`;
}

/** Deep-merges `over` onto `base` (objects merge, everything else replaces). */
export function mergeConfig(base: RawConfig, over: RawConfig): RawConfig {
  const out: RawConfig = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const prev = out[key];
    out[key] = isPlainObject(prev) && isPlainObject(value) ? mergeConfig(prev, value) : value;
  }
  return out;
}

function isPlainObject(value: unknown): value is RawConfig {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
