#!/usr/bin/env node
// Parse LogQL expressions with Grafana's own LogQL grammar (@grafana/lezer-logql,
// the parser behind Grafana's Loki query editor) and report syntax errors.
//
// stdin:  a JSON array of strings (the expressions)
// stdout: a JSON array with one object per expression, in order:
//         {"index": i, "expr": "...", "ok": bool,
//          "errors": [{"from": n, "to": n, "line": n, "column": n, "near": "..."}],
//          "names": {"selector": [...], "used": [...], "defined": [...], "parsers": bool}}
//         names: the label names the expression reads, from the syntax tree: those of its
//         stream selectors, and those it uses after them (label filters, unwrap, by/without,
//         keep/drop, label_format sources, {{.name}} in templates); the names it defines
//         itself (label_format targets, json/regexp/pattern extractions); and whether it
//         has a parser that extracts names only the line decides (json, logfmt, regexp,
//         pattern, unpack).
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

const TEMPLATE_NAME = /\{\{-?\s*\.([A-Za-z_][A-Za-z0-9_]*)/g;

function names(expr) {
  const tree = parser.parse(expr);
  const selector = new Set();
  const used = new Set();
  const defined = new Set();
  let parsers = false;
  const text = (n) => expr.slice(n.from, n.to);
  tree.iterate({
    enter(ref) {
      const node = ref.node;
      const name = node.type.name;
      if (name === 'LogfmtParser' || name === 'JsonExpressionParser' || name === 'Unpack') {
        parsers = true;
      }
      if (name === 'LabelParser') {
        parsers = true;
        const pattern = text(node);
        for (const m of pattern.matchAll(/\(\?P?<([A-Za-z_][A-Za-z0-9_]*)>/g)) defined.add(m[1]);
        for (const m of pattern.matchAll(/<([A-Za-z_][A-Za-z0-9_]*)>/g)) defined.add(m[1]);
      }
      if (name === 'String') {
        const parent = node.parent && node.parent.type.name;
        if (parent === 'LineFormatExpr' || parent === 'LabelFormatMatcher') {
          for (const m of text(node).matchAll(TEMPLATE_NAME)) used.add(m[1]);
        }
      }
      if (name !== 'Identifier') return;
      const parent = node.parent;
      const kind = parent && parent.type.name;
      if (kind === 'Matcher') {
        const holder = parent.parent && parent.parent.type.name;
        (holder === 'Matchers' ? selector : used).add(text(node));
      } else if (kind === 'LabelFormatMatcher' || kind === 'LabelExtractionExpression') {
        // the first identifier is the name defined, a second one (x=y) the name read
        (node.prevSibling ? used : defined).add(text(node));
      } else if (kind === 'LineFormatExpr') {
        // not reached: templates are strings
      } else {
        used.add(text(node));
      }
    },
  });
  return {
    selector: [...selector].sort(),
    used: [...used].sort(),
    defined: [...defined].sort(),
    parsers,
  };
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
  return { index, expr, ok: errors.length === 0, errors, names: names(expr) };
});
process.stdout.write(JSON.stringify(results) + '\n');
process.exit(results.every((r) => r.ok) ? 0 : 1);
