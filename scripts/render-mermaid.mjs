// Renders every Mermaid diagram given (files of ```mermaid blocks, or bare diagrams) to
// SVG with Mermaid itself, in a DOM made by jsdom: the parse and the layout Mermaid does
// in a browser. jsdom measures no text, so text is measured at 8 px a character.
// Exits 1 naming the first diagram that does not render.
import { JSDOM } from "jsdom";
import { readFileSync, writeFileSync } from "node:fs";

const dom = new JSDOM("<!DOCTYPE html><body></body>", { pretendToBeVisual: true });
const { window } = dom;
for (const name of ["window", "document", "navigator", "Element", "HTMLElement", "SVGElement", "DOMParser", "MutationObserver", "CSSStyleSheet", "Node", "XMLSerializer"]) {
  if ((!(name in globalThis) || name === "navigator") && (name === "window" || window[name])) {
    Object.defineProperty(globalThis, name, { value: name === "window" ? window : window[name], configurable: true, writable: true });
  }
}
const measure = function () {
  const text = this.textContent || "";
  return { x: 0, y: 0, width: text.length * 8, height: 16 };
};
window.SVGElement.prototype.getBBox = measure;
window.SVGElement.prototype.getComputedTextLength = function () { return (this.textContent || "").length * 8; };
window.Element.prototype.getBBox = measure;

const { default: mermaid } = await import("mermaid");
mermaid.initialize({ startOnLoad: false, securityLevel: "strict" });

const diagrams = [];
for (const file of process.argv.slice(2)) {
  const text = readFileSync(file, "utf8");
  const blocks = [...text.matchAll(/```mermaid\n([\s\S]*?)```/g)].map((match) => match[1]);
  (blocks.length ? blocks : [text]).forEach((diagram, index) => diagrams.push({ name: `${file}#${index + 1}`, diagram }));
}
if (diagrams.length === 0) {
  console.error("no diagram given");
  process.exit(2);
}
let count = 0;
for (const { name, diagram } of diagrams) {
  try {
    await mermaid.parse(diagram);
    const { svg } = await mermaid.render(`d${count}`, diagram);
    if (!svg.includes("<svg") || !svg.includes("messageText")) throw new Error("no sequence diagram in the SVG");
    if (process.env.MERMAID_OUT) writeFileSync(`${process.env.MERMAID_OUT}/diagram-${count}.svg`, svg);
    count += 1;
  } catch (err) {
    console.error(`${name}: does not render: ${err.message ?? err}`);
    process.exit(1);
  }
}
console.log(`${count} diagrams rendered`);
