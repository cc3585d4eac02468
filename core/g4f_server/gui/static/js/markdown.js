// Model output is untrusted: Markdown -> HTML (marked) -> sanitizer (DOMPurify) -> DOM.
// Raw HTML inside the Markdown is shown as text, not parsed: even an inert parse makes
// Chromium report each event-handler or style attribute as a CSP violation, and a chat
// answer has no need for it (<br>, common in tables, is kept). DOMPurify then cleans what
// marked itself emits (javascript: links...). On top of its defaults: no inline styles,
// no forms, and images only from this server's /media/ or inline data, so an answer can
// neither load anything from another host nor make the page request a broken URL.
import { Marked } from "../vendor/marked.esm.js";

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const escapeHtml = (text) => text.replace(/[&<>"']/g, (c) => ESCAPES[c]);
const marked = new Marked({
  gfm: true,
  breaks: true,
  renderer: {
    html({ text }) {
      return /^<br\s*\/?>$/i.test(text.trim()) ? "<br>" : escapeHtml(text);
    },
  },
});
const purify = window.DOMPurify;
const SAFE_DATA_IMAGE = /^data:image\/(png|jpeg|gif|webp);base64,/i;

function servedImage(src) {
  if (!src) return false;
  if (SAFE_DATA_IMAGE.test(src)) return true;
  try {
    const url = new URL(src, location.href);
    return url.origin === location.origin && url.pathname.startsWith("/media/");
  } catch {
    return false;
  }
}

export function webUrl(href) {
  try {
    const url = new URL(href, location.href);
    return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
  } catch {
    return null;
  }
}

// Runs inside DOMPurify's inert document, before anything reaches the page.
purify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A" && node.hasAttribute("href")) {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer nofollow");
  }
  if (node.tagName === "IMG") {
    node.removeAttribute("srcset");
    const src = node.getAttribute("src");
    if (!servedImage(src)) {
      node.removeAttribute("src");
      node.setAttribute("data-blocked", webUrl(src) ?? "");
    }
    node.setAttribute("loading", "lazy");
  }
});

const CONFIG = {
  USE_PROFILES: { html: true },
  FORBID_TAGS: ["style", "form", "input", "button", "textarea", "select", "option"],
  FORBID_ATTR: ["style", "class", "id"],
  ALLOW_DATA_ATTR: false,
  RETURN_DOM_FRAGMENT: true,
};

function addCopyButtons(root) {
  for (const pre of root.querySelectorAll("pre")) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "copy";
    button.textContent = "Copy";
    button.setAttribute("aria-label", "Copy code");
    button.addEventListener("click", () => copyText(pre.querySelector("code")?.innerText ?? pre.innerText, button));
    pre.append(button);
  }
}

// An image the sanitizer held back becomes a plain link (or its alt text).
function replaceBlockedImages(root) {
  for (const img of root.querySelectorAll("img[data-blocked]")) {
    const href = img.getAttribute("data-blocked");
    const label = `[image: ${img.getAttribute("alt") || href || "unavailable"}]`;
    let replacement;
    if (href) {
      replacement = document.createElement("a");
      replacement.href = href;
      replacement.target = "_blank";
      replacement.rel = "noopener noreferrer nofollow";
      replacement.textContent = label;
    } else {
      replacement = document.createTextNode(label);
    }
    img.replaceWith(replacement);
  }
}

export function renderMarkdown(target, text) {
  const fragment = purify.sanitize(marked.parse(text), CONFIG);
  replaceBlockedImages(fragment);
  addCopyButtons(fragment);
  target.replaceChildren(fragment);
}

export async function copyText(text, button) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // no clipboard permission (plain http on another host): select the text instead
    const area = document.createElement("textarea");
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  if (button) {
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => (button.textContent = label), 1200);
  }
}
