/* The declaration form, enhanced: address pickers filled in place, group members added and
 * removed without a round trip, the visitor remembered on this device (localStorage), the last
 * QR code one tap away. The form works without this file. */
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  var STORE = "khaibao.visitor.v1", LAST = "khaibao.lastpass.v1";
  var KEEP = ["full_name", "id_type", "id_number", "birth", "gender", "nationality", "phone",
              "province_code", "district_code", "commune_code", "street", "same_address"];

  function storage() { try { return window.localStorage; } catch (e) { return null; } }

  /* ---- the result page: remember where the last QR code is ---- */
  var result = document.getElementById("result");
  if (result && storage()) {
    storage().setItem(LAST, JSON.stringify({ url: result.getAttribute("data-result-url"),
      until: Number(result.getAttribute("data-valid-until")) }));
  }

  /* ---- a refused form: focus its error summary (read out), whose links focus their field ---- */
  var summary = document.querySelector(".error-summary");
  if (summary) {
    summary.focus();
    summary.addEventListener("click", function (event) {
      var link = event.target.closest("a[href^='#']");
      var target = link && document.getElementById(link.getAttribute("href").slice(1));
      if (!target) { return; }
      // A fieldset (radio or tick boxes) takes focus on its first box; the anchor alone only scrolls.
      var control = target.matches("input, select, textarea") ? target : target.querySelector("input, select, textarea");
      if (control) {
        event.preventDefault();
        control.focus();
        control.scrollIntoView({ block: "center" });
      }
    });
  }

  var form = document.getElementById("declare-form");
  if (!form) { return; }
  var peopleBox = document.getElementById("people");
  var count = document.getElementById("count");
  var template = document.getElementById("person-template");
  var placesUrl = form.getAttribute("data-places-url");
  var cache = {};

  function field(index, name) { return form.elements["p" + index + "." + name]; }
  function blocks() { return peopleBox.querySelectorAll(".person"); }

  /* ---- address pickers ---- */
  function loadProvince(code) {
    if (!code) { return Promise.resolve(null); }
    if (cache[code]) { return Promise.resolve(cache[code]); }
    return fetch(placesUrl + encodeURIComponent(code) + ".json", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (doc) { cache[code] = doc; return doc; })
      .catch(function () { return null; });
  }
  function fill(select, options, value) {
    if (!select) { return; }
    var first = select.options.length && select.options[0].value === "" ? select.options[0] : null;
    select.innerHTML = "";
    if (first) { select.appendChild(first); }
    options.forEach(function (o) {
      var option = document.createElement("option");
      option.value = o[0]; option.textContent = o[1];
      select.appendChild(option);
    });
    select.value = value || "";
  }
  function districtsOf(doc) { return doc ? doc.districts.map(function (d) { return [d.code, d.name]; }) : []; }
  function communesOf(doc, district) {
    var found = doc && doc.districts.filter(function (d) { return d.code === district; })[0];
    return found ? found.communes : [];
  }
  function setAddress(index, province, district, commune) {
    var p = field(index, "province_code");
    if (!p) { return Promise.resolve(); }
    p.value = province || "";
    return loadProvince(province).then(function (doc) {
      fill(field(index, "district_code"), districtsOf(doc), district);
      fill(field(index, "commune_code"), communesOf(doc, district), commune);
    });
  }
  form.addEventListener("change", function (event) {
    var target = event.target, kind = target.getAttribute("data-pick");
    var index = target.getAttribute("data-index");
    if (kind === "province") {
      setAddress(index, target.value, "", "");
    } else if (kind === "district") {
      loadProvince(field(index, "province_code").value).then(function (doc) {
        fill(field(index, "commune_code"), communesOf(doc, target.value), "");
      });
    } else if (target.hasAttribute("data-same-address")) {
      var box = document.getElementById("address-" + target.getAttribute("data-same-address"));
      if (box) { box.classList.toggle("address--shared", target.checked); }
    }
  });

  /* ---- group members ---- */
  function renumber(block, from, to) {
    var patterns = [[new RegExp("(^|[^0-9a-z])p" + from + "\\.", "g"), "$1p" + to + "."],
                    [new RegExp("f-p" + from + "-", "g"), "f-p" + to + "-"],
                    [new RegExp("(person|address)-" + from + "$"), "$1-" + to],
                    [new RegExp("^remove:" + from + "$"), "remove:" + to]];
    var nodes = [block].concat(Array.prototype.slice.call(block.querySelectorAll("*")));
    nodes.forEach(function (node) {
      ["name", "id", "for", "value", "aria-describedby"].forEach(function (attr) {
        var v = node.getAttribute(attr);
        if (v === null || (attr === "value" && !/^remove:/.test(v))) { return; }
        patterns.forEach(function (p) { v = v.replace(p[0], p[1]); });
        node.setAttribute(attr, v);
      });
      ["data-index", "data-same-address"].forEach(function (attr) {
        if (node.getAttribute(attr) === String(from)) { node.setAttribute(attr, String(to)); }
      });
    });
    var legend = block.querySelector(".person__legend");
    if (legend && to > 0) { legend.textContent = form.getAttribute("data-person-label").replace("{n}", to + 1); }
  }
  function addPerson() {
    var n = blocks().length;
    if (!template || n >= Number(form.getAttribute("data-max"))) { return null; }
    var block = template.content.firstElementChild.cloneNode(true);
    renumber(block, 99, n);
    peopleBox.appendChild(block);
    count.value = String(n + 1);
    setAddress(n, field(0, "province_code").value, field(0, "district_code").value, field(0, "commune_code").value)
      .then(function () { field(n, "street").value = field(0, "street").value; });
    var add = document.getElementById("add-person");
    if (add && n + 1 >= Number(form.getAttribute("data-max"))) { add.hidden = true; }
    return block;
  }
  function removePerson(index) {
    var all = blocks();
    if (index < 1 || index >= all.length) { return; }
    peopleBox.removeChild(all[index]);
    all = blocks();
    for (var i = index; i < all.length; i++) { renumber(all[i], i + 1, i); }
    count.value = String(all.length);
    var add = document.getElementById("add-person");
    if (add) { add.hidden = false; }
  }
  form.addEventListener("click", function (event) {
    var button = event.target.closest("button[name=action]");
    if (!button) { return; }
    if (button.value === "add" && template) {
      event.preventDefault();
      var block = addPerson();
      if (block) { field(blocks().length - 1, "full_name").focus(); }
    } else if (/^remove:\d+$/.test(button.value)) {
      event.preventDefault();
      removePerson(Number(button.value.split(":")[1]));
    }
  });

  /* ---- remembered on this device (personal details only, never the health answers) ---- */
  function read() {
    try { return JSON.parse(storage().getItem(STORE) || "null"); } catch (e) { return null; }
  }
  form.addEventListener("submit", function (event) {
    var submitter = event.submitter;
    if (form.getAttribute("data-mode") !== "public" || !storage() || (submitter && submitter.value !== "submit")) { return; }
    if (!form.elements.consent || !form.elements.consent.checked) { return; }
    var people = [];
    for (var i = 0; i < blocks().length; i++) {
      var person = {};
      KEEP.forEach(function (name) {
        var el = field(i, name);
        if (!el) { return; }
        if (el.type === "checkbox") { person[name] = el.checked; }
        else if (el.length !== undefined && el.tagName !== "SELECT") {
          var checked = Array.prototype.filter.call(el, function (r) { return r.checked; })[0];
          person[name] = checked ? checked.value : "";
        } else { person[name] = el.value; }
      });
      people.push(person);
    }
    storage().setItem(STORE, JSON.stringify({ people: people, saved: Date.now() }));
  });
  function restore(saved) {
    var waits = [];
    saved.people.forEach(function (person, i) {
      if (i > 0 && !addPerson()) { return; }
      KEEP.forEach(function (name) {
        var el = field(i, name);
        if (!el || /_code$/.test(name)) { return; }
        if (el.type === "checkbox") {
          el.checked = !!person[name];
          el.dispatchEvent(new Event("change", { bubbles: true }));
        } else if (el.length !== undefined && el.tagName !== "SELECT") {
          Array.prototype.forEach.call(el, function (r) { r.checked = r.value === person[name]; });
        } else if (person[name] !== undefined) { el.value = person[name]; }
      });
      waits.push(setAddress(i, person.province_code, person.district_code, person.commune_code));
    });
    return Promise.all(waits);
  }
  var remembered = document.getElementById("remembered");
  if (form.getAttribute("data-mode") === "public" && form.getAttribute("data-fresh") === "1" && storage()) {
    var saved = read();
    if (saved && saved.people && saved.people.length) {
      restore(saved).then(function () { form.setAttribute("data-restored", "1"); });
      if (remembered) { remembered.hidden = false; }
    }
    var last = null;
    try { last = JSON.parse(storage().getItem(LAST) || "null"); } catch (e) { last = null; }
    var lastBox = document.getElementById("last-pass");
    if (last && last.url && last.until * 1000 > Date.now() && lastBox) {
      document.getElementById("last-pass-link").setAttribute("href", last.url);
      lastBox.hidden = false;
    }
  }
  var forget = document.getElementById("forget");
  if (forget) {
    forget.addEventListener("click", function () {
      storage().removeItem(STORE);
      storage().removeItem(LAST);
      window.location.reload();
    });
  }
}());
