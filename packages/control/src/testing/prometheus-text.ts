/**
 * A strict parser of the Prometheus text exposition format (version 0.0.4), for tests: every line must
 * be a HELP, a TYPE or a sample of a family declared just before, label values properly escaped, values
 * numbers. It throws on anything else, so a malformed /metrics fails the test that scrapes it.
 */

export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface PromFamily {
  name: string;
  help: string;
  type: "counter" | "gauge" | "histogram" | "summary" | "untyped";
  samples: PromSample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const SUFFIXES: Record<PromFamily["type"], string[]> = {
  counter: [""],
  gauge: [""],
  untyped: [""],
  histogram: ["_bucket", "_sum", "_count"],
  summary: ["", "_sum", "_count"],
};

export function parsePrometheusText(text: string): Map<string, PromFamily> {
  const families = new Map<string, PromFamily>();
  let current: PromFamily | undefined;
  const lines = text.split("\n");
  if (lines.at(-1) !== "") throw new Error("the exposition must end with a newline");
  lines.forEach((line, index) => {
    const fail = (why: string) => {
      throw new Error(`line ${index + 1}: ${why}: ${JSON.stringify(line)}`);
    };
    if (line === "") return;
    if (line.startsWith("# HELP ")) {
      const [, name, ...help] = line.split(" ").slice(1);
      if (name === undefined || !NAME.test(name)) fail("bad metric name");
      if (families.has(name!)) fail("family declared twice");
      current = { name: name!, help: help.join(" "), type: "untyped", samples: [] };
      families.set(name!, current);
      return;
    }
    if (line.startsWith("# TYPE ")) {
      const [name, type] = line.slice(7).split(" ");
      if (current === undefined || current.name !== name) fail("TYPE without its HELP");
      if (!["counter", "gauge", "histogram", "summary", "untyped"].includes(type ?? "")) fail("unknown type");
      if (current!.samples.length > 0) fail("TYPE after samples");
      current!.type = type as PromFamily["type"];
      return;
    }
    if (line.startsWith("#")) return;
    const sample = parseSample(line, fail);
    if (current === undefined) fail("sample outside a family");
    const suffix = sample.name.slice(current!.name.length);
    if (!sample.name.startsWith(current!.name) || !SUFFIXES[current!.type].includes(suffix)) fail(`sample does not belong to ${current!.name}`);
    if (current!.type === "histogram" && suffix === "_bucket" && sample.labels.le === undefined) fail("bucket without le");
    current!.samples.push(sample);
  });
  return families;
}

function parseSample(line: string, fail: (why: string) => never): PromSample {
  const nameEnd = line.search(/[{ ]/);
  if (nameEnd <= 0) fail("no metric name");
  const name = line.slice(0, nameEnd);
  if (!NAME.test(name)) fail("bad metric name");
  const labels: Record<string, string> = {};
  let at = nameEnd;
  if (line[at] === "{") {
    at++;
    while (line[at] !== "}") {
      const eq = line.indexOf("=", at);
      if (eq < 0) fail("label without =");
      const labelName = line.slice(at, eq);
      if (!LABEL_NAME.test(labelName)) fail("bad label name");
      if (line[eq + 1] !== '"') fail("label value not quoted");
      let value = "";
      let i = eq + 2;
      for (; i < line.length && line[i] !== '"'; i++) {
        if (line[i] === "\\") {
          const next = line[++i];
          if (next === "n") value += "\n";
          else if (next === "\\" || next === '"') value += next;
          else fail("bad escape in a label value");
        } else value += line[i];
      }
      if (i >= line.length) fail("unterminated label value");
      if (labelName in labels) fail("label given twice");
      labels[labelName] = value;
      at = i + 1;
      if (line[at] === ",") at++;
      else if (line[at] !== "}") fail("expected , or }");
    }
    at++;
  }
  const rest = line.slice(at).split(" ");
  if (rest[0] !== "" || rest.length < 2 || rest.length > 3) fail("expected ' value [timestamp]'");
  const value = parseValue(rest[1]!);
  if (value === undefined) fail("bad value");
  if (rest[2] !== undefined && !/^-?\d+$/.test(rest[2])) fail("bad timestamp");
  return { name, labels, value: value! };
}

/** As Prometheus reads values (Go's ParseFloat): NaN and Inf in any case (prom-client writes "Nan"). */
function parseValue(text: string): number | undefined {
  const lower = text.toLowerCase();
  if (lower === "+inf" || lower === "inf") return Infinity;
  if (lower === "-inf") return -Infinity;
  if (lower === "nan") return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) return undefined;
  return Number(text);
}

/** The value of `name`'s sample with exactly these labels (a subset match), or undefined. */
export function sampleValue(families: Map<string, PromFamily>, family: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const samples = families.get(family)?.samples ?? [];
  const found = samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return found?.value;
}

/** Scrapes `url` and parses it; throws unless the answer is 200. */
export async function scrapeMetrics(url: string, token?: string): Promise<Map<string, PromFamily>> {
  const response = await fetch(url, { headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });
  if (response.status !== 200) throw new Error(`scraping ${url}: HTTP ${response.status}`);
  return parsePrometheusText(await response.text());
}
