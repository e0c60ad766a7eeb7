// Text for the page's scripts, translated on the server: the page puts it as JSON in a data attribute (base.html's
// js_text block, <div id="js-text" data-text='{...}' hidden>; no inline script, which the CSP would refuse), so no
// script needs a catalogue of its own.
// Placeholders are written {name}; a plural is {"one": ..., "other": ...}, picked with the page language's rules.
(function () {
  "use strict";

  var data = {};
  var blob = document.getElementById("js-text");
  if (blob) {
    try {
      data = JSON.parse(blob.getAttribute("data-text")) || {};
    } catch (error) {
      data = {};
    }
  }
  var lang = document.documentElement.lang || "en";
  var rules = window.Intl && Intl.PluralRules ? new Intl.PluralRules(lang) : null;

  function fill(text, values) {
    return String(text).replace(/\{(\w+)\}/g, function (whole, name) {
      return values && Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : whole;
    });
  }

  // The text under `key` with its {placeholders} filled in; `fallback` (English) when the page has none.
  window.photoshareText = function (key, values, fallback) {
    var text = typeof data[key] === "string" ? data[key] : fallback || key;
    return fill(text, values);
  };

  // The plural form of `key` for `count`; {count} is the number written the page language's way.
  window.photosharePlural = function (key, count, values, fallback) {
    var forms = data[key] || fallback || {};
    var form = forms[rules ? rules.select(count) : count === 1 ? "one" : "other"] || forms.other || "";
    var all = Object.assign({ count: window.photoshareNumber(count) }, values || {});
    return fill(form, all);
  };

  window.photoshareNumber = function (value) {
    return window.Intl ? new Intl.NumberFormat(lang).format(value) : String(value);
  };
})();
