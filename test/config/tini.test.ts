import { describe, expect, it } from 'vitest';
import { parseTini, type TiniEntry } from '../../src/config/tini';

const opt = (name: string, value: string, line: number): TiniEntry => ({ kind: 'option', name, value, line });
const sec = (name: string, line: number): TiniEntry => ({ kind: 'section', name, line });

describe('parseTini', () => {
  const cases: Array<[string, string, TiniEntry[]]> = [
    ['simple section and option', '[a]\nx = 1\n', [sec('a', 1), opt('x', '1', 2)]],
    ['leading whitespace skipped', '   [a]\n\t  x = 1', [sec('a', 1), opt('x', '1', 2)]],
    ['comments only at line start', '# c\n ; c\nx = 1 # not a comment\n', [opt('x', '1 # not a comment', 3)]],
    ['whitespace runs collapse', 'node    address  =   1.2.3.4   \n', [opt('node address', '1.2.3.4', 1)]],
    ['a tab is kept as the run representative', 'a\t\tb = c\n', [opt('a\tb', 'c', 1)]],
    ['backslash continuation', 'x = a\\\n  b\ny = 2\n', [opt('x', 'a b', 1), opt('y', '2', 3)]],
    ['backslash followed by one space continues', 'x = a\\ \nb\n', [opt('x', 'ab', 1)]],
    ['continued line may start with #', 'x = a\\\n#b\n', [opt('x', 'a#b', 1)]],
    ['line without = is ignored', '[s]\njust words\nx=1\n', [sec('s', 1), opt('x', '1', 3)]],
    ['value may contain =', 'k = a=b\n', [opt('k', 'a=b', 1)]],
    ['empty value', 'k =\n', [opt('k', '', 1)]],
    ['text after ] ignored, name not trimmed', '[ s ] junk\n', [sec(' s ', 1)]],
    ['CRLF line endings', '[s]\r\nk = v\r\n', [sec('s', 1), opt('k', 'v', 2)]],
    ['no trailing newline', 'k=v', [opt('k', 'v', 1)]],
    ['blank lines and comment at EOF without newline', '\n\n  \nk=v\n# end', [opt('k', 'v', 4)]],
    ['NUL hides the rest of the line', 'k=v\0junk\n', [opt('k', 'v', 1)]],
    ['case is preserved (callers decide)', '[CLUSTER]\nLeader Timeout = 5\n', [sec('CLUSTER', 1), opt('Leader Timeout', '5', 2)]],
  ];
  it.each(cases)('%s', (_label, text, entries) => {
    expect(parseTini(text, { allowEmptyValue: false })).toEqual({ entries, syntaxError: undefined });
  });

  it('allowEmptyValue turns a bare word into an option with an empty value', () => {
    expect(parseTini('Foo\nBar=1\n', { allowEmptyValue: true }).entries).toEqual([opt('Foo', '', 1), opt('Bar', '1', 2)]);
  });

  const syntaxErrors: Array<[string, string, TiniEntry[], number]> = [
    ['unterminated section', '[a]\nx=1\n[b\ny=2\n', [sec('a', 1), opt('x', '1', 2)], 3],
    ['option without a name', 'x=1\n= 5\n', [opt('x', '1', 1)], 2],
  ];
  it.each(syntaxErrors)('%s stops the parse and keeps earlier entries', (_label, text, entries, line) => {
    const result = parseTini(text, { allowEmptyValue: false });
    expect(result.entries).toEqual(entries);
    expect(result.syntaxError?.line).toBe(line);
  });
});
