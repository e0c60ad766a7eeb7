"""Page checks measured in the browser itself: layout, overlap, contrast, alt text, tap targets.

Each function runs one piece of JavaScript in the page and returns plain data (a list of problems, empty
when the page is fine), so a failing test prints what is wrong and where.
"""

from __future__ import annotations

from typing import Any

# Shared by the checks below: what counts as shown on screen, and a short name for an element in messages.
_HELPERS = r"""
const shown = (el) => {
  const box = el.getBoundingClientRect();
  if (box.width < 2 || box.height < 2) return false;          // visually-hidden text, empty elements
  // Parked off-screen until focused (the skip link).
  if (box.bottom + window.scrollY <= 0 || box.right + window.scrollX <= 0) return false;
  for (let node = el; node && node.nodeType === 1; node = node.parentElement) {
    const style = getComputedStyle(node);
    if (style.display === "none" || style.visibility === "hidden" || Number(style.opacity) === 0) return false;
    if (node.matches("details:not([open]) > :not(summary)")) return false;
  }
  return true;
};
const describe = (el) => {
  const label = (el.getAttribute("aria-label") || el.innerText || el.value || el.getAttribute("alt") || "")
    .trim().replace(/\s+/g, " ").slice(0, 40);
  const cls = (el.getAttribute("class") || "").trim().split(/\s+/).filter(Boolean).slice(0, 2).join(".");
  return `<${el.tagName.toLowerCase()}${cls ? "." + cls : ""}> "${label}"`;
};
const CONTROLS = 'a[href], button, input:not([type=hidden]), select, textarea, summary, '
  + '[tabindex]:not([tabindex="-1"])';
// While a modal viewer is open the page behind it is inert: only the dialog counts.
const ROOT = document.querySelector("dialog[open]") || document.body;
"""

_OVERFLOW = """() => ({
  scrollWidth: document.documentElement.scrollWidth,
  clientWidth: document.documentElement.clientWidth,
  widest: Array.from(document.querySelectorAll("body *"))
    .filter((el) => el.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
    .slice(0, 5).map((el) => el.tagName.toLowerCase() + "." + (el.getAttribute("class") || "")),
})"""

_OVERLAPS = (
    "() => {"
    + _HELPERS
    + """
  const controls = Array.from(ROOT.querySelectorAll(CONTROLS)).filter(shown);
  const boxes = controls.map((el) => el.getBoundingClientRect());
  const problems = [];
  for (let i = 0; i < controls.length; i++) {
    for (let j = i + 1; j < controls.length; j++) {
      const a = controls[i], b = controls[j];
      if (a.contains(b) || b.contains(a)) continue;          // a control wrapping another is one target
      const x = Math.min(boxes[i].right, boxes[j].right) - Math.max(boxes[i].left, boxes[j].left);
      const y = Math.min(boxes[i].bottom, boxes[j].bottom) - Math.max(boxes[i].top, boxes[j].top);
      if (x > 1 && y > 1) {
        problems.push(`${describe(a)} overlaps ${describe(b)} by ${Math.round(x)}x${Math.round(y)}px`);
      }
    }
  }
  return {count: controls.length, problems};
}"""
)

