/* Owner pages: uploads one file at a time with progress and per-file errors, drag and drop, copy buttons,
   confirmations and local times. Plain JavaScript, no build step; every page also works without it. */
(function () {
  "use strict";

  var DONE_KEY = "photoshare-upload-done";

  function ready(fn) {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", fn);
    else fn();
  }

  // Text in the page's language: owner/_layout.html's js_text block, read by js/i18n.js.
  var t = window.photoshareText;
  var plural = window.photosharePlural;

  /* ---- confirmations, local times, time zone ---------------------------------------------------- */

  function setupConfirmations() {
    document.addEventListener("submit", function (event) {
      var message = event.target.getAttribute("data-owner-confirm");
      if (message && !window.confirm(message)) event.preventDefault();
    });
  }

  function showLocalTimes() {
    document.querySelectorAll("time[data-owner-local]").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (isNaN(when.getTime())) return;
      var options = el.getAttribute("data-owner-local") === "date" ? { dateStyle: "medium" } : { dateStyle: "medium", timeStyle: "short" };
      el.title = el.textContent;
      el.textContent = when.toLocaleString(document.documentElement.lang || undefined, options);
    });
  }

  function setupTimeZone() {
    // The server turns "last day" into the end of that day where the owner is; tell it the offset for that day.
    document.querySelectorAll("input[data-owner-tz-offset]").forEach(function (field) {
      var form = field.form;
      var setOffset = function () {
        var day = form.querySelector("input[type=date]");
        var parts = day && day.value ? day.value.split("-").map(Number) : null;
        var at = parts ? new Date(parts[0], parts[1] - 1, parts[2] + 1) : new Date();
        field.value = String(at.getTimezoneOffset());
      };
      setOffset();
      form.addEventListener("submit", setOffset);
    });
  }

  /* ---- copy to clipboard ------------------------------------------------------------------------ */

  function copyText(input) {
    var fallback = function () {
      input.focus();
      input.select();
      try {
        return document.execCommand("copy");
      } catch (e) {
        return false;
      }
    };
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(input.value).then(function () { return true; }, fallback);
    }
    return Promise.resolve(fallback());
  }

  function setupCopyButtons() {
    document.querySelectorAll("input[data-owner-select-all]").forEach(function (input) {
      input.addEventListener("focus", function () { input.select(); });
    });
    document.querySelectorAll("button[data-owner-copy]").forEach(function (button) {
      var input = document.getElementById(button.getAttribute("data-owner-copy"));
      var item = button.closest("li");
      var status = item && item.querySelector(".owner-copy-status");
      var label = button.textContent;
      button.hidden = false;
      button.addEventListener("click", function () {
        copyText(input).then(function (ok) {
          button.textContent = ok ? t("copied", null, "Copied") : label;
          button.classList.toggle("owner-copied", ok);
          if (status) status.textContent = ok
            ? t("link_copied", null, "Link copied to the clipboard.")
            : t("copy_by_hand", null, "Press Ctrl+C (or ⌘C) to copy the selected link.");
          if (ok) setTimeout(function () { button.textContent = label; button.classList.remove("owner-copied"); }, 2500);
        });
      });
    });
  }

  /* ---- uploads ---------------------------------------------------------------------------------- */

  function Uploader(form) {
    this.form = form;
    this.input = form.querySelector("input[type=file]");
    this.list = form.querySelector("[data-owner-upload-list]");
    this.summary = form.querySelector("[data-owner-upload-summary]");
    this.token = form.querySelector("input[name=csrf_token]").value;
    this.maxBytes = Number(form.getAttribute("data-max-bytes")) || Infinity;
    this.queue = [];
    this.running = false;
    this.counts = { ok: 0, error: 0, total: 0 };
  }

  Uploader.prototype.start = function () {
    var self = this;
    var submit = this.form.querySelector("[data-owner-nojs-submit]");
    if (submit) submit.hidden = true;
    this.form.querySelectorAll("[data-owner-js-only]").forEach(function (el) { el.hidden = false; });
    this.input.addEventListener("change", function () { self.takeFromInput(); });
    this.form.addEventListener("submit", function (event) {
      event.preventDefault();
      self.takeFromInput();
    });
    this.setupDrop(this.form.querySelector("[data-owner-dropzone]"));
    window.addEventListener("beforeunload", function (event) {
      if (!self.running) return undefined;
      event.preventDefault();
      event.returnValue = "";
      return "";
    });
    var done = window.sessionStorage && sessionStorage.getItem(DONE_KEY);
    if (done) {
      sessionStorage.removeItem(DONE_KEY);
      this.summary.textContent = done;
    }
  };

  Uploader.prototype.takeFromInput = function () {
    this.add(this.input.files);
    this.input.value = "";
  };

  Uploader.prototype.setupDrop = function (zone) {
    var self = this;
    if (!zone) return;
    var hasFiles = function (event) {
      return event.dataTransfer && Array.prototype.indexOf.call(event.dataTransfer.types, "Files") !== -1;
    };
    ["dragenter", "dragover"].forEach(function (name) {
      zone.addEventListener(name, function (event) {
        if (!hasFiles(event)) return;
        event.preventDefault();
        event.dataTransfer.dropEffect = "copy";
        zone.classList.add("owner-dropzone-active");
      });
    });
    ["dragleave", "dragend"].forEach(function (name) {
      zone.addEventListener(name, function () { zone.classList.remove("owner-dropzone-active"); });
    });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      zone.classList.remove("owner-dropzone-active");
      self.add(event.dataTransfer.files);
    });
    // A file dropped just beside the zone must not make the browser leave the page to show it.
    ["dragover", "drop"].forEach(function (name) {
      document.addEventListener(name, function (event) {
        if (hasFiles(event) && !zone.contains(event.target)) event.preventDefault();
      });
    });
  };

  Uploader.prototype.add = function (files) {
    var self = this;
    Array.prototype.forEach.call(files || [], function (file) {
      var item = self.row(file);
      self.counts.total += 1;
      if (file.size > self.maxBytes) {
        self.fail(item, t("too_large", { limit: Math.floor(self.maxBytes / 1048576) }, "Larger than the {limit} MB limit."));
      } else {
        self.queue.push({ file: file, item: item });
      }
    });
    this.report();
    if (!this.running) this.next();
  };

  Uploader.prototype.row = function (file) {
    var item = document.createElement("li");
    item.className = "owner-upload-item";
    item.setAttribute("data-status", "waiting");
    var name = document.createElement("span");
    name.className = "owner-upload-name";
    name.textContent = file.name;
    var progress = document.createElement("progress");
    progress.max = 1;
    progress.value = 0;
    progress.setAttribute("aria-label", t("upload_of", { name: file.name }, "Upload of {name}"));
    var state = document.createElement("span");
    state.className = "owner-upload-state";
    state.textContent = t("waiting", null, "Waiting");
    item.appendChild(name);
    item.appendChild(progress);
    item.appendChild(state);
    this.list.appendChild(item);
    return item;
  };

  Uploader.prototype.next = function () {
    var self = this;
    var job = this.queue.shift();
    if (!job) {
      this.running = false;
      this.finish();
      return;
    }
    this.running = true;
    this.send(job.file, job.item).then(function () { self.next(); });
  };

  Uploader.prototype.send = function (file, item) {
    var self = this;
    var progress = item.querySelector("progress");
    item.setAttribute("data-status", "uploading");
    item.querySelector(".owner-upload-state").textContent = t("uploading", null, "Uploading");
    return new Promise(function (resolve) {
      var xhr = new XMLHttpRequest();
      xhr.open("POST", self.form.action);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.setRequestHeader("X-CSRFToken", self.token);
      xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
      xhr.upload.addEventListener("progress", function (event) {
        if (event.lengthComputable) progress.value = event.loaded / event.total;
      });
      xhr.addEventListener("load", function () {
        var body = null;
        try {
          body = JSON.parse(xhr.responseText);
        } catch (e) {
          body = null;
        }
        var result = body && body.files && body.files[0];
        if (xhr.status < 300 && result && result.ok) self.succeed(item);
        else self.fail(item, (result && result.error) || (body && body.message) || t("upload_failed", { status: xhr.status }, "Upload failed (HTTP {status})."));
        resolve();
      });
      xhr.addEventListener("error", function () {
        self.fail(item, t("connection_failed", null, "The connection failed. Check your network and try this file again."));
        resolve();
      });
      var data = new FormData();
      data.append("photos", file, file.name);
      xhr.send(data);
    });
  };

  Uploader.prototype.succeed = function (item) {
    this.counts.ok += 1;
    item.setAttribute("data-status", "ok");
    item.querySelector("progress").value = 1;
    item.querySelector(".owner-upload-state").textContent = t("uploaded", null, "Uploaded");
    this.report();
  };

  Uploader.prototype.fail = function (item, message) {
    this.counts.error += 1;
    item.setAttribute("data-status", "error");
    item.querySelector("progress").hidden = true;
    item.querySelector(".owner-upload-state").textContent = t("not_uploaded", null, "Not uploaded");
    var error = document.createElement("p");
    error.className = "owner-upload-error";
    error.textContent = message;
    item.appendChild(error);
    this.report();
  };

  Uploader.prototype.report = function () {
    var c = this.counts;
    var finished = c.ok + c.error;
    var text = finished < c.total ? t("progress", { current: finished + 1, total: c.total }, "Uploading {current} of {total}…") + " " : "";
    text += plural("photos_uploaded", c.ok, null, { one: "{count} photo uploaded", other: "{count} photos uploaded" });
    if (c.error) text += ", " + plural("files_failed", c.error, null, { one: "{count} file not uploaded (see below)", other: "{count} files not uploaded (see below)" });
    this.summary.textContent = text + ".";
  };

  Uploader.prototype.finish = function () {
    var c = this.counts;
    if (!c.ok) return;
    if (!c.error && window.sessionStorage) {
      // Everything worked: show the album with its new photos, and say so once more after the reload.
      sessionStorage.setItem(DONE_KEY, plural("photos_uploaded", c.ok, null, { one: "{count} photo uploaded", other: "{count} photos uploaded" }) + ".");
      window.location.reload();
      return;
    }
    if (this.summary.querySelector("a")) return;
    var link = document.createElement("a");
    link.href = window.location.pathname + "#photos";
    link.className = "owner-button";
    link.textContent = t("show_new", null, "Show the new photos");
    link.addEventListener("click", function (event) {
      event.preventDefault();
      window.location.reload();
    });
    this.summary.appendChild(document.createTextNode(" "));
    this.summary.appendChild(link);
  };

  ready(function () {
    setupConfirmations();
    showLocalTimes();
    setupTimeZone();
    setupCopyButtons();
    document.querySelectorAll("form.owner-upload").forEach(function (form) {
      if (window.FormData && window.XMLHttpRequest) new Uploader(form).start();
    });
  });
})();
