/**
 * Man pages made from the programs' own `--help` texts, so that the page and the help never
 * disagree: each help text goes into the page verbatim, as preformatted roff.
 */

/** One section of a page: a title and preformatted text. */
export interface ManSection {
  readonly title: string;
  readonly text: string;
}

export interface ManPage {
  /** The command, e.g. `fleetctl`. */
  readonly name: string;
  /** The manual section: 1 for commands, 8 for daemons. */
  readonly section: 1 | 8;
  /** What NAME says after the dash. */
  readonly summary: string;
  readonly version: string;
  readonly sections: readonly ManSection[];
  readonly seeAlso: readonly string[];
}

/** Text escaped for roff: backslashes doubled, and a line that would start a request escaped. */
export function roffEscape(line: string): string {
  const escaped = line.replaceAll('\\', '\\e').replaceAll('-', '\\-');
  return /^[.']/.test(escaped) ? `\\&${escaped}` : escaped;
}

/** Preformatted lines (tabs expanded to 8-column stops, so the page looks like the terminal). */
function preformatted(text: string): string[] {
  const lines = text.replace(/\n+$/, '').split('\n');
  return [
    '.nf',
    '.ft CR',
    ...lines.map((line) => {
      let column = '';
      for (const ch of line) column += ch === '\t' ? ' '.repeat(8 - (column.length % 8)) : ch;
      return column === '' ? '' : roffEscape(column);
    }),
    '.ft R',
    '.fi',
  ];
}

/** The page in roff (man macros). */
export function renderManPage(page: ManPage): string {
  const title = page.name.toUpperCase();
  const out = [
    `.TH ${title} ${page.section} "" "fleet-ts ${page.version}" "fleet-ts"`,
    '.SH NAME',
    `${roffEscape(page.name)} \\- ${roffEscape(page.summary)}`,
  ];
  for (const section of page.sections) {
    out.push(`.SH ${section.title.toUpperCase()}`, ...preformatted(section.text));
  }
  if (page.seeAlso.length > 0) {
    out.push(
      '.SH SEE ALSO',
      page.seeAlso.map((ref) => `.BR ${ref.replace(/\((\d)\)$/, ' ($1)')}`).join(',\n'),
    );
  }
  return `${out.join('\n')}\n`;
}
