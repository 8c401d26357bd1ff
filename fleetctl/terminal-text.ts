/**
 * Text from the cluster (unit names, descriptions, machine metadata, error messages) is written by
 * whoever can reach the API or etcd. Printed raw, a control character can rewrite the operator's
 * terminal (`ESC ]0;...` sets its title, other sequences move the cursor or hide text). Every
 * human-readable output escapes them; JSON output is escaped by JSON itself.
 */

/** C0 controls, DEL and C1 controls. */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;
// eslint-disable-next-line no-control-regex
const CONTROL_BUT_LINES = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

function hex(c: string): string {
  return `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
}

/** A table cell or a one-line value: every control character, TAB and newline included, as `\xHH`. */
export function escapeCell(text: string): string {
  return text.replace(CONTROL, hex);
}

/** A message of one or more lines: control characters as `\xHH`, except TAB and newline. */
export function escapeMessage(text: string): string {
  return text.replace(CONTROL_BUT_LINES, hex);
}
