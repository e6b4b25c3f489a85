// Redis glob matching on bytes (`*`, `?`, `[...]` with `^` and ranges, `\`
// escapes), as Redis's stringmatchlen does; used by the in-memory fake's
// INVALIDATE, and to escape ids placed in patterns.

/** True if `str` matches the Redis glob `pat`. */
export function globMatch(pat: Uint8Array, str: Uint8Array): boolean {
  return match(pat, 0, str, 0);
}

function match(p: Uint8Array, pi: number, s: Uint8Array, si: number): boolean {
  while (pi < p.length && si <= s.length) {
    const c = p[pi]!;
    if (c === 0x2a /* * */) {
      while (pi + 1 < p.length && p[pi + 1] === 0x2a) pi++;
      if (pi + 1 === p.length) return true;
      for (let k = si; k <= s.length; k++) if (match(p, pi + 1, s, k)) return true;
      return false;
    }
    if (si === s.length) return false;
    if (c === 0x3f /* ? */) {
      pi++;
      si++;
      continue;
    }
    if (c === 0x5b /* [ */) {
      pi++;
      const not = p[pi] === 0x5e; /* ^ */
      if (not) pi++;
      let hit = false;
      while (pi < p.length && p[pi] !== 0x5d /* ] */) {
        if (p[pi] === 0x5c && pi + 1 < p.length) {
          pi++;
          if (p[pi] === s[si]) hit = true;
          pi++;
        } else if (pi + 2 < p.length && p[pi + 1] === 0x2d /* - */ && p[pi + 2] !== 0x5d) {
          let lo = p[pi]!;
          let hi = p[pi + 2]!;
          if (lo > hi) [lo, hi] = [hi, lo];
          if (s[si]! >= lo && s[si]! <= hi) hit = true;
          pi += 3;
        } else {
          if (p[pi] === s[si]) hit = true;
          pi++;
        }
      }
      if (not) hit = !hit;
      if (!hit) return false;
      pi++; // past ]
      si++;
      continue;
    }
    if (c === 0x5c /* \ */ && pi + 1 < p.length) pi++;
    if (p[pi] !== s[si]) return false;
    pi++;
    si++;
  }
  while (pi < p.length && p[pi] === 0x2a) pi++;
  return pi === p.length && si === s.length;
}

/** Backslash-escape the glob characters `* ? [ ] \` of a literal. */
export function globEscape(literal: string): string {
  return literal.replace(/[*?[\]\\]/g, (c) => "\\" + c);
}
