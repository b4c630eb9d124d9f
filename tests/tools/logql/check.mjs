#!/usr/bin/env node
// Parse LogQL expressions with Grafana's own LogQL grammar (@grafana/lezer-logql,
// the parser behind Grafana's Loki query editor) and report syntax errors.
//
// stdin:  a JSON array of strings (the expressions)
// stdout: a JSON array with one object per expression, in order:
//         {"index": i, "expr": "...", "ok": bool,
//          "errors": [{"from": n, "to": n, "line": n, "column": n, "near": "..."}]}
// exit:   0 when every expression parsed, 1 when at least one did not,
//         2 on bad input.
import { parser } from '@grafana/lezer-logql';
import { readFileSync } from 'node:fs';

function position(text, offset) {
  const before = text.slice(0, offset).split('\n');
  return { line: before.length, column: before[before.length - 1].length + 1 };
}

function check(expr) {
  const tree = parser.parse(expr);
  const errors = [];
  tree.iterate({
    enter(node) {
      if (node.type.isError) {
        const { line, column } = position(expr, node.from);
        const near = expr.slice(Math.max(0, node.from - 10), Math.min(expr.length, node.to + 10));
        errors.push({ from: node.from, to: node.to, line, column, near });
      }
    },
  });
  if (expr.trim() === '') {
    errors.push({ from: 0, to: 0, line: 1, column: 1, near: '', message: 'empty expression' });
  }
  return errors;
}

let input;
try {
  input = JSON.parse(readFileSync(0, 'utf8'));
} catch (err) {
  process.stderr.write(`logql-check: stdin is not JSON: ${err.message}\n`);
  process.exit(2);
}
if (!Array.isArray(input) || !input.every((e) => typeof e === 'string')) {
  process.stderr.write('logql-check: stdin must be a JSON array of strings\n');
  process.exit(2);
}
const results = input.map((expr, index) => {
  const errors = check(expr);
  return { index, expr, ok: errors.length === 0, errors };
});
process.stdout.write(JSON.stringify(results) + '\n');
process.exit(results.every((r) => r.ok) ? 0 : 1);
