// CTDB parses numbers with glibc strtol()/strtoul() and then applies its own checks. The accepted
// spellings (hex, octal, trailing garbage in ctdb.conf, "+5", …) are part of the file format, so
// the scanning is reproduced here instead of using Number().

export function isCSpace(ch: string | undefined): boolean {
  return ch === ' ' || ch === '\t' || ch === '\n' || ch === '\v' || ch === '\f' || ch === '\r';
}

interface CScan {
  /** Digits read, with the sign applied; 0n when nothing was converted. */
  value: bigint;
  /** Index just past the converted text; 0 when nothing was converted (strtol's endptr == nptr). */
  end: number;
}

const LONG_MAX = (1n << 63n) - 1n;
const LONG_MIN = -(1n << 63n);
const ULONG_MAX = (1n << 64n) - 1n;
const INT_MAX = 2147483647n;

function digitValue(ch: string): number {
  const code = ch.charCodeAt(0);
  if (code >= 48 && code <= 57) return code - 48;
  if (code >= 97 && code <= 122) return code - 87;
  if (code >= 65 && code <= 90) return code - 55;
  return 99;
}

function scan(str: string, base: 0 | 10): CScan {
  let i = 0;
  while (isCSpace(str[i])) i++;
  let negative = false;
  if (str[i] === '+' || str[i] === '-') {
    negative = str[i] === '-';
    i++;
  }
  let radix: number = base === 0 ? 10 : base;
  if (base === 0 && str[i] === '0') {
    if ((str[i + 1] === 'x' || str[i + 1] === 'X') && str[i + 2] !== undefined && digitValue(str[i + 2]) < 16) {
      radix = 16;
      i += 2;
    } else {
      radix = 8;
    }
  }
  const first = i;
  let magnitude = 0n;
  while (i < str.length && digitValue(str[i]) < radix) {
    magnitude = magnitude * BigInt(radix) + BigInt(digitValue(str[i]));
    i++;
  }
  if (i === first) return { value: 0n, end: 0 };
  return { value: negative ? -magnitude : magnitude, end: i };
}

/**
 * ctdb.conf integers (conf.c): any non-empty string is run through strtol(…, 0) and only the range
 * 0..INT_MAX is checked, so "7x" is 7 and "abc" is 0. Returns undefined where CTDB says EINVAL.
 */
export function parseConfInteger(str: string): number | undefined {
  if (str.length === 0) return undefined;
  let { value } = scan(str, 0);
  if (value > LONG_MAX) value = LONG_MAX;
  if (value < LONG_MIN) value = LONG_MIN;
  if (value < 0n || value > INT_MAX) return undefined;
  return Number(value);
}

/**
 * Samba's smb_strtoul(…, SMB_STR_FULL_STR_CONV): the whole string must be a non-negative number
 * that fits an unsigned long. Returns undefined on any error.
 */
export function parseFullUnsigned(str: string, base: 0 | 10): bigint | undefined {
  const { value, end } = scan(str, base);
  if (end === 0 || end !== str.length) return undefined;
  if (str.slice(0, end).includes('-')) return undefined;
  if (value > ULONG_MAX) return undefined;
  return value;
}
