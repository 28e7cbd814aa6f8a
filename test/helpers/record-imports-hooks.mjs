// Module hooks for record-imports.mjs (they run on the loader thread of the same process).
import { appendFileSync } from 'node:fs';
import path from 'node:path';

const file = path.join(process.env.RECORD_IMPORTS_DIR ?? '.', `${process.pid}.txt`);

export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  appendFileSync(file, `${resolved.url}\n`);
  return resolved;
}
