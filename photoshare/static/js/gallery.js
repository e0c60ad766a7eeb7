/* Photoshare gallery: "Load more" with infinite scrolling, the photo viewer, expiry in local time.
   Plain JavaScript, no dependencies, no build step. Without it the page still works: the pager's links
   page through the album and each tile opens its large view. Downloads are plain links, never fetched. */
(function () {
  "use strict";

  const AUTOLOAD_SCREENS = 1.5; // start loading the next page this many screen heights before the end
  const SWIPE_MIN = 50; // px of horizontal travel that counts as a swipe

  // Text and numbers in the page's language (js/i18n.js; the text comes from gallery.html's js_text block).
  const t = window.photoshareText;
  const number = (n) => window.photoshareNumber(Number(n));

  function localTimes() {
    let format;
    try {
      format = new Intl.DateTimeFormat(document.documentElement.lang || undefined, { dateStyle: "long", timeStyle: "short" });
    } catch (error) {
      return;
    }
    document.querySelectorAll("time[data-local-time]").forEach((element) => {
      const moment = new Date(element.getAttribute("datetime"));
      if (!Number.isNaN(moment.getTime())) element.textContent = format.format(moment);
    });
  }

  /* ---- pages of photos ------------------------------------------------------------------------------ */

  function setupLoader(gallery) {
    const total = Number(gallery.dataset.total);
    const first = Number(gallery.dataset.first);
    const pages = Number(gallery.dataset.pages);
    let page = Number(gallery.dataset.page);
    const pager = document.querySelector("[data-pager]");
    const nextLink = pager && pager.querySelector("[data-pager-next]");
    const status = pager && pager.querySelector("[data-pager-status]");
    const loader = { hasMore: () => false, loadMore: async () => false };
    if (!nextLink || !status) return loader;

    const button = document.createElement("button");
    button.type = "button";
    button.className = "button button-primary load-more";
    button.textContent = t("load_more", null, "Load more photos");
    nextLink.replaceWith(button);

    let pending = null;
    let autoload = true; // paused after a failure, so a broken connection does not loop

    function tileCount() {
      return gallery.querySelectorAll(".tile").length;
    }

    function showStatus() {
      const last = first + tileCount() - 1;
      status.textContent =
        page >= pages && first === 1
          ? t("all_shown", { total: number(total) }, "All {total} photos shown")
          : t("showing", { first: number(first), last: number(last), total: number(total) }, "Showing photos {first}–{last} of {total}");
    }

    async function fetchNext(byUser) {
      button.disabled = true;
      button.setAttribute("aria-busy", "true");
      button.textContent = t("loading", null, "Loading photos…");
      try {
        const url = new URL(gallery.dataset.fragmentUrl, window.location.href);
        url.searchParams.set("page", String(page + 1));
        const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
        if ([401, 403, 404, 410].includes(response.status)) {
          window.location.reload(); // signed out, link closed or album changed: the page explains
          return false;
        }
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        const template = document.createElement("template");
        template.innerHTML = await response.text();
        const tiles = Array.from(template.content.querySelectorAll(".tile"));
        const list = document.createElement("ul");
        list.className = "gallery-grid";
        const from = first + tileCount();
        list.setAttribute("aria-label", t("list_label", { from: number(from), to: number(from + tiles.length - 1) }, "Photos {from} to {to}"));
        tiles.forEach((tile) => list.appendChild(tile));
        gallery.appendChild(list);
        page += 1;
        if (byUser && tiles.length) tiles[0].querySelector(".tile-link").focus();
        showStatus();
        return tiles.length > 0;
      } catch (error) {
        autoload = false;
        status.textContent = t("load_failed", null, "Could not load more photos. Check your connection and try again.");
        return false;
      } finally {
        button.disabled = false;
        button.removeAttribute("aria-busy");
        button.textContent = t("load_more", null, "Load more photos");
        if (page >= pages) {
          button.remove();
          observer && observer.disconnect();
        } else {
          window.requestAnimationFrame(maybeAutoload);
        }
      }
    }

    function loadMore(byUser) {
      if (page >= pages) return Promise.resolve(false);
      if (!pending) pending = fetchNext(byUser).finally(() => (pending = null));
      return pending;
    }

    function maybeAutoload() {
      const margin = window.innerHeight * AUTOLOAD_SCREENS;
      if (autoload && button.isConnected && button.getBoundingClientRect().top < window.innerHeight + margin) {
        loadMore(false);
      }
    }

    button.addEventListener("click", () => {
      autoload = true;
      loadMore(true);
    });
    const observer =
      "IntersectionObserver" in window
        ? new IntersectionObserver((entries) => entries.some((e) => e.isIntersecting) && maybeAutoload(), {
            rootMargin: `0px 0px ${Math.round(AUTOLOAD_SCREENS * 100)}% 0px`,
          })
        : null;
    if (observer) observer.observe(button);

    loader.hasMore = () => page < pages;
    loader.loadMore = loadMore;
    return loader;
  }

  /* ---- the viewer ----------------------------------------------------------------------------------- */

  function setupViewer(gallery, loader) {
    const dialog = document.querySelector("[data-viewer]");
    if (!dialog || typeof dialog.showModal !== "function") return; // old browsers: links open the large view

    const part = (name) => dialog.querySelector(`[data-viewer-${name}]`);
    const image = part("image");
    const stage = part("stage");
    const title = part("title");
    const position = part("position");
    const download = part("download");
    const size = part("size");
    const downloadLarge = part("download-large");
    const sizeLarge = part("size-large");
    const save = part("save");
    const prev = part("prev");
    const next = part("next");
    const closeButton = part("close");
    const status = part("status");
    const total = Number(gallery.dataset.total);
    let current = -1;

    const tiles = () => Array.from(gallery.querySelectorAll(".tile-link"));

    function fit() {
      const link = tiles()[current];
      if (!link) return;
      const width = Number(link.dataset.width);
      const height = Number(link.dataset.height);
      const style = window.getComputedStyle(stage);
      const room = stage.getBoundingClientRect();
      const roomWidth = room.width - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
      const roomHeight = room.height - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom);
      const scale = Math.min(roomWidth / width, roomHeight / height, 1);
      image.style.width = `${Math.max(1, Math.floor(width * scale))}px`;
      image.style.height = `${Math.max(1, Math.floor(height * scale))}px`;
    }

    function show(index) {
      const all = tiles();
      const link = all[index];
      if (!link) return;
      current = index;
      const data = link.dataset;
      image.setAttribute("aria-busy", "true");
      image.style.backgroundImage = `url("${data.thumb}")`; // the cached thumbnail shows while the view loads
      image.alt = data.name;
      image.src = link.href;
      fit();
      title.textContent = data.name;
      const where = { name: data.name, number: number(data.number), total: number(total) };
      position.textContent = t("position", where, "Photo {number} of {total}");
      status.textContent = t("viewer_status", where, "{name}, photo {number} of {total}");
      if (download) {
        download.href = data.download;
        download.setAttribute("aria-label", t("download_label", { name: data.name, size: data.size }, "Download {name} ({size})"));
        size.textContent = `(${data.size})`;
      }
      if (downloadLarge) {
        downloadLarge.href = data.downloadLarge;
        const label = downloadLarge.dataset.label.replace("{name}", data.name);
        downloadLarge.setAttribute("aria-label", data.sizeLarge ? `${label} (${data.sizeLarge})` : label);
        sizeLarge.textContent = data.sizeLarge ? `(${data.sizeLarge})` : "";
      }
      if (save) {
        save.href = data.download;
        save.dataset.name = data.name;
      }
      prev.disabled = index === 0;
      next.disabled = index === all.length - 1 && !loader.hasMore();
      if (document.activeElement && document.activeElement.disabled) closeButton.focus();
      history.replaceState(history.state, "", `#photo-${data.photoId}`);
      [all[index + 1], all[index - 1]].forEach((neighbour) => {
        if (neighbour) new Image().src = neighbour.href; // the next swipe is instant
      });
    }

    async function step(delta) {
      const target = current + delta;
      if (target < 0) return;
      if (target >= tiles().length && !(await loader.loadMore(false))) return;
      show(target);
    }

    function open(link, pushHistory) {
      if (pushHistory) history.pushState({ viewer: true }, "", window.location.href);
      dialog.showModal();
      document.body.classList.add("viewer-open");
      show(tiles().indexOf(link));
      closeButton.focus();
    }

    image.addEventListener("load", () => image.removeAttribute("aria-busy"));
    image.addEventListener("error", () => {
      image.removeAttribute("aria-busy");
      status.textContent = t("photo_failed", null, "This photo could not be loaded.");
    });

    gallery.addEventListener("click", (event) => {
      const link = event.target.closest(".tile-link");
      if (!link || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
      event.preventDefault();
      open(link, true);
    });
    prev.addEventListener("click", () => step(-1));
    next.addEventListener("click", () => step(1));
    closeButton.addEventListener("click", () => dialog.close());
    stage.addEventListener("click", (event) => event.target === stage && dialog.close());

    dialog.addEventListener("keydown", (event) => {
      if (event.key === "ArrowRight") step(1);
      else if (event.key === "ArrowLeft") step(-1);
      else return;
      event.preventDefault();
    });

    // Swipe left or right on a phone; vertical scrolls and pinches are left to the browser.
    let touchStart = null;
    stage.addEventListener(
      "touchstart",
      (event) => {
        touchStart = event.touches.length === 1 ? { x: event.touches[0].clientX, y: event.touches[0].clientY } : null;
      },
      { passive: true }
    );
    stage.addEventListener(
      "touchend",
      (event) => {
        if (!touchStart) return;
        const touch = event.changedTouches[0];
        const dx = touch.clientX - touchStart.x;
        const dy = touch.clientY - touchStart.y;
        touchStart = null;
        if (Math.abs(dx) > SWIPE_MIN && Math.abs(dx) > 1.5 * Math.abs(dy)) step(dx < 0 ? 1 : -1);
      },
      { passive: true }
    );

    dialog.addEventListener("close", () => {
      document.body.classList.remove("viewer-open");
      image.removeAttribute("src");
      const link = tiles()[current];
      if (history.state && history.state.viewer) history.back(); // the entry pushed on open
      else history.replaceState(history.state, "", window.location.pathname + window.location.search);
      if (link) link.focus(); // back on the photo the visitor ended on, scrolled into view
    });
    // The phone's back button closes the viewer instead of leaving the album.
    window.addEventListener("popstate", () => dialog.open && dialog.close());
    window.addEventListener("resize", () => dialog.open && fit());

    setupSave(save);

    const deepLink = window.location.hash.match(/^#photo-(\d+)$/);
    const linked = deepLink && gallery.querySelector(`.tile-link[data-photo-id="${deepLink[1]}"]`);
    if (linked) open(linked, false);
  }

  /* ---- selecting photos ------------------------------------------------------------------------------ */

  // Real checkboxes on the tiles (Tab and Space select), "Select all" and a bar with the count, the size,
  // "Download selected" and "Clear". The choice (photo id -> bytes) is kept in localStorage per share token,
  // so it survives a reload and pages not loaded yet. "Download selected" names the set to the API, then
  // navigates to the ZIP (or to the preparing page for a large one): the browser's own download manager saves
  // it, resumably, as it does "Download all".
  function humanSize(size) {
    if (size < 1000) return size === 1 ? "1 byte" : `${size} bytes`;
    let value = size;
    const units = ["KB", "MB", "GB", "TB"];
    for (let i = 0; i < units.length; i += 1) {
      value /= 1000;
      if (value < 999.95 || i === units.length - 1) {
        return `${value < 100 ? value.toFixed(1) : value.toFixed(0)} ${units[i]}`;
      }
    }
    return `${size} bytes`;
  }

  function setupSelection(gallery) {
    const bar = document.querySelector("[data-selection-bar]");
    const tools = document.querySelector("[data-selection-tools]");
    if (!bar || !tools || !window.fetch) return;
    const key = `photoshare:selection:${bar.dataset.token}`;
    const selectAll = tools.querySelector("[data-select-all]");
    const count = bar.querySelector("[data-selection-count]");
    const size = bar.querySelector("[data-selection-size]");
    const error = bar.querySelector("[data-selection-error]");
    const download = bar.querySelector("[data-selection-download]");
    const downloadLarge = bar.querySelector("[data-selection-download-large]"); // absent on web-size-only links
    const clear = bar.querySelector("[data-selection-clear]");
    const total = Number(gallery.dataset.total);
    let chosen = new Map();

    try {
      const stored = JSON.parse(window.localStorage.getItem(key) || "{}");
      // [bytes, web-size bytes] per photo id (a plain number: stored before web size was offered).
      Object.keys(stored).forEach((id) => {
        const value = stored[id];
        chosen.set(id, Array.isArray(value) ? [Number(value[0]) || 0, Number(value[1]) || 0] : [Number(value) || 0, 0]);
      });
    } catch (problem) {
      chosen = new Map(); // no storage (private mode) or a damaged entry: start empty
    }

    function save() {
      try {
        if (chosen.size) window.localStorage.setItem(key, JSON.stringify(Object.fromEntries(chosen)));
        else window.localStorage.removeItem(key);
      } catch (problem) {
        /* the selection still works for this page */
      }
    }

    function render() {
      gallery.querySelectorAll("[data-select]").forEach((box) => {
        box.checked = chosen.has(box.value);
        box.closest(".tile").classList.toggle("is-selected", box.checked);
      });
      let bytes = 0;
      let largeBytes = 0;
      chosen.forEach((value) => {
        bytes += value[0];
        largeBytes += value[1];
      });
      if (downloadLarge) {
        downloadLarge.hidden = largeBytes === 0;
        downloadLarge.querySelector("span").textContent = downloadLarge.dataset.text.replace("{size}", humanSize(largeBytes));
      }
      count.textContent = bar.dataset.textSelected.replace("{count}", number(chosen.size));
      size.textContent = humanSize(bytes);
      bar.hidden = chosen.size === 0;
      document.body.classList.toggle("has-selection", chosen.size > 0);
      selectAll.setAttribute("aria-pressed", String(chosen.size > 0 && chosen.size >= total));
    }

    // [bytes, web-size bytes] of a tile's photo, from its check box.
    function tileBytes(box) {
      return [Number(box.dataset.bytes), Number(box.dataset.largeBytes) || 0];
    }

    function showError(message) {
      error.textContent = message;
      error.hidden = !message;
    }

    gallery.addEventListener("change", (event) => {
      const box = event.target.closest("[data-select]");
      if (!box) return;
      if (box.checked) chosen.set(box.value, tileBytes(box));
      else chosen.delete(box.value);
      showError("");
      save();
      render();
    });

    selectAll.addEventListener("click", async () => {
      showError("");
      if (selectAll.getAttribute("aria-pressed") === "true") {
        chosen.clear();
      } else {
        // Every photo of the album, also those on pages not loaded yet: the album JSON lists them all.
        try {
          const response = await fetch(bar.dataset.albumUrl, { credentials: "same-origin" });
          if (!response.ok) throw new Error(`HTTP ${response.status}`);
          (await response.json()).photos.forEach((photo) => {
            // A web-size-only link downloads the large JPEGs: count their bytes.
            const large = photo.sizes && photo.sizes.large ? photo.sizes.large.bytes || 0 : 0;
            const only = photo.sizes && !photo.sizes.original && photo.sizes.large;
            chosen.set(String(photo.id), [only ? large : photo.size, large]);
          });
        } catch (problem) {
          gallery.querySelectorAll("[data-select]").forEach((box) =>
            chosen.set(box.value, tileBytes(box)));
        }
      }
      save();
      render();
    });

    clear.addEventListener("click", () => {
      chosen.clear();
      showError("");
      save();
      render();
      selectAll.focus(); // the bar is gone: keep the keyboard user near the photos
    });

    // Either button: the selection in its original files, or in web size (large JPEGs).
    async function downloadSelection(button, size) {
      button.disabled = true;
      button.setAttribute("aria-busy", "true");
      showError("");
      try {
        const response = await fetch(bar.dataset.selectionsUrl, {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", Accept: "application/json" },
          body: JSON.stringify(Object.assign({ photo_ids: Array.from(chosen.keys(), Number) }, size ? { size } : {})),
        });
        const data = await response.json().catch(() => ({}));
        if (!response.ok) {
          showError(data.message || bar.dataset.textFailed);
          return;
        }
        let target = data.needs_preparation ? data.prepare_page_url : data.download_url;
        if (bar.dataset.gateUrl) {
          // The owner asks for a PIN or an e-mail first: their form, then on to the selection's download.
          const next = new URL(target, window.location.href);
          target = `${bar.dataset.gateUrl}?next=${encodeURIComponent(next.pathname + next.search)}`;
        }
        window.location.assign(target);
      } catch (problem) {
        showError(bar.dataset.textFailed);
      } finally {
        button.disabled = false;
        button.removeAttribute("aria-busy");
      }
    }

    download.addEventListener("click", () => downloadSelection(download, null));
    if (downloadLarge) downloadLarge.addEventListener("click", () => downloadSelection(downloadLarge, "large"));

    // Tiles that "Load more" adds get their checks set from the stored choice.
    new MutationObserver(render).observe(gallery, { childList: true });
    tools.hidden = false;
    gallery.classList.add("can-select");
    render();
  }

  /* ---- "Save to Photos": the phone's share sheet with the file itself ------------------------------------ */

  // iOS Safari and Android Chrome put a shared image file into the photo library ("Save Image"); a download
  // would land in Files or Downloads instead. Where files cannot be shared the link stays a plain download.
  function canShareFiles() {
    try {
      const probe = new File([new Uint8Array(1)], "photo.jpg", { type: "image/jpeg" });
      return typeof navigator.share === "function" && typeof navigator.canShare === "function"
        && navigator.canShare({ files: [probe] });
    } catch (error) {
      return false;
    }
  }

  function downloadName(response, fallback) {
    const header = response.headers.get("Content-Disposition") || "";
    const encoded = header.match(/filename\*=UTF-8''([^;]+)/i);
    if (encoded) {
      try {
        return decodeURIComponent(encoded[1]);
      } catch (error) { /* a malformed header: the plain name below */ }
    }
    const plain = header.match(/filename="([^"]+)"/i);
    return plain ? plain[1] : fallback;
  }

  function setupSave(save) {
    if (!save || !canShareFiles()) return;
    save.addEventListener("click", async (event) => {
      event.preventDefault();
      save.setAttribute("aria-busy", "true");
      try {
        const response = await fetch(save.href, { credentials: "same-origin" });
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        const blob = await response.blob();
        const type = (response.headers.get("Content-Type") || blob.type || "").split(";")[0];
        const file = new File([blob], downloadName(response, save.dataset.name), { type });
        if (!navigator.canShare({ files: [file] })) throw new Error("this file cannot be shared");
        await navigator.share({ files: [file] });
      } catch (error) {
        if (error && error.name === "AbortError") return; // the visitor closed the share sheet
        window.location.assign(save.href); // anything else: the plain download
      } finally {
        save.removeAttribute("aria-busy");
      }
    });
  }

  function start() {
    localTimes();
    const gallery = document.querySelector("[data-gallery]");
    if (!gallery) return;
    setupViewer(gallery, setupLoader(gallery));
    setupSelection(gallery);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