# WCAG 2.x: relative luminance of sRGB colours; the background is found by walking up to the first opaque
# colour and blending the translucent layers met on the way. Text on a background image cannot be judged
# from CSS colours and is reported separately as skipped.
_CONTRAST = (
    "() => {"
    + _HELPERS
    + r"""
  const parse = (value) => {
    let m = value.match(/^rgba?\(([^)]+)\)$/);
    if (m) {
      const p = m[1].split(/[\s,\/]+/).filter(Boolean).map((v) => v.endsWith("%") ? parseFloat(v) / 100 : Number(v));
      return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
    }
    m = value.match(/^color\(srgb ([^)]+)\)$/);
    if (m) {
      const p = m[1].split(/[\s\/]+/).filter(Boolean).map(Number);
      return [p[0] * 255, p[1] * 255, p[2] * 255, p.length > 3 ? p[3] : 1];
    }
    return null;
  };
  const over = (top, bottom) => {
    const a = top[3] + bottom[3] * (1 - top[3]);
    if (a === 0) return [0, 0, 0, 0];
    return [0, 1, 2].map((k) => (top[k] * top[3] + bottom[k] * bottom[3] * (1 - top[3])) / a).concat([a]);
  };
  const luminance = (c) => {
    const [r, g, b] = c.slice(0, 3).map((v) => {
      v /= 255;
      return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const background = (el) => {
    const layers = [];
    for (let node = el; node && node.nodeType === 1; node = node.parentElement) {
      const style = getComputedStyle(node);
      if (style.backgroundImage !== "none" && !style.backgroundImage.startsWith("linear-gradient")) return null;
      const colour = parse(style.backgroundColor);
      if (colour && colour[3] > 0) {
        layers.push(colour);
        if (colour[3] >= 1) break;
      }
    }
    let result = [255, 255, 255, 1];                        // the canvas behind everything
    for (let i = layers.length - 1; i >= 0; i--) result = over(layers[i], result);
    return result;
  };
  const failures = [];
  let checked = 0, skipped = 0;
  const elements = Array.from(ROOT.querySelectorAll("*")).filter((el) =>
    Array.from(el.childNodes).some((n) => n.nodeType === 3 && n.textContent.trim()) && shown(el));
  for (const el of elements) {
    const style = getComputedStyle(el);
    if (el.closest("[disabled], [aria-disabled=true]")) continue;   // WCAG exempts inactive controls
    const bg = background(el);
    if (!bg) { skipped++; continue; }
    const fg = over(parse(style.color), bg);
    const [l1, l2] = [luminance(fg), luminance(bg)].sort((a, b) => b - a);
    const ratio = (l1 + 0.05) / (l2 + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    const needed = large ? 3 : 4.5;
    checked++;
    if (ratio + 0.005 < needed) {
      const behind = `rgb(${bg.slice(0, 3).map(Math.round)})`;
      failures.push(`${describe(el)}: ${ratio.toFixed(2)}:1 < ${needed}:1 (${style.color} on ${behind}, ${size}px)`);
    }
  }
  return {checked, skipped, failures};
}"""
)

_IMAGES = """() => Array.from(document.images).map((img) => ({
  src: img.getAttribute("src") || "",
  alt: img.getAttribute("alt"),
  lazy: img.loading === "lazy",
  width: img.getAttribute("width"),
  height: img.getAttribute("height"),
  ariaHidden: img.closest("[aria-hidden=true]") !== null,
}))"""

_TAP_TARGETS = (
    "(minimum) => {"
    + _HELPERS
    + """
  // Every control except links inside running text and check boxes (their label is the target).
  const targets = Array.from(ROOT.querySelectorAll(CONTROLS)).filter((el) => shown(el)
    && !(el.matches("a") && getComputedStyle(el).display === "inline")
    && !el.matches("input[type=checkbox], input[type=radio]"));
  return targets.map((el) => ({what: describe(el), height: el.getBoundingClientRect().height}))
    .filter((t) => t.height + 0.5 < minimum)
    .map((t) => `${t.what} is ${t.height.toFixed(1)}px tall`);
}"""
)


def horizontal_overflow(page) -> dict[str, Any]:
    return page.evaluate(_OVERFLOW)


def overlapping_controls(page) -> dict[str, Any]:
    return page.evaluate(_OVERLAPS)


def contrast(page) -> dict[str, Any]:
    return page.evaluate(_CONTRAST)


def images(page) -> list[dict[str, Any]]:
    return page.evaluate(_IMAGES)


def short_tap_targets(page, minimum: float = 44) -> list[str]:
    return page.evaluate(_TAP_TARGETS, minimum)


def layout_problems(page, viewport: str) -> list[str]:
    """Everything wrong with the page's layout and accessibility at this viewport, as readable lines."""
    problems = []
    overflow = horizontal_overflow(page)
    if overflow["scrollWidth"] > overflow["clientWidth"]:
        widths = f"{overflow['scrollWidth']} > {overflow['clientWidth']}"
        problems.append(f"scrolls sideways: {widths} (too wide: {overflow['widest']})")
    overlaps = overlapping_controls(page)
    problems += overlaps["problems"]
    result = contrast(page)
    problems += result["failures"]
    if result["checked"] < 3:
        problems.append(f"contrast: only {result['checked']} text elements measured ({result['skipped']} skipped)")
    for image in images(page):
        if image["alt"] is None and not image["ariaHidden"]:
            problems.append(f"image without alt text: {image['src']}")
        if image["lazy"] and not (image["width"] and image["height"]):
            problems.append(f"lazy image without width/height: {image['src']}")
    if viewport == "phone":
        problems += short_tap_targets(page)
    return problems
