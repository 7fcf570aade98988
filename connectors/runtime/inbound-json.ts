// What the hub accepts as an inbound event's JSON payload, webhooks and queue messages alike.

/** Deepest JSON nesting accepted in a payload: deeper payloads could not be stored (or read back) safely. */
export const MAX_NESTING = 100;
/** Longest event type or delivery id accepted. */
export const MAX_ID_LENGTH = 256;

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/** Decodes strict UTF-8; undefined when the bytes are not. */
export function utf8(bytes: Uint8Array): string | undefined {
  try {
    return UTF8.decode(bytes);
  } catch {
    return undefined;
  }
}

/** The JSON value of `text`, or a sentence saying why it is not one the hub stores. */
export function parseJsonPayload(text: string): { value: unknown } | { problem: string } {
  if (nesting(text) > MAX_NESTING) return { problem: `the body is nested deeper than ${MAX_NESTING} levels` };
  try {
    return { value: JSON.parse(text) as unknown };
  } catch {
    return { problem: 'the body is not valid JSON' };
  }
}

/** The deepest nesting of arrays and objects in JSON text (strings skipped); 0 for a scalar. */
function nesting(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) max = Math.max(max, ++depth);
    else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}
