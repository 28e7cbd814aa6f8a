#!/usr/bin/env node
/**
 * Lists the exports of src/ that no other file imports (src, test, bench): candidates for removal, or
 * for dropping the `export` keyword when the file itself still uses them. Reads the project through
 * the TypeScript compiler (tsconfig.json): static imports, re-exports, `import()` calls and
 * `typeof import()` types all count as uses. Values only; `--types` adds types and interfaces (many
 * of which are the option and result types of exported functions, kept exported on purpose). Exits 1
 * when it finds any. `npm run unused-exports [-- --types]`.
 */
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const configPath = ts.findConfigFile(root, ts.sys.fileExists, 'tsconfig.json');
const parsed = ts.parseJsonConfigFileContent(ts.readConfigFile(configPath, ts.sys.readFile).config, ts.sys, root);
const program = ts.createProgram(parsed.fileNames, parsed.options);
const checker = program.getTypeChecker();
const ours = program.getSourceFiles().filter((f) => !f.isDeclarationFile && !f.fileName.includes('/node_modules/'));

/** file name → names imported from it by other files ('*' for all of them). */
const used = new Map();
const use = (file, name) => {
  if (!used.has(file)) used.set(file, new Set());
  used.get(file).add(name);
};
const target = (from, specifier) => ts.resolveModuleName(specifier, from.fileName, parsed.options, ts.sys).resolvedModule?.resolvedFileName;

for (const file of ours) {
  const visit = (node) => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const to = target(file, node.moduleSpecifier.text);
      const clause = node.importClause;
      if (to && clause) {
        if (clause.name) use(to, 'default');
        const bindings = clause.namedBindings;
        if (bindings && ts.isNamespaceImport(bindings)) use(to, '*');
        if (bindings && ts.isNamedImports(bindings)) for (const e of bindings.elements) use(to, (e.propertyName ?? e.name).text);
      }
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      const to = target(file, node.moduleSpecifier.text);
      if (to) {
        if (!node.exportClause || ts.isNamespaceExport(node.exportClause)) use(to, '*');
        else for (const e of node.exportClause.elements) use(to, (e.propertyName ?? e.name).text);
      }
    } else if ((ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) || ts.isImportTypeNode(node)) {
      const arg = ts.isCallExpression(node) ? node.arguments[0] : node.argument.literal;
      if (arg && ts.isStringLiteral(arg)) {
        const to = target(file, arg.text);
        // `(await import(x)).name` and `import(x).Name` name what they use; anything else uses it all.
        const parent = node.parent;
        if (!to) return ts.forEachChild(node, visit);
        if (ts.isImportTypeNode(node) && node.qualifier) use(to, ts.isIdentifier(node.qualifier) ? node.qualifier.text : node.qualifier.left.getText());
        else if (ts.isAwaitExpression(parent) && ts.isVariableDeclaration(parent.parent) && ts.isObjectBindingPattern(parent.parent.name)) {
          for (const e of parent.parent.name.elements) use(to, (e.propertyName ?? e.name).getText());
        } else use(to, '*');
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
}

const unused = [];
for (const file of ours) {
  const rel = relative(root, file.fileName);
  if (!rel.startsWith('src/')) continue;
  const moduleSymbol = checker.getSymbolAtLocation(file);
  if (!moduleSymbol) continue;
  const names = used.get(file.fileName) ?? new Set();
  if (names.has('*')) continue;
  for (const symbol of checker.getExportsOfModule(moduleSymbol)) {
    if (names.has(symbol.name)) continue;
    const decl = symbol.declarations?.[0];
    const line = decl ? file.getLineAndCharacterOfPosition(decl.getStart()).line + 1 : 0;
    const kind = symbol.flags & ts.SymbolFlags.Value ? 'value' : 'type';
    if (kind === 'type' && !process.argv.includes('--types')) continue;
    // Used in its own file too: only the `export` is unused.
    const local = (file.text.match(new RegExp(`\\b${symbol.name}\\b`, 'g')) ?? []).length > 1;
    unused.push(`${rel}:${line}  ${kind} ${symbol.name}${local ? '' : '  (not used in its file either)'}`);
  }
}
// Entry points: what the CLI's bin script loads, and what `import('portico')` would.
const ENTRY = new Set(['src/cli.ts']);
const report = unused.filter((u) => !ENTRY.has(u.split(':')[0]));
for (const line of report) console.log(line);
console.log(report.length === 0 ? 'no unused exports in src/' : `${report.length} exports in src/ that nothing else imports`);
process.exitCode = report.length === 0 ? 0 : 1;
