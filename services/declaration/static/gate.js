/* The gate screen: verify personal QR codes in the browser (WebCrypto Ed25519 with the public
 * keys embedded in the page, no network needed), count the entry, keep entries made offline in
 * localStorage until they can be sent. Without WebCrypto Ed25519 it asks the server; without
 * this script the scan form posts to the server, which does the same. */
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  var gate = document.getElementById("gate");
  var form = document.getElementById("scan-form");
  if (!gate || !form) { return; }
  var input = form.elements.code;
  var venue = gate.getAttribute("data-venue");
  var keys = JSON.parse(gate.getAttribute("data-keys") || "{\"keys\":[]}").keys;
  var QUEUE = "khaibao.gate.queue." + venue;
  var imported = {};
  var box = document.getElementById("signal-box");
  var counter = document.getElementById("count-entries");
  var note = document.getElementById("offline-note");

  function hex(text) {
    if (!/^([0-9A-F]{2})+$/.test(text)) { return null; }
    var out = new Uint8Array(text.length / 2);
    for (var i = 0; i < out.length; i++) { out[i] = parseInt(text.substr(i * 2, 2), 16); }
    return out;
  }
  function importKey(kid) {
    if (imported[kid]) { return imported[kid]; }
    var jwk = keys.filter(function (k) { return k.kid === kid; })[0];
    if (!jwk) { return Promise.resolve(null); }
    imported[kid] = window.crypto.subtle.importKey("jwk", { kty: "OKP", crv: "Ed25519", x: jwk.x },
      { name: "Ed25519" }, false, ["verify"]);
    return imported[kid];
  }
  /* -> Promise of {outcome, result, id, expires} (outcome: valid | red | expired | forged) */
  function verifyLocally(text) {
    var parts = text.split(".");
    var forged = { outcome: "forged", offline: true };
    if (parts.length !== 6 || parts[0] !== "KB1" || ["G", "Y", "R"].indexOf(parts[3]) < 0 ||
        !/^\d+$/.test(parts[4]) || parts[2].length !== 32) { return Promise.resolve(forged); }
    var signature = hex(parts[5]), id = parts[2];
    if (!signature || !hex(id)) { return Promise.resolve(forged); }
    if (!keys.some(function (k) { return k.kid === parts[1]; })) { return Promise.resolve(forged); }
    var message = new TextEncoder().encode(parts.slice(0, 5).join("."));
    return importKey(parts[1]).then(function (key) {
      return window.crypto.subtle.verify({ name: "Ed25519" }, key, signature, message);
    }).then(function (ok) {
      if (!ok) { return forged; }
      var result = { G: "green", Y: "yellow", R: "red" }[parts[3]];
      var expires = Number(parts[4]);
      var uuid = id.toLowerCase().replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, "$1-$2-$3-$4-$5");
      var outcome = expires * 1000 < Date.now() ? "expired" : (result === "red" ? "red" : "valid");
      return { outcome: outcome, result: result, id: uuid, expires: expires, offline: true };
    });
  }
  function verifyOnServer(text) {
    return fetch(gate.getAttribute("data-verify-url"), {
      method: "POST", credentials: "same-origin",
      headers: { "content-type": "application/json", "x-csrf-token": gate.getAttribute("data-csrf-token") || "" },
      body: JSON.stringify({ code: text })
    }).then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.json(); })
      .then(function (v) { return { outcome: v.outcome, result: v.result, id: v.declaration_id, expires: v.expires_at }; });
  }
  function verify(text) {
    if (!window.crypto || !window.crypto.subtle || !window.TextEncoder) { return verifyOnServer(text); }
    return verifyLocally(text).catch(function (error) {
      if (window.console) { window.console.warn("verified by the server:", error && error.message); }
      return verifyOnServer(text);
    });
  }
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function show(found) {
    var kind = found.outcome === "valid" && found.result === "yellow" ? "yellow" : found.outcome;
    var template = document.getElementById("signal-" + kind);
    if (!template) { return; }
    var panel = template.content.firstElementChild.cloneNode(true);
    if (found.expires) {
      var d = new Date(found.expires * 1000);
      var until = panel.querySelector(".signal__until");
      until.textContent = until.getAttribute("data-label") + " " + pad(d.getHours()) + ":" + pad(d.getMinutes()) + " " +
        pad(d.getDate()) + "/" + pad(d.getMonth() + 1) + "/" + d.getFullYear();
    }
    if (found.id) {
      panel.querySelector(".signal__ref").textContent = "· " + found.id.replace(/-/g, "").slice(0, 8).toUpperCase();
      var link = panel.querySelector(".signal__case");
      if (link) { link.setAttribute("href", link.getAttribute("href").split("?")[0] + "?declaration=" + found.id); }
    }
    panel.setAttribute("data-checked", found.offline ? "browser" : "server");
    box.innerHTML = "";
    box.appendChild(panel);
  }

  /* ---- entries: sent at once, or kept on this device until the network is back ---- */
  function queued() { try { return JSON.parse(localStorage.getItem(QUEUE) || "[]"); } catch (e) { return []; } }
  function keep(list) { try { localStorage.setItem(QUEUE, JSON.stringify(list)); } catch (e) { /* full */ } }
  function nonce() {
    if (window.crypto && window.crypto.randomUUID) { return window.crypto.randomUUID(); }
    var b = window.crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 15) | 64; b[8] = (b[8] & 63) | 128;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
    return h.replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, "$1-$2-$3-$4-$5");
  }
  function refreshNote() {
    var n = queued().length;
    note.hidden = n === 0;
    note.textContent = gate.getAttribute("data-offline-label").replace("{n}", n);
  }
  function flush() {
    var list = queued();
    if (!list.length) { refreshNote(); return Promise.resolve(); }
    return fetch(gate.getAttribute("data-entries-url"), {
      method: "POST", credentials: "same-origin",
      headers: { "content-type": "application/json", "x-csrf-token": gate.getAttribute("data-csrf-token") || "" },
      body: JSON.stringify({ venue_id: venue, entries: list.slice(0, 500) })
    }).then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.json(); })
      .then(function (counts) {
        var sent = list.slice(0, 500).map(function (e) { return e.nonce; });
        keep(queued().filter(function (e) { return sent.indexOf(e.nonce) < 0; }));
        counter.textContent = String(counts.entries);
        refreshNote();
      }).catch(function () { refreshNote(); });
  }
  function admit(found) {
    var list = queued();
    list.push({ nonce: nonce(), declaration_id: found ? found.id : null, result: found ? found.result : "manual",
                at: Date.now() / 1000 });
    keep(list);
    counter.textContent = String(Number(counter.textContent) + 1);
    return flush();
  }

  form.addEventListener("submit", function (event) {
    var text = input.value.replace(/\s+/g, "").toUpperCase();
    if (text.indexOf("KB1.") !== 0) { return; }  /* an ID card: the server opens the prefilled form */
    event.preventDefault();
    input.value = "";
    verify(text).then(function (found) {
      show(found);
      if (found.outcome === "valid") { admit(found); }
    }).catch(function () {
      input.value = text;
      form.submit();  /* neither the browser nor the API could say: let the page do it */
    }).then(function () { input.focus(); });
  });
  var entryForm = document.getElementById("entry-form");
  if (entryForm) {
    entryForm.addEventListener("submit", function (event) {
      event.preventDefault();
      admit(null);
    });
  }
  window.addEventListener("online", flush);
  window.setInterval(flush, 15000);
  flush();
  input.focus();
}());
