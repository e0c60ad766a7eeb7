// The "preparing your download" page: start (or join) the preparation, show its progress, and when the ZIP is
// ready navigate to its signed link. A plain navigation, never fetch() into a blob: the browser's own download
// manager saves the file, shows it, and can resume it (large blobs fail on phones and in Safari).
(function () {
  "use strict";

  var card = document.querySelector("[data-prepare]");
  if (!card) return;

  var POLL_MS = 1000;
  var SLOW_POLL_MS = 3000;
  var MAX_NETWORK_ERRORS = 5;

  var bar = document.getElementById("prepare-bar");
  var message = document.getElementById("prepare-message");
  var ready = document.getElementById("prepare-ready");
  var link = document.getElementById("prepare-link");
  var expiry = document.getElementById("prepare-expiry");
  var errorBox = document.getElementById("prepare-error");
  var retry = document.getElementById("prepare-retry");
  var emailForm = document.getElementById("prepare-email");
  var notifyBox = document.getElementById("prepare-notify");
  var notifyButton = document.getElementById("prepare-notify-button");

  var jobId = null;
  var timer = null;
  var started = Date.now();
  var networkErrors = 0;
  var navigated = false;
  var title = document.title;
  var t = window.photoshareText; // text in the page's language: prepare.html's js_text block, js/i18n.js

  // A visitor who opened the page with ?password= has no access cookie yet: send the password along.
  var password = new URLSearchParams(window.location.search).get("password");

  function request(method, url, body) {
    var headers = { Accept: "application/json" };
    if (body) headers["Content-Type"] = "application/json";
    if (password) headers["X-Share-Password"] = password;
    return fetch(url, {
      method: method,
      headers: headers,
      body: body ? JSON.stringify(body) : undefined,
      credentials: "same-origin",
      cache: "no-store",
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        return { ok: response.ok, status: response.status, data: data };
      });
    });
  }

  function setProgress(percent, text) {
    bar.value = percent;
    bar.textContent = t("percent", { percent: window.photoshareNumber(percent) }, "{percent} %");
    message.textContent = text;
    document.title = (percent ? t("percent", { percent: window.photoshareNumber(percent) }, "{percent} %") + " · " : "") + title;
  }

  function showError(text) {
    clearTimeout(timer);
    card.querySelector(".prepare-progress").dataset.state = "failed";
    errorBox.textContent = text || t("failed", null, "Something went wrong while preparing your download.");
    errorBox.hidden = false;
    retry.hidden = false;
    message.textContent = t("not_prepared", null, "The download could not be prepared.");
    document.title = title;
  }

  function clearError() {
    errorBox.hidden = true;
    retry.hidden = true;
  }

  function notifyReady() {
    if (!document.hidden || !("Notification" in window) || Notification.permission !== "granted") return;
    try {
      new Notification(t("notification", null, "Your download is ready"), { body: card.dataset.album + " (ZIP)", tag: "photoshare-" + jobId });
    } catch (e) {
      // Some mobile browsers only notify from a service worker: the page itself still says "ready".
    }
  }

  function startDownload(data) {
    clearTimeout(timer);
    setProgress(100, t("ready", null, "Ready! Your download is starting…"));
    card.querySelector(".prepare-progress").dataset.state = "ready";
    link.href = data.download_url;
    if (data.expires_at) {
      var until = new Date(data.expires_at).toLocaleString(document.documentElement.lang || undefined);
      expiry.textContent = " " + t("expiry", { until: until }, "The link works for 24 hours, until {until}.");
    }
    ready.hidden = false;
    if (notifyBox) notifyBox.hidden = true;
    notifyReady();
    if (!navigated) {
      navigated = true;
      window.location.assign(data.download_url);
    }
  }

  function handle(result) {
    var data = result.data || {};
    if (!result.ok) {
      showError(data.message);
      return;
    }
    jobId = data.job_id || jobId;
    networkErrors = 0;
    if (data.status === "ready") {
      startDownload(data);
    } else if (data.status === "failed") {
      showError(data.error);
    } else {
      var percent = data.progress || 0;
      var text = data.status === "queued"
        ? t("queued", null, "Preparing your download… waiting for its turn")
        : t("progress", { percent: window.photoshareNumber(percent) }, "Preparing your download… {percent} %");
      setProgress(percent, text);
      schedulePoll();
    }
  }

  function schedulePoll() {
    clearTimeout(timer);
    var delay = Date.now() - started > 60000 ? SLOW_POLL_MS : POLL_MS;
    timer = setTimeout(poll, delay);
  }

  function poll() {
    request("GET", card.dataset.statusUrl + encodeURIComponent(jobId)).then(handle, function () {
      // A phone losing its connection for a moment is normal: keep trying, quietly at first.
      networkErrors += 1;
      if (networkErrors >= MAX_NETWORK_ERRORS) {
        showError(t("connection_lost", null, "The connection to the server was lost. Check your connection and try again."));
      } else {
        schedulePoll();
      }
    });
  }

  function prepare() {
    clearError();
    started = Date.now();
    card.querySelector(".prepare-progress").dataset.state = "preparing";
    setProgress(0, t("preparing", null, "Preparing your download…"));
    request("POST", card.dataset.prepareUrl, {}).then(handle, function () {
      showError(t("unreachable", null, "The server could not be reached. Check your connection and try again."));
    });
  }

  retry.addEventListener("click", function () {
    navigated = false;
    prepare();
  });

  if (emailForm) {
    emailForm.addEventListener("submit", function (event) {
      event.preventDefault();
      var input = emailForm.querySelector("input[name=email]");
      var status = document.getElementById("prepare-email-status");
      var address = input.value.trim();
      if (!address) {
        status.textContent = t("email_missing", null, "Please enter an e-mail address.");
        input.focus();
        return;
      }
      status.textContent = t("saving", null, "Saving…");
      request("POST", card.dataset.prepareUrl, { email: address }).then(function (result) {
        if (result.ok) {
          status.textContent = t("email_saved", { address: address }, "We will e-mail the link to {address} when the ZIP is ready. You can close this page.");
          input.removeAttribute("aria-invalid");
        } else {
          status.textContent = (result.data && result.data.message) || t("email_failed", null, "That did not work. Please try again.");
          input.setAttribute("aria-invalid", "true");
        }
      }, function () {
        status.textContent = t("email_unreachable", null, "The server could not be reached. Please try again.");
      });
    });
  }

  if (notifyBox && "Notification" in window && Notification.permission === "default") {
    notifyBox.hidden = false;
    notifyButton.addEventListener("click", function () {
      Notification.requestPermission().then(function () { notifyBox.hidden = true; });
    });
  }

  prepare();
})();
