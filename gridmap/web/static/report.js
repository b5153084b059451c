/* The residents' report form (/report): the map, "使用我的位置", address suggestions, photos, and sending
 * the form with progress. Without this script the form still posts (an address instead of a map point).
 *
 * Positions are kept and sent in WGS84. While a GCJ-02 basemap (高德) is shown, the marker is drawn
 * shifted (GM.toGcj from the map runtime) and a tap is shifted back before it is kept.
 * Tests read window.gridmap (ready, the map) and window.report (the chosen place).
 */
(function () {
  "use strict";

  if (!window.L || !window.GM) return;  // the map files are missing: the plain form still posts (by address)
  var cfg = JSON.parse(document.getElementById("report-config").textContent);
  var form = document.getElementById("report-form");
  var el = function (id) { return document.getElementById(id); };
  var lonInput = el("lon"), latInput = el("lat"), address = el("address"), list = el("suggestions");
  var errorBox = el("form-error"), progress = el("progress"), submit = el("submit");
  var placeStatus = el("place-status"), placeGrid = el("place-grid");
  var report = window.report = { place: null, photos: [] };

  function say(node, text) { node.textContent = text || ""; node.hidden = !text; }
  function fail(text) { say(errorBox, text); if (text) errorBox.scrollIntoView({ block: "center" }); }
  function get(url) {
    return fetch(url, { headers: { Accept: "application/json" }, credentials: "omit" }).then(function (r) {
      if (!r.ok) throw new Error(String(r.status));
      return r.json();
    });
  }

  // the category's plain words -------------------------------------------------------------------
  var category = el("category");
  function categoryNote() {
    var option = category.options[category.selectedIndex];
    el("category-note").hidden = !(option && option.getAttribute("data-private"));
  }
  category.addEventListener("change", categoryNote);
  categoryNote();

  // the map ------------------------------------------------------------------------------------------
  el("map").hidden = false;
  el("place-tools").hidden = false;
  var map = L.map("map", { zoomControl: true });
  var state = GM.init(map, {});
  var bases = {};
  cfg.basemaps.forEach(function (b, i) {
    var options = { attribution: b.attribution, maxZoom: b.max_zoom };
    if (b.subdomains) options.subdomains = b.subdomains;
    var layer = L.tileLayer(b.url, options);
    if (b.labels_url) layer = L.layerGroup([layer, L.tileLayer(b.labels_url, options)]);
    layer.options.gcj02 = !!b.gcj02;
    bases[b.name] = GM.basemap(map, b.name, layer);
    if (i === 0) layer.addTo(map);
  });
  if (cfg.basemaps.length > 1) L.control.layers(bases, null, { collapsed: true }).addTo(map);
  map.fitBounds(cfg.bounds);
  var marker = null;

  /** GCJ-02 -> WGS84: GM.toGcj inverted by fixed-point iteration (a few steps reach millimetres). */
  function fromGcj(ll) {
    var w = L.latLng(ll.lat, ll.lng);
    for (var i = 0; i < 6; i++) {
      var g = GM.toGcj(w);
      w = L.latLng(w.lat + (ll.lat - g.lat), w.lng + (ll.lng - g.lng));
    }
    return w;
  }
  function shown(ll) { return state.gcj02 ? GM.toGcj(ll) : ll; }
  function draw() {
    if (!report.place) { if (marker) { map.removeLayer(marker); marker = null; } return; }
    var at = shown(L.latLng(report.place.lat, report.place.lon));
    if (marker) marker.setLatLng(at); else marker = L.marker(at, { keyboard: false }).addTo(map);
  }
  map.on("gm:datum", draw);

  function describe(answer) {
    if (!answer) return "";
    if (answer.grid) {
      var worker = (answer.workers || [])[0];
      return "此处属于" + answer.grid.name +
        (worker ? "，" + worker.role + " " + worker.name + " 负责" : "");
    }
    return "此处不在任何网格内，提交后由指挥中心安排办理。";
  }

  /** Keep a place (WGS84). ``how``: map, gps (sent as lon/lat) or address (the address text is sent). */
  function setPlace(lon, lat, how, answer) {
    report.place = { lon: lon, lat: lat, how: how };
    var exact = how !== "address";
    lonInput.value = exact ? lon.toFixed(6) : "";
    latInput.value = exact ? lat.toFixed(6) : "";
    draw();
    say(placeStatus, how === "map" ? "已在地图上选好位置" : how === "gps" ? "已使用您现在的位置" : "已按地址定位");
    if (answer) { say(placeGrid, describe(answer)); return; }
    get("/v1/lookup?lon=" + lon + "&lat=" + lat)
      .then(function (a) { say(placeGrid, describe(a)); })
      .catch(function () { say(placeGrid, ""); });
  }

  map.on("click", function (e) {
    var ll = state.gcj02 ? fromGcj(e.latlng) : e.latlng;
    setPlace(ll.lng, ll.lat, "map");
    fail("");
  });

  el("locate").addEventListener("click", function () {
    if (!navigator.geolocation || !window.isSecureContext) {
      say(placeStatus, "这个网页连接不能定位（需要 https），请在地图上点一下位置，或填写地址。");
      return;
    }
    say(placeStatus, "正在定位…");
    navigator.geolocation.getCurrentPosition(function (p) {
      setPlace(p.coords.longitude, p.coords.latitude, "gps");
      map.setView(shown(L.latLng(p.coords.latitude, p.coords.longitude)), 17);
    }, function (e) {
      say(placeStatus, e.code === 1 ? "您没有允许定位。请在地图上点一下位置，或填写地址。"
        : "暂时定不到位置（信号弱？）。请在地图上点一下位置，或填写地址。");
    }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
  });

  if (lonInput.value && latInput.value) {  // the page shown again after an error: keep the point
    setPlace(parseFloat(lonInput.value), parseFloat(latInput.value), "map");
  }

  // address suggestions (GET /v1/addresses?q=) -----------------------------------------------------------
  var timer = null, asked = "", items = [], active = -1;
  function closeList() { list.hidden = true; list.innerHTML = ""; items = []; active = -1; address.setAttribute("aria-expanded", "false"); }
  function choose(item) {
    address.value = item.text;
    closeList();
    get("/v1/lookup?address=" + encodeURIComponent(item.text)).then(function (a) {
      if (a && a.covered !== undefined && isFinite(a.lon) && isFinite(a.lat) && a.match && a.match.level !== "none") {
        setPlace(a.lon, a.lat, "address", a);
        map.setView(shown(L.latLng(a.lat, a.lon)), 17);
      }
    }).catch(function () {});
  }
  function showList(found) {
    list.innerHTML = "";
    items = found;
    active = -1;
    found.forEach(function (item, i) {
      var li = document.createElement("li");
      li.setAttribute("role", "option");
      li.textContent = item.text;
      var grid = (item.grids || [])[0];
      if (grid) { var small = document.createElement("small"); small.textContent = grid.name; li.appendChild(small); }
      li.addEventListener("mousedown", function (e) { e.preventDefault(); choose(items[i]); });
      list.appendChild(li);
    });
    list.hidden = !found.length;
    address.setAttribute("aria-expanded", found.length ? "true" : "false");
  }
  address.addEventListener("input", function () {
    if (report.place && report.place.how === "address") { report.place = null; draw(); say(placeGrid, ""); say(placeStatus, ""); }
    clearTimeout(timer);
    var q = address.value.trim();
    if (!q) { closeList(); return; }
    timer = setTimeout(function () {
      asked = q;
      get("/v1/addresses?limit=6&q=" + encodeURIComponent(q.slice(0, 50))).then(function (a) {
        if (asked === q && address.value.trim() === q) showList(a.items || []);
      }).catch(closeList);
    }, 250);
  });
  address.addEventListener("keydown", function (e) {
    if (list.hidden || !items.length) return;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      active = (active + (e.key === "ArrowDown" ? 1 : items.length - 1)) % items.length;
      Array.prototype.forEach.call(list.children, function (li, i) { li.setAttribute("aria-selected", String(i === active)); });
    } else if (e.key === "Enter" && active >= 0) {
      e.preventDefault();
      choose(items[active]);
    } else if (e.key === "Escape") {
      closeList();
    }
  });
  address.addEventListener("blur", function () { setTimeout(closeList, 150); });

  // photos ----------------------------------------------------------------------------------------------
  var photoInput = el("photos"), photoList = el("photo-list");
  function listPhotos() {
    photoList.innerHTML = "";
    report.photos.forEach(function (file, i) {
      var li = document.createElement("li"), img = document.createElement("img"), drop = document.createElement("button");
      img.alt = "照片 " + (i + 1);
      img.src = URL.createObjectURL(file);
      img.onload = function () { URL.revokeObjectURL(img.src); };
      drop.type = "button";
      drop.textContent = "×";
      drop.setAttribute("aria-label", "去掉这张照片");
      drop.addEventListener("click", function () { report.photos.splice(i, 1); listPhotos(); });
      li.appendChild(img);
      li.appendChild(drop);
      photoList.appendChild(li);
    });
    photoInput.disabled = report.photos.length >= cfg.max_photos;
  }
  if (photoInput) {
    photoInput.addEventListener("change", function () {
      var room = cfg.max_photos - report.photos.length;
      var picked = Array.prototype.slice.call(photoInput.files || []);
      if (picked.length > room) fail("最多 " + cfg.max_photos + " 张照片，多出的 " + (picked.length - room) + " 张没有加上。");
      report.photos = report.photos.concat(picked.slice(0, Math.max(0, room)));
      photoInput.value = "";
      listPhotos();
    });
  }

  /** A large JPEG or PNG made smaller before it goes over a weak network (the server re-encodes every
   * photo anyway, without its location data); anything the browser cannot draw (HEIC) is sent as it is. */
  function shrink(file) {
    var side = cfg.photo_side || 2048;
    if (!/^image\/(jpeg|png)$/.test(file.type) || file.size < 600 * 1024 || !window.createImageBitmap) {
      return Promise.resolve(file);
    }
    return createImageBitmap(file, { imageOrientation: "from-image" }).then(function (bitmap) {
      var scale = Math.min(1, side / Math.max(bitmap.width, bitmap.height));
      var canvas = document.createElement("canvas");
      canvas.width = Math.round(bitmap.width * scale);
      canvas.height = Math.round(bitmap.height * scale);
      canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      return new Promise(function (done) {
        canvas.toBlob(function (blob) {
          done(blob && blob.size < file.size ? new File([blob], file.name.replace(/\.\w+$/, "") + ".jpg",
            { type: "image/jpeg" }) : file);
        }, "image/jpeg", 0.85);
      });
    }).catch(function () { return file; });
  }

  // sending ----------------------------------------------------------------------------------------------
  function check() {
    if (!category.value) return "请选择问题类别";
    if (!form.elements.description.value.trim()) return "请简单描述一下问题";
    if (!lonInput.value && !address.value.trim()) return "请告诉我们问题在哪里：在地图上点选位置、使用我的位置，或填写地址";
    return "";
  }

  function send(body) {
    return new Promise(function (done, broken) {
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.getAttribute("action"));
      xhr.setRequestHeader("Accept", "application/json");
      xhr.timeout = 120000;
      xhr.upload.onprogress = function (e) {
        if (e.lengthComputable && report.photos.length) say(progress, "正在上传… " + Math.round(e.loaded / e.total * 100) + "%");
      };
      xhr.onload = function () {
        var answer = null;
        try { answer = JSON.parse(xhr.responseText); } catch (e) { answer = null; }
        done({ status: xhr.status, answer: answer, retryAfter: xhr.getResponseHeader("Retry-After") });
      };
      xhr.onerror = xhr.ontimeout = function () { broken(new Error("network")); };
      xhr.send(body);
    });
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var problem = check();
    if (problem) { fail(problem); return; }
    fail("");
    submit.disabled = true;
    submit.textContent = "正在提交…";
    say(progress, report.photos.length ? "正在准备照片…" : "");
    Promise.all(report.photos.map(shrink)).then(function (photos) {
      var body = new FormData(form);
      body.delete("photos");
      photos.forEach(function (file) { body.append("photos", file, file.name); });
      return send(body);
    }).then(function (reply) {
      if (reply.status === 201 && reply.answer) {
        say(progress, "已提交，正在打开回执…");
        window.location.assign(reply.answer.status_url);
        return;
      }
      var detail = reply.answer && reply.answer.detail;
      fail(detail || ("提交没有成功（" + reply.status + "），请稍后再试。"));
      reset();
    }, function () {
      fail("网络不太好，这次没有提交成功。请稍后再点“提交”：同一份表单不会重复登记。");
      reset();
    });
  });

  function reset() {
    submit.disabled = false;
    submit.textContent = "提交";
    say(progress, "");
  }

  state.ready = true;
})();
