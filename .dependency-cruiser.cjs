/**
 * The layers of src/ (README, "Architecture": imports flow one way), checked by `npm test`
 * before the tests run:
 *
 *   front doors (src/forward, src/reverse)
 *     → src/pipeline (the phase runner and the shared phases)
 *       → src/upstream, src/cache, src/balance, src/policy
 *         → src/core (imports nothing of ours)
 *
 * The process around them (the files at the top of src/: cli.ts, serving.ts, server.ts, runtime.ts,
 * listeners.ts…; src/workers, src/admin, src/config) may import any layer; no layer imports it back.
 * Type-only imports count: a type from the wrong room is a dependency on that room all the same.
 */
const PROCESS = '^src/[^/]+\\.ts$|^src/(workers|admin)/';
const DOORS = '^src/(forward|reverse)/';

module.exports = {
  forbidden: [
    {
      name: 'core-is-a-leaf',
      comment: 'src/core (error type, header helpers, shapes) imports nothing of ours but src/core.',
      severity: 'error',
      from: { path: '^src/core/' },
      to: { path: '^src/', pathNot: '^src/core/' },
    },
    {
      name: 'doors-are-apart',
      comment: 'The forward and the reverse door never import each other: what they share lives in the pipeline or below.',
      severity: 'error',
      from: { path: '^src/(forward|reverse)/' },
      to: { path: '^src/(forward|reverse)/', pathNot: '^src/$1/' },
    },
    {
      name: 'pipeline-below-doors',
      comment: 'The pipeline knows no door and no process: doors supply what differs through its interfaces.',
      severity: 'error',
      from: { path: '^src/pipeline/' },
      to: { path: [DOORS, PROCESS, '^src/config/'] },
    },
    {
      name: 'upstream-and-observe-below-pipeline',
      comment:
        'How bytes reach an origin or backend (src/upstream), and the access log and statistics the pipeline feeds (src/observe), know nothing of the pipeline, the doors, the process or the config schema.',
      severity: 'error',
      from: { path: '^src/(upstream|observe)/' },
      to: { path: ['^src/pipeline/', DOORS, PROCESS, '^src/config/'] },
    },
    {
      name: 'cache-balance-policy-on-plain-shapes',
      comment:
        'src/cache, src/balance and src/policy work on plain request/response shapes: never the pipeline, the upstream layer, the doors, the admin API, the process or the config schema (a type-only import included).',
      severity: 'error',
      from: { path: '^src/(cache|balance|policy)/' },
      to: { path: ['^src/pipeline/', '^src/upstream/', DOORS, PROCESS, '^src/config/'] },
    },
    {
      name: 'doors-below-the-process',
      comment: 'A door is built by the runtime and read by the admin API through small interfaces; it imports neither.',
      severity: 'error',
      from: { path: DOORS },
      to: { path: PROCESS },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Type-only imports are dependencies too.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
