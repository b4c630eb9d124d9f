"""The page's style sheet and its one script, inlined into every report.

Colours: the Okabe-Ito palette (Okabe & Ito, "Color Universal Design", 2008),
told apart by the common forms of colour blindness; severity, the one colour
scale of the page, uses vermillion, orange, yellow, sky blue and grey, and
every coloured mark also says its severity in words or in its tooltip. The
dark theme follows ``prefers-color-scheme``; print drops the backgrounds and
opens every ``<details>`` (the script), so a printed report holds it all.
"""

from __future__ import annotations

from typing import Final

CSS: Final = """
:root {
  --bg: #ffffff; --fg: #1b1b1b; --muted: #5b5b5b; --line: #d0d0d0; --lane: #f4f4f4;
  --code: #f0f0f0; --accent: #0072B2;
  --sev-critical: #D55E00; --sev-error: #E69F00; --sev-warning: #F0E442;
  --sev-info: #56B4E9; --sev-debug: #999999;
  --root: #000000; --link: #CC79A7; --rate: #0072B2; --threshold: #D55E00;
  --baseline: #009E73; --bar: #56B4E9; --bar-marked: #D55E00; --heat-rgb: 0, 114, 178;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #15171a; --fg: #e6e6e6; --muted: #a8a8a8; --line: #3a3d42; --lane: #1f2226;
    --code: #25282d; --accent: #56B4E9; --root: #ffffff; --rate: #56B4E9;
    --bar: #0072B2; --heat-rgb: 86, 180, 233;
  }
}
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1180px; padding: 0 16px 32px; background: var(--bg);
  color: var(--fg); font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; }
h1 { font-size: 24px; margin: 20px 0 4px; }
h2 { font-size: 19px; margin: 28px 0 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 18px 0 4px; }
h4 { font-size: 14px; margin: 12px 0 2px; }
a { color: var(--accent); }
code { background: var(--code); padding: 0 3px; border-radius: 3px; font-size: 12.5px;
  overflow-wrap: anywhere; }
.lead { margin: 0 0 6px; }
.explain { color: var(--muted); margin: 2px 0 8px; max-width: 80ch; }
.note { color: var(--muted); font-style: italic; }
nav { position: sticky; top: 0; background: var(--bg); padding: 6px 0;
  border-bottom: 1px solid var(--line); z-index: 1; }
nav a { margin-right: 14px; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 4px 0 10px; }
th, td { text-align: left; padding: 2px 8px; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { font-weight: 600; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
.msg { max-width: 520px; overflow-wrap: anywhere; }
.events-table { width: 100%; }
.events-table .msg { min-width: 360px; max-width: none; }
.events-table code { overflow-wrap: normal; word-break: normal; white-space: nowrap; }
.legend-list { list-style: none; padding: 0; margin: 4px 0; display: flex; flex-wrap: wrap; gap: 14px; }
.swatch { display: inline-block; width: 12px; height: 12px; margin-right: 5px;
  vertical-align: -1px; border: 1px solid var(--muted); }
.root-swatch { background: var(--root); transform: rotate(45deg) scale(.8); }
.link-swatch { border: 0; border-top: 2px solid var(--link); height: 2px; vertical-align: 3px; }
.sev { display: inline-block; padding: 0 5px; border-radius: 3px; font-size: 12px; color: #000; }
.sev-bg-critical { background: var(--sev-critical); }
.sev-bg-error { background: var(--sev-error); }
.sev-bg-warning { background: var(--sev-warning); }
.sev-bg-info { background: var(--sev-info); }
.sev-bg-debug { background: var(--sev-debug); }
details.incident { border: 1px solid var(--line); border-radius: 4px; margin: 6px 0;
  padding: 4px 10px; }
details.incident[open] { padding-bottom: 10px; }
details.incident:target { outline: 2px solid var(--accent); }
summary { cursor: pointer; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 6px 0; }
dt { font-weight: 600; }
dd { margin: 0; }
tr.root-row td { font-weight: 600; }
.charts { display: flex; flex-wrap: wrap; gap: 10px; }
.pair { display: flex; flex-wrap: wrap; gap: 24px; }
.pair > div { flex: 1 1 440px; min-width: 0; }
.heat { background: rgba(var(--heat-rgb), calc(var(--heat) * .85)); }
.barcell { width: 160px; }
.hbar { display: inline-block; height: 10px; background: var(--bar); }
svg.chart { max-width: 100%; height: auto; font: 11px system-ui, sans-serif; }
svg .grid { stroke: var(--line); stroke-width: 1; }
svg .axis { stroke: var(--muted); }
svg .tick, svg .legend { fill: var(--muted); }
svg .chart-title { fill: var(--fg); font-weight: 600; }
svg .lane-bg { fill: transparent; }
svg .lane:hover .lane-bg { fill: var(--lane); }
svg .lane-label { fill: var(--fg); }
svg .span { fill: var(--line); }
svg .sev-critical { fill: var(--sev-critical); }
svg .sev-error { fill: var(--sev-error); }
svg .sev-warning { fill: var(--sev-warning); stroke: #8a7f00; stroke-width: .5; }
svg .sev-info { fill: var(--sev-info); }
svg .sev-debug { fill: var(--sev-debug); }
svg .root { fill: var(--root); stroke: var(--bg); stroke-width: 1; }
svg .link { fill: none; stroke: var(--link); stroke-width: 1.5; }
svg .bar { fill: var(--bar); }
svg .bar.marked { fill: var(--bar-marked); }
svg .line { fill: none; stroke-width: 2; }
svg .line.dashed { stroke-dasharray: 5 3; }
svg .line-rate { stroke: var(--rate); }
svg text.line-rate { fill: var(--rate); }
svg .line-threshold { stroke: var(--threshold); }
svg text.line-threshold { fill: var(--threshold); }
svg .line-baseline { stroke: var(--baseline); }
svg text.line-baseline { fill: var(--baseline); }
svg text.legend { stroke: none; }
footer { margin-top: 28px; color: var(--muted); border-top: 1px solid var(--line); }
@media print {
  :root { --bg: #fff; --fg: #000; --muted: #333; --lane: #fff; --code: #fff; --root: #000; }
  body { max-width: none; font-size: 11px; }
  nav { display: none; }
  section { break-inside: auto; }
  details.incident { break-inside: avoid-page; }
  .scroll { overflow: visible; }
  a { color: inherit; text-decoration: none; }
}
"""

SCRIPT: Final = (
    'addEventListener("beforeprint",function(){'
    'document.querySelectorAll("details").forEach(function(d){d.open=true;});});'
)
