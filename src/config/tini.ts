// Samba's "tini" ini dialect, as read by ctdb.conf and ctdb.tunables (lib/util/tini.c):
// - leading whitespace is skipped; a logical line starting with '#' or ';' is a comment
//   (there are no trailing comments: "a = b # c" has the value "b # c");
// - a line ending in '\' (optionally followed by one whitespace character) continues on the next;
// - every run of whitespace collapses to its first character;
// - "[name]" starts a section (text after ']' is ignored, the name is not trimmed);
// - "name = value" is an option; one whitespace character is trimmed on each side of both parts;
//   a line without '=' is ignored, or is an option with an empty value when allowEmptyValue is set.
// A malformed line ("[x" without ']', "= v" without a name) stops the parse: callers see every
// entry before it plus the error, which is what the C callbacks would have seen.
import { isCSpace } from './c-number';

export type TiniEntry =
  | { kind: 'section'; name: string; line: number }
  | { kind: 'option'; name: string; value: string; line: number };

export interface TiniSyntaxError {
  line: number;
  reason: string;
}

export interface TiniResult {
  entries: TiniEntry[];
  syntaxError: TiniSyntaxError | undefined;
}

export interface TiniOptions {
  allowEmptyValue: boolean;
}

interface LogicalLine {
  text: string;
  line: number;
}

/** Splits the text into logical lines the way tini's get_line() reads them. */
function* logicalLines(text: string): Generator<LogicalLine> {
  let pos = 0;
  let lineNo = 1;
  while (pos < text.length) {
    while (pos < text.length && text[pos] !== '\n' && isCSpace(text[pos])) pos++;
    if (pos >= text.length) return;
    const first = text[pos];
    if (first === '\n') {
      pos++;
      lineNo++;
      continue;
    }
    if (first === '#' || first === ';') {
      const eol = text.indexOf('\n', pos);
      if (eol < 0) return;
      pos = eol + 1;
      lineNo++;
      continue;
    }
    const startLine = lineNo;
    let buf = '';
    for (; pos < text.length; pos++) {
      const ch = text[pos];
      if (ch === '\n') {
        lineNo++;
        if (buf.endsWith('\\')) {
          buf = buf.slice(0, -1);
          continue;
        }
        if (buf.length > 1 && buf[buf.length - 2] === '\\' && isCSpace(buf[buf.length - 1])) {
          buf = buf.slice(0, -2);
          continue;
        }
        pos++;
        break;
      }
      if (buf.length > 0 && isCSpace(buf[buf.length - 1]) && isCSpace(ch)) continue;
      buf += ch;
    }
    // The C code keeps a NUL byte in its buffer, so everything after it is invisible.
    const nul = buf.indexOf('\0');
    yield { text: nul < 0 ? buf : buf.slice(0, nul), line: startLine };
  }
}

/** tini's trim_one_space(); also reports the length the untrimmed-at-front text is left with. */
function trimOneSpace(s: string): { trimmed: string; remainingLength: number } {
  const afterFront = isCSpace(s[0]) ? s.slice(1) : s;
  if (afterFront.length === 0) return { trimmed: afterFront, remainingLength: s.length };
  if (isCSpace(afterFront[afterFront.length - 1])) {
    return { trimmed: afterFront.slice(0, -1), remainingLength: s.length - 1 };
  }
  return { trimmed: afterFront, remainingLength: s.length };
}

export function parseTini(text: string, options: TiniOptions): TiniResult {
  const entries: TiniEntry[] = [];
  for (const { text: content, line } of logicalLines(text)) {
    if (content.length === 0) continue;
    if (content[0] === '[') {
      const close = content.indexOf(']');
      if (close < 0) return { entries, syntaxError: { line, reason: `section header "${content}" has no closing ']'` } };
      entries.push({ kind: 'section', name: content.slice(1, close), line });
      continue;
    }
    const equals = content.indexOf('=');
    if (equals < 0 && !options.allowEmptyValue) continue;
    const name = trimOneSpace(equals < 0 ? content : content.slice(0, equals));
    // tini checks the length of the name buffer after trimming only its tail.
    if (name.remainingLength === 0) return { entries, syntaxError: { line, reason: `option "${content}" has no name` } };
    const value = equals < 0 ? '' : trimOneSpace(content.slice(equals + 1)).trimmed;
    entries.push({ kind: 'option', name: name.trimmed, value, line });
  }
  return { entries, syntaxError: undefined };
}
