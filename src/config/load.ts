// Loading meridian.yaml: YAML syntax errors and validation errors both name file, line and field.
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { isMap, isNode, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { configSchema, type ClinicConfig } from './schema.ts';
import { crossCheck } from './validate.ts';

export interface ConfigIssue {
  file: string;
  line: number;
  column: number;
  /** Dotted path of the field, e.g. `practitioners[1].email`. */
  field: string;
  message: string;
}

export class ConfigError extends Error {
  constructor(public issues: ConfigIssue[]) {
    super(issues.map(formatIssue).join('\n'));
    this.name = 'ConfigError';
  }
}

export function formatIssue(i: ConfigIssue): string {
  return `${i.file}:${i.line}:${i.column}: ${i.field || '(top level)'}: ${i.message}`;
}

export function fieldPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((s, k) => (typeof k === 'number' ? `${s}[${k}]` : s ? `${s}.${String(k)}` : String(k)), '');
}

/** The line of the deepest node on `path` that exists (a missing key points at its parent). */
function locate(doc: Document, lc: LineCounter, path: readonly PropertyKey[]): { line: number; col: number } {
  let node: unknown = doc.contents;
  let offset = 0;
  for (const key of path) {
    if (!isNode(node)) break;
    if (node.range) offset = node.range[0];
    if (isMap(node)) {
      const pair = node.items.find((p) => (isNode(p.key) ? (p.key as { value?: unknown }).value : p.key) === key);
      if (!pair) break;
      if (isNode(pair.key) && pair.key.range) offset = pair.key.range[0];
      node = pair.value;
      if (isNode(node) && node.range && !(isMap(node) || isSeq(node))) offset = node.range[0];
    } else if (isSeq(node) && typeof key === 'number') {
      node = node.items[key];
      if (isNode(node) && node.range) offset = node.range[0];
    } else break;
  }
  const pos = lc.linePos(offset);
  return { line: pos.line, col: pos.col };
}

export interface LoadedConfig {
  config: ClinicConfig;
  /** SHA-256 of the file's text: applied to the store only when it changes. */
  hash: string;
  file: string;
  /** An issue located in this file: its line and column are those of the field at `path` (or its nearest parent). */
  issueAt(path: readonly PropertyKey[], message: string): ConfigIssue;
}

export function parseConfig(text: string, file: string): LoadedConfig {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) {
    throw new ConfigError(doc.errors.map((e) => {
      const p = lc.linePos(e.pos[0]);
      return { file, line: p.line, column: p.col, field: '', message: e.message.split('\n')[0] };
    }));
  }
  const raw = doc.toJS();
  const parsed = configSchema.safeParse(raw ?? {});
  const issues: ConfigIssue[] = [];
  const issueAt = (path: readonly PropertyKey[], message: string): ConfigIssue => {
    const at = locate(doc, lc, path);
    return { file, line: at.line, column: at.col, field: fieldPath(path), message };
  };
  const add = (path: readonly PropertyKey[], message: string) => issues.push(issueAt(path, message));
  if (!parsed.success) {
    for (const i of (parsed.error as z.ZodError).issues) add(i.path, i.message);
    throw new ConfigError(issues);
  }
  for (const p of crossCheck(parsed.data)) add(p.path, p.message);
  if (issues.length) throw new ConfigError(issues);
  return { config: parsed.data, hash: createHash('sha256').update(text).digest('hex'), file, issueAt };
}

export function loadConfigFile(file: string): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError([{ file, line: 0, column: 0, field: '', message: `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` }]);
  }
  return parseConfig(text, file);
}
