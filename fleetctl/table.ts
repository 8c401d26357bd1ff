/**
 * fleet's table output (docs/fleet-compat.md §1.6): Go's `text/tabwriter` with minwidth 0, tabwidth 8,
 * padding 1 and TAB as the padding character. A column is as wide as its longest cell plus one,
 * rounded up to a multiple of 8; each cell is followed by as many TABs as it takes to reach that
 * width (at least one). The last cell of a line is not padded. Scripts that split on TABs and
 * humans reading a terminal both get what fleet gave them. Control characters in cells (a TAB
 * or an escape sequence in a description) are shown escaped, `\x1b`, never sent to the terminal.
 */

import { escapeCell } from './terminal-text.js';

const TAB_WIDTH = 8;
const PADDING = 1;

/** Width of a cell as tabwriter counts it: one per code point. */
function cellWidth(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

/**
 * Renders rows (the header, if any, is just the first row) as tabwriter would, each line ending
 * in a newline. Every row must have the same number of cells; tabwriter aligns a column over the
 * block of consecutive lines that have it, which for such rows is the whole table.
 */
export function formatTable(raw: readonly (readonly string[])[]): string {
  // Cells come from the cluster: their control characters are escaped (terminal-text.ts).
  const rows = raw.map((row) => row.map(escapeCell));
  const columns = rows.reduce((n, r) => Math.max(n, r.length), 0);
  const widths: number[] = [];
  for (let c = 0; c < columns - 1; c++) {
    let width = 0;
    for (const row of rows) {
      const cell = row[c];
      if (cell !== undefined) width = Math.max(width, cellWidth(cell) + PADDING);
    }
    widths.push(Math.ceil(width / TAB_WIDTH) * TAB_WIDTH);
  }
  let out = '';
  for (const row of rows) {
    row.forEach((cell, c) => {
      out += cell;
      const width = widths[c];
      if (c < row.length - 1 && width !== undefined) {
        out += '\t'.repeat(Math.ceil((width - cellWidth(cell)) / TAB_WIDTH));
      }
    });
    out += '\n';
  }
  return out;
}
