// tradewire dashboard: confirmations, copy buttons, local times and live updates.
// Plain JavaScript, no build step. Every page works without it (forms post, a confirmation
// page is served instead of the dialog); with it, pages update themselves as things happen.
"use strict";

(function () {
  // ---- times in the reader's own time zone ------------------------------------------------
  function localTimes(root) {
    root.querySelectorAll("time[datetime]:not([data-local])").forEach(function (el) {
      var d = new Date(el.getAttribute("datetime"));
      if (isNaN(d)) return;
      el.title = el.textContent;
      el.textContent = d.toLocaleString(undefined, {
        year: "numeric", month: "2-digit", day: "2-digit",
        hour: "2-digit", minute: "2-digit", second: "2-digit",
      });
      el.dataset.local = "1";
    });
  }

  // ---- confirmations where money moves -----------------------------------------------------
  var dialog, pending = null, opener = null;

  function confirmSubmit(event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || form.method === "dialog") return;
    if (form.dataset.confirm && form.dataset.confirmed !== "1" && dialog && dialog.showModal) {
      event.preventDefault();
      if (dialog.open) return;  // one confirmation at a time: a second submit changes nothing
      pending = form;
      opener = document.activeElement;
      document.getElementById("confirm-text").textContent = form.dataset.confirm;
      dialog.returnValue = "";
      dialog.showModal();
      return;
    }
    // One click, one request: a second click while the first is on its way does nothing.
    form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; });
    form.dataset.busy = "1";
  }

  function dialogClosed() {
    // The close event comes a task after the dialog closed: a key pressed meanwhile may have
    // opened the next confirmation, whose own close will come; this one is not its business.
    if (dialog.open) return;
    var form = pending;
    pending = null;
    if (form && dialog.returnValue === "ok") {
      var flag = form.querySelector("input[name=confirmed]");
      if (flag) flag.value = "yes";
      form.dataset.confirmed = "1";
      if (form.requestSubmit) form.requestSubmit(); else form.submit();
    } else if (opener && opener.focus) {
      opener.focus();  // back where the person was, so the keyboard path is not lost
    }
  }

  // ---- copy buttons ------------------------------------------------------------------------
  function copy(event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.querySelector(button.dataset.copy);
    if (!source) return;
    var text = source.value !== undefined ? source.value : source.textContent;
    var done = function () { toast("Copied"); button.textContent = "Copied"; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { selectFallback(source, done); });
    } else {
      selectFallback(source, done);
    }
  }

  function selectFallback(source, done) {
    if (source.select) { source.select(); } else {
      var range = document.createRange();
      range.selectNodeContents(source);
      var sel = window.getSelection(); sel.removeAllRanges(); sel.addRange(range);
    }
    try { if (document.execCommand("copy")) done(); } catch (e) { /* selected: Ctrl+C works */ }
  }

  // ---- toasts (announced politely to screen readers) ---------------------------------------
  function toast(text) {
    var box = document.getElementById("toasts");
    if (!box) return;
    var el = document.createElement("div");
    el.className = "toast";
    el.textContent = text;
    box.appendChild(el);
    while (box.children.length > 4) box.removeChild(box.firstChild);
    setTimeout(function () { el.remove(); }, 5000);
  }

  // ---- live updates ------------------------------------------------------------------------
  var timers = new WeakMap(), busy = new WeakSet(), waiting = new WeakSet();
  var live = { events: 0, refreshes: 0, streams: 0 };
  window.twLive = live;  // what the browser tests read to know a refresh happened

  function typing(region) {
    var el = document.activeElement;
    return el && region.contains(el) && /^(INPUT|SELECT|TEXTAREA)$/.test(el.tagName);
  }

  function handsOn(region) {
    return typing(region) || region.querySelector("form[data-busy]") ||
      (pending && region.contains(pending));
  }

  // Where the keyboard is in a region: its nearest box with an id or a signal, and the place
  // of the focused control among that box's controls; found again after the region is redrawn.
  var CONTROLS = "a[href], button, input, select, textarea";

  function focusPlace(region) {
    var el = document.activeElement;
    if (!el || !region.contains(el)) return null;
    var box = el.closest("[id], [data-signal]");
    if (!box || !region.contains(box)) return null;
    return { id: box.id, signal: box.dataset.signal,
             at: Array.prototype.indexOf.call(box.querySelectorAll(CONTROLS), el) };
  }

  function refocus(region, place) {
    if (!place || place.at < 0) return;
    var box = place.signal !== undefined
      ? region.querySelector('[data-signal="' + CSS.escape(place.signal) + '"]')
      : document.getElementById(place.id);
    var control = box && region.contains(box) ? box.querySelectorAll(CONTROLS)[place.at] : null;
    if (control) control.focus();
  }

  function refresh(region) {
    if (busy.has(region)) { waiting.add(region); return; }
    // Not under a person's hands: while they type, confirm or submit there, it waits.
    if (handsOn(region)) {
      waiting.add(region);
      setTimeout(function () { schedule(region); }, 1000);
      return;
    }
    busy.add(region);
    fetch(region.dataset.panel, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) {
        if (r.status === 401) { setStatus("down", "Signed out"); return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (html === null) return;
        // The person got there while this was on its way (a confirmation opened on a form
        // the new HTML would replace, so confirming would submit nothing): drawn after.
        if (handsOn(region)) { waiting.add(region); return; }
        var place = focusPlace(region);
        region.innerHTML = html;
        refocus(region, place);
        localTimes(region);
        live.refreshes += 1;
        region.dispatchEvent(new CustomEvent("tw:refreshed", { bubbles: true }));
      })
      .catch(function () { /* the next event tries again */ })
      .finally(function () {
        busy.delete(region);
        if (waiting.has(region)) { waiting.delete(region); schedule(region); }
      });
  }

  function schedule(region) {
    clearTimeout(timers.get(region));
    timers.set(region, setTimeout(function () { refresh(region); }, 250));
  }

  function regionsFor(kind, data) {
    return Array.prototype.filter.call(document.querySelectorAll("[data-panel][data-refresh-on]"),
      function (region) {
        var kinds = region.dataset.refreshOn.split(" ");
        if (kinds.indexOf(kind) < 0) return false;
        var only = region.dataset.matchSignal;
        return !only || kind === "price" || !data.signalId || data.signalId === only;
      });
  }

  function setStatus(state, text) {
    var el = document.getElementById("live-status");
    if (!el) return;
    el.dataset.state = state;
    el.textContent = text;
  }

  var KINDS = ["signal", "order", "fill", "price", "position", "account", "service", "job"];

  function onChange(kind, event) {
    var data = {};
    try { data = JSON.parse(event.data || "{}"); } catch (e) { /* keep {} */ }
    live.events += 1;
    regionsFor(kind, data).forEach(schedule);
    if (kind === "signal" && data.event === "SignalReceived") toast("New signal (" + (data.status || "") + ")");
    if (kind === "fill") toast("Order filled");
  }

  function connect() {
    if (!window.EventSource || document.body.dataset.live !== "on") return;
    var source = new EventSource("/ui/events");
    source.addEventListener("ready", function () {
      setStatus("live", "Live");
      // After a reconnect, a price may have moved in the gap: show every part as it is now.
      if (live.streams > 0) document.querySelectorAll("[data-panel][data-refresh-on]").forEach(schedule);
      live.streams += 1;
    });
    KINDS.forEach(function (kind) {
      source.addEventListener(kind, function (event) { onChange(kind, event); });
    });
    source.onerror = function () {
      // The server ends each stream after a while; the browser reconnects by itself.
      if (source.readyState === EventSource.CONNECTING) { setStatus("connecting", "Reconnecting…"); return; }
      setStatus("down", "Offline");
      source.close();
      setTimeout(connect, 5000);
    };
  }

  document.addEventListener("DOMContentLoaded", function () {
    dialog = document.getElementById("confirm-dialog");
    if (dialog) dialog.addEventListener("close", dialogClosed);
    document.addEventListener("submit", confirmSubmit);
    document.addEventListener("click", copy);
    localTimes(document);
    connect();
  });
  // Back to a page from the browser's cache: its buttons must work again.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;
    document.querySelectorAll("form[data-busy]").forEach(function (form) {
      delete form.dataset.busy;
      delete form.dataset.confirmed;
      form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = false; });
    });
  });
})();
