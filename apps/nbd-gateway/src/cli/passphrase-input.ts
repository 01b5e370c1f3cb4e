/**
 * Passphrases for the CLI: from standard input (one per line, for scripts) or prompted on the
 * terminal without echo. They go into a request body and nowhere else (no argv, no env, no file).
 */
import { createInterface } from "node:readline";
import { CliError } from "./api-client";

export interface ReadPassphrasesOptions {
  fromStdin: boolean;
  /** One prompt per passphrase wanted. */
  prompts: string[];
  /** On a terminal, ask for the last one twice. */
  confirm?: boolean;
  /** The first may be empty (passwd of a volume that had none). */
  allowEmptyFirst?: boolean;
  /** Fewest characters of the last one (a passphrase being set), checked before anything is sent. */
  minLength?: number;
}

export async function readPassphrases(options: ReadPassphrasesOptions): Promise<string[]> {
  if (options.fromStdin || !process.stdin.isTTY) {
    const lines = (await readAll()).split(/\r?\n/);
    const wanted = lines.slice(0, options.prompts.length);
    while (wanted.length > 1 && wanted.at(-1) === "") wanted.pop();
    const answers = wanted.length > 1 || options.prompts.length === 1 ? wanted : wanted.slice(0, 1);
    if (answers.length === 0 || answers.at(-1) === "") throw new CliError("no passphrase on standard input");
    return checkLength(answers, options.minLength);
  }
  const answers: string[] = [];
  for (const [i, prompt] of options.prompts.entries()) {
    const answer = await promptHidden(prompt);
    if (!answer && !(i === 0 && options.allowEmptyFirst && options.prompts.length > 1)) throw new CliError("the passphrase is empty");
    answers.push(answer);
  }
  checkLength(answers, options.minLength);
  if (options.confirm) {
    const again = await promptHidden("again: ");
    if (again !== answers.at(-1)) throw new CliError("the passphrases do not match");
  }
  return answers;
}

function checkLength(answers: string[], minLength: number | undefined): string[] {
  if (minLength !== undefined && (answers.at(-1) ?? "").length < minLength) {
    throw new CliError(`the passphrase needs at least ${minLength} characters`);
  }
  return answers;
}

async function readAll(): Promise<string> {
  const parts: Buffer[] = [];
  for await (const part of process.stdin) parts.push(part as Buffer);
  return Buffer.concat(parts).toString("utf8");
}

function promptHidden(prompt: string): Promise<string> {
  return new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
    const output = rl as unknown as { _writeToOutput: (text: string) => void };
    process.stderr.write(prompt);
    output._writeToOutput = () => undefined; // no echo
    rl.question("", (answer) => {
      rl.close();
      process.stderr.write("\n");
      resolve(answer);
    });
  });
}
