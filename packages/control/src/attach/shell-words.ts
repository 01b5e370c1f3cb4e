/**
 * Command lines that are shown to be copied into a POSIX shell, and also run directly (argv, no shell).
 * A word is a list of parts: text, or HOME_DIR for "the user's home directory", which the printed form
 * leaves to the shell (`"$HOME/…"`, so one command works for every user) and the argv form fills in.
 */
export const HOME_DIR = Symbol("home directory");
export type WordPart = string | typeof HOME_DIR;
export type Word = string | readonly WordPart[];

// Characters a shell never treats specially inside a word.
const PLAIN = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** One word as it must be typed into sh/bash/zsh. */
export function shellWord(word: Word): string {
  const parts = typeof word === "string" ? [word] : word;
  if (parts.includes(HOME_DIR)) {
    // Double quotes: $HOME expands, everything else stays literal.
    return `"${parts.map((part) => (part === HOME_DIR ? "$HOME" : part.replace(/["$`\\]/g, "\\$&"))).join("")}"`;
  }
  const text = parts.join("");
  if (text !== "" && PLAIN.test(text)) return text;
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

export function shellCommand(words: readonly Word[]): string {
  return words.map(shellWord).join(" ");
}

/** The same words for execFile/spawn, with HOME_DIR replaced by the given directory. */
export function argv(words: readonly Word[], home: string): string[] {
  return words.map((word) => (typeof word === "string" ? word : word.map((part) => (part === HOME_DIR ? home : part)).join("")));
}

/** Joins words' parts: `concat("a=", dirWord, "/x")`. */
export function concat(...pieces: Word[]): WordPart[] {
  return pieces.flatMap((piece) => (typeof piece === "string" ? [piece] : [...piece]));
}

/** Maps the text parts of a word (escaping for an inner syntax), leaving HOME_DIR alone. */
export function mapText(word: Word, fn: (text: string) => string): WordPart[] {
  return (typeof word === "string" ? [word] : word).map((part) => (part === HOME_DIR ? part : fn(part)));
}
