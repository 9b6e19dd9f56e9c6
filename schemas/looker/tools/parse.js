// Parses every LookML file of the project with lookml-parser (LookML
// dashboards with js-yaml) and prints the result as JSON: what the Go test
// in schemas/looker checks. Usage: node parse.js <project dir>
'use strict';
const path = require('path');
const parser = require('lookml-parser');

async function main() {
  const root = process.argv[2];
  if (!root) {
    throw new Error('usage: node parse.js <project dir>');
  }
  process.chdir(root);
  const quiet = { log() {}, info() {}, warn() {}, error() {} };
  const project = await parser.parseFiles({
    source: '**/*.{lkml,lookml}',
    fileOutput: 'array',
    console: quiet,
  });
  process.stdout.write(JSON.stringify(project));
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : JSON.stringify(err)) + '\n');
  process.exit(1);
});
