/* The console pages (issue #15): the dispatch console, an incident's page and the grid worker's phone page.
 *
 * The pages are server-rendered and work without this script (forms post, links page); it adds the map (the
 * same vector tiles as the dispatcher's light map, drawn by gridmap-tiles.js: region outlines, grids, and the
 * incidents under the queue's own filters), list <-> map selection, filters and paging without reloads, live
 * updates (it polls /console/revision and reloads the list and the incident tiles when any incident changed),
 * and on the worker's page the distance to each task from where the worker stands, the finding's position
 * and a patrol's track. The browser's position is WGS84, as the incidents are; while a GCJ-02 basemap (高德) is
 * shown, what is drawn over it is shifted to GCJ-02 (GM.toGcj), and a tap on it is shifted back.
 * Tests read window.gridmapConsole.
 */
(function () {
  "use strict";

  var cfg = JSON.parse(document.getElementById("console-config").textContent);
  var GM = window.GM;
  var api = window.gridmapConsole = { mode: cfg.mode, selected: null, refreshes: 0, revision: cfg.revision,
    position: null, polls: 0 };
  document.body.classList.add("cs-js");

  function csrf() {
    var m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.getAttribute("content") : "";
  }
  function $(sel, root) { return (root || document).querySelector(sel); }
  function $all(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }

  // photos on an action's form (开始处置: 处置前, 处置完成: 处置后) ---------------------------------------------
  // A phone's camera (capture) takes one photo per field: once a field holds photos, another empty one is
  // offered, up to the form's limit; more than the limit is said before anything is sent. The server checks
  // the same again (gridmap.web.console.act).

  function photoFields(form) { return $all('input[type=file][name=photos]', form); }
  function photoCount(form) {
    return photoFields(form).reduce(function (n, f) { return n + (f.files ? f.files.length : 0); }, 0);
  }
  document.addEventListener("change", function (e) {
    var input = e.target;
    if (!input.matches || !input.matches('form.cs-action input[type=file][name=photos]')) return;
    var form = input.form, max = parseInt(input.getAttribute("data-max"), 10) || 4, n = photoCount(form);
    var label = input.closest("label"), note = $(".cs-photo-note", form);
    if (!note) {
      note = document.createElement("span");
      note.className = "cs-photo-note";
      label.parentNode.insertBefore(note, label.nextSibling);
    }
    note.textContent = n > max ? "最多 " + max + " 张，已选 " + n + " 张，请去掉一些" : (n ? "已选 " + n + " 张" : "");
    note.classList.toggle("cs-red-text", n > max);
    var empty = photoFields(form).filter(function (f) { return !f.files || !f.files.length; });
    if (n > 0 && n < max && !empty.length) {
      var more = input.cloneNode(false);
      more.value = "";
      var wrap = document.createElement("label");
      wrap.className = "cs-photo-field";
      wrap.appendChild(document.createTextNode("再加照片"));
      wrap.appendChild(more);
      var last = photoFields(form).pop().closest("label");
      last.parentNode.insertBefore(wrap, last.nextSibling);
    }
  });
  document.addEventListener("submit", function (e) {
    var form = e.target, fields = photoFields(form);
    if (!fields.length) return;
    var max = parseInt(fields[0].getAttribute("data-max"), 10) || 4;
    if (photoCount(form) > max) {
      e.preventDefault();
      $(".cs-photo-note", form).textContent = "最多 " + max + " 张照片，请去掉一些再提交";
    }
  }, true);

  /** Whether a form in ``root`` holds something typed or chosen: a refresh would throw it away. */
  function busy(root) {
    return $all("textarea", root).some(function (t) { return t.value; }) ||
      $all("input[type=file]", root).some(function (f) { return f.files && f.files.length; });
  }

  // the map ------------------------------------------------------------------------------------------------

  var view = null;   // {map, info}
  var ring = null;   // the selected incident's ring (WGS84 kept beside it)

  function display(lat, lon) {
    var ll = L.latLng(lat, lon);
    return window.gridmap && window.gridmap.gcj02 ? GM.toGcj(ll) : ll;
  }

  /** A point on the map as WGS84: the GCJ-02 shift undone (two rounds of the inverse: well under a metre). */
  function wgs(ll) {
    if (!window.gridmap.gcj02) return ll;
    var lat = ll.lat, lng = ll.lng;
    for (var i = 0; i < 3; i++) {
      var g = GM.toGcj(L.latLng(lat, lng));
      lat -= g.lat - ll.lat; lng -= g.lng - ll.lng;
    }
    return L.latLng(lat, lng);
  }

  function makeMap(id) {
    var el = document.getElementById(id);
    if (!el || !window.L) return null;
    var map = L.map(el, { preferCanvas: true, maxZoom: 19 });
    GM.init(map, { api: "/v1/lookup" });
    var bases = {};
    cfg.basemaps.forEach(function (b, i) {
      var opts = { attribution: b.attribution, subdomains: b.subdomains, maxNativeZoom: b.max_zoom, maxZoom: 19,
        gcj02: b.gcj02 };
      var layer = L.tileLayer(b.url, opts);
      if (b.labels_url) layer = L.layerGroup([layer, L.tileLayer(b.labels_url, opts)]);
      GM.basemap(map, b.name, layer);
      bases[b.name] = layer;
      if (i === 0) layer.addTo(map);
    });
    var blank = L.layerGroup();
    bases["空白底图（无瓦片）"] = blank;
    if (!cfg.basemaps.length) blank.addTo(map);
    var groups = [], overlays = {};
    cfg.tiles.layers.forEach(function (l) {
      var g = L.layerGroup().addTo(map), name = (cfg.tiles.names || {})[l.id] || l.id;
      groups.push(g);
      overlays[name] = g;
      GM.overlay(map, name, g);
    });
    var info = GM.tiles.apply(null, [map, cfg.tiles].concat(groups));
    L.control.layers(bases, overlays, { collapsed: true }).addTo(map);
    L.control.scale({ imperial: false }).addTo(map);
    if (cfg.bounds) map.fitBounds(cfg.bounds);
    map.on("gm:datum", function () {
      if (ring) ring.setLatLng(display(ring.csLat, ring.csLon));
      if (me) me.setLatLng(display(me.csLat, me.csLon));
    });
    view = { map: map, info: info };
    api.map = map;
    return view;
  }

  function mark(lat, lon) {
    if (!view) return;
    var ll = display(lat, lon);
    if (!ring) {
      ring = L.circleMarker(ll, { radius: 15, color: "#1f5fa8", weight: 4, fill: false, interactive: false })
        .addTo(view.map);
    } else {
      ring.setLatLng(ll);
    }
    ring.csLat = lat; ring.csLon = lon;
  }

  function setIncidents(query) {
    if (!view || !view.info.layers.incidents) return;
    var q = {};
    Object.keys(query).forEach(function (k) { q[k] = query[k]; });
    if (api.revision) q._r = api.revision;   // a new URL after a change: no cached tile is reused
    view.info.incidentQuery = q;
    view.info.layers.incidents.gmRefresh();
    api.tileQuery = q;
  }

  function poll(onChange, onTick) {
    setInterval(function () {
      if (document.hidden) return;
      fetch("/console/revision", { credentials: "same-origin", cache: "no-store" }).then(function (r) {
        return r.ok ? r.json() : null;
      }).then(function (d) {
        api.polls += 1;
        if (d && d.revision !== api.revision) { api.revision = d.revision; onChange(); }
        else if (onTick) onTick();
      }).catch(function () {});
    }, cfg.poll_ms || 5000);
  }

  function fragment(query) {
    return fetch("/console/queue" + (query ? "?" + query : ""), { credentials: "same-origin",
      headers: { Accept: "text/html" }, cache: "no-store" }).then(function (r) {
      if (r.status === 401) { window.location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search); }
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.text();
    });
  }

  // the dispatch console -----------------------------------------------------------------------------------

  function dispatch() {
    var v = makeMap("map");
    var panel = $("#queue-panel"), note = $("#map-note");
    var current = location.search.replace(/^\?/, "");
    var focusKey = null;

    function queueEl() { return $("#queue"); }

    function applyMap(first) {
      var q = queueEl();
      setIncidents(JSON.parse(q.getAttribute("data-tiles")));
      var focus = q.getAttribute("data-focus");
      if (v && focus !== focusKey) {
        var b = JSON.parse(focus);
        if (b) v.map.fitBounds(b, { maxZoom: 17 });
        else if (!first && cfg.bounds) v.map.fitBounds(cfg.bounds);
        focusKey = focus;
      }
    }

    function load(query, remember) {
      var before = {};
      $all(".cs-item").forEach(function (li) { before[li.getAttribute("data-id")] = true; });
      return fragment(query).then(function (html) {
        panel.innerHTML = html;
        current = query;
        api.refreshes += 1;
        if (remember) history.replaceState(null, "", "/console" + (query ? "?" + query : ""));
        bind();
        applyMap(false);
        if (!remember) {
          $all(".cs-item").forEach(function (li) {
            if (!before[li.getAttribute("data-id")]) li.classList.add("cs-new");
          });
        }
        if (api.selected) highlight(api.selected, false);
      }).catch(function (e) { note.textContent = "列表刷新失败：" + e.message; });
    }

    function formQuery(form) {
      var params = new URLSearchParams();
      new FormData(form).forEach(function (value, key) { if (value !== "") params.append(key, value); });
      return params.toString();
    }

    function highlight(id, scroll) {
      var found = null;
      $all(".cs-item").forEach(function (li) {
        var on = li.getAttribute("data-id") === String(id);
        li.classList.toggle("cs-selected", on);
        if (on) found = li;
      });
      if (found && scroll) found.scrollIntoView({ block: "nearest" });
      return found;
    }

    function select(id, fromMap) {
      api.selected = String(id);
      var li = highlight(id, fromMap);
      if (li) {
        var lat = parseFloat(li.getAttribute("data-lat")), lon = parseFloat(li.getAttribute("data-lon"));
        mark(lat, lon);
        if (!fromMap && v) v.map.setView(display(lat, lon), Math.max(v.map.getZoom(), 17));
        note.textContent = "";
      } else {
        note.textContent = "事件 #" + id + " 不在当前页（共 " + queueEl().getAttribute("data-total") + " 件）";
      }
      api.selectedOnList = !!li;
    }
    api.select = function (id) { select(id, false); };

    function bind() {
      var form = $("#filters");
      form.addEventListener("change", function () { load(formQuery(form), true); });
      form.addEventListener("submit", function (e) { e.preventDefault(); load(formQuery(form), true); });
      $all(".cs-tab, .cs-pager a").forEach(function (a) {
        a.addEventListener("click", function (e) {
          e.preventDefault();
          load(a.getAttribute("href").split("?")[1] || "", true);
        });
      });
      $all(".cs-item").forEach(function (li) {
        li.addEventListener("click", function (e) {
          if (e.target.closest("a")) return;
          select(li.getAttribute("data-id"), false);
        });
        li.addEventListener("keydown", function (e) { if (e.key === "Enter") select(li.getAttribute("data-id"), false); });
      });
    }

    bind();
    if (v) {
      applyMap(true);
      v.map.on("gm:feature", function (e) {
        if (e.layer !== "incidents") return;
        if (e.properties.count != null) { v.map.setView(e.latlng, Math.min(v.map.getZoom() + 2, 19)); return; }
        if (e.properties.id) select(e.properties.id, true);
      });
      GM.ready(v.map);
    }
    poll(function () { load(current, false); });
  }

  // an incident's page -------------------------------------------------------------------------------------

  function incidentPage() {
    var v = makeMap("map"), it = cfg.incident;
    if (!v) return;
    setIncidents({});
    v.map.setView(display(it.lat, it.lon), 17);
    mark(it.lat, it.lon);
    api.selected = String(it.id);
    GM.ready(v.map);
  }

  // the grid worker's page ---------------------------------------------------------------------------------

  var me = null;

  function metres(a, b) {
    var r = 6371008.8, p = Math.PI / 180;
    var dlat = (b.lat - a.lat) * p, dlon = (b.lon - a.lon) * p;
    var h = Math.sin(dlat / 2) * Math.sin(dlat / 2) +
      Math.cos(a.lat * p) * Math.cos(b.lat * p) * Math.sin(dlon / 2) * Math.sin(dlon / 2);
    return 2 * r * Math.asin(Math.min(1, Math.sqrt(h)));
  }

  function say(m) { return m < 1000 ? Math.round(m) + " 米" : (m / 1000).toFixed(1) + " 公里"; }

  function worker() {
    var v = makeMap("map");
    var where = $("#where"), form = $("#finding-form");
    if (v) {
      setIncidents({ status: ["reported", "accepted", "returned", "dispatched", "in_progress"] });
      if (cfg.focus) v.map.fitBounds(cfg.focus);
      v.map.on("click", function (e) { setFinding(wgs(e.latlng), "地图上选定"); });
      GM.ready(v.map);
    }

    /** Distances from where the worker stands; their own tasks first, then the nearest. */
    function distances() {
      var list = $(".cs-tasks");
      if (!list) return;
      var items = $all(".cs-task", list);
      items.forEach(function (li) {
        var p = { lat: parseFloat(li.getAttribute("data-lat")), lon: parseFloat(li.getAttribute("data-lon")) };
        var d = api.position ? metres(api.position, p) : null;
        li.csDistance = d;
        var span = $("[data-distance]", li);
        if (span) span.textContent = d == null ? "距离未知" : "距离 " + say(d);
      });
      if (!api.position) return;
      items.sort(function (a, b) {
        var ma = a.classList.contains("cs-mine") ? 0 : 1, mb = b.classList.contains("cs-mine") ? 0 : 1;
        return ma - mb || a.csDistance - b.csDistance;
      }).forEach(function (li) { list.appendChild(li); });
    }

    function setFinding(p, how) {
      form.elements.lon.value = p.lng.toFixed(6);
      form.elements.lat.value = p.lat.toFixed(6);
      $("#finding-where").textContent = how + "：" + p.lng.toFixed(5) + ", " + p.lat.toFixed(5);
    }

    function located(pos) {
      var p = { lat: pos.coords.latitude, lon: pos.coords.longitude, accuracy: pos.coords.accuracy };
      api.position = p;
      where.textContent = "您的位置：" + p.lon.toFixed(5) + ", " + p.lat.toFixed(5) +
        (p.accuracy ? "（精度约 " + Math.round(p.accuracy) + " 米）" : "");
      if (v) {
        var ll = display(p.lat, p.lon);
        if (!me) me = L.circleMarker(ll, { radius: 8, color: "#fff", weight: 3, fillColor: "#1a73e8", fillOpacity: 1,
          interactive: false }).addTo(v.map);
        else me.setLatLng(ll);
        me.csLat = p.lat; me.csLon = p.lon;
      }
      if (!form.elements.lon.value) setFinding(L.latLng(p.lat, p.lon), "我的位置");
      distances();
      patrolPoint(p);
    }

    if (navigator.geolocation) {
      navigator.geolocation.watchPosition(located, function (err) {
        where.textContent = "无法获取位置（" + (err.code === 1 ? "未允许定位" : "定位失败") + "），距离暂不显示";
      }, { enableHighAccuracy: true, maximumAge: 15000, timeout: 30000 });
    } else {
      where.textContent = "此浏览器不能定位，距离暂不显示";
    }

    $("#use-position").addEventListener("click", function () {
      if (api.position) { setFinding(L.latLng(api.position.lat, api.position.lon), "我的位置"); return; }
      where.textContent = "正在获取您的位置…";
    });
    form.addEventListener("submit", function (e) {
      if (!form.elements.lon.value || !form.elements.lat.value) {
        e.preventDefault();
        $("#finding-where").textContent = "请先取得位置：点“使用我的位置”，或在地图上点选";
        return;
      }
      if (!form.elements.idempotency_key.value) {   // a second tap re-sends the same report, not a new one
        form.elements.idempotency_key.value = "finding-" + Date.now() + "-" + Math.random().toString(36).slice(2);
      }
    });

    // a patrol: the track is kept in the browser (localStorage, so a reload keeps it) and sent when it ends
    var KEY = "gridmap-patrol-" + cfg.worker_code, state = $("#patrol-state");
    function patrol() { try { return JSON.parse(localStorage.getItem(KEY) || "null"); } catch (e) { return null; } }
    function save(p) { if (p) localStorage.setItem(KEY, JSON.stringify(p)); else localStorage.removeItem(KEY); }
    function length(points) {
      var m = 0;
      for (var i = 1; i < points.length; i++) m += metres({ lat: points[i - 1][1], lon: points[i - 1][0] }, { lat: points[i][1], lon: points[i][0] });
      return m;
    }
    function showPatrol() {
      var p = patrol();
      $("#patrol-start").hidden = !!p;
      $("#patrol-end").hidden = !p;
      if (p) state.textContent = "巡查中：" + p.points.length + " 个轨迹点，约 " + say(length(p.points));
      api.patrol = p;
    }
    function patrolPoint(pos) {
      var p = patrol();
      if (!p) return;
      var last = p.points[p.points.length - 1];
      if (!last || metres({ lat: last[1], lon: last[0] }, pos) >= 5) {
        p.points.push([+pos.lon.toFixed(6), +pos.lat.toFixed(6)]);
        save(p);
        showPatrol();
      }
    }
    $("#patrol-start").addEventListener("click", function () {
      save({ started_at: new Date().toISOString(), points: [] });
      if (api.position) patrolPoint(api.position);
      showPatrol();
    });
    $("#patrol-end").addEventListener("click", function () {
      var p = patrol();
      if (!p) return;
      var points = p.points.slice();
      if (!points.length) { state.textContent = "还没有取得任何位置，无法登记轨迹"; return; }
      if (points.length === 1) points.push(points[0]);
      var ended = new Date();
      if (ended <= new Date(p.started_at)) ended = new Date(new Date(p.started_at).getTime() + 1000);
      fetch("/v1/patrols", { method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf(),
          "Idempotency-Key": "patrol-" + cfg.worker_code + "-" + p.started_at },
        body: JSON.stringify({ worker_code: cfg.worker_code, started_at: p.started_at, ended_at: ended.toISOString(),
          track: { type: "LineString", coordinates: points }, visits: [] })
      }).then(function (r) { return r.json().then(function (d) { return { ok: r.ok, d: d }; }); }).then(function (a) {
        if (!a.ok) { state.textContent = "登记失败：" + (a.d.detail || "请稍后再试"); return; }
        save(null);
        showPatrol();
        state.textContent = "已登记巡查 #" + a.d.id + "。";
        api.lastPatrol = a.d;
      }).catch(function () { state.textContent = "登记失败：无法连接服务器，轨迹已保留，可稍后再点“结束巡查”"; });
    });
    showPatrol();

    var panel = $("#tasks-panel"), pending = false;
    function refresh() {
      if (busy(panel)) { pending = true; return; }   // a note or photos on a task's form: refresh later
      pending = false;
      fragment("").then(function (html) {
        panel.innerHTML = html;
        api.refreshes += 1;
        distances();
        if (view) setIncidents(view.info.incidentQuery || {});
      }).catch(function () {});
    }
    poll(refresh, function () { if (pending) refresh(); });
    api.distances = distances;
    api.located = located;
  }

  if (cfg.mode === "dispatch") dispatch();
  else if (cfg.mode === "incident") incidentPage();
  else if (cfg.mode === "worker") worker();
})();
