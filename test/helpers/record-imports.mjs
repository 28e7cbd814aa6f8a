// `node --import ./test/helpers/record-imports.mjs …`: every module a process loads through `import`
// (its resolved URL) is appended to $RECORD_IMPORTS_DIR/<pid>.txt. Workers forked by the supervisor
// inherit the flag, so each process of a running Portico leaves its own list.
import { register } from 'node:module';

register('./record-imports-hooks.mjs', import.meta.url);
