// Building the page from data without ever parsing it as HTML: every value that came from the
// server or a login becomes a text node (the CSP forbids inline script; this keeps markup out).

/**
 * A new element. `props`: `class`, `text` (textContent), and plain attributes; attribute names
 * starting with "on", `style` and anything HTML-bearing are refused, so no caller can slip
 * script or inline style in by accident. Children: nodes, strings (as text) or null.
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') node.className = value;
    else if (name === 'text') node.textContent = value;
    else if (/^on|^style$|^srcdoc$|html/i.test(name)) throw new Error(`refused attribute ${name}`);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === 'string' ? document.createTextNode(child) : child);
  }
  return node;
}

/** Removes every child of a node. */
export function clear(node) {
  while (node.firstChild) node.firstChild.remove();
  return node;
}

/**
 * Text from outside made safe to look at: C0/C1 control characters (terminal escapes) become
 * visible symbols; bidirectional controls, which can make text read differently from what it
 * is, and characters that show as nothing (zero-width spaces and joiners, soft hyphen, BOM,
 * line/paragraph separators, Hangul fillers, variation selectors, tag characters), which can
 * make two different names look the same, become U+FFFD.
 */
const INVISIBLE = /[\p{Cf}\p{Zl}\p{Zp}\u115f\u1160\u3164\uffa0\ufe00-\ufe0f\u{e0100}-\u{e01ef}]/gu;

export function visible(text) {
  return String(text).replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => {
    const code = c.charCodeAt(0);
    if (code < 0x20) return String.fromCharCode(0x2400 + code); // ␛ for ESC, ␊ for LF…
    if (code === 0x7f) return '\u2421';
    return '\ufffd';
  }).replace(INVISIBLE, '\ufffd');
}
