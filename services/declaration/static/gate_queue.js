/* The gate's queue on this device (IndexedDB), shared by the gate page and its service worker:
 * "entries" keyed by the nonce made at the scan, "declarations" keyed by their idempotency key.
 * Each item names its venue; an item is deleted as soon as the server acknowledged it. */
(function (scope) {
  "use strict";
  var NAME = "khaibao-gate", VERSION = 1;

  function open() {
    return new Promise(function (resolve, reject) {
      var request = scope.indexedDB.open(NAME, VERSION);
      request.onupgradeneeded = function () {
        var db = request.result;
        if (!db.objectStoreNames.contains("entries")) { db.createObjectStore("entries", { keyPath: "nonce" }); }
        if (!db.objectStoreNames.contains("declarations")) { db.createObjectStore("declarations", { keyPath: "key" }); }
      };
      request.onsuccess = function () { resolve(request.result); };
      request.onerror = function () { reject(request.error); };
    });
  }
  /* work(objectStore) may return an IDBRequest: its result is the transaction's, once committed */
  function run(store, mode, work) {
    return open().then(function (db) {
      return new Promise(function (resolve, reject) {
        var tx = db.transaction(store, mode);
        var request = work(tx.objectStore(store));
        tx.oncomplete = function () { db.close(); resolve(request ? request.result : undefined); };
        tx.onerror = tx.onabort = function () { db.close(); reject(tx.error); };
      });
    });
  }
  scope.KhaibaoGateQueue = {
    put: function (store, item) { return run(store, "readwrite", function (s) { s.put(item); }); },
    all: function (store, venue) {
      return run(store, "readonly", function (s) { return s.getAll(); }).then(function (items) {
        return (items || []).filter(function (item) { return !venue || item.venue === venue; });
      });
    },
    remove: function (store, keys) {
      return run(store, "readwrite", function (s) { keys.forEach(function (key) { s.delete(key); }); });
    }
  };
}(self));
