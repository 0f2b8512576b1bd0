// Samba's file_lines_load(): lines split at '\n', and a '\r' or NUL byte ends the line's text.
// Line numbers are 1-based, as CTDB prints them.

export interface FileLine {
  text: string;
  line: number;
}

export function fileLines(text: string): FileLine[] {
  return text.split('\n').map((raw, index) => ({ text: raw.replace(/[\r\0][^]*$/, ''), line: index + 1 }));
}
